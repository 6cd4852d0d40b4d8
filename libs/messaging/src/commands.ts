/**
 * Commands over NATS request/reply (core NATS, not JetStream: a command is a question to a live
 * service, not a fact). The payload and the reply are JSON; a reply is
 * `{ ok: true, result }` or `{ ok: false, error: { code, message } }`, so a handler's domain
 * error reaches the caller as `CommandFailed` with its code. Trace context travels in headers.
 */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  headers as natsHeaders,
  NoRespondersError,
  RequestError,
  TimeoutError,
  type Msg,
  type MsgHdrs,
  type Subscription,
} from '@nats-io/nats-core';
import { extractTraceContext, getTracer, injectTraceContext, type Logger } from '@longtail/telemetry';
import type { MessagingConnection } from './connection.js';
import {
  CommandError,
  CommandFailed,
  messageOf,
  MessagingError,
  NoResponders,
  RequestTimeout,
} from './errors.js';
import { requestStream, type StreamRequestOptions } from './streaming.js';

export interface RequestOptions {
  /** Default 5000 ms. */
  readonly timeoutMs?: number;
}

export interface OnCommandOptions {
  /** Queue group: one member of the group answers each request. Default: the subject. */
  readonly queue?: string;
}

export interface CommandMeta {
  readonly subject: string;
  readonly headers: Readonly<Record<string, string>>;
}

export type CommandHandler = (payload: unknown, meta: CommandMeta) => unknown;

type Reply = { ok: true; result: unknown } | { ok: false; error: { code: string; message: string } };

/** Sends commands. In Nest, inject `CommandClient`; elsewhere use `createCommandClient`. */
export abstract class CommandClient {
  /**
   * Sends `payload` (JSON) to `subject` and resolves with the handler's result.
   * @throws NoResponders nobody listens on the subject
   * @throws RequestTimeout no reply in time (the command may still have run)
   * @throws CommandFailed the handler answered with an error code
   */
  abstract request<T = unknown>(subject: string, payload: unknown, options?: RequestOptions): Promise<T>;

  /**
   * Sends `payload` to an `@OnStream` handler and yields its chunks in order. Leaving the loop
   * early or aborting `options.signal` cancels the handler.
   * @throws NoResponders | RequestTimeout | CommandFailed (from the iterator)
   */
  abstract requestStream<T = unknown>(
    subject: string,
    payload: unknown,
    options?: StreamRequestOptions,
  ): AsyncIterable<T>;
}

export function createCommandClient(conn: MessagingConnection): CommandClient {
  return new CommandClientImpl(conn);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value === undefined ? null : value));
}

class CommandClientImpl extends CommandClient {
  readonly #conn: MessagingConnection;
  constructor(conn: MessagingConnection) {
    super();
    this.#conn = conn;
  }

  requestStream<T = unknown>(
    subject: string,
    payload: unknown,
    options: StreamRequestOptions = {},
  ): AsyncIterable<T> {
    return requestStream<T>(this.#conn, subject, payload, options);
  }

  async request<T = unknown>(subject: string, payload: unknown, options: RequestOptions = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? 5000;
    const span = getTracer('@longtail/messaging').startSpan(`request ${subject}`, {
      kind: SpanKind.CLIENT,
      attributes: { 'messaging.system': 'nats', 'messaging.destination.name': subject, 'rpc.system': 'nats' },
    });
    const ctx = trace.setSpan(context.active(), span);
    try {
      const h = natsHeaders();
      injectTraceContext(h, ctx);
      let msg: Msg;
      try {
        msg = await this.#conn.nc.request(subject, encodeJson(payload), { timeout: timeoutMs, headers: h });
      } catch (err) {
        throw mapRequestError(subject, timeoutMs, err);
      }
      let reply: Reply;
      try {
        reply = JSON.parse(decoder.decode(msg.data)) as Reply;
      } catch (err) {
        throw new CommandFailed(subject, 'BAD_REPLY', 'reply is not JSON', { cause: err });
      }
      if (reply.ok) return reply.result as T;
      throw new CommandFailed(
        subject,
        reply.error?.code ?? 'INTERNAL',
        reply.error?.message ?? 'unknown error',
      );
    } catch (err) {
      span.recordException(err instanceof Error ? err : new Error(messageOf(err)));
      span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(err) });
      throw err;
    } finally {
      span.end();
    }
  }
}

function mapRequestError(subject: string, timeoutMs: number, err: unknown): MessagingError {
  if (err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders())) {
    return new NoResponders(subject, { cause: err });
  }
  if (err instanceof TimeoutError || (err instanceof Error && err.cause instanceof TimeoutError)) {
    return new RequestTimeout(subject, timeoutMs, { cause: err });
  }
  return new CommandFailed(subject, 'TRANSPORT', messageOf(err), { cause: err });
}

function headerRecord(h: MsgHdrs | undefined): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  if (h) for (const key of h.keys()) out[key] = h.get(key);
  return Object.freeze(out);
}

export interface CommandServer {
  readonly subject: string;
  /** Stops taking requests and waits for the ones being answered. */
  stop(): Promise<void>;
}

/** Answers requests on `subject` with `handler`; each request runs in the caller's trace. */
export function serveCommand(
  conn: MessagingConnection,
  subject: string,
  handler: CommandHandler,
  options: OnCommandOptions & { logger?: Logger | undefined } = {},
): CommandServer {
  const inflight = new Set<Promise<void>>();
  const sub: Subscription = conn.nc.subscribe(subject, {
    queue: options.queue ?? subject,
    callback: (err, msg) => {
      if (err) {
        conn.reportError(err);
        return;
      }
      const p = answer(msg).finally(() => inflight.delete(p));
      inflight.add(p);
    },
  });

  async function answer(msg: Msg): Promise<void> {
    const parent = extractTraceContext(msg.headers);
    const span = getTracer('@longtail/messaging').startSpan(
      `handle ${subject}`,
      {
        kind: SpanKind.SERVER,
        attributes: { 'messaging.system': 'nats', 'messaging.destination.name': msg.subject },
      },
      parent,
    );
    let reply: Reply;
    try {
      reply = await context.with(trace.setSpan(parent, span), async () => {
        let payload: unknown;
        try {
          payload = msg.data.length === 0 ? null : JSON.parse(decoder.decode(msg.data));
        } catch {
          return { ok: false as const, error: { code: 'BAD_REQUEST', message: 'payload is not JSON' } };
        }
        try {
          const result = await handler(payload, { subject: msg.subject, headers: headerRecord(msg.headers) });
          return { ok: true as const, result: result === undefined ? null : result };
        } catch (err) {
          span.recordException(err instanceof Error ? err : new Error(messageOf(err)));
          span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(err) });
          if (err instanceof CommandError)
            return { ok: false as const, error: { code: err.code, message: err.message } };
          options.logger?.error({ err, subject }, 'command handler failed');
          return { ok: false as const, error: { code: 'INTERNAL', message: messageOf(err) } };
        }
      });
      msg.respond(encodeJson(reply));
    } catch (err) {
      // e.g. a result that cannot be serialised
      msg.respond(encodeJson({ ok: false, error: { code: 'INTERNAL', message: messageOf(err) } }));
    } finally {
      span.end();
    }
  }

  return {
    subject,
    async stop() {
      if (!sub.isClosed()) await sub.drain().catch(() => sub.unsubscribe());
      await Promise.allSettled([...inflight]);
    },
  };
}

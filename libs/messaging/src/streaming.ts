/**
 * Requests with a streamed reply (the gateway asking a gpu-worker for tokens). Core NATS, like
 * commands: the caller subscribes to an inbox, the handler publishes frames to it in order, and
 * the last frame says how it ended. The caller can cancel (client went away): it publishes to a
 * cancel subject the handler listens on, and the handler's `AbortSignal` fires.
 *
 * Frames (JSON): `{ "t": "chunk", "v": … }`, then exactly one of `{ "t": "end" }` or
 * `{ "t": "error", "code": …, "message": … }`. A handler served with `keepaliveMs` also sends
 * `{ "t": "ka" }` on a timer while it runs: the caller swallows it and only resets its idle timer,
 * so a caller with a short `idleTimeoutMs` tells a handler that died (process killed) from one
 * that is slow (long prefill) within that timeout.
 */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { createInbox, headers as natsHeaders, type Msg, type MsgHdrs } from '@nats-io/nats-core';
import { extractTraceContext, getTracer, injectTraceContext, type Logger } from '@longtail/telemetry';
import type { MessagingConnection } from './connection.js';
import { CommandError, CommandFailed, messageOf, NoResponders, RequestTimeout } from './errors.js';

/** Header naming the subject a caller publishes to when it cancels a streamed request. */
export const CANCEL_SUBJECT_HEADER = 'Longtail-Cancel-Subject';

export interface StreamRequestOptions {
  /** Time allowed until the first frame (ms). Default 5000. */
  readonly firstReplyTimeoutMs?: number;
  /** Time allowed between two frames (ms). Default 30 000. */
  readonly idleTimeoutMs?: number;
  /** Aborting cancels the request at the handler too. */
  readonly signal?: AbortSignal;
}

export interface StreamMeta {
  readonly subject: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Fires when the caller cancels (or the service stops); stop producing then. */
  readonly signal: AbortSignal;
}

export type StreamHandler = (payload: unknown, meta: StreamMeta) => AsyncIterable<unknown>;

type Frame =
  { t: 'chunk'; v: unknown } | { t: 'end' } | { t: 'error'; code: string; message: string } | { t: 'ka' };

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const frame = (f: Frame): Uint8Array => encoder.encode(JSON.stringify(f));

/**
 * Sends `payload` and yields each chunk the handler produces. Breaking out of the loop, or
 * aborting `signal`, cancels the handler.
 * @throws NoResponders | RequestTimeout | CommandFailed (from the iterator)
 */
export async function* requestStream<T = unknown>(
  conn: MessagingConnection,
  subject: string,
  payload: unknown,
  options: StreamRequestOptions = {},
): AsyncGenerator<T, void, undefined> {
  const firstTimeout = options.firstReplyTimeoutMs ?? 5000;
  const idleTimeout = options.idleTimeoutMs ?? 30_000;
  const nc = conn.nc;
  const inbox = createInbox();
  const cancelSubject = `${inbox}.cancel`;
  const span = getTracer('@longtail/messaging').startSpan(`request-stream ${subject}`, {
    kind: SpanKind.CLIENT,
    attributes: { 'messaging.system': 'nats', 'messaging.destination.name': subject },
  });
  const ctx = trace.setSpan(context.active(), span);
  const sub = nc.subscribe(inbox);
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  const onAbort = (): void => {
    sub.unsubscribe();
  };
  try {
    // Deliver frames and timeouts through one queue, so the generator can await either.
    const queue: Array<Msg | Error> = [];
    let wake: (() => void) | undefined;
    const push = (item: Msg | Error): void => {
      queue.push(item);
      wake?.();
    };
    const arm = (ms: number, what: string): void => {
      clearTimeout(timer);
      timer = setTimeout(() => push(new RequestTimeout(subject, ms, { cause: new Error(what) })), ms);
    };
    void (async () => {
      for await (const m of sub) push(m);
      push(new Error('closed'));
    })();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) return;

    const h = natsHeaders();
    injectTraceContext(h, ctx);
    h.set(CANCEL_SUBJECT_HEADER, cancelSubject);
    arm(firstTimeout, 'no first frame');
    nc.publish(subject, encoder.encode(JSON.stringify(payload === undefined ? null : payload)), {
      reply: inbox,
      headers: h,
    });

    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const item = queue.shift()!;
      if (item instanceof RequestTimeout) throw item;
      if (item instanceof Error) {
        if (options.signal?.aborted) return; // cancelled by the caller
        throw new CommandFailed(subject, 'TRANSPORT', 'reply stream closed', { cause: item });
      }
      if (item.headers?.hasError && item.headers.code === 503) throw new NoResponders(subject);
      let f: Frame;
      try {
        f = JSON.parse(decoder.decode(item.data)) as Frame;
      } catch (err) {
        throw new CommandFailed(subject, 'BAD_REPLY', 'frame is not JSON', { cause: err });
      }
      if (f.t === 'end') {
        finished = true;
        return;
      }
      if (f.t === 'error') {
        finished = true;
        throw new CommandFailed(subject, f.code, f.message);
      }
      arm(idleTimeout, 'no frame in time');
      if (f.t === 'ka') continue; // the handler is alive; nothing to yield
      yield f.v as T;
    }
  } catch (err) {
    span.recordException(err instanceof Error ? err : new Error(messageOf(err)));
    span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(err) });
    throw err;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    // Left early (break, abort, timeout): tell the handler to stop.
    if (!finished && !nc.isClosed()) nc.publish(cancelSubject);
    if (!sub.isClosed()) sub.unsubscribe();
    span.end();
  }
}

function headerRecord(h: MsgHdrs | undefined): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  if (h) for (const key of h.keys()) out[key] = h.get(key);
  return Object.freeze(out);
}

export interface StreamServer {
  readonly subject: string;
  /**
   * Stops taking requests and waits for the running ones to end (a draining worker finishes
   * what it started); with `cancel: true` their signals fire first.
   */
  stop(options?: { cancel?: boolean }): Promise<void>;
}

/** Answers streamed requests on `subject`; the handler is an async generator of chunks. */
export function serveStream(
  conn: MessagingConnection,
  subject: string,
  handler: StreamHandler,
  options: {
    queue?: string;
    logger?: Logger | undefined;
    /** Send a keepalive frame this often (ms) while a request runs; off when absent. */
    keepaliveMs?: number;
  } = {},
): StreamServer {
  const nc = conn.nc;
  const running = new Map<Promise<void>, AbortController>();
  const sub = nc.subscribe(subject, {
    queue: options.queue ?? subject,
    callback: (err, msg) => {
      if (err) {
        conn.reportError(err);
        return;
      }
      if (!msg.reply) return;
      const ac = new AbortController();
      const p = answer(msg, msg.reply, ac).finally(() => running.delete(p));
      running.set(p, ac);
    },
  });

  async function answer(msg: Msg, reply: string, ac: AbortController): Promise<void> {
    const cancelSubject = msg.headers?.get(CANCEL_SUBJECT_HEADER);
    const cancelSub = cancelSubject
      ? nc.subscribe(cancelSubject, { max: 1, callback: () => ac.abort() })
      : undefined;
    const keepalive =
      options.keepaliveMs !== undefined && options.keepaliveMs > 0
        ? setInterval(() => {
            if (!nc.isClosed()) nc.publish(reply, frame({ t: 'ka' }));
          }, options.keepaliveMs)
        : undefined;
    const parent = extractTraceContext(msg.headers);
    const span = getTracer('@longtail/messaging').startSpan(
      `handle-stream ${subject}`,
      {
        kind: SpanKind.SERVER,
        attributes: { 'messaging.system': 'nats', 'messaging.destination.name': msg.subject },
      },
      parent,
    );
    try {
      await context.with(trace.setSpan(parent, span), async () => {
        let payload: unknown;
        try {
          payload = msg.data.length === 0 ? null : JSON.parse(decoder.decode(msg.data));
        } catch {
          nc.publish(reply, frame({ t: 'error', code: 'BAD_REQUEST', message: 'payload is not JSON' }));
          return;
        }
        try {
          const meta = { subject: msg.subject, headers: headerRecord(msg.headers), signal: ac.signal };
          for await (const chunk of handler(payload, meta)) {
            if (ac.signal.aborted) break;
            nc.publish(reply, frame({ t: 'chunk', v: chunk === undefined ? null : chunk }));
          }
          if (ac.signal.aborted) {
            span.setAttribute('longtail.cancelled', true);
            return;
          }
          nc.publish(reply, frame({ t: 'end' }));
        } catch (err) {
          span.recordException(err instanceof Error ? err : new Error(messageOf(err)));
          span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(err) });
          if (!(err instanceof CommandError))
            options.logger?.error({ err, subject }, 'stream handler failed');
          const code = err instanceof CommandError ? err.code : 'INTERNAL';
          nc.publish(reply, frame({ t: 'error', code, message: messageOf(err) }));
        }
      });
    } finally {
      clearInterval(keepalive);
      cancelSub?.unsubscribe();
      span.end();
    }
  }

  return {
    subject,
    async stop(stopOptions = {}) {
      if (!sub.isClosed()) await sub.drain().catch(() => sub.unsubscribe());
      if (stopOptions.cancel) for (const ac of running.values()) ac.abort();
      await Promise.allSettled([...running.keys()]);
    },
  };
}

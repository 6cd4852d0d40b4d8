/**
 * Requests with a streamed reply (the gateway asking a gpu-worker for tokens). Core NATS, like
 * commands: the caller subscribes to an inbox, the handler publishes frames to it in order, and
 * the last frame says how it ended. The caller can cancel (client went away): it publishes to the
 * subject named in its `Longtail-Cancel-Subject` header (`<subject>.cancel.<its inbox tokens>`,
 * which every server of `subject` covers with one `<subject>.cancel.>` subscription), and that
 * request's `AbortSignal` fires.
 *
 * Frames (JSON): `{ "t": "chunk", "v": … }`, then exactly one of `{ "t": "end" }` or
 * `{ "t": "error", "code": …, "message": … }`. A handler served with `keepaliveMs` also sends
 * `{ "t": "ka" }` on a timer while it runs: the caller swallows it and only resets its idle timer,
 * so a caller with a short `idleTimeoutMs` tells a handler that died (process killed) from one
 * that is slow (long prefill) within that timeout.
 *
 * Per-request cost is kept to what a request needs (measured by bench/serving.ts: each socket
 * write here costs ~0.1–0.3 ms of CPU between the client and nats-server):
 * - callers share one wildcard reply subscription per connection (`<prefix>.*`, like nats.js's
 *   own request mux), so a request is one `HPUB`, with no `SUB`/`UNSUB` around it;
 * - a server listens for cancels on one wildcard subscription, not one per request;
 * - a handler's frames produced in one event-loop turn go out in one socket write: as one
 *   message, a JSON array of frames, when the caller says it reads batches (header
 *   `Longtail-Stream-Batches: 1`; a 1-token reply, its last chunk and `end` are one message), else
 *   as one message each.
 * Mixed versions interoperate: an older server subscribes to the named cancel subject itself and
 * sends single frames; an older caller sends no batch header and names a cancel subject outside
 * the wildcard, which a newer server then subscribes to for that request.
 */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  createInbox,
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core';
import { extractTraceContext, getTracer, injectTraceContext, type Logger } from '@longtail/telemetry';
import type { MessagingConnection } from './connection.js';
import { CommandError, CommandFailed, messageOf, NoResponders, RequestTimeout } from './errors.js';

/** Header naming the subject a caller publishes to (its reply inbox as payload) when it cancels a streamed request. */
export const CANCEL_SUBJECT_HEADER = 'Longtail-Cancel-Subject';

/** Header a caller sets (`1`) when it reads a message holding a JSON array of frames. */
export const BATCHES_HEADER = 'Longtail-Stream-Batches';

/** The prefix of the cancel subjects of requests on `subject`: one server subscription covers them. */
const cancelPrefixOf = (subject: string): string => `${subject}.cancel.`;

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
  /**
   * Runs `fn` right after the reply's last frames are handed to NATS, in the same socket write
   * (work that follows a reply, e.g. publishing its event, costs no write of its own). The server's
   * `stop()` waits for it.
   */
  afterReply(fn: () => void): void;
}

export type StreamHandler = (payload: unknown, meta: StreamMeta) => AsyncIterable<unknown>;

type Frame =
  { t: 'chunk'; v: unknown } | { t: 'end' } | { t: 'error'; code: string; message: string } | { t: 'ka' };

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const frame = (f: Frame): Uint8Array => encoder.encode(JSON.stringify(f));

/**
 * One wildcard subscription per connection for every streamed reply: `<prefix>.<token>` is a
 * request's inbox, and its messages go to the handler registered under that inbox.
 */
class ReplyMux {
  readonly prefix = createInbox();
  /** Inbox → its caller's handler; `undefined` tells it the subscription ended. */
  readonly #handlers = new Map<string, (m: Msg | undefined) => void>();
  readonly #sub: Subscription;

  constructor(nc: NatsConnection, onClosed: () => void) {
    this.#sub = nc.subscribe(`${this.prefix}.*`, {
      callback: (err, m) => {
        if (err) return;
        this.#handlers.get(m.subject)?.(m);
      },
    });
    void this.#sub.closed.then(() => {
      onClosed();
      // The connection closed (or the subscription failed): every waiting caller hears it.
      for (const h of [...this.#handlers.values()]) h(undefined);
    });
  }

  /** A fresh inbox whose messages go to `handler`, and a function that stops them. */
  open(handler: (m: Msg | undefined) => void): { inbox: string; close: () => void } {
    const inbox = `${this.prefix}.${nextToken()}`;
    this.#handlers.set(inbox, handler);
    return { inbox, close: () => this.#handlers.delete(inbox) };
  }

  get closed(): boolean {
    return this.#sub.isClosed();
  }
}

let tokenCounter = 0;
const nextToken = (): string => (tokenCounter = (tokenCounter + 1) % Number.MAX_SAFE_INTEGER).toString(36);

const muxes = new WeakMap<NatsConnection, ReplyMux>();

function replyMux(nc: NatsConnection): ReplyMux {
  let mux = muxes.get(nc);
  if (mux === undefined || mux.closed) {
    mux = new ReplyMux(nc, () => {
      if (muxes.get(nc) === mux) muxes.delete(nc);
    });
    muxes.set(nc, mux);
  }
  return mux;
}

/** The frames of one message: one frame object, or an array of them (a batch). */
function framesOf(data: Uint8Array): Frame[] {
  const parsed = JSON.parse(decoder.decode(data)) as Frame | Frame[];
  return Array.isArray(parsed) ? parsed : [parsed];
}

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
  const span = getTracer('@longtail/messaging').startSpan(`request-stream ${subject}`, {
    kind: SpanKind.CLIENT,
    attributes: { 'messaging.system': 'nats', 'messaging.destination.name': subject },
  });
  const ctx = trace.setSpan(context.active(), span);
  // Deliver frames and timeouts through one queue, so the generator can await either.
  const queue: Array<Frame | Error> = [];
  let wake: (() => void) | undefined;
  const push = (item: Frame | Error): void => {
    queue.push(item);
    wake?.();
  };
  const reply = replyMux(nc).open((m) => {
    if (m === undefined) return push(new Error('closed'));
    if (m.headers?.hasError && m.headers.code === 503) return push(new NoResponders(subject));
    try {
      for (const f of framesOf(m.data)) push(f);
    } catch (err) {
      push(new CommandFailed(subject, 'BAD_REPLY', 'frame is not JSON', { cause: err }));
    }
  });
  // Unique per request: the reply inbox's tokens after the `_INBOX` prefix.
  const cancelSubject = cancelPrefixOf(subject) + reply.inbox.slice(reply.inbox.indexOf('.') + 1);
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  const onAbort = (): void => {
    push(new Error('aborted'));
  };
  try {
    const arm = (ms: number, what: string): void => {
      clearTimeout(timer);
      timer = setTimeout(() => push(new RequestTimeout(subject, ms, { cause: new Error(what) })), ms);
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) return;

    const h = natsHeaders();
    injectTraceContext(h, ctx);
    h.set(CANCEL_SUBJECT_HEADER, cancelSubject);
    h.set(BATCHES_HEADER, '1');
    arm(firstTimeout, 'no first frame');
    nc.publish(subject, encoder.encode(JSON.stringify(payload === undefined ? null : payload)), {
      reply: reply.inbox,
      headers: h,
    });

    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const item = queue.shift()!;
      if (item instanceof RequestTimeout || item instanceof CommandFailed || item instanceof NoResponders)
        throw item;
      if (item instanceof Error) {
        if (options.signal?.aborted) return; // cancelled by the caller
        throw new CommandFailed(subject, 'TRANSPORT', 'reply stream closed', { cause: item });
      }
      const f = item;
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
    reply.close();
    options.signal?.removeEventListener('abort', onAbort);
    // Left early (break, abort, timeout): tell the handler to stop.
    if (!finished && !nc.isClosed()) nc.publish(cancelSubject);
    span.end();
  }
}

/**
 * The frames of one streamed reply, sent once per event-loop turn: the frames a handler produces
 * in one turn (a token's chunk, the final chunk, `end`) leave in one socket write, as one message
 * (an array) for a caller that reads batches, else one message each. A frame waits at most until
 * the turn's check phase (`setImmediate`), so streaming latency is unchanged.
 */
class FrameBatcher {
  #pending: Frame[] = [];
  #scheduled = false;
  #onClosed: (() => void) | undefined;
  #closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly reply: string,
    /** The caller reads arrays of frames; else each frame is its own message (same socket write). */
    private readonly batches: boolean,
  ) {}

  send(f: Frame): void {
    if (this.#closed) return;
    this.#pending.push(f);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  /** No more frames; `then` runs right after the last ones are published (same socket write). */
  close(then: () => void): Promise<void> {
    this.#closed = true;
    if (!this.#scheduled) {
      then();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.#onClosed = () => {
        try {
          then();
        } finally {
          resolve();
        }
      };
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const frames = this.#pending;
    this.#pending = [];
    if (frames.length > 0 && !this.nc.isClosed()) {
      if (frames.length === 1) this.nc.publish(this.reply, frame(frames[0]!));
      else if (this.batches) this.nc.publish(this.reply, encoder.encode(JSON.stringify(frames)));
      else for (const f of frames) this.nc.publish(this.reply, frame(f));
    }
    this.#onClosed?.();
    this.#onClosed = undefined;
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
  /** Cancel subject → the request's controller, for cancels under the shared wildcard. */
  const bySubject = new Map<string, AbortController>();
  const cancelPrefix = cancelPrefixOf(subject);
  const cancelSub = nc.subscribe(`${cancelPrefix}>`, {
    callback: (err, msg) => {
      if (!err) bySubject.get(msg.subject)?.abort();
    },
  });
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
    // A cancel subject outside the wildcard (an older caller) gets a subscription of its own.
    const cancelSubject = msg.headers?.get(CANCEL_SUBJECT_HEADER) ?? '';
    const shared = cancelSubject.startsWith(cancelPrefix);
    if (shared) bySubject.set(cancelSubject, ac);
    const ownCancel =
      cancelSubject !== '' && !shared
        ? nc.subscribe(cancelSubject, { max: 1, callback: () => ac.abort() })
        : undefined;
    const out = new FrameBatcher(nc, reply, msg.headers?.get(BATCHES_HEADER) === '1');
    const after: Array<() => void> = [];
    const keepalive =
      options.keepaliveMs !== undefined && options.keepaliveMs > 0
        ? setInterval(() => out.send({ t: 'ka' }), options.keepaliveMs)
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
          out.send({ t: 'error', code: 'BAD_REQUEST', message: 'payload is not JSON' });
          return;
        }
        try {
          const meta: StreamMeta = {
            subject: msg.subject,
            headers: headerRecord(msg.headers),
            signal: ac.signal,
            afterReply: (fn) => void after.push(fn),
          };
          for await (const chunk of handler(payload, meta)) {
            if (ac.signal.aborted) break;
            out.send({ t: 'chunk', v: chunk === undefined ? null : chunk });
          }
          if (ac.signal.aborted) {
            span.setAttribute('longtail.cancelled', true);
            return;
          }
          out.send({ t: 'end' });
        } catch (err) {
          span.recordException(err instanceof Error ? err : new Error(messageOf(err)));
          span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(err) });
          if (!(err instanceof CommandError))
            options.logger?.error({ err, subject }, 'stream handler failed');
          const code = err instanceof CommandError ? err.code : 'INTERNAL';
          out.send({ t: 'error', code, message: messageOf(err) });
        }
      });
    } finally {
      clearInterval(keepalive);
      if (shared) bySubject.delete(cancelSubject);
      span.end();
      await out.close(() => {
        ownCancel?.unsubscribe();
        for (const fn of after) {
          try {
            fn();
          } catch (err) {
            options.logger?.error({ err, subject }, 'after-reply work failed');
          }
        }
      });
    }
  }

  return {
    subject,
    async stop(stopOptions = {}) {
      if (!sub.isClosed()) await sub.drain().catch(() => sub.unsubscribe());
      if (stopOptions.cancel) for (const ac of running.values()) ac.abort();
      await Promise.allSettled([...running.keys()]);
      if (!cancelSub.isClosed()) cancelSub.unsubscribe();
    },
  };
}

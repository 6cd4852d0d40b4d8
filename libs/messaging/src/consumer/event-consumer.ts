/**
 * A durable pull consumer that feeds one handler, one message (or one batch) at a time.
 *
 * Outcome of each delivery, decided here and nowhere else:
 *   handler resolves                 → `ackAck()` (acknowledged, and the server confirmed it)
 *   handler throws, attempts left    → `nak(backoff)` (redelivered after the backoff delay)
 *   handler throws on the last try   → copy to `dlq.<stream>.<durable>`, then `term()`
 *   body fails contract validation   → copy to the DLQ with the violation, then `term()`;
 *                                      the handler never sees it
 *   consumer stopping, not started   → `nak()` (another instance may take it at once)
 * A message is terminated only after its dead-letter copy is stored; if storing fails, it is
 * nak'ed and tried again on the spare delivery.
 */
import {
  context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Link,
  type Span,
} from '@opentelemetry/api';
import {
  AckPolicy,
  DeliverPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerMessages,
  type JsMsg,
} from '@nats-io/jetstream';
import { headers as natsHeaders, nanos, type MsgHdrs } from '@nats-io/nats-core';
import type { EventEnvelope } from '@longtail/contracts';
import { extractTraceContext, getTracer, type Logger } from '@longtail/telemetry';
import type { MessagingConnection } from '../connection.js';
import { describeViolation, eventCodec, type EventCodec } from '../codec.js';
import { isConsumerNotFound, messageOf, ProvisioningFailed } from '../errors.js';
import { headerValue, LongtailHeaders } from '../headers.js';
import {
  backoffFor,
  resolveConsumerOptions,
  type OnEventsOptions,
  type BatchEventHandler,
  type EventHandler,
  type EventMeta,
  type ReceivedEvent,
  type ResolvedConsumerOptions,
} from './options.js';

export interface EventConsumer {
  readonly stream: string;
  readonly durable: string;
  /** Stops pulling, lets the message (or batch) in hand finish and be acked, naks the rest. */
  stop(): Promise<void>;
}

export type ConsumerHandler =
  | { readonly kind: 'single'; readonly handle: EventHandler }
  | { readonly kind: 'batch'; readonly handle: BatchEventHandler };

/** Fetch request lifetime for single-event consumers (ms): bounds how stale a pull can be. */
const PULL_EXPIRES_MS = 5000;
/** Pause after a failed pull (server gone, consumer missing), doubling up to the max (ms). */
const RETRY_PAUSE_MS = 250;
const RETRY_PAUSE_MAX_MS = 5000;

/**
 * The server-side consumer config. `backoff` is the server's ack-timeout schedule; on 2.9 it
 * also replaces `ack_wait` by `backoff[0]`, so each entry is `ackWait + backoff[i]`: a slow but
 * living handler is covered by heartbeats, a crashed one's message comes back after ackWait plus
 * the backoff. The server gets one delivery more than `maxDeliver` (the spare), so a message
 * whose last attempt crashed the process, or whose dead-lettering failed, is dead-lettered on
 * the spare delivery instead of being dropped silently by the server.
 */
export function consumerConfigFor(o: ResolvedConsumerOptions): Partial<ConsumerConfig> {
  const serverMaxDeliver = o.maxDeliver + 1;
  const backoff = o.backoffMs.slice(0, serverMaxDeliver - 1).map((ms) => nanos(o.ackWaitMs + ms));
  return {
    durable_name: o.durable,
    description: `longtail ${o.durable}`,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(o.ackWaitMs),
    max_deliver: serverMaxDeliver,
    backoff,
    deliver_policy: o.deliverPolicy === 'new' ? DeliverPolicy.New : DeliverPolicy.All,
    ...(o.filterSubject ? { filter_subject: o.filterSubject } : {}),
    ...(o.maxAckPending !== undefined ? { max_ack_pending: o.maxAckPending } : {}),
  };
}

/** Creates the durable, or brings the fields a live consumer may change to the wanted values. */
export async function ensureConsumer(conn: MessagingConnection, o: ResolvedConsumerOptions): Promise<void> {
  const jsm = await conn.jsm();
  const wanted = consumerConfigFor(o);
  const resource = `consumer ${o.stream}/${o.durable}`;
  try {
    let current: ConsumerConfig | undefined;
    try {
      current = (await jsm.consumers.info(o.stream, o.durable)).config;
    } catch (err) {
      if (!isConsumerNotFound(err)) throw err;
    }
    if (!current) {
      await jsm.consumers.add(o.stream, wanted);
      return;
    }
    if ((current.filter_subject ?? '') !== (wanted.filter_subject ?? '')) {
      throw new ProvisioningFailed(
        resource,
        `filter subject is "${current.filter_subject ?? ''}", wanted "${wanted.filter_subject ?? ''}"; a 2.9 server cannot change it: delete the durable to rebuild it`,
      );
    }
    const same =
      current.ack_wait === wanted.ack_wait &&
      current.max_deliver === wanted.max_deliver &&
      JSON.stringify(current.backoff ?? []) === JSON.stringify(wanted.backoff ?? []) &&
      (wanted.max_ack_pending === undefined || current.max_ack_pending === wanted.max_ack_pending);
    if (!same) {
      await jsm.consumers.update(o.stream, o.durable, {
        ack_wait: wanted.ack_wait!,
        max_deliver: wanted.max_deliver!,
        backoff: wanted.backoff!,
        ...(wanted.max_ack_pending !== undefined ? { max_ack_pending: wanted.max_ack_pending } : {}),
      });
    }
  } catch (err) {
    if (err instanceof ProvisioningFailed) throw err;
    throw new ProvisioningFailed(resource, messageOf(err), { cause: err });
  }
}

export interface EventConsumerDeps {
  readonly conn: MessagingConnection;
  readonly codec: EventCodec;
  readonly logger?: Logger | undefined;
}

/** Ensures the durable exists and starts the pull loop. */
export async function startEventConsumer(
  deps: EventConsumerDeps,
  options: ResolvedConsumerOptions,
  handler: ConsumerHandler,
): Promise<EventConsumer> {
  await ensureConsumer(deps.conn, options);
  const consumer = new EventConsumerImpl(deps, options, handler);
  consumer.start();
  return consumer;
}

function headerRecord(h: MsgHdrs | undefined): Readonly<Record<string, string>> {
  const out: Record<string, string> = {};
  if (h) for (const key of h.keys()) out[key] = h.get(key);
  return Object.freeze(out);
}

function metaOf(o: ResolvedConsumerOptions, m: JsMsg): EventMeta {
  return Object.freeze({
    stream: o.stream,
    durable: o.durable,
    seq: BigInt(m.seq),
    deliveryCount: m.info.deliveryCount,
    subject: m.subject,
    headers: headerRecord(m.headers),
    storedAt: m.time,
  });
}

type Parsed = { readonly msg: JsMsg; readonly meta: EventMeta } & (
  { readonly ok: true; readonly event: EventEnvelope } | { readonly ok: false; readonly violation: string }
);

class EventConsumerImpl implements EventConsumer {
  readonly #deps: EventConsumerDeps;
  readonly #o: ResolvedConsumerOptions;
  readonly #handler: ConsumerHandler;
  #stopping = false;
  #pull: ConsumerMessages | undefined;
  #loop: Promise<void> = Promise.resolve();
  #wake: (() => void) | undefined;

  constructor(deps: EventConsumerDeps, options: ResolvedConsumerOptions, handler: ConsumerHandler) {
    this.#deps = deps;
    this.#o = options;
    this.#handler = handler;
  }

  get stream(): string {
    return this.#o.stream;
  }
  get durable(): string {
    return this.#o.durable;
  }

  start(): void {
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    // Unsubscribes the pull inbox; messages already received are still yielded (and nak'ed).
    this.#pull?.stop();
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let consumer: Consumer | undefined;
    let pause = RETRY_PAUSE_MS;
    while (!this.#stopping) {
      try {
        consumer ??= await this.#deps.conn.js.consumers.get(this.#o.stream, this.#o.durable);
        const started = Date.now();
        const received =
          this.#handler.kind === 'batch'
            ? await this.#pullBatch(consumer, this.#handler.handle)
            : await this.#pullSingle(consumer, this.#handler.handle);
        pause = RETRY_PAUSE_MS;
        // A pull that ends at once with nothing (the server refusing it) must not spin.
        if (received === 0 && Date.now() - started < 100 && !this.#stopping)
          await this.#pause(RETRY_PAUSE_MS);
      } catch (err) {
        if (this.#stopping) break;
        if (this.#deps.conn.nc.isClosed()) {
          this.#deps.logger?.error(
            { stream: this.#o.stream, durable: this.#o.durable },
            'connection closed; consumer stops',
          );
          break;
        }
        const error = err instanceof Error ? err : new Error(messageOf(err));
        this.#deps.conn.reportError(error);
        this.#deps.logger?.warn(
          { err: error, stream: this.#o.stream, durable: this.#o.durable },
          'pull failed; retrying',
        );
        if (isConsumerNotFound(err)) {
          consumer = undefined;
          await ensureConsumer(this.#deps.conn, this.#o).catch(() => undefined);
        }
        await this.#pause(pause);
        pause = Math.min(pause * 2, RETRY_PAUSE_MAX_MS);
      } finally {
        this.#pull = undefined;
      }
    }
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  /** One pull request; returns how many messages it brought. */
  async #pullSingle(consumer: Consumer, handle: EventHandler): Promise<number> {
    const pull = await consumer.fetch({ max_messages: this.#o.prefetch, expires: PULL_EXPIRES_MS });
    this.#pull = pull;
    if (this.#stopping) pull.stop();
    let received = 0;
    for await (const msg of pull) {
      received++;
      if (this.#stopping) {
        msg.nak();
        continue;
      }
      await this.#processOne(msg, handle);
    }
    return received;
  }

  async #pullBatch(consumer: Consumer, handle: BatchEventHandler): Promise<number> {
    const batch = this.#o.batch!;
    const pull = await consumer.fetch({ max_messages: batch.size, expires: batch.maxWaitMs });
    this.#pull = pull;
    if (this.#stopping) pull.stop();
    const msgs: JsMsg[] = [];
    for await (const msg of pull) msgs.push(msg);
    if (msgs.length === 0) return 0;
    if (this.#stopping) {
      for (const msg of msgs) msg.nak();
      return msgs.length;
    }
    await this.#processBatch(msgs, handle);
    return msgs.length;
  }

  #parse(msg: JsMsg): Parsed {
    const meta = metaOf(this.#o, msg);
    const result = this.#deps.codec.parse(msg.data);
    return result.ok
      ? { msg, meta, ok: true, event: result.event }
      : { msg, meta, ok: false, violation: describeViolation(result.error) };
  }

  #startSpan(name: string, parent: typeof ROOT_CONTEXT, links: Link[] = []): Span {
    return getTracer('@longtail/messaging').startSpan(
      name,
      {
        kind: SpanKind.CONSUMER,
        links,
        attributes: {
          'messaging.system': 'nats',
          'messaging.operation.type': 'process',
          'messaging.destination.name': this.#o.filterSubject ?? this.#o.stream,
          'messaging.destination.stream': this.#o.stream,
          'messaging.consumer.group.name': this.#o.durable,
        },
      },
      parent,
    );
  }

  async #processOne(msg: JsMsg, handle: EventHandler): Promise<void> {
    const item = this.#parse(msg);
    // The consumer span continues the publisher's trace; the handler runs inside it.
    const parent = extractTraceContext(msg.headers);
    const span = this.#startSpan(`process ${msg.subject}`, parent);
    span.setAttributes({
      'messaging.nats.sequence': msg.seq,
      'messaging.nats.delivery_count': item.meta.deliveryCount,
      ...(item.ok ? { 'messaging.message.id': item.event.id, 'longtail.event.type': item.event.type } : {}),
    });
    const ctx = trace.setSpan(parent, span);
    try {
      await context.with(ctx, async () => {
        if (!item.ok) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: `contract violation: ${item.violation}` });
          await this.#deadLetter(item, `contract violation: ${item.violation}`);
          return;
        }
        if (item.meta.deliveryCount > this.#o.maxDeliver) {
          // The spare delivery: the last real attempt never reported back.
          await this.#deadLetter(item, `no outcome after ${this.#o.maxDeliver} deliveries`);
          return;
        }
        const stopHeartbeat = this.#heartbeat([msg]);
        try {
          await handle(item.event, item.meta);
        } catch (err) {
          stopHeartbeat();
          span.recordException(err instanceof Error ? err : new Error(messageOf(err)));
          span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(err) });
          await this.#failed(item, err);
          return;
        }
        stopHeartbeat();
        await this.#ack(msg);
      });
    } finally {
      span.end();
    }
  }

  async #processBatch(msgs: JsMsg[], handle: BatchEventHandler): Promise<void> {
    const items = msgs.map((m) => this.#parse(m));
    // One span for the batch, linked to every message's trace (OTel's convention for batches),
    // and one span per message as a child of its publisher, so each request's trace shows where
    // its event was processed and how that ended.
    const parents = msgs.map((m) => extractTraceContext(m.headers));
    const links: Link[] = [];
    for (const parent of parents) {
      const sc = trace.getSpanContext(parent);
      if (sc) links.push({ context: sc });
    }
    const span = this.#startSpan(`process ${this.#o.stream}/${this.#o.durable} batch`, ROOT_CONTEXT, links);
    span.setAttribute('messaging.batch.message_count', msgs.length);
    const batchLink: Link = { context: span.spanContext() };
    const perMessage = items.map((item, i) => {
      const s = this.#startSpan(`process ${item.msg.subject}`, parents[i]!, [batchLink]);
      s.setAttributes({
        'messaging.nats.sequence': item.msg.seq,
        'messaging.nats.delivery_count': item.meta.deliveryCount,
        ...(item.ok ? { 'messaging.message.id': item.event.id, 'longtail.event.type': item.event.type } : {}),
      });
      return s;
    });
    const fail = (err: unknown) => {
      const error = err instanceof Error ? err : new Error(messageOf(err));
      for (const s of [span, ...perMessage]) {
        s.recordException(error);
        s.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(err) });
      }
    };
    try {
      await context.with(trace.setSpan(ROOT_CONTEXT, span), async () => {
        const valid: Array<Parsed & { ok: true }> = [];
        for (const [i, item] of items.entries()) {
          if (!item.ok) {
            perMessage[i]!.setStatus({ code: SpanStatusCode.ERROR, message: `contract violation: ${item.violation}` });
            await this.#deadLetter(item, `contract violation: ${item.violation}`);
          } else if (item.meta.deliveryCount > this.#o.maxDeliver) {
            await this.#deadLetter(item, `no outcome after ${this.#o.maxDeliver} deliveries`);
          } else valid.push(item);
        }
        if (valid.length === 0) return;
        const stopHeartbeat = this.#heartbeat(valid.map((i) => i.msg));
        try {
          const batch: ReceivedEvent[] = valid.map((i) => Object.freeze({ event: i.event, meta: i.meta }));
          await handle(Object.freeze(batch));
        } catch (err) {
          stopHeartbeat();
          fail(err);
          for (const item of valid) await this.#failed(item, err);
          return;
        }
        stopHeartbeat();
        await Promise.all(valid.map((i) => this.#ack(i.msg)));
      });
    } finally {
      for (const s of perMessage) s.end();
      span.end();
    }
  }

  /** Keeps the server from redelivering messages whose handler is still running. */
  #heartbeat(msgs: JsMsg[]): () => void {
    const timer = setInterval(
      () => {
        for (const m of msgs) m.working();
      },
      Math.floor(this.#o.ackWaitMs / 2),
    );
    timer.unref();
    return () => clearInterval(timer);
  }

  async #ack(msg: JsMsg): Promise<void> {
    try {
      // ackAck: the next message is taken only once the server has recorded this ack.
      await msg.ackAck();
    } catch (err) {
      // The effect is done but the ack may be lost: the message comes back and the
      // (idempotent) projection skips it by its sequence.
      this.#deps.logger?.warn({ err, seq: msg.seq, durable: this.#o.durable }, 'ack not confirmed');
    }
  }

  async #failed(item: Parsed, err: unknown): Promise<void> {
    const { msg, meta } = item;
    if (meta.deliveryCount >= this.#o.maxDeliver) {
      await this.#deadLetter(item, `handler failed ${meta.deliveryCount} times: ${messageOf(err)}`);
      return;
    }
    const delay = backoffFor(this.#o.backoffMs, meta.deliveryCount);
    this.#deps.logger?.warn(
      { err, seq: msg.seq, durable: this.#o.durable, deliveryCount: meta.deliveryCount, retryInMs: delay },
      'handler failed; will retry',
    );
    msg.nak(delay);
  }

  /** Stores a copy in the DLQ stream, then terminates the original; nak if the copy fails. */
  async #deadLetter(item: Parsed, reason: string): Promise<void> {
    const { msg, meta } = item;
    const h = natsHeaders();
    if (msg.headers) {
      for (const key of msg.headers.keys()) {
        if (key.toLowerCase().startsWith('nats-')) continue; // not the original's msg id / expectations
        for (const v of msg.headers.values(key)) h.append(key, v);
      }
    }
    h.set(LongtailHeaders.DlqReason, headerValue(reason));
    h.set(LongtailHeaders.DlqStream, this.#o.stream);
    h.set(LongtailHeaders.DlqSeq, String(msg.seq));
    h.set(LongtailHeaders.DlqSubject, msg.subject);
    h.set(LongtailHeaders.DlqDurable, this.#o.durable);
    h.set(LongtailHeaders.DlqDeliveries, String(meta.deliveryCount));
    try {
      const subject = this.#deps.codec.deadLetterSubject({
        stream: this.#o.stream,
        durable: this.#o.durable,
        subject: msg.subject,
      });
      await this.#deps.conn.js.publish(subject, msg.data, {
        headers: h,
        msgID: `dlq.${this.#o.stream}.${this.#o.durable}.${msg.seq}`,
      });
    } catch (err) {
      this.#deps.logger?.error(
        { err, seq: msg.seq, durable: this.#o.durable, reason },
        'dead-lettering failed; message kept for another delivery',
      );
      msg.nak(backoffFor(this.#o.backoffMs, meta.deliveryCount));
      return;
    }
    this.#deps.logger?.error(
      { seq: msg.seq, durable: this.#o.durable, subject: msg.subject, reason },
      'dead-lettered',
    );
    // No reason argument: a 2.9 server takes only the exact `+TERM` (a reason makes it ignore the
    // term and redeliver); the reason lives in the dead-letter copy's header instead.
    msg.term();
  }
}

/**
 * Standalone consumer (outside Nest): binds `handler` to the durable described by `options`.
 * A `batch` option makes `handler` a batch handler.
 */
export async function consumeEvents(
  conn: MessagingConnection,
  options: OnEventsOptions,
  handler: EventHandler | BatchEventHandler,
  extras: { readonly codec?: EventCodec; readonly logger?: Logger } = {},
): Promise<EventConsumer> {
  const resolved = resolveConsumerOptions(options);
  return startEventConsumer(
    { conn, codec: extras.codec ?? eventCodec(), logger: extras.logger },
    resolved,
    resolved.batch
      ? { kind: 'batch', handle: handler as BatchEventHandler }
      : { kind: 'single', handle: handler as EventHandler },
  );
}

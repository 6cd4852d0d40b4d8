import type { EventEnvelope } from '@longtail/contracts';

/** Where and how an event handler consumes. */
export interface OnEventsOptions {
  /** Stream name, e.g. `INFERENCE`. */
  readonly stream: string;
  /** Durable consumer name; one per projection/reaction. Instances sharing it share the work. */
  readonly durable: string;
  /** One subject filter (2.9 servers support one per consumer); default: the whole stream. */
  readonly filterSubject?: string;
  /**
   * Attempts before the message is dead-lettered to `dlq.<stream>.<durable>`. Default 5.
   * The server is configured with one spare delivery (see `consumerConfigFor`).
   */
  readonly maxDeliver?: number;
  /** Delay before redelivery after the n-th failed attempt (ms; the last repeats). */
  readonly backoffMs?: readonly number[];
  /**
   * How long the server waits for an ack before redelivering (ms). Default 30 000. While a
   * handler runs, the consumer sends progress (`working`) every half of this, so only a crashed
   * or stuck process lets it expire.
   */
  readonly ackWaitMs?: number;
  /** Unacknowledged messages the server hands out at once; 1 = strictly in order. */
  readonly maxAckPending?: number;
  /** Single-event handlers: messages pulled per request. Default 8. */
  readonly prefetch?: number;
  /** Batch handlers: pull up to `size`, waiting at most `maxWaitMs` for a fuller batch. */
  readonly batch?: { readonly size: number; readonly maxWaitMs: number };
  /** Where a NEW durable starts: `all` (default, from the first message) or `new`. */
  readonly deliverPolicy?: 'all' | 'new';
}

/** What a handler knows about the message an event came in. */
export interface EventMeta {
  readonly stream: string;
  readonly durable: string;
  /** Stream sequence: the projection's checkpoint. */
  readonly seq: bigint;
  /** 1 on the first delivery. */
  readonly deliveryCount: number;
  readonly subject: string;
  /** Message headers (first value of each). */
  readonly headers: Readonly<Record<string, string>>;
  /** When the server stored the message (not for business logic: time comes from events). */
  readonly storedAt: Date;
}

export interface ReceivedEvent<E extends EventEnvelope = EventEnvelope> {
  readonly event: E;
  readonly meta: EventMeta;
}

/** Resolves = processed (acked); throws = retry with backoff, dead-letter after maxDeliver. */
export type EventHandler<E extends EventEnvelope = EventEnvelope> = (
  event: E,
  meta: EventMeta,
) => Promise<void> | void;
/** All-or-nothing: resolves = every event acked; throws = every event retried. */
export type BatchEventHandler<E extends EventEnvelope = EventEnvelope> = (
  batch: ReadonlyArray<ReceivedEvent<E>>,
) => Promise<void> | void;

export interface ResolvedConsumerOptions {
  readonly stream: string;
  readonly durable: string;
  readonly filterSubject: string | undefined;
  readonly maxDeliver: number;
  readonly backoffMs: readonly number[];
  readonly ackWaitMs: number;
  readonly maxAckPending: number | undefined;
  readonly prefetch: number;
  readonly batch: { readonly size: number; readonly maxWaitMs: number } | undefined;
  readonly deliverPolicy: 'all' | 'new';
}

export const DEFAULT_BACKOFF_MS: readonly number[] = Object.freeze([1000, 5000, 15000]);

export function resolveConsumerOptions(o: OnEventsOptions): ResolvedConsumerOptions {
  const maxDeliver = o.maxDeliver ?? 5;
  const backoffMs = o.backoffMs && o.backoffMs.length > 0 ? [...o.backoffMs] : [...DEFAULT_BACKOFF_MS];
  const ackWaitMs = o.ackWaitMs ?? 30_000;
  const prefetch = o.prefetch ?? 8;
  if (!/^[A-Za-z0-9_-]+$/.test(o.durable))
    throw new RangeError(`durable "${o.durable}" must be [A-Za-z0-9_-]+`);
  if (!/^[A-Za-z0-9_-]+$/.test(o.stream)) throw new RangeError(`stream "${o.stream}" must be [A-Za-z0-9_-]+`);
  if (!Number.isInteger(maxDeliver) || maxDeliver < 1) throw new RangeError('maxDeliver must be >= 1');
  if (backoffMs.some((ms) => !Number.isFinite(ms) || ms < 0)) throw new RangeError('backoffMs must be >= 0');
  if (ackWaitMs < 1000) throw new RangeError('ackWaitMs must be >= 1000');
  if (!Number.isInteger(prefetch) || prefetch < 1) throw new RangeError('prefetch must be >= 1');
  if (o.batch) {
    if (!Number.isInteger(o.batch.size) || o.batch.size < 1) throw new RangeError('batch.size must be >= 1');
    // Messages of a batch wait for the batch before their heartbeat starts.
    if (o.batch.maxWaitMs >= ackWaitMs / 2) throw new RangeError('batch.maxWaitMs must be < ackWaitMs / 2');
  }
  return Object.freeze({
    stream: o.stream,
    durable: o.durable,
    filterSubject: o.filterSubject,
    maxDeliver,
    backoffMs: Object.freeze(backoffMs),
    ackWaitMs,
    maxAckPending: o.maxAckPending,
    prefetch,
    batch: o.batch
      ? Object.freeze({ size: o.batch.size, maxWaitMs: Math.max(1000, o.batch.maxWaitMs) })
      : undefined,
    deliverPolicy: o.deliverPolicy ?? 'all',
  });
}

/** Delay before the next attempt after attempt `deliveryCount` failed. */
export function backoffFor(backoffMs: readonly number[], deliveryCount: number): number {
  const i = Math.min(Math.max(deliveryCount, 1), backoffMs.length) - 1;
  return backoffMs[i] ?? 0;
}

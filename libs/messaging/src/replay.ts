/**
 * Reads a stream from a sequence up to its last message at call time, in order, with an
 * ephemeral ordered consumer (no acks, recreated by the client after a gap). Used to rebuild a
 * projection from the start; new messages published meanwhile are left to the durable consumer.
 */
import { DeliverPolicy } from '@nats-io/jetstream';
import type { EventEnvelope } from '@longtail/contracts';
import type { MessagingConnection } from './connection.js';
import { describeViolation, eventCodec, type ParseEvent } from './codec.js';

export interface ReplayOptions {
  readonly stream: string;
  /** One subject filter; default: the whole stream. */
  readonly filterSubject?: string;
  /** First stream sequence to read (inclusive). Default 1. */
  readonly fromSeq?: bigint | number;
  /** Default: the JSON envelope check. Pass `parseEvent` from @longtail/contracts. */
  readonly parse?: ParseEvent;
  /**
   * Messages the server may send ahead of the reader (the pull size). Default 256. The client asks
   * for more each time a quarter is used, so a long replay sends about 4 × N / pullSize requests.
   */
  readonly pullSize?: number;
}

export type ReplayedMessage<E extends EventEnvelope = EventEnvelope> =
  | { readonly ok: true; readonly seq: bigint; readonly subject: string; readonly event: E }
  | { readonly ok: false; readonly seq: bigint; readonly subject: string; readonly violation: string };

export async function* replayStream(
  conn: MessagingConnection,
  options: ReplayOptions,
): AsyncGenerator<ReplayedMessage, void, undefined> {
  const parse = eventCodec({ ...(options.parse ? { parse: options.parse } : {}) }).parse;
  const jsm = await conn.jsm();
  const info = await jsm.streams.info(options.stream);
  const lastSeq = info.state.last_seq;
  const fromSeq = Number(options.fromSeq ?? 1);
  if (lastSeq === 0 || fromSeq > lastSeq) return;

  const consumer = await conn.js.consumers.get(options.stream, {
    ...(options.filterSubject ? { filter_subjects: options.filterSubject } : {}),
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, fromSeq),
  });
  try {
    // Nothing matches the filter in range: the consumer would wait for a message forever.
    if ((await consumer.info(true)).num_pending === 0) return;
    const messages = await consumer.consume({ max_messages: options.pullSize ?? 256 });
    try {
      for await (const m of messages) {
        if (m.seq > lastSeq) break;
        const parsed = parse(m.data);
        yield parsed.ok
          ? { ok: true, seq: BigInt(m.seq), subject: m.subject, event: parsed.event }
          : { ok: false, seq: BigInt(m.seq), subject: m.subject, violation: describeViolation(parsed.error) };
        // `pending` counts messages matching the filter left after this one.
        if (m.seq >= lastSeq || m.info.pending === 0) break;
      }
    } finally {
      await messages.close();
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}

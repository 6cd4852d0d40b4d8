/**
 * Reading a stream by position, for projections that must apply events in stream order with no
 * hole. A durable consumer does not promise that order: a batch that failed and waits for
 * redelivery (nak with backoff) can be overtaken by the next batch, and several instances share
 * one durable. A projection that applied the later batch would move its checkpoint past the
 * failed one, which would then be skipped as "already applied": an event lost. With a gap
 * source, the projection reads every position between its checkpoint and the batch from the
 * stream itself (JetStream "get message"); see `fillStreamGaps` in @longtail/database.
 */
import type { MsgRequest } from '@nats-io/jetstream';
import type { EventEnvelope } from '@longtail/contracts';
import type { ParseEvent } from './codec.js';
import type { MessagingConnection } from './connection.js';

/** What stands at a stream position for a projection: an event, or `skip` (nothing due there). */
export interface StreamPosition<E> {
  readonly seq: bigint;
  readonly event: E | 'skip';
}

/** Reads a stream for one projection, from a sequence on. */
export interface StreamGapSource<E> {
  /**
   * The first position at or after `fromSeq` the projection must look at, or undefined when the
   * stream holds nothing more for it. A message outside the filter, gone, or not a valid event
   * (the consumer dead-letters those) is `skip`.
   */
  next(fromSeq: bigint): Promise<StreamPosition<E> | undefined>;
}

export interface StreamGapSourceOptions<E extends EventEnvelope> {
  readonly stream: string;
  readonly filterSubject?: string;
  readonly parse: ParseEvent<E>;
}

export function streamGapSource<E extends EventEnvelope>(
  conn: MessagingConnection,
  options: StreamGapSourceOptions<E>,
): StreamGapSource<E> {
  const { stream, filterSubject, parse } = options;
  const get = async (query: MsgRequest | { seq: number; next_by_subj: string }) => {
    const jsm = await conn.jsm();
    return jsm.streams.getMessage(stream, query as MsgRequest).catch((error: unknown) => {
      if (/no message found|not found/i.test(String(error))) return null;
      throw error;
    });
  };
  const position = (seq: bigint, subject: string, data: Uint8Array): StreamPosition<E> => {
    if (filterSubject && !subjectMatches(filterSubject, subject)) return { seq, event: 'skip' };
    const parsed = parse(data);
    return { seq, event: parsed.ok ? parsed.event : 'skip' };
  };
  return {
    async next(fromSeq: bigint): Promise<StreamPosition<E> | undefined> {
      if (filterSubject) {
        // "Next by subject" passes over messages outside the filter in one request.
        const found = await get({ seq: Number(fromSeq), next_by_subj: filterSubject });
        if (!found) return undefined;
        return position(BigInt(found.seq), found.subject, found.data);
      }
      const message = await get({ seq: Number(fromSeq) });
      return message ? position(BigInt(message.seq), message.subject, message.data) : { seq: fromSeq, event: 'skip' };
    },
  };
}

/** NATS subject matching: `*` one token, `>` one or more trailing tokens. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i += 1) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (f[i] !== '*' && f[i] !== s[i]) return false;
  }
  return f.length === s.length;
}

/**
 * Gap filling: a projection checkpointed by stream sequence must apply events in stream order
 * with no hole. A durable consumer does not promise that: a batch that failed and waits for
 * redelivery (nak with backoff) can be overtaken by the next batch, and several instances share
 * one durable. Applying the later batch would move the checkpoint past the failed one, which
 * would then be skipped as "already applied": an event lost.
 *
 * So before a batch is applied, every sequence between the checkpoint and the batch that the
 * batch does not hold is read from the stream itself (JetStream "get message by sequence") and
 * applied in its place. A sequence that is gone, outside the consumer's filter, or not a valid
 * event (the consumer dead-letters those) is skipped. The durable consumer then only carries and
 * acknowledges; order and completeness come from the stream and the checkpoint.
 */
import type { MessagingConnection } from '@longtail/messaging';

import type { StreamEvent } from '../projections/facts-projection.js';
import { parseAttributionEvent } from './codec.js';

/** Reads one sequence of a stream for a projection: the event, or `skip` when none is due there. */
export interface StreamGapSource {
  fetch(seq: bigint): Promise<StreamEvent | 'skip'>;
}

export function jetStreamGapSource(conn: MessagingConnection, stream: string, filterSubject?: string): StreamGapSource {
  return {
    async fetch(seq: bigint): Promise<StreamEvent | 'skip'> {
      const jsm = await conn.jsm();
      const message = await jsm.streams.getMessage(stream, { seq: Number(seq) }).catch((error: unknown) => {
        if (/no message found|not found/i.test(String(error))) return null;
        throw error;
      });
      if (!message) return 'skip';
      if (filterSubject && !subjectMatches(filterSubject, message.subject)) return 'skip';
      const parsed = parseAttributionEvent(message.data);
      return parsed.ok ? parsed.event : 'skip';
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

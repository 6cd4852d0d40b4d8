/**
 * The events a projection must apply next, in stream order with no hole: the received batch
 * without what the checkpoint covers, sorted, with every position missing between the checkpoint
 * and the batch (and inside it) read from the stream through `gaps`. See `streamGapSource` in
 * @longtail/messaging for why delivery order alone is not enough.
 */
import type { SequencedEvent } from './apply-projection-batch.js';

/** Reads a stream position; structurally the same as @longtail/messaging's `StreamGapSource`. */
export interface ProjectionGapSource<E> {
  next(fromSeq: bigint): Promise<{ readonly seq: bigint; readonly event: E | 'skip' } | undefined>;
}

export class ProjectionGapTooLargeError extends Error {
  override readonly name = 'ProjectionGapTooLargeError';
}

export async function fillStreamGaps<E>(
  projection: string,
  checkpoint: bigint,
  received: ReadonlyArray<SequencedEvent<E>>,
  gaps: ProjectionGapSource<E>,
  maxGap = 20_000,
): Promise<SequencedEvent<E>[]> {
  const sorted = [...received]
    .filter((e) => e.seq > checkpoint)
    .sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  const out: SequencedEvent<E>[] = [];
  let expected = checkpoint + 1n;
  for (const item of sorted) {
    if (item.seq < expected) continue; // the same sequence twice
    if (item.seq - expected > BigInt(maxGap))
      throw new ProjectionGapTooLargeError(`${projection}: ${item.seq - expected} sequences missing before ${item.seq}`);
    while (expected < item.seq) {
      const found = await gaps.next(expected);
      if (!found || found.seq >= item.seq) break;
      if (found.event !== 'skip') out.push({ seq: found.seq, event: found.event });
      expected = found.seq + 1n;
    }
    out.push(item);
    expected = item.seq + 1n;
  }
  return out;
}

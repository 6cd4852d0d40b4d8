import { describe, expect, it } from 'vitest';
import { fillStreamGaps, ProjectionGapTooLargeError, type ProjectionGapSource } from './fill-stream-gaps.js';

/** A stream as positions: a string is an event, null is a position the projection skips. */
const streamOf = (positions: Array<string | null>): ProjectionGapSource<string> => ({
  async next(fromSeq) {
    const i = Number(fromSeq) - 1;
    if (i >= positions.length) return undefined;
    const value = positions[i];
    return { seq: fromSeq, event: value ?? 'skip' };
  },
});
const at = (seq: number, event: string) => ({ seq: BigInt(seq), event });

describe('fillStreamGaps', () => {
  const stream = streamOf(['a', 'b', null, 'd', 'e', 'f']);

  it('given a batch that overtook a failed one, then the missing positions are read from the stream first', async () => {
    const out = await fillStreamGaps('p', 0n, [at(5, 'e'), at(6, 'f')], stream);
    expect(out).toEqual([at(1, 'a'), at(2, 'b'), at(4, 'd'), at(5, 'e'), at(6, 'f')]);
  });

  it('given a batch out of order with a duplicate and positions at or below the checkpoint, then it is sorted and trimmed', async () => {
    const out = await fillStreamGaps('p', 2n, [at(6, 'f'), at(1, 'a'), at(4, 'd'), at(4, 'd')], stream);
    expect(out).toEqual([at(4, 'd'), at(5, 'e'), at(6, 'f')]);
  });

  it('given a hole larger than the limit, then it refuses instead of reading without end', async () => {
    await expect(fillStreamGaps('p', 0n, [at(6, 'f')], stream, 3)).rejects.toBeInstanceOf(ProjectionGapTooLargeError);
  });
});

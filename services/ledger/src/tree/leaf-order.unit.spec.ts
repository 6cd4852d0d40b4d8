import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { CumulativeTreeError } from './errors.js';
import { sortByHash } from './leaf-order.js';

const compare = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('sortByHash', () => {
  it('given hashes sharing their first 4 bytes (the packed sort key), then ties are ordered by the full hash', () => {
    // Few distinct prefixes, so most hashes tie on the packed 32-bit key.
    const hashArb = fc.tuple(fc.constantFrom(0, 1, 0xffffffff), fc.uint8Array({ minLength: 28, maxLength: 28 })).map(([prefix, rest]) => {
      const h = new Uint8Array(32);
      new DataView(h.buffer).setUint32(0, prefix);
      h.set(rest, 4);
      return h;
    });
    fc.assert(
      fc.property(fc.uniqueArray(hashArb, { minLength: 1, maxLength: 50, comparator: (a, b) => compare(a, b) === 0 }), (hashes) => {
        const flat = new Uint8Array(hashes.length * 32);
        hashes.forEach((h, i) => flat.set(h, i * 32));
        const order = [...sortByHash(flat, hashes.length)];
        const expected = hashes.map((_, i) => i).sort((a, b) => compare(hashes[a]!, hashes[b]!));
        expect(order).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('given two equal hashes, then CumulativeTreeError (an account listed twice)', () => {
    const flat = new Uint8Array(64).fill(3);
    expect(() => sortByHash(flat, 2)).toThrow(CumulativeTreeError);
  });
});

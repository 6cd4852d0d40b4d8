import { describe, expect, it } from 'vitest';

import { hash32, xoshiro128 } from './random.js';
import { zipf } from './zipf.js';

describe('xoshiro128', () => {
  it('given a seed, then the sequence is the same every time and differs for another seed', () => {
    const a = xoshiro128(42);
    const b = xoshiro128(42);
    const c = xoshiro128(43);
    const seqA = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(seqA);
    expect(Array.from({ length: 100 }, () => c.next())).not.toEqual(seqA);
    expect(seqA.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32)).toBe(true);
  });

  it('given many draws, then below(n) is uniform within a few percent', () => {
    const r = xoshiro128(7);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i += 1) counts[r.below(10)]! += 1;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(400);
  });
});

describe('hash32', () => {
  it('is MurmurHash3 x86_32 over UTF-16 units: stable values, one changed character changes it', () => {
    expect(hash32('adapter-1')).toBe(hash32('adapter-1'));
    expect(hash32('adapter-1')).not.toBe(hash32('adapter-2'));
    expect(hash32('')).toBe(0);
  });
});

describe('zipf', () => {
  it('given α = 1 over 1,000 ranks, then P(rank r) = 1 / ((r + 1) · H(1000))', () => {
    const z = zipf(1000, 1);
    let h = 0;
    for (let r = 1; r <= 1000; r += 1) h += 1 / r;
    expect(z.probability(0)).toBeCloseTo(1 / h, 12);
    expect(z.probability(9)).toBeCloseTo(1 / (10 * h), 12);
  });

  it('given 400,000 draws, then observed frequencies match the probabilities', () => {
    const z = zipf(1000, 1);
    const r = xoshiro128(1);
    const counts = new Array<number>(1000).fill(0);
    const n = 400_000;
    for (let i = 0; i < n; i += 1) counts[z.sample(r)]! += 1;
    for (const rank of [0, 1, 2, 9, 99]) {
      const expected = z.probability(rank) * n;
      expect(Math.abs(counts[rank]! - expected)).toBeLessThan(5 * Math.sqrt(expected));
    }
    const tail = counts.slice(500).reduce((s, c) => s + c, 0);
    let tailP = 0;
    for (let rank = 500; rank < 1000; rank += 1) tailP += z.probability(rank);
    expect(Math.abs(tail - tailP * n)).toBeLessThan(5 * Math.sqrt(tailP * n));
  });
});

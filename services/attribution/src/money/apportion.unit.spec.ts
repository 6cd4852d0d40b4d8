import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { apportion, ApportionError } from './apportion.js';

const claims = fc.uniqueArray(
  fc.tuple(fc.string({ minLength: 1, maxLength: 6 }), fc.bigInt({ min: 0n, max: 10n ** 20n })),
  {
    minLength: 1,
    maxLength: 20,
    selector: ([key]) => key,
  },
);

describe('apportion (largest remainder)', () => {
  it('gives non-negative parts that sum exactly to the total, each within one unit of its exact share', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 30n }), claims, (total, entries) => {
        fc.pre(entries.some(([, w]) => w > 0n));
        const input = entries.map(([key, weight]) => ({ key, weight }));
        const parts = apportion(total, input);
        const sum = entries.reduce((s, [, w]) => s + w, 0n);
        expect(parts.reduce((s, p) => s + p, 0n)).toBe(total);
        parts.forEach((part, i) => {
          const exactFloor = (total * input[i]!.weight) / sum;
          expect(part >= exactFloor && part <= exactFloor + 1n).toBe(true);
        });
      }),
    );
  });

  it('does not depend on the order of the claims', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 6n }), claims, fc.nat(), (total, entries, seed) => {
        fc.pre(entries.some(([, w]) => w > 0n));
        const input = entries.map(([key, weight]) => ({ key, weight }));
        const k = seed % input.length;
        const permuted = [...input.slice(k), ...input.slice(0, k)].reverse();
        const byKey = (xs: typeof input, parts: bigint[]) => new Map(xs.map((c, i) => [c.key, parts[i]!]));
        expect(byKey(permuted, apportion(total, permuted))).toEqual(byKey(input, apportion(total, input)));
      }),
    );
  });

  it('breaks equal remainders by key order: the smaller key gets the unit', () => {
    const parts = apportion(1n, [
      { key: '0xbb', weight: 1n },
      { key: '0xaa', weight: 1n },
    ]);
    expect(parts).toEqual([0n, 1n]);
  });

  it('refuses a non-zero total with no weight, repeated keys and negative input', () => {
    expect(() => apportion(1n, [{ key: 'a', weight: 0n }])).toThrow(ApportionError);
    expect(apportion(0n, [{ key: 'a', weight: 0n }])).toEqual([0n]);
    expect(() =>
      apportion(5n, [
        { key: 'a', weight: 1n },
        { key: 'a', weight: 2n },
      ]),
    ).toThrow(ApportionError);
    expect(() => apportion(-1n, [{ key: 'a', weight: 1n }])).toThrow(ApportionError);
  });
});

/** fast-check arbitraries for attribution's domain values. */
import fc from 'fast-check';

import type { Provenance, TrainingSource } from '../../src/split/provenance.js';
import { snapshotWeights } from '../../src/split/provenance.js';
import type { SplitPolicy } from '../../src/split/split-policy.js';

export const address = fc
  .bigInt({ min: 0n, max: (1n << 160n) - 1n })
  .map((n) => `0x${n.toString(16).padStart(40, '0')}`);
/** A small pool of addresses, so that roles collide and ties happen. */
export const smallAddress = fc
  .integer({ min: 0, max: 6 })
  .map((n) => `0x${n.toString(16).padStart(40, '0')}`);

export const fee = fc.oneof(
  fc.bigInt({ min: 0n, max: 1000n }),
  fc.bigInt({ min: 0n, max: 10n ** 24n }),
  fc.bigInt({ min: 0n, max: 1n << 200n }),
);

/** Four basis-point parts summing to 10000. */
export const bpsParts = fc
  .tuple(
    fc.integer({ min: 0, max: 10_000 }),
    fc.integer({ min: 0, max: 10_000 }),
    fc.integer({ min: 0, max: 10_000 }),
  )
  .map(([a, b, c]) => {
    const [x, y, z] = [a, b, c].sort((p, q) => p - q) as [number, number, number];
    return [x, y - x, z - y, 10_000 - z] as const;
  });

export const policy: fc.Arbitrary<SplitPolicy> = fc
  .tuple(bpsParts, address)
  .map(([[o, c, k, t], treasury]) => ({
    version: 1,
    effectiveFromEpoch: 0,
    operatorBps: o,
    creatorBps: c,
    contributorsBps: k,
    treasuryBps: t,
    treasuryAddress: treasury,
  }));

/** Mix weights: n positive parts summing to 10000. */
export function mixWeights(n: number): fc.Arbitrary<number[]> {
  if (n === 0) return fc.constant([]);
  return fc
    .uniqueArray(fc.integer({ min: 1, max: 9_999 }), { minLength: n - 1, maxLength: n - 1 })
    .map((cuts) => {
      const sorted = [0, ...cuts.sort((a, b) => a - b), 10_000];
      return sorted.slice(1).map((v, i) => v - sorted[i]!);
    });
}

const contributorWeight = fc.oneof(
  fc.bigInt({ min: 1n, max: 100n }),
  fc.bigInt({ min: 1n, max: 1n << 53n }),
  fc.constant(1n),
);

/** A snapshot; sometimes one contributor holds almost all the weight, sometimes nobody contributed. */
export function snapshot(datanetId: string, snapshotId: string) {
  return fc
    .oneof(
      fc.array(fc.tuple(fc.oneof(address, smallAddress), contributorWeight), { minLength: 0, maxLength: 12 }),
      fc
        .tuple(address, fc.array(address, { minLength: 1, maxLength: 8 }))
        .map(([whale, minnows]) => [
          [whale, 10n ** 30n] as [string, bigint],
          ...minnows.map((m) => [m, 1n] as [string, bigint]),
        ]),
    )
    .map((entries) =>
      snapshotWeights(
        datanetId,
        snapshotId,
        entries.map(([account, weight]) => ({ account, weight })),
      ),
    );
}

export const provenance: fc.Arbitrary<Provenance> = fc
  .tuple(fc.oneof(address, smallAddress), fc.oneof(address, smallAddress), fc.integer({ min: 0, max: 4 }))
  .chain(([operator, creator, n]) =>
    fc
      .tuple(mixWeights(n), fc.tuple(...Array.from({ length: n }, (_, i) => snapshot(`net/d${i}`, `s${i}`))))
      .map(([mix, snapshots]): Provenance => ({
        operator,
        creator,
        trainedOn: snapshots.map((s, i): TrainingSource => ({ snapshot: s, mixWeightBps: mix[i]! })),
      })),
  );

/** The same provenance with contributors and training sources in another order. */
export function shuffled(p: Provenance, seed: number): Provenance {
  const rotate = <T>(xs: readonly T[]): T[] =>
    xs.length === 0 ? [] : [...xs.slice(seed % xs.length), ...xs.slice(0, seed % xs.length)].reverse();
  return {
    ...p,
    trainedOn: rotate(p.trainedOn).map((t) => ({
      ...t,
      snapshot: { ...t.snapshot, contributors: rotate(t.snapshot.contributors) },
    })),
  };
}

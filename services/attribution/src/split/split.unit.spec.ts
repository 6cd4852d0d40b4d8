import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { address, fee, policy, provenance, shuffled, smallAddress } from '../../test/support/arbitraries.js';
import { closeEpochTotals } from '../epochs/epoch-totals.js';
import { price } from '../pricing/price.js';
import { snapshotKey, snapshotWeights } from './provenance.js';
import { apportion } from '../money/apportion.js';
import { planFeeSplit, split, splitFee, splitFeeWith, totalsByAccount } from './split.js';

const sum = (xs: Iterable<bigint>) => [...xs].reduce((s, x) => s + x, 0n);

describe('split(fee, policy, provenance)', () => {
  it('gives positive parts that sum exactly to the fee', () => {
    fc.assert(
      fc.property(fee, policy, provenance, (amount, p, prov) => {
        const shares = split(amount, p, prov);
        for (const share of shares) expect(share.amount > 0n).toBe(true);
        expect(sum(shares.map((s) => s.amount))).toBe(amount);
      }),
      { numRuns: 300 },
    );
  });

  it('does not depend on the order of contributors or training snapshots', () => {
    fc.assert(
      fc.property(fee, policy, provenance, fc.nat(), (amount, p, prov, seed) => {
        expect(totalsByAccount(split(amount, p, shuffled(prov, seed)))).toEqual(
          totalsByAccount(split(amount, p, prov)),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('gives each role its basis points to within one base unit', () => {
    fc.assert(
      fc.property(fee, policy, provenance, (amount, p, prov) => {
        const first = splitFee(amount, p, prov);
        const exact = (bps: number) => (amount * BigInt(bps)) / 10_000n;
        const within = (part: bigint, floor: bigint) => part >= floor - 1n && part <= floor + 1n;
        expect(within(first.operator, exact(p.operatorBps))).toBe(true);
        expect(within(first.treasury, exact(p.treasuryBps))).toBe(true);
        const unfunded =
          prov.trainedOn.length === 0 || prov.trainedOn.every((t) => t.snapshot.totalWeight === 0n);
        if (unfunded) expect(within(first.creator, exact(p.creatorBps + p.contributorsBps))).toBe(true);
        else {
          // each of the 1 + k parts is within one unit of its exact share, so their sum is within 1 + k
          const total = sum(first.pools.map((x) => x.amount)) + first.creator;
          const slack = BigInt(1 + first.pools.length);
          const floor = exact(p.creatorBps + p.contributorsBps);
          expect(total >= floor - slack && total <= floor + slack).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('splitting a summed pool once per epoch still adds up to the sum of the fees', () => {
    fc.assert(
      fc.property(policy, provenance, fc.array(fee, { minLength: 1, maxLength: 30 }), (p, prov, fees) => {
        const direct = new Map<string, bigint>();
        const pools = new Map<string, { datanetId: string; snapshotId: string; amount: bigint }>();
        for (const f of fees) {
          const first = splitFee(f, p, prov);
          for (const [account, amount] of [
            [prov.operator, first.operator],
            [prov.creator, first.creator],
            [p.treasuryAddress, first.treasury],
          ] as const) {
            direct.set(account, (direct.get(account) ?? 0n) + amount);
          }
          for (const pool of first.pools) {
            const key = snapshotKey(pool.datanetId, pool.snapshotId);
            pools.set(key, { ...pool, amount: (pools.get(key)?.amount ?? 0n) + pool.amount });
          }
        }
        const snapshots = new Map(
          prov.trainedOn.map((t) => [snapshotKey(t.snapshot.datanetId, t.snapshot.snapshotId), t.snapshot]),
        );
        const closed = closeEpochTotals(
          [...direct].map(([account, amount]) => ({ account, amount })),
          pools.values(),
          (d, s) => snapshots.get(snapshotKey(d, s)),
        );
        expect(closed.sum).toBe(sum(fees));
        for (const t of closed.totals) expect(t.amount > 0n).toBe(true);
        const accounts = closed.totals.map((t) => t.account);
        expect(accounts).toEqual([...accounts].sort());
        expect(new Set(accounts).size).toBe(accounts.length);
      }),
      { numRuns: 200 },
    );
  });

  it('splits over a plan exactly as apportion over the claims written out per fee (the reference)', () => {
    fc.assert(
      fc.property(
        policy,
        provenance,
        fc.array(fc.tuple(fee, fc.oneof(address, smallAddress)), { minLength: 1, maxLength: 8 }),
        (p, prov, fees) => {
          // One plan reused for many fees and operators, as the projection does per adapter.
          const plan = planFeeSplit(p, prov.creator, prov.trainedOn);
          const funded = prov.trainedOn.filter((t) => t.snapshot.totalWeight > 0n);
          const mix = BigInt(prov.trainedOn.reduce((n, t) => n + t.mixWeightBps, 0) || 10_000);
          const fundedMix = BigInt(funded.reduce((n, t) => n + t.mixWeightBps, 0));
          const k = BigInt(p.contributorsBps);
          for (const [amount, operator] of fees) {
            const reference = apportion(amount, [
              { key: `${operator}/operator`, weight: BigInt(p.operatorBps) * mix },
              { key: `${prov.creator}/creator`, weight: BigInt(p.creatorBps) * mix + k * (mix - fundedMix) },
              { key: `${p.treasuryAddress}/treasury`, weight: BigInt(p.treasuryBps) * mix },
              ...funded.map((t) => ({
                key: `snapshot:${snapshotKey(t.snapshot.datanetId, t.snapshot.snapshotId)}`,
                weight: k * BigInt(t.mixWeightBps),
              })),
            ]);
            const first = splitFeeWith(plan, amount, operator);
            expect([
              first.operator,
              first.creator,
              first.treasury,
              ...first.pools.map((x) => x.amount),
            ]).toEqual(reference);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('pays a whale contributor almost everything and still pays every minnow its exact floor', () => {
    const snap = snapshotWeights('acme/data', 's1', [
      { account: `0x${'f'.repeat(40)}`, weight: 10n ** 30n },
      { account: `0x${'1'.repeat(40)}`, weight: 1n },
    ]);
    const p = {
      version: 1,
      effectiveFromEpoch: 0,
      operatorBps: 0,
      creatorBps: 0,
      contributorsBps: 10_000,
      treasuryBps: 0,
      treasuryAddress: `0x${'0'.repeat(40)}`,
    };
    const shares = split(10n ** 31n + 5n, p, {
      operator: `0x${'a'.repeat(40)}`,
      creator: `0x${'b'.repeat(40)}`,
      trainedOn: [{ snapshot: snap, mixWeightBps: 10_000 }],
    });
    expect(totalsByAccount(shares)).toEqual(
      new Map([
        [`0x${'1'.repeat(40)}`, 10n],
        [`0x${'f'.repeat(40)}`, 10n ** 31n - 5n],
      ]),
    );
  });
});

describe('price(inference, adapter)', () => {
  const base = { outcome: 'completed' as const, adapterId: 'm:a/b', promptTokens: 0, completionTokens: 0 };
  it('is floor(price × tokens / 1000): the sub-unit remainder is dropped', () => {
    expect(price({ ...base, promptTokens: 1, completionTokens: 0 }, { pricePer1kTokens: 999n })).toBe(0n);
    expect(
      price({ ...base, promptTokens: 700, completionTokens: 300 }, { pricePer1kTokens: 10n ** 18n }),
    ).toBe(10n ** 18n);
    expect(price({ ...base, promptTokens: 3, completionTokens: 0 }, { pricePer1kTokens: 1001n })).toBe(3n);
  });
  it('bills nothing for failures and the bare base model', () => {
    expect(price({ ...base, outcome: 'failed', promptTokens: 10 }, { pricePer1kTokens: 10n ** 18n })).toBe(
      0n,
    );
    expect(price({ ...base, adapterId: null, promptTokens: 10 }, { pricePer1kTokens: 10n ** 18n })).toBe(0n);
  });
  it('is never negative and is monotone in tokens', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 30n }),
        fc.nat({ max: 10_000_000 }),
        fc.nat({ max: 10_000_000 }),
        (p, a, b) => {
          const lo = price({ ...base, promptTokens: Math.min(a, b) }, { pricePer1kTokens: p });
          const hi = price({ ...base, promptTokens: Math.max(a, b) }, { pricePer1kTokens: p });
          expect(lo >= 0n && lo <= hi).toBe(true);
        },
      ),
    );
  });
});

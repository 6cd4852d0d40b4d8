/**
 * Closing an epoch's books: the direct shares (operator, creator, treasury) accumulated per account
 * and the contributors' pools accumulated per snapshot become one exact total per account. Each
 * pool is split once among its snapshot's contributors (largest remainder), so
 * Σ totals = Σ direct + Σ pools = Σ fees of the epoch, to the base unit.
 */
import { snapshotKey, type SnapshotWeights } from '../split/provenance.js';
import { splitPool } from '../split/split.js';

export interface PoolAmount {
  readonly datanetId: string;
  readonly snapshotId: string;
  readonly amount: bigint;
}

export interface AccountAmount {
  readonly account: string;
  readonly amount: bigint;
}

/** One contributor's part of one snapshot pool of an epoch (statement line). */
export interface ContributorEarning {
  readonly account: string;
  readonly datanetId: string;
  readonly snapshotId: string;
  readonly amount: bigint;
}

export interface EpochTotals {
  /** Accounts with a non-zero total, sorted by account ascending. */
  readonly totals: readonly AccountAmount[];
  /** Contributor earnings per (account, snapshot), sorted by snapshot key then account. */
  readonly contributorEarnings: readonly ContributorEarning[];
  /** Σ totals. */
  readonly sum: bigint;
}

export class MissingSnapshot extends Error {
  override readonly name = 'MissingSnapshot';
}

export function closeEpochTotals(
  direct: Iterable<AccountAmount>,
  pools: Iterable<PoolAmount>,
  snapshot: (datanetId: string, snapshotId: string) => SnapshotWeights | undefined,
): EpochTotals {
  const totals = new Map<string, bigint>();
  const add = (account: string, amount: bigint): void => {
    if (amount !== 0n) totals.set(account, (totals.get(account) ?? 0n) + amount);
  };
  for (const { account, amount } of direct) add(account, amount);
  const sortedPools = [...pools].sort((a, b) =>
    compare(snapshotKey(a.datanetId, a.snapshotId), snapshotKey(b.datanetId, b.snapshotId)),
  );
  const contributorEarnings: ContributorEarning[] = [];
  for (const pool of sortedPools) {
    if (pool.amount === 0n) continue;
    const weights = snapshot(pool.datanetId, pool.snapshotId);
    if (weights === undefined)
      throw new MissingSnapshot(`snapshot ${pool.datanetId}@${pool.snapshotId} has a pool but is unknown`);
    for (const share of splitPool(pool.amount, weights)) {
      add(share.account, share.amount);
      contributorEarnings.push({
        account: share.account,
        datanetId: pool.datanetId,
        snapshotId: pool.snapshotId,
        amount: share.amount,
      });
    }
  }
  const sorted = [...totals]
    .sort(([a], [b]) => compare(a, b))
    .map(([account, amount]) => ({ account, amount }));
  const sum = sorted.reduce((s, t) => s + t.amount, 0n);
  return { totals: sorted, contributorEarnings, sum };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

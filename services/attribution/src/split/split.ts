/**
 * The split of a fee among the people behind an inference, in two exact steps:
 *
 * 1. `splitFee`: the fee is apportioned (largest remainder) among the operator, the creator, the
 *    treasury and one contributors' pool per training snapshot, with weights
 *    bps(role) × 10000 for the roles and contributorsBps × mixWeightBps for each pool. When the
 *    adapter names no snapshot (or a snapshot has no contributors), that part of the contributors'
 *    share goes to the creator: the creator then supplied the data too.
 * 2. `splitPool`: a snapshot pool is apportioned among the snapshot's contributors by weight.
 *
 * Attribution runs step 1 per inference and step 2 once per epoch, on each snapshot's pool summed
 * over the epoch. Snapshots are immutable, so splitting the sum is as faithful as summing the
 * splits, and fairer: a contributor with a tiny weight receives its exact pro-rata part of the
 * epoch's pool (within one base unit) instead of a rounding lottery per inference. It also keeps
 * the per-inference cost independent of how many contributors a Datanet has.
 *
 * `split` composes both steps for a single fee (what one inference would pay if it were an epoch).
 */
import {
  apportion,
  apportionOver,
  ApportionError,
  assertUniqueKeys,
  type Claim,
} from '../money/apportion.js';
import { snapshotKey, type Provenance, type SnapshotWeights } from './provenance.js';
import { BPS_WHOLE, type SplitPolicy } from './split-policy.js';

export type ShareRole = 'operator' | 'creator' | 'treasury' | 'contributor';

/** One account's part of a fee. Contributor shares name the snapshot they come from. */
export interface Share {
  readonly account: string;
  readonly role: ShareRole;
  readonly amount: bigint;
  readonly datanetId?: string;
  readonly snapshotId?: string;
}

/** A snapshot's contributors' pool from one fee (step 1). */
export interface SnapshotPool {
  readonly datanetId: string;
  readonly snapshotId: string;
  readonly amount: bigint;
}

/** Step 1 result: the direct roles and one pool per training snapshot with contributors. */
export interface FeeSplit {
  readonly operator: bigint;
  readonly creator: bigint;
  readonly treasury: bigint;
  readonly pools: readonly SnapshotPool[];
}

const WHOLE = BigInt(BPS_WHOLE);

/**
 * Step 1's claims for one adapter under one policy, computed once: everything but the fee and the
 * operator is fixed by immutable facts (policy, creator, training snapshots), so many fees can be
 * split over the same weights. Index 0 is the operator, 1 the creator, 2 the treasury, 3.. one
 * pool per funded snapshot.
 */
export interface FeeSplitPlan {
  readonly weights: readonly bigint[];
  readonly weightSum: bigint;
  /** Apportionment keys; index 0 (the operator's) is built per fee, only when a tie needs it. */
  readonly keys: readonly string[];
  readonly pools: readonly { readonly datanetId: string; readonly snapshotId: string }[];
}

/** @throws ApportionError when the adapter names one snapshot twice (as `apportion` would per fee). */
export function planFeeSplit(
  policy: SplitPolicy,
  creator: string,
  trainedOn: Provenance['trainedOn'],
): FeeSplitPlan {
  const funded = trainedOn.filter((source) => source.snapshot.totalWeight > 0n);
  let mixTotal = 0n;
  for (const source of trainedOn) mixTotal += BigInt(source.mixWeightBps);
  if (mixTotal === 0n) mixTotal = WHOLE;
  let fundedMix = 0n;
  for (const source of funded) fundedMix += BigInt(source.mixWeightBps);
  const contributorsBps = BigInt(policy.contributorsBps);

  // Weights share one denominator, 10000 × Σmix, so every role keeps its exact basis points.
  const claims: Claim[] = [
    // The operator's key always ends in /operator, so it cannot repeat another claim's key.
    { key: '/operator', weight: BigInt(policy.operatorBps) * mixTotal },
    {
      key: `${creator}/creator`,
      weight: BigInt(policy.creatorBps) * mixTotal + contributorsBps * (mixTotal - fundedMix),
    },
    { key: `${policy.treasuryAddress}/treasury`, weight: BigInt(policy.treasuryBps) * mixTotal },
  ];
  for (const source of funded) {
    claims.push({
      key: `snapshot:${snapshotKey(source.snapshot.datanetId, source.snapshot.snapshotId)}`,
      weight: contributorsBps * BigInt(source.mixWeightBps),
    });
  }
  assertUniqueKeys(claims);
  return {
    weights: claims.map((c) => c.weight),
    // > 0: the four bps sum to 10000 and mixTotal > 0.
    weightSum: claims.reduce((sum, c) => sum + c.weight, 0n),
    keys: claims.map((c) => c.key),
    pools: funded.map((source) => ({
      datanetId: source.snapshot.datanetId,
      snapshotId: source.snapshot.snapshotId,
    })),
  };
}

/** Step 1 over a plan: the same parts as `splitFee(fee, policy, { operator, creator, trainedOn })`. */
export function splitFeeWith(plan: FeeSplitPlan, fee: bigint, operator: string): FeeSplit {
  if (fee < 0n) throw new ApportionError(`total must not be negative, got ${fee}`);
  const parts = apportionOver(fee, plan.weights, plan.weightSum, (i) =>
    i === 0 ? `${operator}/operator` : plan.keys[i]!,
  );
  return {
    operator: parts[0]!,
    creator: parts[1]!,
    treasury: parts[2]!,
    pools: plan.pools.map((pool, i) => ({
      datanetId: pool.datanetId,
      snapshotId: pool.snapshotId,
      amount: parts[3 + i]!,
    })),
  };
}

/** Step 1: fee → operator, creator, treasury and snapshot pools; the parts sum to `fee`. */
export function splitFee(fee: bigint, policy: SplitPolicy, provenance: Provenance): FeeSplit {
  return splitFeeWith(
    planFeeSplit(policy, provenance.creator, provenance.trainedOn),
    fee,
    provenance.operator,
  );
}

/** Step 2: a snapshot pool → its contributors, by weight; the parts sum to `amount`. */
export function splitPool(amount: bigint, snapshot: SnapshotWeights): Share[] {
  if (amount === 0n) return [];
  const parts = apportion(
    amount,
    snapshot.contributors.map((c) => ({ key: c.account, weight: c.weight })),
  );
  const shares: Share[] = [];
  snapshot.contributors.forEach((c, i) => {
    if (parts[i]! > 0n) {
      shares.push({
        account: c.account,
        role: 'contributor',
        amount: parts[i]!,
        datanetId: snapshot.datanetId,
        snapshotId: snapshot.snapshotId,
      });
    }
  });
  return shares;
}

/** Both steps for one fee: every account's share; amounts are > 0 and sum to `fee`. */
export function split(fee: bigint, policy: SplitPolicy, provenance: Provenance): Share[] {
  const first = splitFee(fee, policy, provenance);
  const shares: Share[] = [];
  if (first.operator > 0n)
    shares.push({ account: provenance.operator, role: 'operator', amount: first.operator });
  if (first.creator > 0n)
    shares.push({ account: provenance.creator, role: 'creator', amount: first.creator });
  if (first.treasury > 0n)
    shares.push({ account: policy.treasuryAddress, role: 'treasury', amount: first.treasury });
  const funded = provenance.trainedOn.filter((source) => source.snapshot.totalWeight > 0n);
  first.pools.forEach((pool, i) => shares.push(...splitPool(pool.amount, funded[i]!.snapshot)));
  return shares;
}

/** Sums shares per account (an account may hold several roles). */
export function totalsByAccount(shares: Iterable<Share>): Map<string, bigint> {
  const totals = new Map<string, bigint>();
  for (const share of shares) totals.set(share.account, (totals.get(share.account) ?? 0n) + share.amount);
  return totals;
}

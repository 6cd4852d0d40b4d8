/**
 * Attributing one inference: price it with its adapter's terms, then split the fee under the
 * epoch's policy among the operator, the creator, the treasury and the adapter's snapshot pools.
 * Pure: the result depends only on the inference, the immutable facts and the open epoch.
 */
import type { AdapterTerms, Facts, MissingFactRef } from '../facts/facts.js';
import type { OpenEpoch } from '../epochs/epoch.js';
import { price } from '../pricing/price.js';
import type { TrainingSource } from '../split/provenance.js';
import type { SplitPolicy } from '../split/split-policy.js';
import { planFeeSplit, splitFeeWith, type FeeSplit, type FeeSplitPlan } from '../split/split.js';

/** The parts of `inference.completed` / `inference.failed` that attribution reads. */
export interface InferenceOutcome {
  readonly requestId: string;
  readonly tenantId: string;
  readonly adapterId: string | null;
  readonly outcome: 'completed' | 'failed';
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Worker-measured duration of the request, ms. */
  readonly totalMs: number;
  /** Operator that served it; null when it failed before reaching a worker. */
  readonly operator: string | null;
  /** When it ended (ISO-8601 UTC): places it in an hour for usage dashboards. */
  readonly endedAt: string;
}

export { describeMissing, type MissingFactRef } from '../facts/facts.js';

export type InferenceAttribution =
  | {
      readonly kind: 'attributed';
      readonly fee: bigint;
      /** null when the fee is 0 (failed, base model) */
      readonly split: FeeSplit | null;
      readonly creator: string | null;
    }
  | { readonly kind: 'wait'; readonly missing: MissingFactRef };

export function attributeInference(
  facts: Facts,
  open: OpenEpoch,
  inference: InferenceOutcome,
): InferenceAttribution {
  if (inference.adapterId === null || inference.outcome === 'failed') {
    return { kind: 'attributed', fee: 0n, split: null, creator: null };
  }
  const adapter = facts.adapter(inference.adapterId);
  if (adapter === undefined)
    return { kind: 'wait', missing: { kind: 'adapter', adapterId: inference.adapterId } };
  const fee = price(inference, adapter);
  if (fee === 0n) return { kind: 'attributed', fee, split: null, creator: adapter.creator };
  const policy = facts.policy(open.policyVersion);
  if (policy === undefined) return { kind: 'wait', missing: { kind: 'policy', version: open.policyVersion } };
  const plan = splitPlan(facts, adapter, policy);
  if (!('weights' in plan)) return { kind: 'wait', missing: plan };
  // operator is non-null for a completed inference (the contract requires operatorAddress).
  const split = splitFeeWith(plan, fee, inference.operator!);
  return { kind: 'attributed', fee, split, creator: adapter.creator };
}

/**
 * Split plans per facts, adapter and policy. Sound to keep because every input of a plan is an
 * immutable fact (a registration, a snapshot, a policy): a plan built once is the plan every later
 * inference on that adapter under that policy would build. Bounded by adapters × policies.
 */
const plans = new WeakMap<Facts, WeakMap<AdapterTerms, Map<SplitPolicy, FeeSplitPlan>>>();

function splitPlan(facts: Facts, adapter: AdapterTerms, policy: SplitPolicy): FeeSplitPlan | MissingFactRef {
  let byAdapter = plans.get(facts);
  if (byAdapter === undefined) plans.set(facts, (byAdapter = new WeakMap()));
  let byPolicy = byAdapter.get(adapter);
  if (byPolicy === undefined) byAdapter.set(adapter, (byPolicy = new Map()));
  const known = byPolicy.get(policy);
  if (known !== undefined) return known;
  const trainedOn: TrainingSource[] = [];
  for (const ref of adapter.trainedOn) {
    const snapshot = facts.snapshot(ref.datanetId, ref.snapshotId);
    if (snapshot === undefined)
      return { kind: 'snapshot', datanetId: ref.datanetId, snapshotId: ref.snapshotId };
    trainedOn.push({ snapshot, mixWeightBps: ref.mixWeightBps });
  }
  const plan = planFeeSplit(policy, adapter.creator, trainedOn);
  byPolicy.set(policy, plan);
  return plan;
}

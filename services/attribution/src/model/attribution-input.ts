/**
 * What attribution reads from the streams, as plain domain values: the contract events mapped once, here, so that the pure model and the projections see the same input.
 */
import type {
  AdapterRegisteredV1,
  AdapterRetiredV1,
  AttributionPolicySetV1,
  DatanetSnapshotPublishedV1,
  InferenceCompletedV1,
  InferenceEpochClosingV1,
  InferenceFailedV1,
  KnownEvent,
} from '@longtail/contracts';

import type { CloseMarker } from '../epochs/epoch.js';
import type { AdapterTerms } from '../facts/facts.js';
import type { InferenceOutcome } from '../inference/attribute.js';
import type { SplitPolicy } from '../split/split-policy.js';

export type AttributionInput =
  | { readonly kind: 'adapter-registered'; readonly terms: AdapterTerms }
  | { readonly kind: 'adapter-retired'; readonly adapterId: string }
  | {
      readonly kind: 'snapshot-published';
      readonly datanetId: string;
      readonly snapshotId: string;
      readonly contributors: readonly { readonly account: string; readonly weight: bigint }[];
    }
  | { readonly kind: 'policy-set'; readonly policy: SplitPolicy }
  | { readonly kind: 'inference'; readonly sequence: number; readonly inference: InferenceOutcome }
  | { readonly kind: 'epoch-closing'; readonly marker: CloseMarker }
  | { readonly kind: 'other' };

export function adapterTerms(event: AdapterRegisteredV1): AdapterTerms {
  const d = event.data;
  return {
    adapterId: d.adapterId,
    creator: d.creatorAddress,
    pricePer1kTokens: BigInt(d.pricePer1kTokens),
    trainedOn: d.trainedOn.map((t) => ({
      datanetId: t.datanetId,
      snapshotId: t.snapshotId,
      mixWeightBps: t.mixWeightBps,
    })),
  };
}

export function splitPolicy(event: AttributionPolicySetV1): SplitPolicy {
  const d = event.data;
  return {
    version: d.version,
    effectiveFromEpoch: d.effectiveFromEpoch,
    operatorBps: d.operatorBps,
    creatorBps: d.creatorBps,
    contributorsBps: d.contributorsBps,
    treasuryBps: d.treasuryBps,
    treasuryAddress: d.treasuryAddress,
  };
}

export function inferenceOutcome(event: InferenceCompletedV1 | InferenceFailedV1): InferenceOutcome {
  const d = event.data;
  return {
    requestId: d.requestId,
    tenantId: d.tenantId,
    adapterId: d.adapterId,
    outcome: event.type === 'inference.completed' ? 'completed' : 'failed',
    promptTokens: d.promptTokens,
    completionTokens: d.completionTokens,
    totalMs: d.timings.totalMs,
    operator: d.operatorAddress,
    endedAt: d.endedAt,
  };
}

/** Maps a decoded event (with its stream sequence) to attribution input; unrelated events are `other`. */
export function toAttributionInput(event: KnownEvent, sequence: number): AttributionInput {
  switch (event.type) {
    case 'adapters.registered':
      return { kind: 'adapter-registered', terms: adapterTerms(event as AdapterRegisteredV1) };
    case 'adapters.retired':
      return { kind: 'adapter-retired', adapterId: (event as AdapterRetiredV1).data.adapterId };
    case 'datanets.snapshot.published': {
      const d = (event as DatanetSnapshotPublishedV1).data;
      return {
        kind: 'snapshot-published',
        datanetId: d.datanetId,
        snapshotId: d.snapshotId,
        contributors: d.contributors.map((c) => ({ account: c.account, weight: BigInt(c.weight) })),
      };
    }
    case 'attribution.policy.set':
      return { kind: 'policy-set', policy: splitPolicy(event as AttributionPolicySetV1) };
    case 'inference.completed':
    case 'inference.failed':
      return {
        kind: 'inference',
        sequence,
        inference: inferenceOutcome(event as InferenceCompletedV1 | InferenceFailedV1),
      };
    case 'inference.epoch_closing': {
      const marker = event as InferenceEpochClosingV1;
      return {
        kind: 'epoch-closing',
        marker: {
          epoch: marker.data.epoch,
          nextPolicyVersion: marker.data.nextPolicyVersion,
          occurredAt: marker.occurredAt,
          sequence,
        },
      };
    }
    default:
      return { kind: 'other' };
  }
}

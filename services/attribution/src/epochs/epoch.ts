/**
 * Epoch rules. Epochs are numbered 0, 1, 2, ...; epoch 0 opens at the start of the INFERENCE stream
 * under policy version 1. An epoch ends only where a close marker (`inference.epoch_closing`)
 * for it stands in the INFERENCE stream: every inference before the marker (in stream order) belongs
 * to the epoch, every one after it to the next. The consumer never looks at a clock, so a replay
 * cuts at exactly the same place.
 *
 * The marker also names the policy version in force for the next epoch, chosen by the EpochCloser
 * from the policies it knows (the highest version whose effectiveFromEpoch has come). A policy
 * published late simply takes effect at the following marker; it never changes an open epoch.
 *
 * Markers are idempotent: the closer publishes with message id `epoch-close-<n>`, and a marker for
 * any epoch other than the open one (a duplicate, a racing second closer) is ignored. Several
 * closers may therefore run; no lease is needed for correctness.
 */
import type { MissingFactRef } from '../facts/facts.js';
import type { SplitPolicy } from '../split/split-policy.js';

export interface OpenEpoch {
  readonly epoch: number;
  readonly policyVersion: number;
  /** occurredAt of the marker that opened it; null for epoch 0. */
  readonly openedAt: string | null;
  /** First INFERENCE stream sequence of the epoch (the one after the previous marker). */
  readonly firstSequence: number;
}

export const GENESIS_EPOCH: OpenEpoch = Object.freeze({
  epoch: 0,
  policyVersion: 1,
  openedAt: null,
  firstSequence: 1,
});

export interface CloseMarker {
  readonly epoch: number;
  readonly nextPolicyVersion: number;
  readonly occurredAt: string;
  /** INFERENCE stream sequence of the marker: the last sequence of the closing epoch. */
  readonly sequence: number;
}

export type MarkerOutcome =
  | { readonly kind: 'close'; readonly closing: OpenEpoch; readonly next: OpenEpoch }
  | { readonly kind: 'ignore'; readonly reason: string }
  | { readonly kind: 'reject'; readonly reason: string }
  | { readonly kind: 'wait'; readonly missing: MissingFactRef };

/** What a close marker does to the open epoch; `policy` looks up known policies. */
export function decideClose(
  open: OpenEpoch,
  marker: CloseMarker,
  policy: (version: number) => SplitPolicy | undefined,
): MarkerOutcome {
  if (marker.epoch !== open.epoch) {
    return { kind: 'ignore', reason: `marker for epoch ${marker.epoch} while epoch ${open.epoch} is open` };
  }
  const next = policy(marker.nextPolicyVersion);
  if (next === undefined)
    return { kind: 'wait', missing: { kind: 'policy', version: marker.nextPolicyVersion } };
  if (marker.nextPolicyVersion < open.policyVersion) {
    return {
      kind: 'reject',
      reason: `policy v${marker.nextPolicyVersion} is older than the policy in force (v${open.policyVersion})`,
    };
  }
  if (next.effectiveFromEpoch > open.epoch + 1) {
    return {
      kind: 'reject',
      reason: `policy v${next.version} takes effect from epoch ${next.effectiveFromEpoch}, not ${open.epoch + 1}`,
    };
  }
  return {
    kind: 'close',
    closing: open,
    next: {
      epoch: open.epoch + 1,
      policyVersion: next.version,
      openedAt: marker.occurredAt,
      firstSequence: marker.sequence + 1,
    },
  };
}

/** The policy a closer should name for epoch `nextEpoch`: highest version effective by then, never older than `current`. */
export function policyForEpoch(
  policies: readonly Pick<SplitPolicy, 'version' | 'effectiveFromEpoch'>[],
  nextEpoch: number,
  current: number,
): number {
  let chosen = current;
  for (const p of policies) if (p.effectiveFromEpoch <= nextEpoch && p.version > chosen) chosen = p.version;
  return chosen;
}

/**
 * The rules for taking in a closed attribution epoch, without I/O. Epochs are applied strictly in
 * order 0, 1, 2, …: one that arrives early is parked until the gap closes; one that arrives again
 * with the same totals is a duplicate (a redelivery, or a re-publish under a new event id); one
 * that arrives again with different totals is refused, loudly, because the money it describes was
 * already committed to.
 */
import type { AttributionEpochClosedV1Data } from '@longtail/contracts';

/** Largest cumulative total the distributor can record (its `totalFunded` is a uint192). */
export const MAX_CUMULATIVE_TOTAL = (1n << 192n) - 1n;

export interface KnownEpoch {
  readonly status: 'applied' | 'parked';
  readonly totalsHash: string;
}

export type EpochIntake =
  | { readonly kind: 'apply' }
  | { readonly kind: 'park'; readonly waitingFor: bigint }
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'reject'; readonly reason: string };

/**
 * @param nextEpoch the epoch the ledger applies next (last applied + 1, or 0)
 * @param known what the ledger already holds for this epoch number, if anything
 * @param cumulativeTotal the sum of all applied epochs' totals, base units
 */
export function classifyEpoch(
  data: Pick<AttributionEpochClosedV1Data, 'epoch' | 'totalsHash' | 'totalAmount'>,
  nextEpoch: bigint,
  known: KnownEpoch | undefined,
  cumulativeTotal: bigint,
): EpochIntake {
  const epoch = BigInt(data.epoch);
  if (known) {
    if (known.totalsHash === data.totalsHash) return { kind: 'duplicate' };
    return {
      kind: 'reject',
      reason: `epoch ${epoch} was already received (${known.status}) with totalsHash ${known.totalsHash}; this event has ${data.totalsHash}`,
    };
  }
  if (epoch < nextEpoch) return { kind: 'reject', reason: `epoch ${epoch} is below the next expected epoch ${nextEpoch} and unknown` };
  if (cumulativeTotal + BigInt(data.totalAmount) > MAX_CUMULATIVE_TOTAL) {
    return { kind: 'reject', reason: `applying epoch ${epoch} would take the cumulative total past 2^192-1, the distributor's limit` };
  }
  if (epoch > nextEpoch) return { kind: 'park', waitingFor: nextEpoch };
  return { kind: 'apply' };
}

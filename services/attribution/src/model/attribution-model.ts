/**
 * The whole of attribution as one pure fold: `evolve(state, input)` over the fact streams and the
 * INFERENCE stream gives every epoch's exact per-account totals. No clock, no I/O, no floats, no
 * iteration over unordered keys where order matters.
 *
 * The service does not run this fold directly (it keeps its state in PostgreSQL projections and
 * applies batches); it runs the same core functions (`attributeInference`, `decideClose`,
 * `closeEpochTotals`). This model is the reference the projections are tested against, and the
 * precise statement of what attribution computes.
 */
import { totalsHash } from '@longtail/contracts';

import { decideClose, GENESIS_EPOCH, type OpenEpoch } from '../epochs/epoch.js';
import { closeEpochTotals, type AccountAmount, type PoolAmount } from '../epochs/epoch-totals.js';
import { FactBook } from '../facts/facts.js';
import { attributeInference, describeMissing } from '../inference/attribute.js';
import { snapshotKey } from '../split/provenance.js';
import type { AttributionInput } from './attribution-input.js';

export interface ClosedEpoch {
  readonly epoch: number;
  readonly policyVersion: number;
  /** Sorted by account, amounts > 0. */
  readonly totals: readonly AccountAmount[];
  readonly totalAmount: bigint;
  readonly totalsHash: string;
  /** Σ fees of the inferences priced into the epoch (= totalAmount). */
  readonly feeTotal: bigint;
  readonly eventCount: number;
  readonly firstSequence: number;
  readonly lastSequence: number;
}

export interface EpochAccumulation {
  readonly direct: Map<string, bigint>;
  readonly pools: Map<string, PoolAmount>;
  feeTotal: bigint;
  eventCount: number;
}

export interface AttributionState {
  readonly facts: FactBook;
  open: OpenEpoch;
  current: EpochAccumulation;
  /** Request ids already priced: a request is paid once, whatever its copies. */
  readonly priced: Set<string>;
  readonly closed: ClosedEpoch[];
  /** Inputs that could not be applied (a marker naming a bad policy), with the reason. */
  readonly rejected: { readonly sequence: number; readonly reason: string }[];
}

export function initialState(): AttributionState {
  return {
    facts: new FactBook(),
    open: GENESIS_EPOCH,
    current: emptyAccumulation(),
    priced: new Set(),
    closed: [],
    rejected: [],
  };
}

export function emptyAccumulation(): EpochAccumulation {
  return { direct: new Map(), pools: new Map(), feeTotal: 0n, eventCount: 0 };
}

/**
 * Applies one input. The state is owned by the caller and updated in place (a fold over millions
 * of events cannot copy maps per event); it is returned for chaining. Facts (adapters, snapshots,
 * policies) must be folded before the inferences that use them: an inference or marker naming a
 * fact the state has not seen is refused (listed in `rejected`), as the projection does once its
 * fact streams are caught up.
 */
export function evolve(state: AttributionState, input: AttributionInput): AttributionState {
  switch (input.kind) {
    case 'adapter-registered':
      state.facts.addAdapter(input.terms);
      break;
    case 'adapter-retired':
      state.facts.retireAdapter(input.adapterId);
      break;
    case 'snapshot-published':
      state.facts.addSnapshot(input.datanetId, input.snapshotId, input.contributors);
      break;
    case 'policy-set':
      state.facts.addPolicy(input.policy);
      break;
    case 'inference': {
      const { inference } = input;
      if (state.priced.has(inference.requestId)) break;
      const result = attributeInference(state.facts, state.open, inference);
      if (result.kind === 'wait') {
        // Facts are folded first: one missing now does not exist (the projection refuses it too).
        state.rejected.push({
          sequence: input.sequence,
          reason: `${describeMissing(result.missing)} does not exist`,
        });
        break;
      }
      state.priced.add(inference.requestId);
      const acc = state.current;
      acc.eventCount += 1;
      acc.feeTotal += result.fee;
      if (result.split === null) break;
      addTo(acc.direct, inference.operator!, result.split.operator);
      addTo(acc.direct, result.creator!, result.split.creator);
      addTo(acc.direct, state.facts.policy(state.open.policyVersion)!.treasuryAddress, result.split.treasury);
      for (const pool of result.split.pools) {
        const key = snapshotKey(pool.datanetId, pool.snapshotId);
        const previous = acc.pools.get(key);
        acc.pools.set(key, {
          datanetId: pool.datanetId,
          snapshotId: pool.snapshotId,
          amount: (previous?.amount ?? 0n) + pool.amount,
        });
      }
      break;
    }
    case 'epoch-closing': {
      const outcome = decideClose(state.open, input.marker, (v) => state.facts.policy(v));
      if (outcome.kind === 'wait') {
        state.rejected.push({
          sequence: input.marker.sequence,
          reason: `${describeMissing(outcome.missing)} does not exist`,
        });
        break;
      }
      if (outcome.kind === 'reject')
        state.rejected.push({ sequence: input.marker.sequence, reason: outcome.reason });
      if (outcome.kind !== 'close') break;
      const acc = state.current;
      const result = closeEpochTotals(
        [...acc.direct].map(([account, amount]) => ({ account, amount })),
        acc.pools.values(),
        (d, s) => state.facts.snapshot(d, s),
      );
      state.closed.push({
        epoch: outcome.closing.epoch,
        policyVersion: outcome.closing.policyVersion,
        totals: result.totals,
        totalAmount: result.sum,
        totalsHash: totalsHash(
          result.totals.map((t) => ({ account: t.account, amount: t.amount.toString() })),
        ),
        feeTotal: acc.feeTotal,
        eventCount: acc.eventCount,
        firstSequence: outcome.closing.firstSequence,
        lastSequence: input.marker.sequence,
      });
      state.open = outcome.next;
      state.current = emptyAccumulation();
      break;
    }
    case 'other':
      break;
  }
  return state;
}

function addTo(map: Map<string, bigint>, account: string, amount: bigint): void {
  if (amount !== 0n) map.set(account, (map.get(account) ?? 0n) + amount);
}

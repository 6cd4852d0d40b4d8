/**
 * @longtail/attribution: prices inferences, splits fees among operator, creator, Datanet
 * contributors and treasury, and closes epochs with exact totals. The service runs from main.ts;
 * this index exports the pure core (for other tools and tests) and the replay.
 */
export { apportion, ApportionError, type Claim } from './money/apportion.js';
export { price, type AdapterPrice, type BillableInference } from './pricing/price.js';
export {
  split,
  splitFee,
  splitPool,
  totalsByAccount,
  type FeeSplit,
  type Share,
  type ShareRole,
  type SnapshotPool,
} from './split/split.js';
export { assertSplitPolicy, InvalidSplitPolicy, BPS_WHOLE, type SplitPolicy } from './split/split-policy.js';
export {
  snapshotWeights,
  type Provenance,
  type SnapshotWeights,
  type TrainingSource,
} from './split/provenance.js';
export {
  decideClose,
  policyForEpoch,
  GENESIS_EPOCH,
  type CloseMarker,
  type MarkerOutcome,
  type OpenEpoch,
} from './epochs/epoch.js';
export { closeEpochTotals, type EpochTotals } from './epochs/epoch-totals.js';
export { evolve, initialState, type AttributionState, type ClosedEpoch } from './model/attribution-model.js';
export { toAttributionInput, type AttributionInput } from './model/attribution-input.js';
export {
  replayAttribution,
  attributionStateHash,
  type ReplayOptions,
  type ReplayResult,
} from './replay/replay.js';

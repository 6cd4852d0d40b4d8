/** Adapter placement core: the engine, its ring, and the simulation that measures it. */
export { HashRing } from './hash-ring.js';
export {
  Placement,
  PlacementError,
  type AdapterSpec,
  type Decision,
  type DecisionKind,
  type DecisionReason,
  type PlacementErrorCode,
  type PlacementOptions,
  type WorkerSpec,
} from './placement.js';
export { hash32, xoshiro128, type Random } from './random.js';
export {
  compare,
  POLICIES,
  simulate,
  type PolicyName,
  type PolicyReport,
  type Scenario,
} from './simulate.js';
export { zipf, type ZipfSampler } from './zipf.js';

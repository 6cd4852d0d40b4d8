/**
 * The current version of each event, by its plain name. When a version 2 is added, the alias moves
 * to it and the compiler points at every consumer that must handle the new shape; a consumer that
 * must keep reading old events names the versions (`InferenceCompletedV1 | InferenceCompletedV2`).
 */
import type { AdapterRegisteredV1, AdapterRetiredV1 } from './events/adapters.js';
import type { AttributionEpochClosedV1, AttributionPolicySetV1 } from './events/attribution.js';
import type {
  DatanetContributionAddedV1,
  DatanetCreatedV1,
  DatanetSnapshotPublishedV1,
} from './events/datanets.js';
import type { InferenceCompletedV1, InferenceEpochClosingV1, InferenceFailedV1 } from './events/inference.js';
import type { LedgerPayoutPostedV1 } from './events/ledger.js';

export type AdapterRegistered = AdapterRegisteredV1;
export type AdapterRetired = AdapterRetiredV1;
export type DatanetCreated = DatanetCreatedV1;
export type DatanetContributionAdded = DatanetContributionAddedV1;
export type DatanetSnapshotPublished = DatanetSnapshotPublishedV1;
export type InferenceCompleted = InferenceCompletedV1;
export type InferenceFailed = InferenceFailedV1;
export type InferenceEpochClosing = InferenceEpochClosingV1;
export type AttributionEpochClosed = AttributionEpochClosedV1;
export type AttributionPolicySet = AttributionPolicySetV1;
export type LedgerPayoutPosted = LedgerPayoutPostedV1;

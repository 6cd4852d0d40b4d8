/**
 * @longtail/contracts: the event contracts every service and every other language shares. The
 * envelope, the schema of each event at each version, where events are published, and the few
 * functions that make, check and encode them. Everything exported is listed here.
 */

// The envelope.
export type { EventEnvelope } from './envelope.js';
export { EventEnvelopeSchema } from './envelope.js';

// Making, reading and writing events.
export { createEvent, parseEvent, decodeEvent, encodeEvent, isEvent } from './codec.js';
export type { EventMetadata, ParseEventResult } from './codec.js';
export type { EventDefinition, AnyEventDefinition, EventOf, EventDataInput } from './define.js';

// Errors.
export { ContractViolation, CONTRACT_VIOLATION_CODES, isContractViolation } from './errors.js';
export type { ContractViolationCode, ContractIssue } from './errors.js';

// The registry and the events.
export { EVENTS, eventDefinitions, findDefinition } from './registry.js';
export type { EventRegistry, EventType, KnownEvent, KnownEventDefinition } from './registry.js';
export { AdapterRegisteredV1, AdapterRetiredV1, LORA_TARGET_MODULES } from './events/adapters.js';
export type { AdapterRegisteredV1Data, AdapterRetiredV1Data } from './events/adapters.js';
export {
  DatanetContributionAddedV1,
  DatanetCreatedV1,
  DatanetSnapshotPublishedV1,
} from './events/datanets.js';
export type {
  DatanetContributionAddedV1Data,
  DatanetCreatedV1Data,
  DatanetSnapshotPublishedV1Data,
} from './events/datanets.js';
export { InferenceCompletedV1, InferenceEpochClosingV1, InferenceFailedV1 } from './events/inference.js';
export type {
  InferenceCompletedV1Data,
  InferenceEpochClosingV1Data,
  InferenceFailedV1Data,
} from './events/inference.js';
export { AttributionEpochClosedV1, AttributionPolicySetV1 } from './events/attribution.js';
export type { AttributionEpochClosedV1Data, AttributionPolicySetV1Data } from './events/attribution.js';
export { LedgerPayoutPostedV1 } from './events/ledger.js';
export type { LedgerPayoutPostedV1Data } from './events/ledger.js';
export type {
  AdapterRegistered,
  AdapterRetired,
  DatanetCreated,
  DatanetContributionAdded,
  DatanetSnapshotPublished,
  InferenceCompleted,
  InferenceFailed,
  InferenceEpochClosing,
  AttributionEpochClosed,
  AttributionPolicySet,
  LedgerPayoutPosted,
} from './latest.js';

// The gateway → gpu-worker inference command (core NATS, streamed replies; not an event).
export {
  ChatMessageSchema,
  SamplingSchema,
  InferenceRequestSchema,
  InferenceChunkSchema,
  TokenLogprobSchema,
  INFERENCE_ERROR_CODES,
  workerGenerateSubject,
} from './commands/inference.js';
export type { ChatMessage, Sampling, InferenceRequest, InferenceChunk } from './commands/inference.js';

// Placement: the placement table, the scheduler lease, and their commands (core NATS, not events).
export {
  PlacementEntrySchema,
  SchedulerLeaseSchema,
  PlaceRequestSchema,
  PlaceReplySchema,
  WorkerAdapterCommandSchema,
  WorkerAdapterReplySchema,
  TermSchema,
  SCHEDULER_LEASE_KEY,
  SCHEDULER_PLACE_SUBJECT,
  SCHEDULER_PLACEMENT_VIEW_SUBJECT,
  workerAdaptersSubject,
} from './commands/placement.js';
export type {
  PlacementEntry,
  SchedulerLease,
  PlaceRequest,
  PlaceReply,
  WorkerAdapterCommand,
  WorkerAdapterReply,
  PlacementView,
  PlacementViewWorker,
} from './commands/placement.js';

// Epoch totals: canonical encoding and hash.
export {
  canonicalTotalsEncoding,
  totalsHash,
  summariseTotals,
  TOTALS_ENCODING_HEADER,
} from './events/totals.js';
export type { AccountAmount, EpochTotals } from './events/totals.js';

// Streams, subjects and buckets.
export {
  STREAMS,
  KV_BUCKETS,
  OBJECT_BUCKETS,
  streamFor,
  subjectFor,
  aggregateSubjectFilter,
  deadLetterSubject,
  subjectToken,
  keyFromSubjectToken,
} from './streams.js';
export type { StreamHints, StreamName, KvBucketHints } from './streams.js';

// Field schemas, for validating the same values at other boundaries (HTTP input, config).
export {
  AdapterIdSchema,
  DatanetIdSchema,
  ModelIdSchema,
  EvmAddressSchema,
  BaseUnitsSchema,
  Sha256HexSchema,
  Bytes32HexSchema,
  ObjectKeySchema,
  OpaqueIdSchema,
} from './fields.js';

// JSON Schema, for consumers in other languages.
export { eventJsonSchema } from './json-schema.js';

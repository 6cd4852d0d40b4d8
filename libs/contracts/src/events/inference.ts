/**
 * Inference outcome events (stream `INFERENCE`, aggregate: the request id). Exactly one of
 * `inference.completed` / `inference.failed` is published per request: the worker publishes with
 * `Nats-Msg-Id` = event id and may guard with an expected last subject sequence of 0 on
 * `inference.*.<request token>` (see `aggregateSubjectFilter`), and attribution also de-duplicates
 * by `requestId`, so a retry can never be paid twice.
 *
 * These events are what people are paid from: they carry token counts and who served what, never
 * prompt or completion text.
 */
import { z } from 'zod';

import { defineEvent, withRules, type EventOf, type FailRule } from '../define.js';
import {
  AdapterIdSchema,
  DurationMsSchema,
  ErrorCodeSchema,
  EvmAddressSchema,
  ModelIdSchema,
  OpaqueIdSchema,
  TokenCountSchema,
  UtcTimestampSchema,
  boundedText,
} from '../fields.js';

const TimingsSchema = z
  .strictObject({
    queuedMs: DurationMsSchema.describe('From acceptance by the worker to the start of prefill, ms.'),
    firstTokenMs: DurationMsSchema.nullable().describe(
      'From acceptance by the worker to the first completion token, ms; null when no token was produced.',
    ),
    totalMs: DurationMsSchema.describe('From acceptance by the worker to the end of the request, ms.'),
  })
  .describe(
    'Durations measured by the worker on one monotonic clock, all from the moment it accepted the request.',
  );

/** Who asked and for what: the leading fields of both outcome events. */
const requestFields = {
  requestId: OpaqueIdSchema.describe(
    'Request id given by the gateway; unique per request, the idempotency key of attribution.',
  ),
  tenantId: OpaqueIdSchema.describe('Tenant that made the request (and pays for it).'),
  apiKeyId: OpaqueIdSchema.optional().describe(
    'Id (never the secret) of the API key used, when the request came with one.',
  ),
  model: ModelIdSchema.describe('Base model that served the request.'),
  adapterId: AdapterIdSchema.nullable().describe(
    'Adapter applied to the base model; null for the bare base model.',
  ),
};

/** How much was done and when: the trailing fields of both outcome events. */
const usageFields = {
  promptTokens: TokenCountSchema.describe('Prompt tokens processed.'),
  completionTokens: TokenCountSchema.describe('Completion tokens generated and sent to the client.'),
};

const timeFields = {
  timings: TimingsSchema,
  startedAt: UtcTimestampSchema.describe('When the worker accepted the request.'),
  endedAt: UtcTimestampSchema.describe('When the request ended; not before startedAt.'),
};

type IdentityFields = {
  model: string;
  adapterId: string | null;
  completionTokens: number;
  timings: { queuedMs: number; firstTokenMs: number | null; totalMs: number };
  startedAt: string;
  endedAt: string;
};

function checkIdentity(data: IdentityFields, fail: FailRule): void {
  if (data.adapterId !== null && !data.adapterId.startsWith(`${data.model}:`)) {
    fail(['adapterId'], 'must be an adapter of the base model named by model');
  }
  if (Date.parse(data.endedAt) < Date.parse(data.startedAt))
    fail(['endedAt'], 'must not be before startedAt');
  const { queuedMs, firstTokenMs, totalMs } = data.timings;
  if (queuedMs > totalMs) fail(['timings', 'queuedMs'], 'must not exceed totalMs');
  if (firstTokenMs !== null && firstTokenMs > totalMs)
    fail(['timings', 'firstTokenMs'], 'must not exceed totalMs');
  if ((firstTokenMs === null) !== (data.completionTokens === 0)) {
    fail(['timings', 'firstTokenMs'], 'must be null exactly when completionTokens is 0');
  }
}

const IDENTITY_INVARIANTS = [
  'When adapterId is not null, its `<base>` part equals model.',
  'endedAt is not before startedAt.',
  'timings.queuedMs and timings.firstTokenMs do not exceed timings.totalMs.',
  'timings.firstTokenMs is null exactly when completionTokens is 0.',
] as const;

const InferenceCompletedDataSchema = withRules(
  z.strictObject({
    ...requestFields,
    workerId: OpaqueIdSchema.describe('Worker (one per GPU) that served the request.'),
    operatorAddress: EvmAddressSchema.describe(
      "EVM address of the worker's operator, who receives the operator share.",
    ),
    ...usageFields,
    finishReason: z
      .enum(['stop', 'length', 'cancelled'])
      .describe(
        'stop: end of sequence or a stop sequence; length: max tokens reached; cancelled: the client went away.',
      ),
    ...timeFields,
  }),
  checkIdentity,
).describe('A request ended normally or was cancelled; tokens processed are billable.');

export const InferenceCompletedV1 = defineEvent({
  type: 'inference.completed',
  version: 1,
  description:
    'A request ended (stop, length, or cancelled by the client) and its tokens are billable. ' +
    'Proof of Attribution will add a version 2 that also carries, per Datanet contributor, the number of completion tokens ' +
    "found in the adapter's training snapshots (a field like `matches: [{ datanetId, snapshotId, account, matchedTokens }]`, " +
    'counts only, never text). Version 1 stays valid: attribution splits by static snapshot weights for v1 events and ' +
    'by matched tokens for v2 events that have matches.',
  invariants: IDENTITY_INVARIANTS,
  aggregate: 'requestId',
  data: InferenceCompletedDataSchema,
  aggregateKey: (data) => data.requestId,
});
export type InferenceCompletedV1 = EventOf<typeof InferenceCompletedV1>;
export type InferenceCompletedV1Data = InferenceCompletedV1['data'];

const InferenceFailedDataSchema = withRules(
  z.strictObject({
    ...requestFields,
    workerId: OpaqueIdSchema.nullable().describe(
      'Worker that had the request; null when it failed before reaching one.',
    ),
    operatorAddress: EvmAddressSchema.nullable().describe(
      'Operator of that worker; null exactly when workerId is null.',
    ),
    ...usageFields,
    error: z
      .strictObject({
        code: ErrorCodeSchema.describe(
          'Machine-readable error code, e.g. engine_out_of_memory, adapter_invalid.',
        ),
        message: boundedText(
          1000,
          'What went wrong, for an operator (1..1000 characters); never secrets or user content.',
        ),
      })
      .describe('Why the request failed.'),
    ...timeFields,
  }),
  (data, fail) => {
    checkIdentity(data, fail);
    if ((data.workerId === null) !== (data.operatorAddress === null))
      fail(['operatorAddress'], 'must be null exactly when workerId is null');
  },
).describe(
  'A request failed; promptTokens and completionTokens count what was processed and sent before the failure.',
);

export const InferenceFailedV1 = defineEvent({
  type: 'inference.failed',
  version: 1,
  description:
    'A request failed. promptTokens and completionTokens count what had been processed and sent before the failure; ' +
    'the pricing policy decides whether any of it is billed.',
  invariants: [...IDENTITY_INVARIANTS, 'operatorAddress is null exactly when workerId is null.'],
  aggregate: 'requestId',
  data: InferenceFailedDataSchema,
  aggregateKey: (data) => data.requestId,
});
export type InferenceFailedV1 = EventOf<typeof InferenceFailedV1>;
export type InferenceFailedV1Data = InferenceFailedV1['data'];

const EpochClosingDataSchema = z
  .strictObject({
    epoch: z.int().nonnegative().describe('The attribution epoch that ends at this marker.'),
    nextPolicyVersion: z.int().min(1).describe('Version of attribution.policy.set that governs epoch + 1.'),
  })
  .describe('An attribution epoch ends here.');

export const InferenceEpochClosingV1 = defineEvent({
  type: 'inference.epoch_closing',
  version: 1,
  description:
    "Attribution's epoch close marker, published by its EpochCloser on the INFERENCE stream so that its position is the cut: " +
    'every inference event before it (in stream order) belongs to `epoch`, every one after it to the next epoch, which uses ' +
    'policy `nextPolicyVersion`. A marker for an epoch that is not the open one is ignored, so duplicates are harmless.',
  invariants: ['Published once per epoch (the subject must not exist yet).'],
  aggregate: 'epoch (decimal)',
  data: EpochClosingDataSchema,
  aggregateKey: (data) => String(data.epoch),
});
export type InferenceEpochClosingV1 = EventOf<typeof InferenceEpochClosingV1>;
export type InferenceEpochClosingV1Data = InferenceEpochClosingV1['data'];

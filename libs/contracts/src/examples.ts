/**
 * One valid example of every event, with fixed ids and times: shown in docs/events.md and used by
 * the tests as the known-good starting point that each violation test breaks in one place.
 */
import { createEvent } from './codec.js';
import type { AnyEventDefinition, EventDataInput } from './define.js';
import { AdapterRegisteredV1, AdapterRetiredV1 } from './events/adapters.js';
import { AttributionEpochClosedV1, AttributionPolicySetV1 } from './events/attribution.js';
import {
  DatanetContributionAddedV1,
  DatanetCreatedV1,
  DatanetSnapshotPublishedV1,
} from './events/datanets.js';
import { InferenceCompletedV1, InferenceEpochClosingV1, InferenceFailedV1 } from './events/inference.js';
import { LedgerPayoutPostedV1 } from './events/ledger.js';
import { summariseTotals } from './events/totals.js';
import type { KnownEvent } from './registry.js';

const CREATOR = '0x1111111111111111111111111111111111111111';
const CONTRIBUTOR_A = '0x2222222222222222222222222222222222222222';
const CONTRIBUTOR_B = '0x3333333333333333333333333333333333333333';
const OPERATOR = '0x4444444444444444444444444444444444444444';
const TREASURY = '0x5555555555555555555555555555555555555555';

const epochTotals = summariseTotals([
  { account: OPERATOR, amount: 300_000_000_000_000n },
  { account: CREATOR, amount: 400_000_000_000_000n },
  { account: CONTRIBUTOR_A, amount: 150_000_000_000_000n },
  { account: CONTRIBUTOR_B, amount: 100_000_000_000_000n },
  { account: TREASURY, amount: 50_000_000_000_000n },
]);

/** Valid data per event type and version (`<type>@v<version>`). */
export const EXAMPLE_DATA: Readonly<Record<string, unknown>> = Object.freeze({
  'adapters.registered@v1': {
    adapterId: 'llama-3-8b:acme/legal-ur',
    baseModel: 'llama-3-8b',
    ownerTenantId: 'tenant-acme',
    name: 'Legal Urdu',
    visibility: 'public',
    pricePer1kTokens: '2000000000000000',
    creatorAddress: CREATOR,
    rank: 16,
    targetModules: ['q_proj', 'v_proj'],
    weightsSha256: 'a'.repeat(64),
    sizeBytes: 13_631_488,
    weightsObjectKey: 'llama-3-8b/acme/legal-ur/0195f3c4',
    trainedOn: [
      { datanetId: 'acme/urdu-law', snapshotId: 'snap-2026-01', mixWeightBps: 7000 },
      { datanetId: 'open/urdu-web', snapshotId: 'snap-7', mixWeightBps: 3000 },
    ],
  } satisfies EventDataInput<typeof AdapterRegisteredV1>,
  'adapters.retired@v1': {
    adapterId: 'llama-3-8b:acme/legal-ur',
    reason: 'Superseded by acme/legal-ur-2.',
  } satisfies EventDataInput<typeof AdapterRetiredV1>,
  'datanets.datanet.created@v1': {
    datanetId: 'acme/urdu-law',
    name: 'Urdu case law',
    ownerTenantId: 'tenant-acme',
    description: 'Judgments of the Lahore High Court, 1990-2025, cleaned and deduplicated.',
  } satisfies EventDataInput<typeof DatanetCreatedV1>,
  'datanets.contribution.added@v1': {
    datanetId: 'acme/urdu-law',
    contributionId: 'contrib-000042',
    contributorAddress: CONTRIBUTOR_A,
    contentSha256: 'b'.repeat(64),
    sizeTokens: 52_000,
    objectKey: 'acme/urdu-law/contrib-000042.jsonl',
  } satisfies EventDataInput<typeof DatanetContributionAddedV1>,
  'datanets.snapshot.published@v1': {
    datanetId: 'acme/urdu-law',
    snapshotId: 'snap-2026-01',
    throughSequence: 1_204,
    contributionCount: 3,
    contributors: [
      { account: CONTRIBUTOR_A, weight: 52_000 },
      { account: CONTRIBUTOR_B, weight: 18_500 },
    ],
  } satisfies EventDataInput<typeof DatanetSnapshotPublishedV1>,
  'inference.completed@v1': {
    requestId: 'req-0195f3c4-9a1b',
    tenantId: 'tenant-globex',
    apiKeyId: 'key-7',
    model: 'llama-3-8b',
    adapterId: 'llama-3-8b:acme/legal-ur',
    workerId: 'gpu-node-3-0',
    operatorAddress: OPERATOR,
    promptTokens: 412,
    completionTokens: 128,
    finishReason: 'stop',
    timings: { queuedMs: 4, firstTokenMs: 61, totalMs: 1_930 },
    startedAt: '2026-01-31T12:00:00.000Z',
    endedAt: '2026-01-31T12:00:01.930Z',
  } satisfies EventDataInput<typeof InferenceCompletedV1>,
  'inference.failed@v1': {
    requestId: 'req-0195f3c4-9a1c',
    tenantId: 'tenant-globex',
    model: 'llama-3-8b',
    adapterId: null,
    workerId: 'gpu-node-3-0',
    operatorAddress: OPERATOR,
    promptTokens: 412,
    completionTokens: 0,
    timings: { queuedMs: 4, firstTokenMs: null, totalMs: 15 },
    startedAt: '2026-01-31T12:00:00.000Z',
    endedAt: '2026-01-31T12:00:00.015Z',
    error: { code: 'engine_out_of_memory', message: 'KV cache exhausted while admitting the request.' },
  } satisfies EventDataInput<typeof InferenceFailedV1>,
  'inference.epoch_closing@v1': {
    epoch: 7,
    nextPolicyVersion: 1,
  } satisfies EventDataInput<typeof InferenceEpochClosingV1>,
  'attribution.policy.set@v1': {
    version: 1,
    effectiveFromEpoch: 0,
    operatorBps: 2000,
    creatorBps: 5000,
    contributorsBps: 2500,
    treasuryBps: 500,
    treasuryAddress: TREASURY,
    reason: 'Genesis policy.',
  } satisfies EventDataInput<typeof AttributionPolicySetV1>,
  'attribution.epoch.closed@v1': {
    epoch: 7,
    policyVersion: 1,
    totals: epochTotals.totals.map((entry) => ({ ...entry })),
    totalAmount: epochTotals.totalAmount,
    totalsHash: epochTotals.totalsHash,
    eventCount: 2,
    firstSequence: 101,
    lastSequence: 102,
  } satisfies EventDataInput<typeof AttributionEpochClosedV1>,
  'ledger.payout.posted@v1': {
    epoch: 7,
    epochTotalsHash: epochTotals.totalsHash,
    merkleRoot: `0x${'c'.repeat(64)}`,
    chainId: 31_337,
    distributorAddress: '0x6666666666666666666666666666666666666666',
    txHash: `0x${'d'.repeat(64)}`,
    blockNumber: 42,
    cumulativeTotal: '5000000000000000000',
  } satisfies EventDataInput<typeof LedgerPayoutPostedV1>,
});

/** A deep copy of the example data of a definition, free to be changed by a test. */
export function exampleData(
  definition: Pick<AnyEventDefinition, 'type' | 'version'>,
): Record<string, unknown> {
  const data = EXAMPLE_DATA[`${definition.type}@v${definition.version}`];
  if (data === undefined) throw new Error(`no example for ${definition.type} v${definition.version}`);
  return structuredClone(data) as Record<string, unknown>;
}

/** The example event of a definition, with a fixed id and time. */
export function exampleEvent(definition: AnyEventDefinition): KnownEvent {
  return createEvent(definition, exampleData(definition), {
    id: '0195f3c4-0000-7000-8000-000000000001',
    occurredAt: '2026-01-31T12:00:02.000Z',
    correlationId: 'req-0195f3c4-9a1b',
    causationId: null,
  }) as KnownEvent;
}

/**
 * DRAFT event contracts that attribution needs and @longtail/contracts does not define yet. They
 * follow the pattern of libs/contracts (`defineEvent`: type, version, description, invariants,
 * aggregate, data schema, aggregate key) so that the lead can move them into
 * libs/contracts/src/events/ and the registry unchanged. Until then attribution decodes them here
 * (`decodeDraftEvent`) before falling back to the contracts' `decodeEvent`.
 *
 * - `datanets.created` v1 (DATANETS): a Datanet exists.
 * - `attribution.policy.set` v1 (ATTRIBUTION): a versioned split policy (governance).
 * - `inference.epoch_closing` v1 (INFERENCE): the epoch close marker. It lives in the INFERENCE
 *   stream on purpose: its stream position is the cut between two epochs.
 */
import { z } from 'zod';

import { DatanetIdSchema, EvmAddressSchema, OpaqueIdSchema, subjectToken } from '@longtail/contracts';

const UuidV7 = z.uuid({ version: 'v7' });
const UtcTimestamp = z.iso.datetime({ offset: false });
const TraceId = z.string().min(1).max(256).regex(/^\S+$/);
const BasisPoints = z.int().min(0).max(10_000).describe('Basis points, 0..10000 (10000 = 100%).');

export interface DraftEventDefinition<TType extends string, TData extends z.ZodType> {
  readonly type: TType;
  readonly version: 1;
  readonly description: string;
  readonly invariants: readonly string[];
  readonly aggregate: string;
  readonly data: TData;
  readonly envelope: z.ZodType<DraftEnvelope<TType, z.output<TData>>>;
  aggregateKey(data: z.output<TData>): string;
}

export interface DraftEnvelope<TType extends string, TData> {
  readonly id: string;
  readonly type: TType;
  readonly version: 1;
  readonly occurredAt: string;
  readonly correlationId: string;
  readonly causationId: string | null;
  readonly data: TData;
}

function defineDraft<const TType extends string, TData extends z.ZodType>(
  spec: Omit<DraftEventDefinition<TType, TData>, 'envelope' | 'version'>,
): DraftEventDefinition<TType, TData> {
  const envelope = z.strictObject({
    id: UuidV7,
    type: z.literal(spec.type),
    version: z.literal(1),
    occurredAt: UtcTimestamp,
    correlationId: TraceId,
    causationId: TraceId.nullable(),
    data: spec.data,
  }) as unknown as z.ZodType<DraftEnvelope<TType, z.output<TData>>>;
  return Object.freeze({ ...spec, version: 1 as const, envelope });
}

export const DatanetCreatedV1 = defineDraft({
  type: 'datanets.created',
  description: 'A Datanet (a named dataset that contributors add to and snapshots freeze) was created.',
  invariants: [],
  aggregate: 'datanetId',
  data: z.strictObject({
    datanetId: DatanetIdSchema,
    name: z.string().min(1).max(200).describe('Display name, 1..200 characters.'),
    ownerTenantId: OpaqueIdSchema.describe('Tenant that curates the Datanet.'),
    description: z.string().max(2000).optional().describe('What the dataset is, for people.'),
  }),
  aggregateKey: (data) => data.datanetId,
});
export type DatanetCreatedV1 = z.output<typeof DatanetCreatedV1.envelope>;

export const AttributionPolicySetV1 = defineDraft({
  type: 'attribution.policy.set',
  description:
    'A split policy version was adopted (governance). It applies from effectiveFromEpoch on, from the first epoch whose ' +
    'opening marker (inference.epoch_closing of the previous epoch) names it; an open epoch never changes policy.',
  invariants: [
    'operatorBps + creatorBps + contributorsBps + treasuryBps = 10000.',
    'Version 1 has effectiveFromEpoch 0: it governs the first epoch.',
    'Versions are 1, 2, 3, ...; a version is published once (message id attribution-policy-<version>).',
  ],
  aggregate: 'version (decimal)',
  data: z
    .strictObject({
      version: z.int().positive().describe('Policy version, 1, 2, ...'),
      effectiveFromEpoch: z.int().nonnegative().describe('First epoch the policy may govern.'),
      operatorBps: BasisPoints.describe('Share of the GPU operator that served the inference.'),
      creatorBps: BasisPoints.describe('Share of the adapter creator.'),
      contributorsBps: BasisPoints.describe(
        "Share of the Datanet contributors of the adapter's training snapshots (by mix weight, then by contributor weight).",
      ),
      treasuryBps: BasisPoints.describe('Share of the protocol treasury.'),
      treasuryAddress: EvmAddressSchema.describe('Protocol treasury account.'),
      reason: z.string().min(1).max(500).optional().describe('Why (governance reference), for people.'),
    })
    .superRefine((data, ctx) => {
      const sum = data.operatorBps + data.creatorBps + data.contributorsBps + data.treasuryBps;
      if (sum !== 10_000) ctx.addIssue({ code: 'custom', path: ['treasuryBps'], message: `basis points must sum to 10000, got ${sum}` });
      if (data.version === 1 && data.effectiveFromEpoch !== 0) {
        ctx.addIssue({ code: 'custom', path: ['effectiveFromEpoch'], message: 'version 1 governs the first epoch (0)' });
      }
    }),
  aggregateKey: (data) => String(data.version),
});
export type AttributionPolicySetV1 = z.output<typeof AttributionPolicySetV1.envelope>;

export const InferenceEpochClosingV1 = defineDraft({
  type: 'inference.epoch_closing',
  description:
    'Epoch close marker, published by the EpochCloser on the INFERENCE stream: every inference event before it (in stream ' +
    'order) belongs to `epoch`, every one after it to the next epoch, which uses policy `nextPolicyVersion`. A marker for ' +
    'an epoch that is not the open one is ignored, so duplicates and racing closers are harmless.',
  invariants: ['Published with message id epoch-close-<epoch>.'],
  aggregate: 'epoch (decimal)',
  data: z.strictObject({
    epoch: z.int().nonnegative().describe('The epoch that ends at this marker.'),
    nextPolicyVersion: z.int().positive().describe('Policy version that governs epoch + 1.'),
  }),
  aggregateKey: (data) => String(data.epoch),
});
export type InferenceEpochClosingV1 = z.output<typeof InferenceEpochClosingV1.envelope>;

export const DRAFT_EVENTS = [DatanetCreatedV1, AttributionPolicySetV1, InferenceEpochClosingV1] as const;
export type DraftEvent = DatanetCreatedV1 | AttributionPolicySetV1 | InferenceEpochClosingV1;

/** The subject of a draft event, following `<type>.<subjectToken(aggregate key)>`. */
export function draftSubject(event: DraftEvent): string {
  switch (event.type) {
    case 'datanets.created':
      return `${event.type}.${subjectToken(event.data.datanetId)}`;
    case 'attribution.policy.set':
      return `${event.type}.${event.data.version}`;
    case 'inference.epoch_closing':
      return `${event.type}.${event.data.epoch}`;
  }
}

/** Parses a draft event; `undefined` when the value is not of a draft type; throws ZodError when it is but is invalid. */
export function decodeDraftEvent(value: unknown): DraftEvent | undefined {
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  const definition = DRAFT_EVENTS.find((d) => d.type === type);
  if (definition === undefined) return undefined;
  return definition.envelope.parse(value) as DraftEvent;
}

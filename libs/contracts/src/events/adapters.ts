/**
 * Adapter lifecycle events (stream `ADAPTERS`, aggregate: the adapter id). An adapter's terms
 * (price, creator, the Datanet snapshots it was trained on) are fixed by its registration: pricing
 * an inference is then a pure function of the events, whatever order the streams are replayed in.
 * A later change of terms must be a new event type that names the epoch from which it applies.
 */
import { z } from 'zod';

import { defineEvent, withRules, type EventOf } from '../define.js';
import {
  AdapterIdSchema,
  BaseUnitsSchema,
  DatanetIdSchema,
  EvmAddressSchema,
  ModelIdSchema,
  ObjectKeySchema,
  OpaqueIdSchema,
  Sha256HexSchema,
  boundedText,
} from '../fields.js';

/** The projections a LoRA adapter may target (Llama-family names, as in PEFT `target_modules`). */
export const LORA_TARGET_MODULES = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const;

const TrainedOnSchema = z
  .strictObject({
    datanetId: DatanetIdSchema,
    snapshotId: OpaqueIdSchema.describe(
      'Snapshot of the Datanet the adapter was trained on (see datanets.snapshot.published).',
    ),
    mixWeightBps: z
      .int()
      .min(1)
      .max(10_000)
      .describe(
        'Share of this snapshot in the training mix, basis points (1..10000); the contributors of the adapter split by it.',
      ),
  })
  .describe('One Datanet snapshot in the training mix.');

const AdapterRegisteredDataSchema = withRules(
  z.strictObject({
    adapterId: AdapterIdSchema,
    baseModel: ModelIdSchema.describe(
      'Base model the adapter applies to; equals the `<base>` part of adapterId.',
    ),
    ownerTenantId: OpaqueIdSchema.describe(
      'Tenant that owns the adapter (private adapters serve only this tenant).',
    ),
    name: boundedText(200, 'Display name of the adapter, 1..200 characters.'),
    visibility: z
      .enum(['public', 'private'])
      .describe('public: any tenant may call it; private: only the owner tenant.'),
    pricePer1kTokens: BaseUnitsSchema.describe(
      'Price per 1,000 tokens (prompt + completion), base units (18 decimals).',
    ),
    creatorAddress: EvmAddressSchema.describe("EVM address that receives the creator's share."),
    rank: z.int().min(1).max(4096).describe('LoRA rank r (1..4096).'),
    targetModules: z
      .array(z.enum(LORA_TARGET_MODULES))
      .min(1)
      .describe('Projections the adapter modifies, no duplicates.'),
    weightsSha256: Sha256HexSchema.describe('SHA-256 of adapter_model.safetensors.'),
    sizeBytes: z.int().min(1).describe('Size of the weights file in bytes (> 0).'),
    weightsObjectKey: ObjectKeySchema.describe('Key of the weights in the `adapters` object-store bucket.'),
    trainedOn: z
      .array(TrainedOnSchema)
      .max(256)
      .describe(
        'Datanet snapshots the adapter was trained on; empty when none. Decides which contributors share in its fees.',
      ),
  }),
  (data, fail) => {
    if (!data.adapterId.startsWith(`${data.baseModel}:`))
      fail(['baseModel'], 'must equal the <base> part of adapterId');
    if (new Set(data.targetModules).size !== data.targetModules.length)
      fail(['targetModules'], 'must not contain duplicates');
    if (data.trainedOn.length > 0) {
      const sum = data.trainedOn.reduce((total, entry) => total + entry.mixWeightBps, 0);
      if (sum !== 10_000) fail(['trainedOn'], `mixWeightBps must sum to 10000, got ${sum}`);
      const seen = new Set<string>();
      data.trainedOn.forEach((entry, index) => {
        const key = `${entry.datanetId}@${entry.snapshotId}`;
        if (seen.has(key)) fail(['trainedOn', index], 'duplicate Datanet snapshot');
        seen.add(key);
      });
    }
  },
).describe('A new adapter was stored and may be served.');

export const AdapterRegisteredV1 = defineEvent({
  type: 'adapters.registered',
  version: 1,
  description:
    'A new adapter was stored (weights in the object store, verified) and may be served. Its terms are fixed: ' +
    'price, creator address and training mix never change for this adapterId.',
  invariants: [
    'baseModel equals the `<base>` part of adapterId.',
    'targetModules has no duplicates.',
    'When trainedOn is non-empty, its mixWeightBps sum to exactly 10000 and no (datanetId, snapshotId) pair repeats.',
  ],
  aggregate: 'adapterId',
  data: AdapterRegisteredDataSchema,
  aggregateKey: (data) => data.adapterId,
});
export type AdapterRegisteredV1 = EventOf<typeof AdapterRegisteredV1>;
export type AdapterRegisteredV1Data = AdapterRegisteredV1['data'];

const AdapterRetiredDataSchema = z
  .strictObject({
    adapterId: AdapterIdSchema,
    reason: boundedText(500, 'Why the adapter was retired, for people (1..500 characters, no secrets).'),
  })
  .describe('An adapter may no longer be served.');

export const AdapterRetiredV1 = defineEvent({
  type: 'adapters.retired',
  version: 1,
  description:
    'An adapter may no longer be served; workers evict it. Fees already earned are unaffected. The id is never reused.',
  aggregate: 'adapterId',
  data: AdapterRetiredDataSchema,
  aggregateKey: (data) => data.adapterId,
});
export type AdapterRetiredV1 = EventOf<typeof AdapterRetiredV1>;
export type AdapterRetiredV1Data = AdapterRetiredV1['data'];

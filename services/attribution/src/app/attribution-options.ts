/**
 * The attribution service's settings (environment variables, checked at start-up).
 *
 * GENESIS_* describe split policy version 1, published once (subject `attribution.policy.set.1`,
 * "must not exist") if the ATTRIBUTION stream has none yet; later versions are governance events.
 */
import { z } from 'zod';

import { EvmAddressSchema } from '@longtail/contracts';
import { baseConfigSchema, databaseConfigSchema } from '@longtail/service';

const bps = z.coerce.number().int().min(0).max(10_000);

export const attributionConfigSchema = baseConfigSchema.extend({
  ...databaseConfigSchema.shape,
  /** PostgreSQL schema the service owns. */
  ATTRIBUTION_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/)
    .default('attribution'),
  /** Close an epoch after it has been open this long (seconds); 0 = only on command. */
  EPOCH_SECONDS: z.coerce.number().int().min(0).default(3600),
  /** INFERENCE events per transaction. */
  INFERENCE_BATCH: z.coerce.number().int().min(1).max(10_000).default(1000),
  GENESIS_OPERATOR_BPS: bps.default(2000),
  GENESIS_CREATOR_BPS: bps.default(5000),
  GENESIS_CONTRIBUTORS_BPS: bps.default(2500),
  GENESIS_TREASURY_BPS: bps.default(500),
  TREASURY_ADDRESS: EvmAddressSchema.default('0x000000000000000000000000000000000000dead'),
});

export type AttributionConfig = z.infer<typeof attributionConfigSchema>;

/** What the Nest module needs (tests build it by hand). */
export interface AttributionOptions {
  readonly natsServers: string | readonly string[];
  readonly databaseUrl: string;
  readonly schema: string;
  /** 0 = no scheduled closing. */
  readonly epochSeconds: number;
  readonly inferenceBatch: number;
  readonly genesisPolicy?: {
    readonly operatorBps: number;
    readonly creatorBps: number;
    readonly contributorsBps: number;
    readonly treasuryBps: number;
    readonly treasuryAddress: string;
  };
  /** Test hook: see ProjectorOptions.afterCommit. */
  readonly afterCommit?: (info: { readonly projection: string; readonly lastSeq: bigint }) => void;
  /** Test hook: see ProjectorOptions.beforeCommit. */
  readonly beforeCommit?: (info: { readonly projection: string; readonly lastSeq: bigint }) => void;
  /** How long inference batches wait for a missing fact (ms). */
  readonly factWaitMs?: number;
  /** Delays before redelivering a failed INFERENCE batch (ms). Default [500, 1000, 2000, 5000]. */
  readonly retryBackoffMs?: readonly number[];
  /** Durable names prefix (tests run several apps against one server). Default `attribution`. */
  readonly durablePrefix?: string;
}

export function optionsFromConfig(config: AttributionConfig): AttributionOptions {
  return {
    natsServers: config.NATS_URL.split(',').map((s) => s.trim()),
    databaseUrl: config.DATABASE_URL,
    schema: config.ATTRIBUTION_SCHEMA,
    epochSeconds: config.EPOCH_SECONDS,
    inferenceBatch: config.INFERENCE_BATCH,
    genesisPolicy: {
      operatorBps: config.GENESIS_OPERATOR_BPS,
      creatorBps: config.GENESIS_CREATOR_BPS,
      contributorsBps: config.GENESIS_CONTRIBUTORS_BPS,
      treasuryBps: config.GENESIS_TREASURY_BPS,
      treasuryAddress: config.TREASURY_ADDRESS,
    },
  };
}

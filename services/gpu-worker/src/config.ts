import { hostname } from 'node:os';
import { z } from 'zod';
import { baseConfigSchema } from '@longtail/service';
import { EvmAddressSchema, ModelIdSchema } from '@longtail/contracts';

/** gpu-worker settings. */
export const workerConfigSchema = baseConfigSchema.extend({
  PORT: baseConfigSchema.shape.PORT.default(8082),
  /** Unique per worker; defaults to the host name and port. */
  WORKER_ID: z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, { message: 'expected 1..128 of [A-Za-z0-9._-]' }).default(`${hostname()}`),
  /** The base model this worker serves. */
  BASE_MODEL: ModelIdSchema.default('tiny-llama'),
  /** The GPU operator's payout address (lower-case 0x + 40 hex). */
  OPERATOR_ADDRESS: EvmAddressSchema.default('0x0000000000000000000000000000000000000000'),
  /** Seconds between heartbeats; the `workers` bucket drops a worker after 15 s of silence. */
  HEARTBEAT_INTERVAL_S: z.coerce.number().positive().max(10).default(5),
});

export type WorkerConfig = z.infer<typeof workerConfigSchema>;

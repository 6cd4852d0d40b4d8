import { hostname } from 'node:os';
import { z } from 'zod';
import { baseConfigSchema } from '@longtail/service';
import { AdapterIdSchema, EvmAddressSchema, ModelIdSchema } from '@longtail/contracts';

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
  /** The model folder (config.json, safetensors, tokenizer files). Absent: the worker only heartbeats. */
  MODEL_DIR: z.string().min(1).optional(),
  /** Engine compute threads; 0: all cores. */
  ENGINE_THREADS: z.coerce.number().int().min(0).default(0),
  /** Requests accepted at once (running + waiting in the engine); more are refused as OVERLOADED. */
  MAX_QUEUE: z.coerce.number().int().positive().default(64),
  /** Adapters the scheduler may place on this worker (its slots in the placement table). */
  MAX_ADAPTERS: z.coerce.number().int().positive().default(256),
  /** Disk cache of adapters fetched from the object store. */
  ADAPTER_CACHE_DIR: z.string().min(1).optional(),
  /** Local adapter folders, JSON `{"<base>:<owner>/<name>": "/path/to/peft"}`. */
  ADAPTER_DIRS: z
    .string()
    .default('{}')
    .transform((text, ctx) => {
      try {
        return z.record(AdapterIdSchema, z.string().min(1)).parse(JSON.parse(text));
      } catch {
        ctx.addIssue({ code: 'custom', message: 'expected JSON {"<base>:<owner>/<name>": "/path"}' });
        return z.NEVER;
      }
    }),
});

export type WorkerConfig = z.infer<typeof workerConfigSchema>;

import { z } from 'zod';
import { baseConfigSchema, databaseConfigSchema } from '@longtail/service';

/** Gateway settings. */
export const gatewayConfigSchema = baseConfigSchema.extend({
  PORT: baseConfigSchema.shape.PORT.default(8080),
  /**
   * The operator's admin key (`lt_admin_...`): admin endpoints, and inference as the `operator`
   * tenant. Never logged.
   */
  LONGTAIL_ADMIN_KEY: z.string().min(24, { message: 'must be at least 24 characters' }),
  /** Largest accepted file in an adapter upload, bytes (413 above). */
  ADAPTER_UPLOAD_MAX_BYTES: z.coerce.number().int().min(1).default(32 * 1024 * 1024),
  /** Folder with `<base>/config.json` for each base model adapter uploads are checked against. */
  MODEL_CONFIG_DIR: z.string().min(1).optional(),
  /**
   * Tenants and API keys live here (schema `gateway`). Unset: keys are not checked and every
   * request is the `anonymous` tenant (development only; a warning is logged at start).
   */
  DATABASE_URL: databaseConfigSchema.shape.DATABASE_URL.optional(),
  /** How long a looked-up API key is trusted before it is read again (revocations elsewhere take this long). */
  API_KEY_CACHE_TTL_MS: z.coerce.number().int().min(0).max(600_000).default(30_000),
  /** Largest inference request body (413 above). */
  INFERENCE_BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(4 * 1024 * 1024),
  /** Longest prompt in characters, all messages together (400 above). */
  MAX_PROMPT_CHARS: z.coerce.number().int().min(1).default(200_000),
});

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

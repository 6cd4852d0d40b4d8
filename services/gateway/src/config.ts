import { z } from 'zod';
import { baseConfigSchema } from '@longtail/service';

/** Gateway settings. */
export const gatewayConfigSchema = baseConfigSchema.extend({
  PORT: baseConfigSchema.shape.PORT.default(8080),
  /**
   * The operator's admin key (`lt_admin_...`), accepted for admin endpoints until tenants and
   * API keys land. Never logged.
   */
  LONGTAIL_ADMIN_KEY: z.string().min(24, { message: 'must be at least 24 characters' }),
});

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

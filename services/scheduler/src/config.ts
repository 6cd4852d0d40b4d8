import { z } from 'zod';
import { baseConfigSchema, databaseConfigSchema } from '@longtail/service';

/** Scheduler settings: the shared ones plus PostgreSQL (it owns the `scheduler` schema). */
export const schedulerConfigSchema = baseConfigSchema.extend(databaseConfigSchema.shape).extend({
  PORT: baseConfigSchema.shape.PORT.default(8081),
  /** Seconds before a batch a crashed instance held is delivered again. */
  CONSUMER_ACK_WAIT_S: z.coerce.number().min(1).max(3600).default(30),
});

import { z } from 'zod';
import { baseConfigSchema, databaseConfigSchema } from '@longtail/service';

/** Scheduler settings: the shared ones plus PostgreSQL (it owns the `scheduler` schema). */
export const schedulerConfigSchema = baseConfigSchema.extend(databaseConfigSchema.shape).extend({
  PORT: baseConfigSchema.shape.PORT.default(8081),
  /** Seconds before a batch a crashed instance held is delivered again. */
  CONSUMER_ACK_WAIT_S: z.coerce.number().min(1).max(3600).default(30),
  /** How long one renewal holds the scheduler lease; a standby takes over about this long after the active one dies. */
  LEASE_TTL_S: z.coerce.number().min(0.5).max(60).default(3),
  /** Interval between renewals and takeover attempts (at most half the TTL). */
  LEASE_RENEW_MS: z.coerce.number().int().min(50).max(30_000).default(1000),
  /** A worker silent this long is dropped and its placements move (the `workers` bucket's TTL is 15 s). */
  WORKER_LIVENESS_S: z.coerce.number().min(0.5).max(15).default(15),
});

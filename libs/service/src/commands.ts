/**
 * Validation of a command's payload at the NATS boundary: the parsed value, or a
 * `CommandError('invalid_request')` naming every bad field, which the caller (the gateway, say)
 * turns into a 400.
 */
import { CommandError } from '@longtail/messaging';
import type { z } from 'zod';

export function commandPayload<S extends z.ZodType>(schema: S, payload: unknown): z.output<S> {
  const result = schema.safeParse(payload ?? {});
  if (!result.success)
    throw new CommandError('invalid_request', result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return result.data;
}

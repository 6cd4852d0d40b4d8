/**
 * Decoding what attribution consumes: every event @longtail/contracts knows. Anything else is a
 * violation (the consumer dead-letters it).
 *
 * Known types are checked with their definition's envelope schema in one pass (the same schema
 * `parseEvent` ends with); `parseEvent` itself, which first checks the generic envelope and then
 * freezes the result, is kept for what fails, to report the contracts' own violation.
 */
import { findDefinition, parseEvent } from '@longtail/contracts';
import type { ParseResult } from '@longtail/messaging';

import type { StreamEvent } from '../projections/facts-projection.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

export function parseAttributionEvent(raw: Uint8Array): ParseResult<StreamEvent> {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(raw));
  } catch (error) {
    return { ok: false, error: `not UTF-8 JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  const head = value as { type?: unknown; version?: unknown } | null;
  if (
    head !== null &&
    typeof head === 'object' &&
    typeof head.type === 'string' &&
    typeof head.version === 'number'
  ) {
    const definition = findDefinition(head.type, head.version);
    const fast = definition?.envelope.safeParse(value);
    if (fast?.success) return { ok: true, event: fast.data as StreamEvent };
  }
  const parsed = parseEvent(value);
  return parsed.ok ? { ok: true, event: parsed.event } : { ok: false, error: parsed.error };
}

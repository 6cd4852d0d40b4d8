/**
 * Decoding what attribution consumes: the draft events (see contracts-draft.ts) first, then every
 * event @longtail/contracts knows. Anything else is a violation (the consumer dead-letters it).
 */
import { parseEvent } from '@longtail/contracts';
import type { ParseResult } from '@longtail/messaging';

import { decodeDraftEvent } from '../contracts-draft.js';
import type { StreamEvent } from '../projections/facts-projection.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

export function parseAttributionEvent(raw: Uint8Array): ParseResult<StreamEvent> {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(raw));
  } catch (error) {
    return { ok: false, error: `not UTF-8 JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  try {
    const draft = decodeDraftEvent(value);
    if (draft) return { ok: true, event: draft };
  } catch (error) {
    return { ok: false, error };
  }
  const parsed = parseEvent(value);
  return parsed.ok ? { ok: true, event: parsed.event } : { ok: false, error: parsed.error };
}

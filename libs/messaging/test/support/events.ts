import { randomUUID } from 'node:crypto';
import type { EventEnvelope } from '@longtail/contracts';

let counter = 0;

/** A test event; ids are unique per call unless given. */
export function testEvent(
  type: string,
  data: unknown = {},
  overrides: Partial<EventEnvelope> = {},
): EventEnvelope {
  counter++;
  return {
    id: randomUUID(),
    type,
    version: 1,
    occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, counter)).toISOString(),
    correlationId: `corr-${counter}`,
    causationId: null,
    data,
    ...overrides,
  };
}

/** Resolves when `predicate` holds, polling every 20 ms. */
export async function eventually(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

import { describe, expect, it } from 'vitest';

import { epochClosedEventId } from '../projections/inference-projection.js';
import { subjectMatches } from '@longtail/messaging';

describe('subject filters', () => {
  it('match like NATS: * is one token, > is the rest', () => {
    expect(subjectMatches('attribution.policy.set.>', 'attribution.policy.set.2')).toBe(true);
    expect(subjectMatches('attribution.policy.set.>', 'attribution.epoch.closed.2')).toBe(false);
    expect(subjectMatches('attribution.policy.set.>', 'attribution.policy.set')).toBe(false);
    expect(subjectMatches('inference.*.x', 'inference.completed.x')).toBe(true);
    expect(subjectMatches('inference.*', 'inference.completed.x')).toBe(false);
  });
});

describe('attribution.epoch.closed event id', () => {
  it('is a UUID v7 fixed by the epoch and its close time, so a re-publish is a duplicate', () => {
    const id = epochClosedEventId(7, '2026-03-01T12:00:00.000Z');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(epochClosedEventId(7, '2026-03-01T12:00:00.000Z')).toBe(id);
    expect(epochClosedEventId(8, '2026-03-01T12:00:00.000Z')).not.toBe(id);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(Date.parse('2026-03-01T12:00:00.000Z'));
  });
});

/**
 * The pure fold over a generated stream (no I/O): every closed epoch's totals sum exactly to the
 * fees priced into it, requests are priced once whatever their copies, the policy change applies
 * from the epoch the marker names, and the result does not depend on how the facts were ordered.
 */
import { describe, expect, it } from 'vitest';

import { generateScenario } from '../../test/support/scenario.js';
import { parseAttributionEvent } from '../ingest/codec.js';
import { toAttributionInput } from './attribution-input.js';
import { evolve, initialState } from './attribution-model.js';

const encoder = new TextEncoder();
function fold(messages: readonly { event: Record<string, unknown> }[], state = initialState(), firstSeq = 1) {
  messages.forEach((m, i) => {
    const parsed = parseAttributionEvent(encoder.encode(JSON.stringify(m.event)));
    if (parsed.ok) evolve(state, toAttributionInput(parsed.event, firstSeq + i));
  });
  return state;
}

describe('attribution model (pure fold)', () => {
  const scenario = generateScenario({
    seed: 11,
    adapters: 30,
    datanets: 8,
    contributors: 60,
    inferences: 2000,
    epochs: 4,
  });

  it('closes each epoch with totals that sum exactly to its fees, under the policy its opening marker named', () => {
    const state = fold(scenario.inference, fold(scenario.facts));
    expect(state.closed.map((e) => e.epoch)).toEqual([0, 1, 2, 3]);
    expect(state.closed.map((e) => e.policyVersion)).toEqual([1, 1, 2, 2]);
    for (const epoch of state.closed) {
      expect(epoch.totals.reduce((s, t) => s + t.amount, 0n)).toBe(epoch.feeTotal);
      expect(epoch.totalAmount).toBe(epoch.feeTotal);
      expect(epoch.feeTotal > 0n).toBe(true);
      for (const t of epoch.totals) expect(t.amount > 0n).toBe(true);
      expect(epoch.lastSequence >= epoch.firstSequence).toBe(true);
    }
    // Epochs tile the stream.
    state.closed.slice(1).forEach((e, i) => expect(e.firstSequence).toBe(state.closed[i]!.lastSequence + 1));
  });

  it('prices every request once, however many copies the stream holds', () => {
    const state = fold(scenario.inference, fold(scenario.facts));
    const ids = scenario.inference
      .map((m) => m.event['data'] as { requestId?: string } | undefined)
      .filter(
        (d): d is { requestId: string } =>
          typeof d?.requestId === 'string' && d.requestId !== 'bad' && !d.requestId.startsWith('ghost'),
      )
      .map((d) => d.requestId);
    expect(ids.length).toBeGreaterThan(new Set(ids).size); // there are copies
    expect(state.priced.size).toBe(new Set(ids).size);
    const counted = state.closed.reduce((s, e) => s + e.eventCount, 0) + state.current.eventCount;
    expect(counted).toBe(new Set(ids).size);
  });

  it('does not depend on the order facts were folded in', () => {
    const a = fold(scenario.inference, fold(scenario.facts));
    const b = fold(scenario.inference, fold([...scenario.facts].reverse()));
    expect(b.closed.map((e) => e.totalsHash)).toEqual(a.closed.map((e) => e.totalsHash));
  });

  it('refuses an inference whose adapter does not exist, and prices nothing for it', () => {
    const inference = scenario.inference.find(
      (m) =>
        (m.event['data'] as { adapterId?: string | null }).adapterId &&
        m.event['type'] === 'inference.completed',
    )!;
    const state = fold([inference], fold(scenario.facts.filter((m) => m.stream !== 'ADAPTERS')));
    expect(state.rejected).toEqual([
      { sequence: 1, reason: expect.stringMatching(/^adapter .* does not exist$/) },
    ]);
    expect(state.current.eventCount).toBe(0);
    expect(state.priced.size).toBe(0);
  });
});

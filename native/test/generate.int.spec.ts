/**
 * `longtail-engine generate` (the runtime: paged KV, continuous batching, sampling) against the
 * naive reference: greedy tokens equal step-by-step argmax of the f64 reference forward, for every
 * fixture model and adapter. A token may differ from the reference argmax only on a near-tie
 * (its reference logit within REFERENCE_TOLERANCE·scale of the max), which the check allows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineGenerate, requireEngine, runEngine } from './support/engine-cli.ts';
import { ADAPTERS, MODELS, createFixtureDirs, modelNamed, type FixtureDirs } from './support/fixtures.ts';
import { REFERENCE_TOLERANCE, ReferenceRunner, tokenSequence } from './support/parity.ts';

const STEPS = 5;

describe('generate equals greedy decoding of the reference', () => {
  let dirs: FixtureDirs;
  const reference = new ReferenceRunner();

  beforeAll(async () => {
    requireEngine();
    dirs = await createFixtureDirs();
  });
  afterAll(async () => {
    await dirs?.remove();
  });

  /** Checks each generated token against the reference argmax of the sequence so far. */
  async function expectGreedy(model: string, prompt: number[], got: number[], adapter: string | null) {
    expect(got).toHaveLength(STEPS);
    const seq = [...prompt];
    for (const token of got) {
      const logits = await reference.logits(model, seq, adapter);
      let max = -Infinity;
      let scale = 1e-6;
      for (const v of logits) {
        max = Math.max(max, v);
        scale = Math.max(scale, Math.abs(v));
      }
      expect(logits[token]!).toBeGreaterThanOrEqual(max - REFERENCE_TOLERANCE * scale);
      seq.push(token);
    }
  }

  it.each(MODELS.map((m) => [m.name, m] as const))('model %s', async (name, model) => {
    const prompt = tokenSequence(model.spec.vocab, 7, model.spec.seed + 3);
    const out = await engineGenerate(dirs.model(name), prompt, STEPS);
    expect(out.finish_reason).toBe('length');
    await expectGreedy(dirs.model(name), prompt, out.tokens, null);
  });

  it.each(ADAPTERS.map((a) => [a.name, a] as const))('adapter %s', async (name, adapter) => {
    const vocab = modelNamed(adapter.base).spec.vocab;
    const prompt = tokenSequence(vocab, 6, adapter.spec.seed + 1);
    const out = await engineGenerate(dirs.model(adapter.base), prompt, STEPS, dirs.adapter(name));
    await expectGreedy(dirs.model(adapter.base), prompt, out.tokens, dirs.adapter(name));
  });

  it('the same seed gives the same sampled tokens; bad sampling options are refused', async () => {
    const model = MODELS[0]!;
    const prompt = tokenSequence(model.spec.vocab, 5, 9);
    const sampled = ['--temperature', '0.9', '--top-p', '0.9', '--seed', '42'];
    const a = await engineGenerate(dirs.model(model.name), prompt, 12, undefined, sampled);
    const b = await engineGenerate(dirs.model(model.name), prompt, 12, undefined, sampled);
    expect(a.tokens).toEqual(b.tokens);
    expect(a.tokens).toHaveLength(12);
    const bad = await runEngine(['generate', '--model', dirs.model(model.name), '--tokens', '1,2', '--top-k', '-1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: top_k/);
  });
});

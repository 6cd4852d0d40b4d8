/**
 * Single-sequence logits from the engine CLI equal the naive reference forward pass
 * (merged adapter weights, f64) for every fixture model and every fixture adapter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineLogits, requireEngine } from './support/engine-cli.ts';
import { ADAPTERS, MODELS, createFixtureDirs, modelNamed, type FixtureDirs } from './support/fixtures.ts';
import { REFERENCE_TOLERANCE, ReferenceRunner, relativeError, tokenSequence } from './support/parity.ts';

describe('engine logits equal the reference', () => {
  let dirs: FixtureDirs;
  const reference = new ReferenceRunner();

  beforeAll(async () => {
    requireEngine();
    dirs = await createFixtureDirs();
  });
  afterAll(async () => {
    await dirs?.remove();
  });

  describe.each(MODELS.map((m) => [m.name, m] as const))('model %s', (name, model) => {
    it.each([1, 2, 13])('without an adapter, %i tokens', async (length) => {
      const tokens = tokenSequence(model.spec.vocab, length, model.spec.seed + length);
      const actual = await engineLogits(dirs.model(name), tokens);
      const expected = await reference.logits(dirs.model(name), tokens);
      expect(actual).toHaveLength(model.spec.vocab);
      expect(relativeError(actual, expected)).toBeLessThan(REFERENCE_TOLERANCE);
    });
  });

  describe.each(MODELS.filter((m) => m.spec.ropeScaling !== undefined).map((m) => [m.name, m] as const))(
    'RoPE scaling past the original context: %s',
    (name, model) => {
      it('80 tokens', async () => {
        const tokens = tokenSequence(model.spec.vocab, 80, 77);
        const actual = await engineLogits(dirs.model(name), tokens);
        expect(relativeError(actual, await reference.logits(dirs.model(name), tokens))).toBeLessThan(
          REFERENCE_TOLERANCE,
        );
      });
    },
  );

  describe.each(ADAPTERS.map((a) => [a.name, a] as const))('adapter %s', (name, adapter) => {
    it(`on ${adapter.base} (${adapter.features.join(', ')})`, async () => {
      const vocab = modelNamed(adapter.base).spec.vocab;
      const tokens = tokenSequence(vocab, 9, adapter.spec.seed);
      const actual = await engineLogits(dirs.model(adapter.base), tokens, dirs.adapter(name));
      const expected = await reference.logits(dirs.model(adapter.base), tokens, dirs.adapter(name));
      const base = await reference.logits(dirs.model(adapter.base), tokens);
      // The fixture must matter: the adapter moves the logits far beyond the tolerance.
      expect(relativeError(expected, base)).toBeGreaterThan(100 * REFERENCE_TOLERANCE);
      expect(relativeError(actual, expected)).toBeLessThan(REFERENCE_TOLERANCE);
    });
  });
});

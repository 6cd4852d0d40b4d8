/**
 * The batched path: one `--batch` run computes every sequence in one forward per step, each with
 * its own adapter (or none), prefill chunks and decode tokens mixed in a step. Every sequence's
 * logits must equal the reference, and must not depend on what else was in the batch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineBatch, engineLogits, requireEngine, type BatchSequence } from './support/engine-cli.ts';
import { MODELS, adaptersOf, createFixtureDirs, type FixtureDirs } from './support/fixtures.ts';
import {
  REFERENCE_TOLERANCE,
  ReferenceRunner,
  SELF_TOLERANCE,
  relativeError,
  tokenSequence,
} from './support/parity.ts';

describe('batched multi-adapter forward', () => {
  let dirs: FixtureDirs;
  const reference = new ReferenceRunner();

  beforeAll(async () => {
    requireEngine();
    dirs = await createFixtureDirs();
  });
  afterAll(async () => {
    await dirs?.remove();
  });

  /** Every adapter of the model, the bare model, and a repeat of the first adapter, with varied lengths. */
  function mixedBatch(modelName: string): BatchSequence[] {
    const model = MODELS.find((m) => m.name === modelName)!;
    const adapters = [null, ...adaptersOf(modelName).map((a) => dirs.adapter(a.name))];
    const batch = adapters.map((adapter, i) => ({
      tokens: tokenSequence(model.spec.vocab, 3 + ((i * 5) % 11), 1000 + i),
      adapter,
    }));
    batch.push({ tokens: tokenSequence(model.spec.vocab, 1, 2000), adapter: adapters[adapters.length - 1]! });
    batch.push({ tokens: tokenSequence(model.spec.vocab, 17, 3000), adapter: adapters[1] ?? null });
    return batch;
  }

  describe.each(MODELS.map((m) => [m.name] as const))('model %s', (name) => {
    it('a batch mixing all its adapters and the bare model equals the reference, sequence by sequence', async () => {
      const batch = mixedBatch(name);
      const results = await engineBatch(dirs.model(name), batch, dirs.root);
      for (const [i, seq] of batch.entries()) {
        const expected = await reference.logits(dirs.model(name), seq.tokens, seq.adapter);
        expect(
          relativeError(results[i]!, expected),
          `sequence ${i} (${seq.adapter ?? 'no adapter'})`,
        ).toBeLessThan(REFERENCE_TOLERANCE);
      }
    });

    it('prefill chunks mixed with decode tokens in one step equal running each sequence alone', async () => {
      const batch = mixedBatch(name).map((seq, i): BatchSequence => ({
        ...seq,
        chunk: [1, 2, 3, 5, 4][i % 5]!,
      }));
      // One sequence without `chunk` (whole prompt in the first step) next to chunked ones.
      batch.push({
        tokens: tokenSequence(MODELS.find((m) => m.name === name)!.spec.vocab, 10, 4000),
        adapter: null,
      });
      const batched = await engineBatch(dirs.model(name), batch, dirs.root);
      for (const [i, seq] of batch.entries()) {
        const alone = await engineLogits(dirs.model(name), seq.tokens, seq.adapter ?? undefined);
        expect(relativeError(batched[i]!, alone), `sequence ${i} chunk ${seq.chunk} vs alone`).toBeLessThan(
          SELF_TOLERANCE,
        );
        const expected = await reference.logits(dirs.model(name), seq.tokens, seq.adapter);
        expect(
          relativeError(batched[i]!, expected),
          `sequence ${i} chunk ${seq.chunk} vs reference`,
        ).toBeLessThan(REFERENCE_TOLERANCE);
      }
    });

    it('a sequence gives the same logits alone and inside a batch, wherever it sits', async () => {
      const batch = mixedBatch(name);
      const probe = batch[batch.length - 1]!;
      const alone = (await engineBatch(dirs.model(name), [probe], dirs.root))[0]!;
      const first = (await engineBatch(dirs.model(name), [probe, ...batch.slice(0, -1)], dirs.root))[0]!;
      const last = (await engineBatch(dirs.model(name), batch, dirs.root)).at(-1)!;
      expect(relativeError(first, alone)).toBeLessThan(SELF_TOLERANCE);
      expect(relativeError(last, alone)).toBeLessThan(SELF_TOLERANCE);
    });
  });

  it('long sequences prefilled in odd chunks across many KV pages, next to short ones', async () => {
    const name = 'qwen2-bias-f32';
    const adapters = adaptersOf(name).map((a) => dirs.adapter(a.name));
    const batch: BatchSequence[] = [
      { tokens: tokenSequence(256, 150, 6001), adapter: adapters[0]!, chunk: 7 },
      { tokens: tokenSequence(256, 97, 6002), adapter: null, chunk: 33 },
      { tokens: tokenSequence(256, 64, 6003), adapter: adapters[adapters.length - 1]! },
      { tokens: tokenSequence(256, 5, 6004), adapter: adapters[1]!, chunk: 1 },
    ];
    const results = await engineBatch(dirs.model(name), batch, dirs.root);
    for (const [i, seq] of batch.entries()) {
      const expected = await reference.logits(dirs.model(name), seq.tokens, seq.adapter);
      expect(relativeError(results[i]!, expected), `sequence ${i}`).toBeLessThan(REFERENCE_TOLERANCE);
    }
  });

  it('sixteen sequences sharing three adapters of different ranks', async () => {
    const name = 'llama-f32-gqa';
    const adapters = adaptersOf(name).map((a) => dirs.adapter(a.name));
    const batch: BatchSequence[] = Array.from({ length: 16 }, (_, i) => ({
      tokens: tokenSequence(256, 2 + (i % 7), 5000 + i),
      adapter: i % 4 === 3 ? null : adapters[i % 3]!,
      ...(i % 2 === 0 ? { chunk: 1 + (i % 3) } : {}),
    }));
    const results = await engineBatch(dirs.model(name), batch, dirs.root);
    for (const [i, seq] of batch.entries()) {
      const expected = await reference.logits(dirs.model(name), seq.tokens, seq.adapter);
      expect(relativeError(results[i]!, expected), `sequence ${i}`).toBeLessThan(REFERENCE_TOLERANCE);
    }
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeAdapter, baseShapeOfSpec } from '../adapter/write.ts';
import type { ModelSpec } from '../model/spec.ts';
import { writeModel } from '../model/write.ts';
import {
  applyRope,
  loadReferenceAdapter,
  loadReferenceModel,
  mergeAdapter,
  referenceLogits,
  ropeInverseFrequencies,
} from './forward.ts';

const SPEC: ModelSpec = {
  family: 'llama',
  hidden: 32,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  intermediate: 48,
  vocab: 40,
  dtype: 'F32',
  seed: 11,
};

describe('reference forward pass', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'reference-'));
    await writeModel(join(dir, 'model'), SPEC);
    await writeModel(join(dir, 'model-sharded'), { ...SPEC, shards: 3 });
    await writeModel(join(dir, 'model-bf16'), { ...SPEC, dtype: 'BF16' });
    await writeAdapter(
      join(dir, 'adapter'),
      { rank: 4, alpha: 8, modules: 'all-linear', seed: 5 },
      baseShapeOfSpec(SPEC),
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('RoPE at position 0 is the identity', () => {
    const x = Float64Array.from({ length: 16 }, (_, i) => i - 7.5);
    const y = Float64Array.from(x);
    applyRope(y, 2, 8, 0, ropeInverseFrequencies(8, 10000, null));
    expect(y).toEqual(x);
  });

  it('RoPE rotates the pair (i, i + d/2) by position · inv_freq[i]', () => {
    const x = new Float64Array(8);
    x[1] = 1; // pair 1: (x[1], x[5])
    applyRope(x, 1, 8, 3, ropeInverseFrequencies(8, 100, null));
    const angle = 3 * 100 ** (-2 / 8);
    expect(x[1]).toBeCloseTo(Math.cos(angle), 12);
    expect(x[5]).toBeCloseTo(Math.sin(angle), 12);
  });

  it('scales inverse frequencies like transformers: linear divides all, llama3 keeps high and divides low', () => {
    const plain = ropeInverseFrequencies(16, 10000, null);
    const linear = ropeInverseFrequencies(16, 10000, { type: 'linear', factor: 4 });
    expect(Array.from(linear)).toEqual(Array.from(plain).map((f) => f / 4));
    const llama3 = ropeInverseFrequencies(16, 10000, {
      rope_type: 'llama3',
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 64,
    });
    expect(llama3[0]).toBe(plain[0]); // wavelength 6.3 < 16: kept
    expect(llama3[7]).toBe(plain[7]! / 8); // wavelength 19869 > 64: divided
    expect(llama3[1]!).toBeLessThan(plain[1]!); // 19.9: blended
    expect(llama3[1]!).toBeGreaterThan(plain[1]! / 8);
  });

  it('gives finite, non-degenerate logits and is causal (a later token does not change earlier logits)', async () => {
    const model = await loadReferenceModel(join(dir, 'model'));
    const all = referenceLogits(model, [3, 1, 4, 1, 5], { allPositions: true });
    const prefix = referenceLogits(model, [3, 1, 4], { allPositions: true });
    expect(all).toHaveLength(5);
    for (const logits of all) expect(logits.every(Number.isFinite)).toBe(true);
    const spread = Math.max(...all[4]!) - Math.min(...all[4]!);
    expect(spread).toBeGreaterThan(0.5);
    for (let t = 0; t < 3; t++) expect(Array.from(prefix[t]!)).toEqual(Array.from(all[t]!));
  });

  it('reads a sharded model like a single-file one', async () => {
    const single = referenceLogits(await loadReferenceModel(join(dir, 'model')), [7, 8, 9]);
    const sharded = referenceLogits(await loadReferenceModel(join(dir, 'model-sharded')), [7, 8, 9]);
    expect(Array.from(sharded)).toEqual(Array.from(single));
  });

  it('a bf16 model stays close to its f32 original', async () => {
    const f32 = referenceLogits(await loadReferenceModel(join(dir, 'model')), [7, 8, 9]);
    const bf16 = referenceLogits(await loadReferenceModel(join(dir, 'model-bf16')), [7, 8, 9]);
    const diff = Math.max(...f32.map((v, i) => Math.abs(v - bf16[i]!)));
    expect(diff).toBeGreaterThan(0);
    expect(diff).toBeLessThan(0.1);
  });

  it('an adapter whose B is zero leaves the logits unchanged; a real one changes them', async () => {
    const model = await loadReferenceModel(join(dir, 'model'));
    const adapter = await loadReferenceAdapter(join(dir, 'adapter'));
    const zeroB = {
      config: adapter.config,
      tensors: new Map(
        [...adapter.tensors].map(([name, t]) => [
          name,
          name.includes('lora_B') ? { shape: t.shape, data: new Float64Array(t.data.length) } : t,
        ]),
      ),
    };
    const base = referenceLogits(model, [1, 2, 3]);
    expect(Array.from(referenceLogits(mergeAdapter(model, zeroB), [1, 2, 3]))).toEqual(Array.from(base));
    const changed = referenceLogits(mergeAdapter(model, adapter), [1, 2, 3]);
    expect(Math.max(...changed.map((v, i) => Math.abs(v - base[i]!)))).toBeGreaterThan(0.05);
  });

  it('merges with alpha / r, or alpha / sqrt(r) under rsLoRA', async () => {
    const model = await loadReferenceModel(join(dir, 'model'));
    const adapter = await loadReferenceAdapter(join(dir, 'adapter'));
    const name = 'model.layers.0.self_attn.q_proj.weight';
    const delta = (config: Record<string, unknown>): number => {
      const merged = mergeAdapter(model, {
        config: { ...adapter.config, ...config },
        tensors: adapter.tensors,
      });
      return merged.weights.get(name)!.data[0]! - model.weights.get(name)!.data[0]!;
    };
    const plain = delta({ use_rslora: false });
    expect(delta({ use_rslora: true }) / plain).toBeCloseTo(2, 10); // (8/√4) / (8/4)
    expect(delta({ alpha_pattern: { q_proj: 16 } }) / plain).toBeCloseTo(2, 10);
  });
});

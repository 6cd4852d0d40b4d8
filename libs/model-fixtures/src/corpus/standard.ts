/**
 * The standard fixture set: tiny base models that together cover every loader and forward-pass
 * feature the engine claims (dtypes, tied embeddings, q/k/v bias, RoPE scaling, GQA/MQA/MHA,
 * sharding), and adapters over them that cover ranks, module subsets, dtypes, rsLoRA and
 * rank/alpha patterns. `manifest.json` lists them with their features.
 */
import { join } from 'node:path';
import { baseShapeOfSpec, writeAdapter } from '../adapter/write.ts';
import type { AdapterSpec } from '../adapter/spec.ts';
import type { ModelSpec } from '../model/spec.ts';
import { writeJson, writeModel } from '../model/write.ts';

export interface ModelFixture {
  readonly name: string;
  readonly features: readonly string[];
  readonly spec: ModelSpec;
}

export interface AdapterFixture {
  readonly name: string;
  readonly base: string;
  readonly features: readonly string[];
  readonly spec: AdapterSpec;
}

export interface FixtureManifest {
  readonly version: 1;
  /** Paths are relative to the manifest's folder. */
  readonly models: readonly (ModelFixture & { readonly path: string })[];
  readonly adapters: readonly (AdapterFixture & { readonly path: string })[];
}

const tiny = { layers: 2, vocab: 256, intermediate: 128 } as const;

export const STANDARD_MODELS: readonly ModelFixture[] = [
  {
    name: 'llama-f32-gqa',
    features: ['f32', 'gqa'],
    spec: { family: 'llama', hidden: 64, heads: 4, kvHeads: 2, dtype: 'F32', seed: 1, ...tiny },
  },
  {
    name: 'llama-f16-mha',
    features: ['f16', 'mha'],
    spec: { family: 'llama', hidden: 64, heads: 4, kvHeads: 4, dtype: 'F16', seed: 2, ...tiny },
  },
  {
    name: 'llama-bf16-tied-mqa',
    features: ['bf16', 'tied-embeddings', 'mqa', 'gqa'],
    spec: {
      family: 'llama',
      hidden: 48,
      heads: 4,
      kvHeads: 1,
      dtype: 'BF16',
      seed: 3,
      tiedEmbeddings: true,
      ...tiny,
      intermediate: 96,
    },
  },
  {
    name: 'qwen2-bias-f32',
    features: ['f32', 'qwen2', 'qkv-bias', 'gqa'],
    spec: {
      family: 'qwen2',
      hidden: 64,
      heads: 4,
      kvHeads: 2,
      dtype: 'F32',
      seed: 4,
      ropeTheta: 1_000_000,
      rmsNormEps: 1e-6,
      ...tiny,
      intermediate: 96,
    },
  },
  {
    // head dim 16, theta 1e4, original context 64: low/high wavelength bounds 64/16 put one
    // frequency in the "keep" band, two in the smoothed band and five in the "divide" band.
    name: 'llama-rope-llama3-f32',
    features: ['f32', 'rope-llama3', 'gqa'],
    spec: {
      family: 'llama',
      hidden: 64,
      heads: 4,
      kvHeads: 2,
      dtype: 'F32',
      seed: 5,
      maxPositions: 512,
      ...tiny,
      ropeScaling: {
        type: 'llama3',
        factor: 8,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositions: 64,
      },
    },
  },
  {
    name: 'llama-rope-linear-f16',
    features: ['f16', 'rope-linear', 'mqa', 'gqa'],
    spec: {
      family: 'llama',
      hidden: 32,
      heads: 2,
      kvHeads: 1,
      dtype: 'F16',
      seed: 6,
      maxPositions: 1024,
      ropeScaling: { type: 'linear', factor: 4 },
      ...tiny,
      intermediate: 64,
    },
  },
  {
    name: 'llama-sharded-bf16',
    features: ['bf16', 'sharded', 'gqa'],
    spec: { family: 'llama', hidden: 64, heads: 8, kvHeads: 2, dtype: 'BF16', seed: 7, shards: 3, ...tiny },
  },
];

/** Real Llama 3 tokenizer and vocabulary (128256 rows): a demo model, not part of the tiny set. */
export const TOKENIZER_MODEL: ModelFixture = {
  name: 'llama3-tokenizer-bf16',
  features: ['bf16', 'tokenizer', 'large-vocab', 'tied-embeddings', 'rope-llama3', 'mqa', 'gqa'],
  spec: {
    family: 'llama',
    hidden: 32,
    layers: 2,
    heads: 2,
    kvHeads: 1,
    intermediate: 64,
    vocab: 128256,
    dtype: 'BF16',
    seed: 8,
    tiedEmbeddings: true,
    ropeTheta: 500_000,
    maxPositions: 131072,
    tokenizer: 'llama3',
    ropeScaling: {
      type: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositions: 8192,
    },
  },
};

export const STANDARD_ADAPTERS: readonly AdapterFixture[] = [
  {
    name: 'gqa-r1-qv',
    base: 'llama-f32-gqa',
    features: ['rank-1', 'q-v'],
    spec: { rank: 1, alpha: 2, modules: ['q_proj', 'v_proj'], seed: 101 },
  },
  {
    name: 'gqa-r4-all7',
    base: 'llama-f32-gqa',
    features: ['rank-4', 'all-seven'],
    spec: {
      rank: 4,
      alpha: 8,
      modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      seed: 102,
    },
  },
  {
    name: 'gqa-r16-all-linear-bf16',
    base: 'llama-f32-gqa',
    features: ['rank-16', 'all-linear', 'bf16'],
    spec: { rank: 16, alpha: 16, modules: 'all-linear', seed: 103, dtype: 'BF16' },
  },
  {
    name: 'gqa-r64-rslora-f16',
    base: 'llama-f32-gqa',
    features: ['rank-64', 'rslora', 'f16', 'attention-only'],
    spec: {
      rank: 64,
      alpha: 16,
      modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
      seed: 104,
      dtype: 'F16',
      rslora: true,
    },
  },
  {
    name: 'gqa-patterns',
    base: 'llama-f32-gqa',
    features: ['rank-pattern', 'alpha-pattern', 'rank-pattern-layer-key'],
    spec: {
      rank: 8,
      alpha: 16,
      modules: ['q_proj', 'v_proj', 'down_proj'],
      seed: 105,
      rankPattern: { q_proj: 2, 'model.layers.1.self_attn.v_proj': 12 },
      alphaPattern: { q_proj: 32, down_proj: 4 },
    },
  },
  {
    name: 'mha-r8-attn-f16',
    base: 'llama-f16-mha',
    features: ['rank-8', 'attention-only', 'f16'],
    spec: { rank: 8, alpha: 16, modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], seed: 201, dtype: 'F16' },
  },
  {
    name: 'mha-r4-mlp',
    base: 'llama-f16-mha',
    features: ['rank-4', 'mlp-only'],
    spec: { rank: 4, alpha: 4, modules: ['gate_proj', 'up_proj', 'down_proj'], seed: 202 },
  },
  {
    name: 'tied-r4-all-linear-bf16',
    base: 'llama-bf16-tied-mqa',
    features: ['rank-4', 'all-linear', 'bf16'],
    spec: { rank: 4, alpha: 8, modules: 'all-linear', seed: 301, dtype: 'BF16' },
  },
  {
    name: 'tied-r2-qv',
    base: 'llama-bf16-tied-mqa',
    features: ['rank-2', 'q-v'],
    spec: { rank: 2, alpha: 4, modules: ['q_proj', 'v_proj'], seed: 302 },
  },
  {
    name: 'qwen2-r8-all7',
    base: 'qwen2-bias-f32',
    features: ['rank-8', 'all-seven'],
    spec: {
      rank: 8,
      alpha: 16,
      modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      seed: 401,
    },
  },
  {
    name: 'qwen2-r16-rslora-qv',
    base: 'qwen2-bias-f32',
    features: ['rank-16', 'rslora', 'q-v'],
    spec: { rank: 16, alpha: 8, modules: ['q_proj', 'v_proj'], seed: 402, rslora: true },
  },
  {
    // Rank above the hidden size: legal in PEFT, and the largest rank the engine must serve.
    name: 'qwen2-r128-o-up-bf16',
    base: 'qwen2-bias-f32',
    features: ['rank-128', 'o-up', 'bf16'],
    spec: { rank: 128, alpha: 64, modules: ['o_proj', 'up_proj'], seed: 403, dtype: 'BF16' },
  },
  {
    name: 'llama3rope-r4-qk',
    base: 'llama-rope-llama3-f32',
    features: ['rank-4', 'q-k'],
    spec: { rank: 4, alpha: 8, modules: ['q_proj', 'k_proj'], seed: 501 },
  },
  {
    name: 'linrope-r4-qv-f16',
    base: 'llama-rope-linear-f16',
    features: ['rank-4', 'q-v', 'f16'],
    spec: { rank: 4, alpha: 8, modules: ['q_proj', 'v_proj'], seed: 601, dtype: 'F16' },
  },
  {
    name: 'sharded-r8-all-linear',
    base: 'llama-sharded-bf16',
    features: ['rank-8', 'all-linear'],
    spec: { rank: 8, alpha: 16, modules: 'all-linear', seed: 701 },
  },
  {
    name: 'sharded-r32-o-down-bf16',
    base: 'llama-sharded-bf16',
    features: ['rank-32', 'o-down', 'bf16'],
    spec: { rank: 32, alpha: 32, modules: ['o_proj', 'down_proj'], seed: 702, dtype: 'BF16' },
  },
];

export const TOKENIZER_ADAPTERS: readonly AdapterFixture[] = [
  {
    name: 'tokenizer-r4-qv',
    base: 'llama3-tokenizer-bf16',
    features: ['rank-4', 'q-v'],
    spec: { rank: 4, alpha: 8, modules: ['q_proj', 'v_proj'], seed: 801 },
  },
];

export interface FixtureSetOptions {
  /** Also write the 128256-vocabulary model with the real Llama 3 tokenizer (~8 MB more). */
  readonly withTokenizer?: boolean;
}

/** Writes `models/<name>`, `adapters/<name>` and `manifest.json` under `outDir`. */
export async function writeFixtureSet(
  outDir: string,
  options: FixtureSetOptions = {},
): Promise<FixtureManifest> {
  const models = [...STANDARD_MODELS, ...(options.withTokenizer ? [TOKENIZER_MODEL] : [])];
  const adapters = [...STANDARD_ADAPTERS, ...(options.withTokenizer ? TOKENIZER_ADAPTERS : [])];
  const byName = new Map(models.map((m) => [m.name, m]));
  const manifest: FixtureManifest = {
    version: 1,
    models: models.map((m) => ({ ...m, path: `models/${m.name}` })),
    adapters: adapters.map((a) => ({ ...a, path: `adapters/${a.name}` })),
  };
  for (const m of manifest.models) await writeModel(join(outDir, m.path), m.spec);
  for (const a of manifest.adapters) {
    const base = byName.get(a.base);
    if (base === undefined) throw new Error(`adapter ${a.name}: unknown base ${a.base}`);
    await writeAdapter(
      join(outDir, a.path),
      { ...a.spec, baseModelName: `longtail-fixtures/${a.base}` },
      baseShapeOfSpec(base.spec),
    );
  }
  await writeJson(join(outDir, 'manifest.json'), manifest);
  return manifest;
}

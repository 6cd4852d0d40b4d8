/**
 * The naive reference forward pass that the engine is tested against. Written for obviousness,
 * not speed: f64 everywhere, one sequence at a time, full causal attention recomputed over all
 * positions, adapters merged into the base weights (W' = W + scale·B·A). It follows Hugging Face
 * transformers' Llama/Qwen2 conventions:
 *   - RMSNorm: x / sqrt(mean(x²) + eps) · w
 *   - RoPE: rotate_half on the [first half, second half] of each head (not interleaved pairs),
 *     inv_freq[i] = theta^(-2i/d); "linear" scaling divides inv_freq by factor; "llama3" scaling
 *     is `_compute_llama3_parameters` (keep high frequencies, divide low ones, blend between)
 *   - attention: softmax(q·k / sqrt(d)) with query head h reading kv head floor(h / (heads/kvHeads))
 *   - MLP: down(silu(gate(x)) * up(x)); q/k/v (and o) biases when the tensors exist
 *   - lm_head = embed_tokens when tie_word_embeddings or when lm_head.weight is absent
 * It shares no code with the engine, and only the JSON shapes of the files with the fixture writer.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, type Tensor } from './safetensors-reader.ts';

export interface ReferenceConfig {
  readonly hidden: number;
  readonly intermediate: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly vocab: number;
  readonly eps: number;
  readonly tied: boolean;
  /** Per-pair inverse frequencies after scaling, length headDim / 2. */
  readonly invFreq: Float64Array;
}

export interface ReferenceModel {
  readonly config: ReferenceConfig;
  readonly weights: ReadonlyMap<string, Tensor>;
}

export interface ReferenceAdapter {
  readonly config: Record<string, unknown>;
  readonly tensors: ReadonlyMap<string, Tensor>;
}

type Json = Record<string, unknown>;

export async function loadReferenceModel(dir: string): Promise<ReferenceModel> {
  const c = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Json;
  const hidden = c['hidden_size'] as number;
  const heads = c['num_attention_heads'] as number;
  const headDim = (c['head_dim'] as number | undefined) ?? hidden / heads;
  const config: ReferenceConfig = {
    hidden,
    intermediate: c['intermediate_size'] as number,
    layers: c['num_hidden_layers'] as number,
    heads,
    kvHeads: (c['num_key_value_heads'] as number | undefined) ?? heads,
    headDim,
    vocab: c['vocab_size'] as number,
    eps: (c['rms_norm_eps'] as number | undefined) ?? 1e-6,
    tied: (c['tie_word_embeddings'] as boolean | undefined) ?? false,
    invFreq: ropeInverseFrequencies(
      headDim,
      (c['rope_theta'] as number | undefined) ?? 10000,
      c['rope_scaling'] as Json | null | undefined,
    ),
  };

  const files: string[] = [];
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const map = (JSON.parse(await readFile(index, 'utf8')) as { weight_map: Record<string, string> })
      .weight_map;
    files.push(...new Set(Object.values(map)));
  } else {
    files.push('model.safetensors');
  }
  const weights = new Map<string, Tensor>();
  for (const f of files) for (const [name, t] of await readSafetensors(join(dir, f))) weights.set(name, t);
  return { config, weights };
}

export async function loadReferenceAdapter(dir: string): Promise<ReferenceAdapter> {
  const config = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Json;
  return { config, tensors: await readSafetensors(join(dir, 'adapter_model.safetensors')) };
}

/** HF `_compute_default_rope_parameters` + the linear / llama3 variants. */
export function ropeInverseFrequencies(
  headDim: number,
  theta: number,
  scaling: Json | null | undefined,
): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / theta ** ((2 * i) / headDim);
  if (scaling === null || scaling === undefined) return inv;
  const kind = (scaling['rope_type'] ?? scaling['type']) as string;
  const factor = scaling['factor'] as number;
  if (kind === 'linear') return inv.map((f) => f / factor);
  if (kind === 'llama3') {
    const low = scaling['low_freq_factor'] as number;
    const high = scaling['high_freq_factor'] as number;
    const oldContext = scaling['original_max_position_embeddings'] as number;
    const lowFreqWavelen = oldContext / low;
    const highFreqWavelen = oldContext / high;
    return inv.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highFreqWavelen) return f;
      if (wavelen > lowFreqWavelen) return f / factor;
      const smooth = (oldContext / wavelen - low) / (high - low);
      return ((1 - smooth) * f) / factor + smooth * f;
    });
  }
  if (kind === 'default') return inv;
  throw new Error(`reference: rope scaling "${kind}" not implemented`);
}

/** PEFT's pattern lookup: an exact key first, else the first key K with `(.*\.)?K$` matching. */
function patternLookup(pattern: unknown, moduleName: string): number | undefined {
  if (pattern === null || typeof pattern !== 'object') return undefined;
  const p = pattern as Record<string, number>;
  if (moduleName in p) return p[moduleName];
  for (const key of Object.keys(p)) if (new RegExp(`(^|.*\\.)${key}$`).test(moduleName)) return p[key];
  return undefined;
}

/** Returns a model whose weights have every LoRA pair of `adapter` merged in. */
export function mergeAdapter(model: ReferenceModel, adapter: ReferenceAdapter): ReferenceModel {
  const weights = new Map(model.weights);
  const c = adapter.config;
  const suffix = '.lora_A.weight';
  for (const [name, a] of adapter.tensors) {
    if (!name.endsWith(suffix)) continue;
    const modulePath = name.slice('base_model.model.'.length, -suffix.length); // model.layers.0.self_attn.q_proj
    const b = adapter.tensors.get(`base_model.model.${modulePath}.lora_B.weight`);
    const w = weights.get(`${modulePath}.weight`);
    if (b === undefined || w === undefined) throw new Error(`reference: cannot merge ${modulePath}`);
    const r = patternLookup(c['rank_pattern'], modulePath) ?? (c['r'] as number);
    const alpha = patternLookup(c['alpha_pattern'], modulePath) ?? (c['lora_alpha'] as number);
    if (a.shape[0] !== r || b.shape[1] !== r)
      throw new Error(`reference: ${modulePath} has rank ${a.shape[0]}, config says ${r}`);
    const scale = c['use_rslora'] === true ? alpha / Math.sqrt(r) : alpha / r;
    const [out, inp] = w.shape as [number, number];
    const merged = Float64Array.from(w.data);
    for (let o = 0; o < out; o++) {
      for (let i = 0; i < inp; i++) {
        let sum = 0;
        for (let k = 0; k < r; k++) sum += b.data[o * r + k]! * a.data[k * inp + i]!;
        merged[o * inp + i] = merged[o * inp + i]! + scale * sum;
      }
    }
    weights.set(`${modulePath}.weight`, { shape: w.shape, data: merged });
  }
  return { config: model.config, weights };
}

function weight(model: ReferenceModel, name: string): Tensor {
  const t = model.weights.get(name);
  if (t === undefined) throw new Error(`reference: missing tensor ${name}`);
  return t;
}

/** y = W·x (+ b), W is [out, in]. */
function linear(model: ReferenceModel, prefix: string, x: Float64Array): Float64Array {
  const w = weight(model, `${prefix}.weight`);
  const [out, inp] = w.shape as [number, number];
  const bias = model.weights.get(`${prefix}.bias`);
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let sum = bias ? bias.data[o]! : 0;
    for (let i = 0; i < inp; i++) sum += w.data[o * inp + i]! * x[i]!;
    y[o] = sum;
  }
  return y;
}

function rmsNorm(x: Float64Array, w: Tensor, eps: number): Float64Array {
  let sumSquares = 0;
  for (const v of x) sumSquares += v * v;
  const inv = 1 / Math.sqrt(sumSquares / x.length + eps);
  return x.map((v, i) => v * inv * w.data[i]!);
}

/** Rotates each head of `x` ([heads·d]) in place, HF rotate_half layout. */
export function applyRope(
  x: Float64Array,
  heads: number,
  headDim: number,
  position: number,
  invFreq: Float64Array,
): void {
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    const base = h * headDim;
    for (let i = 0; i < half; i++) {
      const angle = position * invFreq[i]!;
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const x1 = x[base + i]!;
      const x2 = x[base + half + i]!;
      x[base + i] = x1 * cos - x2 * sin;
      x[base + half + i] = x2 * cos + x1 * sin;
    }
  }
}

export interface ForwardOptions {
  /** Return the logits of every position instead of only the last. */
  readonly allPositions?: boolean;
}

/** Logits [vocab] of the last position (or of every position) for one token sequence. */
export function referenceLogits(model: ReferenceModel, tokens: readonly number[]): Float64Array;
export function referenceLogits(
  model: ReferenceModel,
  tokens: readonly number[],
  options: { allPositions: true },
): Float64Array[];
export function referenceLogits(
  model: ReferenceModel,
  tokens: readonly number[],
  options: ForwardOptions = {},
): Float64Array | Float64Array[] {
  const c = model.config;
  if (tokens.length === 0) throw new Error('reference: empty token sequence');
  const embed = weight(model, 'model.embed_tokens.weight');
  // Residual stream per position: [T][hidden]
  const xs = tokens.map((token) => {
    if (!Number.isInteger(token) || token < 0 || token >= c.vocab)
      throw new Error(`reference: token ${token} outside vocab ${c.vocab}`);
    return embed.data.slice(token * c.hidden, (token + 1) * c.hidden);
  });
  const group = c.heads / c.kvHeads;
  const d = c.headDim;

  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}`;
    const qs: Float64Array[] = [];
    const ks: Float64Array[] = [];
    const vs: Float64Array[] = [];
    for (const [t, x] of xs.entries()) {
      const h = rmsNorm(x, weight(model, `${p}.input_layernorm.weight`), c.eps);
      const q = linear(model, `${p}.self_attn.q_proj`, h);
      const k = linear(model, `${p}.self_attn.k_proj`, h);
      applyRope(q, c.heads, d, t, c.invFreq);
      applyRope(k, c.kvHeads, d, t, c.invFreq);
      qs.push(q);
      ks.push(k);
      vs.push(linear(model, `${p}.self_attn.v_proj`, h));
    }
    for (const [t, x] of xs.entries()) {
      const attended = new Float64Array(c.heads * d);
      for (let h = 0; h < c.heads; h++) {
        const kvHead = Math.floor(h / group);
        const scores = new Float64Array(t + 1);
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < d; i++) dot += qs[t]![h * d + i]! * ks[s]![kvHead * d + i]!;
          scores[s] = dot / Math.sqrt(d);
        }
        const max = Math.max(...scores);
        let total = 0;
        for (let s = 0; s <= t; s++) {
          scores[s] = Math.exp(scores[s]! - max);
          total += scores[s]!;
        }
        for (let s = 0; s <= t; s++) {
          for (let i = 0; i < d; i++)
            attended[h * d + i] = attended[h * d + i]! + (scores[s]! / total) * vs[s]![kvHead * d + i]!;
        }
      }
      const o = linear(model, `${p}.self_attn.o_proj`, attended);
      for (let i = 0; i < c.hidden; i++) x[i] = x[i]! + o[i]!;
    }
    for (const x of xs) {
      const h = rmsNorm(x, weight(model, `${p}.post_attention_layernorm.weight`), c.eps);
      const gate = linear(model, `${p}.mlp.gate_proj`, h);
      const up = linear(model, `${p}.mlp.up_proj`, h);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
      const down = linear(model, `${p}.mlp.down_proj`, act);
      for (let i = 0; i < c.hidden; i++) x[i] = x[i]! + down[i]!;
    }
  }

  const head = c.tied || !model.weights.has('lm_head.weight') ? 'model.embed_tokens' : 'lm_head';
  const logitsAt = (x: Float64Array): Float64Array =>
    linear(model, head, rmsNorm(x, weight(model, 'model.norm.weight'), c.eps));
  return options.allPositions ? xs.map(logitsAt) : logitsAt(xs[xs.length - 1]!);
}

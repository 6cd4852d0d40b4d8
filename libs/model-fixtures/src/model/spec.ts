/**
 * What a generated base model looks like: the hyper-parameters of a Hugging Face Llama-family
 * `config.json`, plus how its weights are stored (dtype, shards) and seeded.
 */
import type { Dtype } from '../safetensors/dtype.ts';

export type RopeScaling =
  | {
      readonly type: 'llama3';
      readonly factor: number;
      readonly lowFreqFactor: number;
      readonly highFreqFactor: number;
      readonly originalMaxPositions: number;
    }
  | { readonly type: 'linear'; readonly factor: number };

export interface ModelSpec {
  /** `llama` (LlamaForCausalLM) or `qwen2` (Qwen2ForCausalLM: q/k/v projections carry a bias). */
  readonly family: 'llama' | 'qwen2';
  readonly hidden: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly intermediate: number;
  readonly vocab: number;
  readonly dtype: Dtype;
  readonly seed: number;
  /** lm_head shares model.embed_tokens.weight (no lm_head tensor is written). */
  readonly tiedEmbeddings?: boolean;
  readonly ropeTheta?: number;
  readonly ropeScaling?: RopeScaling;
  readonly maxPositions?: number;
  readonly rmsNormEps?: number;
  /** 1 writes `model.safetensors`; N > 1 writes `model-0000i-of-0000N.safetensors` + index. */
  readonly shards?: number;
  /** Copy the real Llama 3 tokenizer files (vocab must then be 128256). */
  readonly tokenizer?: 'llama3';
}

export const LLAMA3_VOCAB = 128256;

export function headDim(spec: ModelSpec): number {
  return spec.hidden / spec.heads;
}

/** Throws on a spec that no Llama-family loader could accept. */
export function checkModelSpec(spec: ModelSpec): void {
  const positive = ['hidden', 'layers', 'heads', 'kvHeads', 'intermediate', 'vocab'] as const;
  for (const key of positive) {
    if (!Number.isInteger(spec[key]) || spec[key] <= 0)
      throw new Error(`${key} must be a positive integer, got ${spec[key]}`);
  }
  if (spec.hidden % spec.heads !== 0)
    throw new Error(`hidden ${spec.hidden} is not a multiple of heads ${spec.heads}`);
  if (headDim(spec) % 2 !== 0) throw new Error(`head dim ${headDim(spec)} must be even for RoPE`);
  if (spec.heads % spec.kvHeads !== 0)
    throw new Error(`heads ${spec.heads} is not a multiple of kv-heads ${spec.kvHeads}`);
  if (spec.tokenizer === 'llama3' && spec.vocab !== LLAMA3_VOCAB) {
    throw new Error(`the llama3 tokenizer needs vocab ${LLAMA3_VOCAB}, got ${spec.vocab}`);
  }
  const shards = spec.shards ?? 1;
  if (!Number.isInteger(shards) || shards < 1)
    throw new Error(`shards must be a positive integer, got ${shards}`);
}

/** The config.json that Hugging Face transformers would write for this model. */
export function modelConfig(spec: ModelSpec): Record<string, unknown> {
  const qwen = spec.family === 'qwen2';
  const config: Record<string, unknown> = {
    architectures: [qwen ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: qwen ? 'qwen2' : 'llama',
    hidden_size: spec.hidden,
    intermediate_size: spec.intermediate,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    num_key_value_heads: spec.kvHeads,
    head_dim: headDim(spec),
    vocab_size: spec.vocab,
    hidden_act: 'silu',
    rms_norm_eps: spec.rmsNormEps ?? 1e-5,
    rope_theta: spec.ropeTheta ?? 10000,
    rope_scaling: ropeScalingConfig(spec.ropeScaling),
    max_position_embeddings: spec.maxPositions ?? 2048,
    tie_word_embeddings: spec.tiedEmbeddings ?? false,
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[spec.dtype],
    bos_token_id: spec.tokenizer === 'llama3' ? 128000 : 1,
    eos_token_id: spec.tokenizer === 'llama3' ? [128001, 128008, 128009] : 2,
    initializer_range: 0.02,
    use_cache: true,
    transformers_version: '4.46.0',
  };
  if (qwen) {
    // Qwen2 always has q/k/v bias (and none on o_proj); attention_bias is written for readers that look for it.
    config['attention_bias'] = true;
    config['use_sliding_window'] = false;
    config['sliding_window'] = null;
    config['max_window_layers'] = spec.layers;
  } else {
    config['attention_bias'] = false;
    config['mlp_bias'] = false;
  }
  return config;
}

function ropeScalingConfig(scaling: RopeScaling | undefined): Record<string, unknown> | null {
  if (scaling === undefined) return null;
  if (scaling.type === 'linear') return { type: 'linear', rope_type: 'linear', factor: scaling.factor };
  return {
    rope_type: 'llama3',
    type: 'llama3',
    factor: scaling.factor,
    low_freq_factor: scaling.lowFreqFactor,
    high_freq_factor: scaling.highFreqFactor,
    original_max_position_embeddings: scaling.originalMaxPositions,
  };
}

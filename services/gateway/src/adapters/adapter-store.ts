/**
 * Where accepted adapters go: the `adapters` NATS Object Store bucket, in the layout the
 * gpu-worker reads (services/gpu-worker/src/inference/adapter-resolver.ts):
 * `<sha256>/adapter_model.safetensors` and `<sha256>/adapter_config.json`, `<sha256>` being the
 * weights' SHA-256 (hex). Keys are made only from the hash, never from a client's name.
 * Also: the base models' `config.json`, read from `MODEL_CONFIG_DIR/<base>/config.json`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { ModelIdSchema, OBJECT_BUCKETS } from '@longtail/contracts';
import type { MessagingConnection } from '@longtail/messaging';
import { CONFIG_FILE, WEIGHTS_FILE, baseShapeFromConfig, type BaseShape } from './adapter-validation.js';

export const adapterObjectKey = (sha256: string, file: typeof WEIGHTS_FILE | typeof CONFIG_FILE): string =>
  `${sha256}/${file}`;

export class AdapterObjectStore {
  #store: Promise<ObjectStore> | undefined;

  constructor(private readonly conn: MessagingConnection) {}

  /** Stores both files; the config goes last, so a reader that finds it finds the weights. */
  async put(sha256: string, weights: Uint8Array, config: Uint8Array): Promise<void> {
    const store = await this.bucket();
    await store.putBlob({ name: adapterObjectKey(sha256, WEIGHTS_FILE) }, weights);
    await store.putBlob({ name: adapterObjectKey(sha256, CONFIG_FILE) }, config);
  }

  private bucket(): Promise<ObjectStore> {
    this.#store ??= new Objm(this.conn.nc).create(OBJECT_BUCKETS.adapters.bucket).catch((err: unknown) => {
      this.#store = undefined;
      throw err;
    });
    return this.#store;
  }
}

/** A base model's dimensions, from `<dir>/<base>/config.json`; undefined when not there. */
export async function readBaseShape(
  dir: string | undefined,
  baseModel: string,
): Promise<BaseShape | undefined> {
  if (dir === undefined || !ModelIdSchema.safeParse(baseModel).success) return undefined;
  const path = join(dir, baseModel, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  return baseShapeFromConfig(JSON.parse(text), path);
}

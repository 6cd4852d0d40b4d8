/**
 * Where an adapter's PEFT folder is on this machine, in order:
 * 1. a folder map from the configuration (`ADAPTER_DIRS`, `{"<base>:<owner>/<name>": "/path"}`);
 * 2. the disk cache (`ADAPTER_CACHE_DIR/<sha256>/`), filled from the `adapters` object store.
 *
 * Object store layout read here: `<sha256>/adapter_model.safetensors` and
 * `<sha256>/adapter_config.json`, where `<sha256>` is the weights file's SHA-256 (hex). A fetched
 * weights file whose hash differs is refused and nothing is cached; a cache entry appears only
 * complete (written to a temporary folder, then renamed).
 */
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Objm } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/nats-core';
import { OBJECT_BUCKETS } from '@longtail/contracts';

export interface AdapterResolver {
  /** The adapter's folder, or undefined when this resolver cannot get it; throws when it is corrupt. */
  resolve(adapterId: string, sha256: string | null): Promise<string | undefined>;
}

export class FolderAdapterResolver implements AdapterResolver {
  readonly #dirs: ReadonlyMap<string, string>;

  constructor(dirs: Readonly<Record<string, string>>) {
    this.#dirs = new Map(Object.entries(dirs));
  }

  resolve(adapterId: string): Promise<string | undefined> {
    return Promise.resolve(this.#dirs.get(adapterId));
  }
}

export const WEIGHTS_FILE = 'adapter_model.safetensors';
export const CONFIG_FILE = 'adapter_config.json';

/** Object store key of one file of the adapter whose weights hash to `sha256`. */
export const adapterObjectKey = (sha256: string, file: typeof WEIGHTS_FILE | typeof CONFIG_FILE): string =>
  `${sha256}/${file}`;

export class ObjectStoreAdapterResolver implements AdapterResolver {
  constructor(
    private readonly nc: NatsConnection,
    private readonly cacheDir: string,
  ) {}

  async resolve(adapterId: string, sha256: string | null): Promise<string | undefined> {
    if (sha256 === null) return undefined;
    const dir = join(this.cacheDir, sha256);
    if (await exists(join(dir, WEIGHTS_FILE))) return dir; // complete by construction, hash checked when written
    const store = await new Objm(this.nc).open(OBJECT_BUCKETS.adapters.bucket);
    const [weights, config] = await Promise.all([
      store.getBlob(adapterObjectKey(sha256, WEIGHTS_FILE)),
      store.getBlob(adapterObjectKey(sha256, CONFIG_FILE)),
    ]);
    if (weights === null || config === null) return undefined;
    const actual = createHash('sha256').update(weights).digest('hex');
    if (actual !== sha256)
      throw new Error(`adapter ${adapterId}: weights hash to ${actual}, expected ${sha256}`);
    await mkdir(this.cacheDir, { recursive: true });
    const tmp = await mkdtemp(join(this.cacheDir, `.${sha256}-`));
    try {
      await Promise.all([
        writeFile(join(tmp, WEIGHTS_FILE), weights),
        writeFile(join(tmp, CONFIG_FILE), config),
      ]);
      await rename(tmp, dir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      // Another request cached it first: theirs is as good as ours.
      if (!(await exists(join(dir, WEIGHTS_FILE)))) throw err;
    }
    return dir;
  }
}

/** The first resolver that knows the adapter wins. */
export class AdapterResolvers implements AdapterResolver {
  constructor(private readonly resolvers: readonly AdapterResolver[]) {}

  async resolve(adapterId: string, sha256: string | null): Promise<string | undefined> {
    for (const r of this.resolvers) {
      const dir = await r.resolve(adapterId, sha256);
      if (dir !== undefined) return dir;
    }
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

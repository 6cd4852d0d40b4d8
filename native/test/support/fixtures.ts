/**
 * Per-test-file fixture folders: the standard set (with the tokenizer model) and the malformed
 * corpus are generated into a fresh temp dir and removed afterwards.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  STANDARD_ADAPTERS,
  STANDARD_MODELS,
  TOKENIZER_ADAPTERS,
  TOKENIZER_MODEL,
  writeFixtureSet,
  writeMalformedCorpus,
  type AdapterFixture,
  type ModelFixture,
} from '@longtail/model-fixtures';

export const MODELS: readonly ModelFixture[] = [...STANDARD_MODELS, TOKENIZER_MODEL];
export const ADAPTERS: readonly AdapterFixture[] = [...STANDARD_ADAPTERS, ...TOKENIZER_ADAPTERS];

export function modelNamed(name: string): ModelFixture {
  const m = MODELS.find((x) => x.name === name);
  if (m === undefined) throw new Error(`no fixture model ${name}`);
  return m;
}

export function adaptersOf(model: string): readonly AdapterFixture[] {
  return ADAPTERS.filter((a) => a.base === model);
}

export interface FixtureDirs {
  readonly root: string;
  model(name: string): string;
  adapter(name: string): string;
  /** A folder of the malformed corpus (`base`, or an item's name). */
  malformed(name: string): string;
  remove(): Promise<void>;
}

export async function createFixtureDirs(options: { malformed?: boolean } = {}): Promise<FixtureDirs> {
  const root = await mkdtemp(join(tmpdir(), 'longtail-engine-'));
  await writeFixtureSet(join(root, 'set'), { withTokenizer: true });
  if (options.malformed) await writeMalformedCorpus(join(root, 'malformed'));
  return {
    root,
    model: (name) => join(root, 'set', 'models', name),
    adapter: (name) => join(root, 'set', 'adapters', name),
    malformed: (name) => join(root, 'malformed', name),
    remove: () => rm(root, { recursive: true, force: true }),
  };
}

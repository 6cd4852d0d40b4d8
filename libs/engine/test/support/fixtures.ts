/**
 * Fixtures for the binding's tests, generated with @longtail/model-fixtures into a temp dir: the
 * standard set, the malformed corpus, extra adapters over `llama-f32-gqa` (so that many requests
 * can each use a different one) and one bigger model for long generations.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  STANDARD_ADAPTERS,
  STANDARD_MODELS,
  baseShapeOfSpec,
  writeAdapter,
  writeFixtureSet,
  writeMalformedCorpus,
  writeModel,
  type ModelSpec,
} from '@longtail/model-fixtures';

export const GQA = 'llama-f32-gqa';

/** ~22M parameters (bf16 on disk): a few hundred decode tokens take seconds on one thread. */
export const BIG_SPEC: ModelSpec = {
  family: 'llama',
  hidden: 512,
  layers: 8,
  heads: 8,
  kvHeads: 4,
  intermediate: 1024,
  vocab: 4096,
  dtype: 'BF16',
  seed: 77,
};

export interface Fixtures {
  readonly root: string;
  model(name: string): string;
  adapter(name: string): string;
  malformed(name: string): string;
  /** Standard adapters over llama-f32-gqa, then `extra-N` ones: [name, dir]. */
  readonly gqaAdapters: readonly (readonly [string, string])[];
  readonly big: string;
  remove(): Promise<void>;
}

export async function createFixtures(
  options: { extraAdapters?: number; big?: boolean } = {},
): Promise<Fixtures> {
  const root = await mkdtemp(join(tmpdir(), 'longtail-engine-node-'));
  await writeFixtureSet(join(root, 'set'));
  await writeMalformedCorpus(join(root, 'malformed'));
  const gqaSpec = STANDARD_MODELS.find((m) => m.name === GQA)!.spec;
  const gqaAdapters: [string, string][] = STANDARD_ADAPTERS.filter((a) => a.base === GQA).map((a) => [
    a.name,
    join(root, 'set', 'adapters', a.name),
  ]);
  for (let i = 0; i < (options.extraAdapters ?? 0); ++i) {
    const name = `extra-${i}`;
    const dir = join(root, 'extra', name);
    await writeAdapter(
      dir,
      {
        rank: [2, 4, 8, 16][i % 4]!,
        alpha: 16,
        modules: i % 2 ? 'all-linear' : ['q_proj', 'v_proj', 'down_proj'],
        seed: 1000 + i,
      },
      baseShapeOfSpec(gqaSpec),
    );
    gqaAdapters.push([name, dir]);
  }
  const big = join(root, 'big');
  if (options.big) await writeModel(big, BIG_SPEC);
  return {
    root,
    model: (name) => join(root, 'set', 'models', name),
    adapter: (name) => join(root, 'set', 'adapters', name),
    malformed: (name) => join(root, 'malformed', name),
    gqaAdapters,
    big,
    remove: () => rm(root, { recursive: true, force: true }),
  };
}

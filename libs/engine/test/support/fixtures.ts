/**
 * Fixtures for the binding's tests, generated with @longtail/model-fixtures into a temp dir: the
 * standard set, the malformed corpus, extra adapters over `llama-f32-gqa` (so that many requests
 * can each use a different one) and one bigger model for long generations.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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

// ---- the release CLI, as an independent reference ----------------------------------------------

export const ENGINE_BIN =
  process.env['LONGTAIL_ENGINE_BIN'] ??
  resolve(fileURLToPath(import.meta.url), '../../../../../native/build/release/longtail-engine');

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(args: readonly string[], timeoutMs = 60_000): Promise<CliRun> {
  if (!existsSync(ENGINE_BIN))
    throw new Error(`build the engine first: npm run build:native (${ENGINE_BIN} does not exist)`);
  return new Promise((done, fail) => {
    const child = spawn(ENGINE_BIN, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', fail);
    child.on('close', (code) =>
      done({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
  });
}

/** The `error: ` line of a failed CLI run, without the prefix. */
export function cliError(run: CliRun): string | undefined {
  return run.stderr
    .split('\n')
    .find((l) => l.startsWith('error: '))
    ?.slice('error: '.length);
}

/** Whether the release CLI has the `generate` command (the runtime's own greedy path). */
export async function cliHasGenerate(): Promise<boolean> {
  const run = await runCli(['--help']);
  return /^\s+generate\s/m.test(run.stdout + run.stderr);
}

/** `generate` → tokens and finish reason (greedy). */
export async function cliGenerate(
  model: string,
  tokens: readonly number[],
  maxTokens: number,
  adapter?: string,
): Promise<{ tokens: number[]; finish_reason: string }> {
  const args = [
    'generate',
    '--model',
    model,
    ...(adapter ? ['--adapter', adapter] : []),
    '--tokens',
    tokens.join(','),
    '--max-tokens',
    String(maxTokens),
  ];
  const run = await runCli(args);
  if (run.code !== 0) throw new Error(`longtail-engine ${args.join(' ')} → ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as { tokens: number[]; finish_reason: string };
}

/** `logits` of the last position (the non-paged batched engine, no runtime). */
export async function cliLogits(
  model: string,
  tokens: readonly number[],
  adapter?: string,
): Promise<number[]> {
  const args = [
    'logits',
    '--model',
    model,
    ...(adapter ? ['--adapter', adapter] : []),
    '--tokens',
    tokens.join(','),
  ];
  const run = await runCli(args);
  if (run.code !== 0) throw new Error(`longtail-engine ${args.join(' ')} → ${run.code}: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { logits: number[] }).logits;
}

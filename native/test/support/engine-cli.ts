/**
 * Runs the `longtail-engine` CLI the way a person or a benchmark would, and parses its answers.
 * The binary is `native/build/release/longtail-engine` (override: LONGTAIL_ENGINE_BIN). Tests never
 * skip when it is missing: they fail and say how to build it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ENGINE_BIN =
  process.env['LONGTAIL_ENGINE_BIN'] ??
  resolve(fileURLToPath(import.meta.url), '../../../build/release/longtail-engine');

export function requireEngine(): string {
  if (!existsSync(ENGINE_BIN)) {
    throw new Error(`build the engine first: npm run build:native (${ENGINE_BIN} does not exist)`);
  }
  return ENGINE_BIN;
}

export interface EngineRun {
  /** null when the process died from a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runEngine(args: readonly string[], timeoutMs = 60_000): Promise<EngineRun> {
  const bin = requireEngine();
  return new Promise((done, fail) => {
    const child = spawn(bin, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', fail);
    child.on('close', (code, signal) =>
      done({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
  });
}

function describeRun(args: readonly string[], run: EngineRun): string {
  return `longtail-engine ${args.join(' ')} → code ${run.code} signal ${run.signal}\nstderr: ${run.stderr.slice(0, 2000)}`;
}

async function runJson(args: readonly string[]): Promise<unknown> {
  const run = await runEngine(args);
  if (run.code !== 0) throw new Error(describeRun(args, run));
  try {
    return JSON.parse(run.stdout);
  } catch (cause) {
    throw new Error(`${describeRun(args, run)}\nstdout is not JSON: ${run.stdout.slice(0, 500)}`, { cause });
  }
}

/** `logits --model M [--adapter A] --tokens 1,2,3` → last-position logits. */
export async function engineLogits(
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
  const answer = (await runJson(args)) as { logits?: unknown };
  if (!Array.isArray(answer.logits)) throw new Error(`no "logits" array in the answer to ${args.join(' ')}`);
  return answer.logits as number[];
}

/** `generate --model M [--adapter A] --tokens 1,2,3 --max-tokens N [...extra]` → tokens and finish reason. */
export async function engineGenerate(
  model: string,
  tokens: readonly number[],
  maxTokens: number,
  adapter?: string,
  extra: readonly string[] = [],
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
    ...extra,
  ];
  const answer = (await runJson(args)) as { tokens?: unknown; finish_reason?: unknown };
  if (!Array.isArray(answer.tokens)) throw new Error(`no "tokens" array in the answer to ${args.join(' ')}`);
  return { tokens: answer.tokens as number[], finish_reason: String(answer.finish_reason) };
}

export interface BatchSequence {
  readonly tokens: readonly number[];
  readonly adapter: string | null;
  /** Feed this many prompt tokens per step (prefill in chunks); all at once when absent. */
  readonly chunk?: number;
}

/** `logits --model M --batch FILE` → each sequence's last-position logits, in order. */
export async function engineBatch(
  model: string,
  sequences: readonly BatchSequence[],
  scratchDir: string,
): Promise<number[][]> {
  const file = join(scratchDir, `batch-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify(sequences));
  const answer = (await runJson(['logits', '--model', model, '--batch', file])) as {
    results?: { logits: number[] }[];
  };
  if (!Array.isArray(answer.results) || answer.results.length !== sequences.length) {
    throw new Error(
      `expected ${sequences.length} results from the batch ${file}, got ${JSON.stringify(answer).slice(0, 200)}`,
    );
  }
  return answer.results.map((r) => r.logits);
}

export async function engineInspect(model: string, adapter?: string): Promise<EngineRun> {
  return runEngine(['inspect', '--model', model, ...(adapter ? ['--adapter', adapter] : [])]);
}

#!/usr/bin/env node
/**
 * Command line for the fixture generator; runs directly on Node 24 (`node libs/model-fixtures/src/cli.ts`).
 * Prints usage and exits 2 on bad arguments.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PROJECTIONS, type AdapterSpec, type Projection } from './adapter/spec.ts';
import { readBaseShape, writeAdapter } from './adapter/write.ts';
import { writeMalformedCorpus } from './corpus/malformed.ts';
import { writeFixtureSet } from './corpus/standard.ts';
import type { ModelSpec, RopeScaling } from './model/spec.ts';
import { writeModel } from './model/write.ts';
import { parseDtype } from './safetensors/dtype.ts';

const USAGE = `usage: node libs/model-fixtures/src/cli.ts <command> [options]

commands:
  model     --out DIR --hidden H --layers L --heads NH --kv-heads NKV --intermediate I --vocab V
            --dtype f32|f16|bf16 --seed S [--tied] [--qkv-bias] [--rope-scaling llama3|linear]
            [--rope-factor F] [--rope-theta T] [--shards N] [--max-pos P] [--tokenizer llama3]
            (--qkv-bias writes a Qwen2ForCausalLM; llama3 scaling uses factor 8, low 1, high 4,
             original context 64 unless --rope-factor / --rope-original-max are given)
  adapter   --base DIR --out DIR --rank R --alpha A --modules q,k,v,o,gate,up,down|all-linear --seed S
            [--rslora] [--dtype f32|f16|bf16] [--rank-pattern q_proj=8,v_proj=4] [--alpha-pattern q_proj=16]
  fixtures  --out DIR [--with-tokenizer]   the standard set of models and adapters + manifest.json
  malformed --out DIR                      broken models/adapters, one folder per defect + manifest.json
`;

class UsageError extends Error {}

const options = {
  out: { type: 'string' },
  hidden: { type: 'string' },
  layers: { type: 'string' },
  heads: { type: 'string' },
  'kv-heads': { type: 'string' },
  intermediate: { type: 'string' },
  vocab: { type: 'string' },
  dtype: { type: 'string' },
  seed: { type: 'string' },
  tied: { type: 'boolean' },
  'qkv-bias': { type: 'boolean' },
  'rope-scaling': { type: 'string' },
  'rope-factor': { type: 'string' },
  'rope-original-max': { type: 'string' },
  'rope-theta': { type: 'string' },
  shards: { type: 'string' },
  'max-pos': { type: 'string' },
  tokenizer: { type: 'string' },
  base: { type: 'string' },
  rank: { type: 'string' },
  alpha: { type: 'string' },
  modules: { type: 'string' },
  rslora: { type: 'boolean' },
  'rank-pattern': { type: 'string' },
  'alpha-pattern': { type: 'string' },
  'with-tokenizer': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

type Values = Partial<Record<keyof typeof options, string | boolean>>;

function required(values: Values, name: keyof typeof options): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing --${name}`);
  return v;
}

function int(values: Values, name: keyof typeof options, fallback?: number): number {
  const v = values[name];
  if (v === undefined && fallback !== undefined) return fallback;
  const text = required(values, name);
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`--${name} must be a non-negative integer, got "${text}"`);
  return n;
}

function num(values: Values, name: keyof typeof options, fallback?: number): number {
  const v = values[name];
  if (v === undefined && fallback !== undefined) return fallback;
  const text = required(values, name);
  const n = Number(text);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${text}"`);
  return n;
}

function dtypeOption(values: Values, fallback?: string): ReturnType<typeof parseDtype> {
  try {
    return parseDtype(
      typeof values.dtype === 'string' ? values.dtype : (fallback ?? required(values, 'dtype')),
    );
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** `q_proj=8,v_proj=4` → { q_proj: 8, v_proj: 4 } */
function pattern(values: Values, name: 'rank-pattern' | 'alpha-pattern'): Record<string, number> | undefined {
  const text = values[name];
  if (typeof text !== 'string') return undefined;
  const out: Record<string, number> = {};
  for (const part of text.split(',')) {
    const [key, value] = part.split('=');
    const n = Number(value);
    if (!key || value === undefined || !Number.isFinite(n))
      throw new UsageError(`--${name}: expected key=number pairs, got "${part}"`);
    out[key] = n;
  }
  return out;
}

/** `q,v` / `q_proj,v_proj` / `all-linear` */
function modules(text: string): AdapterSpec['modules'] {
  if (text === 'all-linear') return 'all-linear';
  return text.split(',').map((m) => {
    const name = m.endsWith('_proj') ? m : `${m}_proj`;
    if (!(PROJECTIONS as readonly string[]).includes(name)) {
      throw new UsageError(`--modules: unknown module "${m}" (expected q,k,v,o,gate,up,down or all-linear)`);
    }
    return name as Projection;
  });
}

function ropeScaling(values: Values): RopeScaling | undefined {
  const kind = values['rope-scaling'];
  if (kind === undefined) return undefined;
  if (kind === 'linear') return { type: 'linear', factor: num(values, 'rope-factor', 4) };
  if (kind === 'llama3') {
    return {
      type: 'llama3',
      factor: num(values, 'rope-factor', 8),
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositions: int(values, 'rope-original-max', 64),
    };
  }
  throw new UsageError(`--rope-scaling must be llama3 or linear, got "${String(kind)}"`);
}

async function main(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({ args: [...rest], options, strict: true, allowPositionals: false }) as {
    values: Values;
  };
  if (
    values.help ||
    command === undefined ||
    command === 'help' ||
    command === '--help' ||
    command === '-h'
  ) {
    process.stdout.write(USAGE);
    return;
  }
  switch (command) {
    case 'model': {
      const tokenizer = values.tokenizer;
      if (tokenizer !== undefined && tokenizer !== 'llama3')
        throw new UsageError(`--tokenizer must be llama3, got "${String(tokenizer)}"`);
      const scaling = ropeScaling(values);
      const spec: ModelSpec = {
        family: values['qkv-bias'] ? 'qwen2' : 'llama',
        hidden: int(values, 'hidden'),
        layers: int(values, 'layers'),
        heads: int(values, 'heads'),
        kvHeads: int(values, 'kv-heads'),
        intermediate: int(values, 'intermediate'),
        vocab: int(values, 'vocab'),
        dtype: dtypeOption(values),
        seed: int(values, 'seed'),
        tiedEmbeddings: values.tied === true,
        shards: int(values, 'shards', 1),
        ...(scaling ? { ropeScaling: scaling } : {}),
        ...(values['rope-theta'] !== undefined ? { ropeTheta: num(values, 'rope-theta') } : {}),
        ...(values['max-pos'] !== undefined ? { maxPositions: int(values, 'max-pos') } : {}),
        ...(tokenizer === 'llama3' ? { tokenizer } : {}),
      };
      const written = await writeModel(required(values, 'out'), spec);
      process.stdout.write(
        `${JSON.stringify({ model: written.dir, files: written.weightFiles, tensors: written.tensorNames.length })}\n`,
      );
      return;
    }
    case 'adapter': {
      const base = required(values, 'base');
      const rankPattern = pattern(values, 'rank-pattern');
      const alphaPattern = pattern(values, 'alpha-pattern');
      const spec: AdapterSpec = {
        rank: int(values, 'rank'),
        alpha: num(values, 'alpha'),
        modules: modules(required(values, 'modules')),
        seed: int(values, 'seed'),
        dtype: dtypeOption(values, 'f32'),
        rslora: values.rslora === true,
        baseModelName: base,
        ...(rankPattern ? { rankPattern } : {}),
        ...(alphaPattern ? { alphaPattern } : {}),
      };
      if (spec.rank === 0)
        throw new UsageError('--rank must be at least 1 (the malformed corpus has a rank-0 adapter)');
      const written = await writeAdapter(required(values, 'out'), spec, await readBaseShape(base));
      process.stdout.write(
        `${JSON.stringify({ adapter: written.dir, tensors: written.tensorNames.length })}\n`,
      );
      return;
    }
    case 'fixtures': {
      const out = required(values, 'out');
      const manifest = await writeFixtureSet(out, { withTokenizer: values['with-tokenizer'] === true });
      process.stdout.write(
        `${JSON.stringify({ manifest: `${out}/manifest.json`, models: manifest.models.length, adapters: manifest.adapters.length })}\n`,
      );
      return;
    }
    case 'malformed': {
      const out = required(values, 'out');
      const manifest = await writeMalformedCorpus(out);
      process.stdout.write(
        `${JSON.stringify({ manifest: `${out}/manifest.json`, items: manifest.items.length })}\n`,
      );
      return;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  process.stderr.write(`error: ${(err as Error).message}\n`);
  if (usage) process.stderr.write(`\n${USAGE}`);
  process.exitCode = usage ? 2 : 1;
}

/**
 * The model every serving e2e test runs: a tiny Llama (hidden 32, 2 layers) with the real Llama 3
 * tokenizer and chat template, and PEFT adapters over it, written by the model-fixtures CLI.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../libs/model-fixtures/src/cli.ts', import.meta.url));
const fixtures = (...args: string[]): void => void execFileSync(process.execPath, [cli, ...args]);

export function writeServingModel(dir: string, seed = 8): void {
  fixtures(
    'model',
    '--out',
    dir,
    '--hidden',
    '32',
    '--layers',
    '2',
    '--heads',
    '2',
    '--kv-heads',
    '1',
    '--intermediate',
    '64',
    '--vocab',
    '128256',
    '--dtype',
    'f32',
    '--seed',
    String(seed),
    '--tied',
    '--max-pos',
    '4096',
    '--tokenizer',
    'llama3',
  );
}

/** An all-linear LoRA adapter of `rank` over the model in `base`. */
export function writeServingAdapter(base: string, out: string, seed: number, rank = 4): void {
  fixtures(
    'adapter',
    '--base',
    base,
    '--out',
    out,
    '--rank',
    String(rank),
    '--alpha',
    '16',
    '--modules',
    'all-linear',
    '--seed',
    String(seed),
  );
}

/**
 * Random damage to a valid model's weights file (a truncation, a flipped header byte, a random
 * header length, a rewritten offset or shape) must end in a clean answer: exit 0 when the damage
 * happens to leave a valid file, otherwise exit 1 with an `error: ` line. Never a signal, never
 * another exit code. Deterministic: the cases come from a fixed seed.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseShapeOfSpec, writeAdapter, writeModel, type ModelSpec } from '@longtail/model-fixtures';
import { engineInspect, requireEngine } from './support/engine-cli.ts';

const SPEC: ModelSpec = {
  family: 'llama',
  hidden: 32,
  layers: 2,
  heads: 2,
  kvHeads: 1,
  intermediate: 64,
  vocab: 64,
  dtype: 'BF16',
  seed: 21,
};
const CASES = 160;

/** mulberry32: the cases are the same on every run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Mutation = (file: Buffer, headerLength: number, next: () => number) => { bytes: Buffer; what: string };

const MUTATIONS: readonly Mutation[] = [
  (file, _n, next) => {
    const at = Math.floor(next() * file.length);
    return { bytes: file.subarray(0, at), what: `truncated to ${at} bytes` };
  },
  (file, n, next) => {
    const bytes = Buffer.from(file);
    const at = 8 + Math.floor(next() * n);
    bytes[at] = Math.floor(next() * 256);
    return { bytes, what: `header byte ${at} set to ${bytes[at]}` };
  },
  (file, _n, next) => {
    const bytes = Buffer.from(file);
    const length = BigInt(Math.floor(next() * 2 ** 32)) * (next() < 0.3 ? 2n ** 31n : 1n);
    bytes.writeBigUInt64LE(length, 0);
    return { bytes, what: `header length ${length}` };
  },
  (file, n, next) => {
    // Replace one number in the JSON header (an offset or a shape entry) keeping the header length.
    const header = file.subarray(8, 8 + n).toString('latin1');
    const numbers = [...header.matchAll(/\d+/g)];
    const pick = numbers[Math.floor(next() * numbers.length)]!;
    const replacement = String(Math.floor(next() * 10 ** pick[0].length)).padStart(pick[0].length, '0');
    const patched = header.slice(0, pick.index) + replacement + header.slice(pick.index + pick[0].length);
    return {
      bytes: Buffer.concat([file.subarray(0, 8), Buffer.from(patched, 'latin1'), file.subarray(8 + n)]),
      what: `header number at ${pick.index} ${pick[0]} → ${replacement}`,
    };
  },
];

describe('randomly damaged weights never crash the engine', () => {
  let dir: string;
  let originalModel: Buffer;
  let originalAdapter: Buffer;

  beforeAll(async () => {
    requireEngine();
    dir = await mkdtemp(join(tmpdir(), 'longtail-corruption-'));
    await writeModel(join(dir, 'valid'), SPEC);
    await writeAdapter(
      join(dir, 'adapter'),
      { rank: 4, alpha: 8, modules: 'all-linear', seed: 22 },
      baseShapeOfSpec(SPEC),
    );
    originalModel = await readFile(join(dir, 'valid', 'model.safetensors'));
    originalAdapter = await readFile(join(dir, 'adapter', 'adapter_model.safetensors'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`${CASES} mutations of model and adapter files: exit 0 or exit 1 with an error line`, async () => {
    const next = random(12345);
    const failures: string[] = [];
    for (let i = 0; i < CASES; i++) {
      const onAdapter = i % 2 === 1;
      const original = onAdapter ? originalAdapter : originalModel;
      const mutation = MUTATIONS[Math.floor(i / 2) % MUTATIONS.length]!;
      const { bytes, what } = mutation(original, Number(original.readBigUInt64LE(0)), next);
      const caseDir = join(dir, `case-${i}`);
      await mkdir(caseDir);
      let run;
      if (onAdapter) {
        await copyFile(join(dir, 'adapter', 'adapter_config.json'), join(caseDir, 'adapter_config.json'));
        await writeFile(join(caseDir, 'adapter_model.safetensors'), bytes);
        run = await engineInspect(join(dir, 'valid'), caseDir);
      } else {
        await copyFile(join(dir, 'valid', 'config.json'), join(caseDir, 'config.json'));
        await writeFile(join(caseDir, 'model.safetensors'), bytes);
        run = await engineInspect(caseDir);
      }
      const clean =
        run.signal === null && (run.code === 0 || (run.code === 1 && /^error: /m.test(run.stderr)));
      if (!clean) {
        const file = onAdapter ? 'adapter' : 'model';
        failures.push(
          `case ${i}, ${file} ${what}: code ${run.code} signal ${run.signal} ${run.stderr.slice(0, 300)}`,
        );
      }
      await rm(caseDir, { recursive: true, force: true });
    }
    expect(failures).toEqual([]);
  });
});

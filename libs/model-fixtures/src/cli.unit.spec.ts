import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MALFORMED_ITEMS } from './corpus/malformed.ts';
import { STANDARD_ADAPTERS, STANDARD_MODELS, type FixtureManifest } from './corpus/standard.ts';
import {
  loadReferenceAdapter,
  loadReferenceModel,
  mergeAdapter,
  referenceLogits,
} from './reference/forward.ts';

const CLI = fileURLToPath(new URL('./cli.ts', import.meta.url));
const run = promisify(execFile);

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function digest(dir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const entry of (await readdir(dir, { recursive: true, withFileTypes: true })).sort((a, b) =>
    join(a.parentPath, a.name) < join(b.parentPath, b.name) ? -1 : 1,
  )) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    hash.update(path.slice(dir.length)).update(await readFile(path));
  }
  return hash.digest('hex');
}

describe('fixture CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fixtures-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints usage and exits 2 on bad arguments', async () => {
    for (const args of [
      [],
      ['bogus'],
      ['model', '--out', dir],
      ['adapter', '--modules', 'q,x'],
      ['model', '--nope'],
    ]) {
      const result = await cli(...args);
      if (args.length === 0) {
        expect(result).toMatchObject({ code: 0, stdout: expect.stringContaining('usage:') });
      } else {
        expect(result.code, args.join(' ')).toBe(2);
        expect(result.stderr).toMatch(/^error: .*\n\nusage:/s);
      }
    }
  });

  it('writes the standard set with a manifest, byte for byte the same on every run', async () => {
    expect((await cli('fixtures', '--out', join(dir, 'a'))).code).toBe(0);
    expect((await cli('fixtures', '--out', join(dir, 'b'))).code).toBe(0);
    const manifest = JSON.parse(await readFile(join(dir, 'a', 'manifest.json'), 'utf8')) as FixtureManifest;
    expect(manifest.models.map((m) => m.name)).toEqual(STANDARD_MODELS.map((m) => m.name));
    expect(manifest.adapters.map((a) => a.name)).toEqual(STANDARD_ADAPTERS.map((a) => a.name));
    const features = new Set([...manifest.models, ...manifest.adapters].flatMap((x) => x.features));
    for (const f of [
      'f32',
      'f16',
      'bf16',
      'tied-embeddings',
      'qkv-bias',
      'rope-llama3',
      'rope-linear',
      'gqa',
      'mha',
      'sharded',
      'rank-1',
      'rank-4',
      'rank-16',
      'rank-64',
      'q-v',
      'all-seven',
      'all-linear',
      'rslora',
      'rank-pattern',
      'alpha-pattern',
    ]) {
      expect(features, f).toContain(f);
    }
    expect(await readdir(join(dir, 'a', 'models', 'llama-sharded-bf16'))).toEqual(
      expect.arrayContaining([
        'model-00001-of-00003.safetensors',
        'model-00002-of-00003.safetensors',
        'model-00003-of-00003.safetensors',
        'model.safetensors.index.json',
      ]),
    );
    expect(await digest(join(dir, 'a'))).toBe(await digest(join(dir, 'b')));
  });

  it('writes a model and an adapter that the reference can run', async () => {
    const model = join(dir, 'm');
    const adapter = join(dir, 'ad');
    expect(
      (
        await cli(
          'model',
          '--out',
          model,
          '--hidden',
          '32',
          '--layers',
          '1',
          '--heads',
          '4',
          '--kv-heads',
          '2',
          '--intermediate',
          '40',
          '--vocab',
          '50',
          '--dtype',
          'bf16',
          '--seed',
          '3',
          '--tied',
          '--qkv-bias',
          '--rope-scaling',
          'linear',
          '--shards',
          '2',
        )
      ).code,
    ).toBe(0);
    const config = JSON.parse(await readFile(join(model, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({
      model_type: 'qwen2',
      architectures: ['Qwen2ForCausalLM'],
      tie_word_embeddings: true,
      torch_dtype: 'bfloat16',
      rope_scaling: { type: 'linear', factor: 4 },
    });
    const result = await cli(
      'adapter',
      '--base',
      model,
      '--out',
      adapter,
      '--rank',
      '4',
      '--alpha',
      '8',
      '--modules',
      'q,v,down',
      '--seed',
      '1',
      '--rslora',
      '--rank-pattern',
      'v_proj=2',
      '--alpha-pattern',
      'q_proj=16',
    );
    expect(result.code, result.stderr).toBe(0);
    const adapterConfig = JSON.parse(await readFile(join(adapter, 'adapter_config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(adapterConfig).toMatchObject({
      peft_type: 'LORA',
      r: 4,
      lora_alpha: 8,
      use_rslora: true,
      target_modules: ['q_proj', 'v_proj', 'down_proj'],
      rank_pattern: { v_proj: 2 },
      alpha_pattern: { q_proj: 16 },
    });
    const base = await loadReferenceModel(model);
    const merged = mergeAdapter(base, await loadReferenceAdapter(adapter));
    expect(merged.weights.get('model.layers.0.self_attn.q_proj.bias')).toBeDefined();
    expect(referenceLogits(merged, [1, 2, 3])).toHaveLength(50);
  });

  it('writes the malformed corpus: one folder per defect, listed with its expected error', async () => {
    expect((await cli('malformed', '--out', join(dir, 'bad'))).code).toBe(0);
    const manifest = JSON.parse(await readFile(join(dir, 'bad', 'manifest.json'), 'utf8')) as {
      items: { name: string }[];
    };
    expect(manifest.items.map((i) => i.name)).toEqual(MALFORMED_ITEMS.map((i) => i.name));
    const folders = await readdir(join(dir, 'bad'));
    for (const item of MALFORMED_ITEMS) expect(folders).toContain(item.name);
  });
});

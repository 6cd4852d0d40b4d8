/**
 * Every broken model or adapter in the malformed corpus is rejected by `inspect` (and by `logits`)
 * with exit code 1 and one stderr line `error: <message>` that names the problem, the file and,
 * where there is one, the tensor; never with a crash signal. Valid fixtures pass `inspect`.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MALFORMED_ITEMS } from '@longtail/model-fixtures';
import { engineInspect, requireEngine, runEngine, type EngineRun } from './support/engine-cli.ts';
import { ADAPTERS, MODELS, createFixtureDirs, type FixtureDirs } from './support/fixtures.ts';

function expectRejection(run: EngineRun, expectation: (typeof MALFORMED_ITEMS)[number]['expect']): void {
  const context = `code ${run.code}, signal ${run.signal}, stderr: ${run.stderr}`;
  expect(run.signal, context).toBeNull();
  expect(run.code, context).toBe(1);
  const line = run.stderr.split('\n').find((l) => l.startsWith('error: '));
  expect(line, `no "error: " line in stderr: ${run.stderr}`).toBeDefined();
  const message = line!.toLowerCase();
  expect(
    expectation.anyOf.some((word) => message.includes(word.toLowerCase())),
    `"${line}" should say one of ${expectation.anyOf.join(' | ')}`,
  ).toBe(true);
  if (expectation.file) expect(line, 'the message names the file').toContain(expectation.file);
  if (expectation.tensor) expect(line, 'the message names the tensor').toContain(expectation.tensor);
}

describe('malformed files are rejected with a message, never a crash', () => {
  let dirs: FixtureDirs;

  beforeAll(async () => {
    requireEngine();
    dirs = await createFixtureDirs({ malformed: true });
  });
  afterAll(async () => {
    await dirs?.remove();
  });

  it('the corpus base model itself is valid', async () => {
    const run = await engineInspect(dirs.malformed('base'));
    expect(run.code, run.stderr).toBe(0);
  });

  describe.each(MALFORMED_ITEMS.map((item) => [item.name, item] as const))('%s', (name, item) => {
    it(`inspect rejects it: ${item.defect}`, async () => {
      const run = await engineInspect(
        dirs.malformed(item.model),
        item.adapter ? dirs.malformed(item.adapter) : undefined,
      );
      expectRejection(run, item.expect);
    });

    it('logits rejects it too', async () => {
      const args = [
        'logits',
        '--model',
        dirs.malformed(item.model),
        ...(item.adapter ? ['--adapter', dirs.malformed(item.adapter)] : []),
        '--tokens',
        '1,2,3',
      ];
      expectRejection(await runEngine(args), item.expect);
    });
  });

  describe.each(
    MALFORMED_ITEMS.filter((item) => item.adapter !== undefined).map((item) => [item.name, item] as const),
  )('%s in a batch', (name, item) => {
    it('a batch that uses the adapter next to a valid sequence is rejected', async () => {
      const file = join(dirs.root, `bad-batch-${name}.json`);
      await writeFile(
        file,
        JSON.stringify([
          { tokens: [1, 2], adapter: null },
          { tokens: [3], adapter: dirs.malformed(item.adapter!) },
        ]),
      );
      expectRejection(
        await runEngine(['logits', '--model', dirs.malformed(item.model), '--batch', file]),
        item.expect,
      );
    });
  });

  describe('bad requests are refused with an error line, not a crash', () => {
    const refused = (run: EngineRun): void => {
      expect(run.signal, run.stderr).toBeNull();
      expect(run.code, run.stderr).not.toBe(0);
      expect(run.stderr).toMatch(/error/);
    };

    it.each([['256'], ['-1'], ['1,2,99999']])('token ids %s outside the vocabulary', async (tokens) => {
      refused(await runEngine(['logits', '--model', dirs.model('llama-f32-gqa'), '--tokens', tokens]));
    });

    it.each([
      ['an empty token list', [{ tokens: [], adapter: null }]],
      ['a zero chunk', [{ tokens: [1, 2], adapter: null, chunk: 0 }]],
      ['not an array', { tokens: [1] }],
      ['an adapter folder that does not exist', [{ tokens: [1], adapter: '/nonexistent/adapter' }]],
    ])('a batch file with %s', async (label, batch) => {
      const file = join(dirs.root, `request-${label.replaceAll(' ', '-')}.json`);
      await writeFile(file, JSON.stringify(batch));
      refused(await runEngine(['logits', '--model', dirs.model('llama-f32-gqa'), '--batch', file]));
    });

    it('an adapter made for another base model (shapes differ)', async () => {
      const run = await engineInspect(dirs.model('llama-rope-linear-f16'), dirs.adapter('gqa-r4-all7'));
      expect(run.signal, run.stderr).toBeNull();
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toMatch(/^error: .*shape/m);
    });
  });

  describe('valid fixtures pass inspect with a JSON summary', () => {
    it.each(MODELS.map((m) => [m.name] as const))('model %s', async (name) => {
      const run = await engineInspect(dirs.model(name));
      expect(run.code, run.stderr).toBe(0);
      expect(() => JSON.parse(run.stdout)).not.toThrow();
    });

    it.each(ADAPTERS.map((a) => [a.name, a.base] as const))('adapter %s on %s', async (name, base) => {
      const run = await engineInspect(dirs.model(base), dirs.adapter(name));
      expect(run.code, run.stderr).toBe(0);
      expect(() => JSON.parse(run.stdout)).not.toThrow();
    });
  });
});

/**
 * The generated artefacts (schemas/*.json, docs/events.md) must be what the code generates now.
 * Run with UPDATE_CONTRACTS=1 to rewrite them; otherwise a difference fails with the command to run.
 * Generated text goes through Prettier with the repository's settings, so `npm run format` leaves it alone.
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Ajv2020 } from 'ajv/dist/2020.js';
import * as prettier from 'prettier';
import { beforeAll, describe, expect, it } from 'vitest';

import { encodeEvent } from './codec.js';
import { REGENERATE_COMMAND, generatedFiles, type GeneratedFile } from './docs/render.js';
import { exampleEvent } from './examples.js';
import { eventJsonSchema } from './json-schema.js';
import { eventDefinitions } from './registry.js';

const packageRoot = new URL('../', import.meta.url);
const updating = process.env.UPDATE_CONTRACTS === '1';

async function formatted(file: GeneratedFile): Promise<string> {
  const filepath = fileURLToPath(new URL(file.path, packageRoot));
  const options = (await prettier.resolveConfig(filepath)) ?? {};
  return prettier.format(file.content, { ...options, filepath });
}

async function readOrEmpty(url: URL): Promise<string> {
  try {
    return await readFile(url, 'utf8');
  } catch {
    return '';
  }
}

describe('generated contract files', () => {
  let files: { file: GeneratedFile; expected: string; url: URL }[] = [];

  beforeAll(async () => {
    files = await Promise.all(
      generatedFiles().map(async (file) => ({
        file,
        expected: await formatted(file),
        url: new URL(file.path, packageRoot),
      })),
    );
    if (updating) {
      for (const { expected, url } of files) {
        await mkdir(dirname(fileURLToPath(url)), { recursive: true });
        await writeFile(url, expected);
      }
    }
  }, 60_000);

  it('given the committed schema files and docs/events.md, then each equals what the code generates', async () => {
    for (const { file, expected, url } of files) {
      const actual = await readOrEmpty(url);
      expect(actual, `${file.path} is out of date; regenerate with: ${REGENERATE_COMMAND}`).toBe(expected);
    }
  });

  it('given the schemas folder, then it holds exactly one file per known event version', async () => {
    const expected = files
      .filter(({ file }) => file.path.startsWith('schemas/'))
      .map(({ file }) => file.path.slice('schemas/'.length));

    const actual = (await readdir(new URL('schemas/', packageRoot))).filter((name) => name.endsWith('.json'));

    expect(actual.sort(), `stale or missing schema files; regenerate with: ${REGENERATE_COMMAND}`).toEqual(
      expected.sort(),
    );
  });
});

describe('JSON Schema agrees with the zod schemas', () => {
  const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });

  it.each(
    eventDefinitions().map(
      (definition) => [`${definition.type} v${definition.version}`, definition] as const,
    ),
  )(
    'given the example %s, then its JSON Schema accepts it and rejects it with data broken or an extra key',
    (_name, definition) => {
      const validate = ajv.compile(eventJsonSchema(definition));
      const wire = JSON.parse(new TextDecoder().decode(encodeEvent(exampleEvent(definition)))) as Record<
        string,
        unknown
      >;

      expect(validate(wire), JSON.stringify(validate.errors)).toBe(true);
      expect(validate({ ...wire, data: { ...(wire.data as object), unexpected: 1 } })).toBe(false);
      expect(validate({ ...wire, version: definition.version + 1 })).toBe(false);
      expect(validate({ ...wire, id: 'not-a-uuid' })).toBe(false);
    },
  );

  it('given every schema, then it declares draft 2020-12 and a unique $id', () => {
    const schemas = eventDefinitions().map((definition) => eventJsonSchema(definition));

    for (const schema of schemas) expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(new Set(schemas.map((schema) => schema.$id)).size).toBe(schemas.length);
  });
});

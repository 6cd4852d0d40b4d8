/**
 * The adapter registry over HTTP with real NATS: a real PEFT adapter (model-fixtures) is accepted,
 * stored under the worker's layout and recorded; every malformed adapter of the corpus, a pickle,
 * an oversize file and bad names are refused with nothing stored; GET, DELETE and private
 * visibility per tenant.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Module, type INestApplication } from '@nestjs/common';
import { APP_FILTER, NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Objm } from '@nats-io/obj';
import { OBJECT_BUCKETS, STREAMS } from '@longtail/contracts';
import { connectMessaging, type MessagingConnection } from '@longtail/messaging';
import { serviceMessaging } from '@longtail/service';
import { startNatsServer, waitFor, type NatsServer } from '@longtail/testenv';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Authentication } from '../auth/authenticator.js';
import { AUTHENTICATOR } from '../auth/principal.js';
import { ADMIN_KEY_DIGEST, AdminKeyGuard, digestKey } from '../http/admin-key.guard.js';
import { InferenceKeyGuard } from '../http/inference-key.guard.js';
import { OpenAiErrorFilter } from '../http/openai-errors.js';
import { GATEWAY_LOGGER } from '../logger.token.js';
import { AdapterCatalog } from './adapter-catalog.js';
import { adapterRegistryProviders } from './adapter-registry.providers.js';
import { AdaptersController } from './adapters.controller.js';

const root = new URL('../../../../', import.meta.url).pathname;
const cli = `${root}libs/model-fixtures/src/cli.ts`;
const ADMIN_KEY = 'lt_admin_test_key_0123456789abcdef';
const MAX_UPLOAD = 64 * 1024;
const CREATOR = '0x1111111111111111111111111111111111111111';

interface MalformedItem {
  name: string;
  kind: 'model' | 'adapter';
  adapter?: string;
  expect: { anyOf: string[]; tensor?: string };
}

/** Keys `key-<tenant>` belong to `<tenant>` (scopes inference and adapters; admin only with the admin key). */
const authenticator = {
  authenticate: (token: string): Promise<Authentication> =>
    Promise.resolve(
      token.startsWith('key-')
        ? {
            ok: true,
            principal: {
              tenantId: token.slice(4),
              apiKeyId: `k-${token}`,
              scopes: ['inference', 'adapters'],
              limits: undefined,
            },
          }
        : { ok: false, reason: 'unknown' },
    ),
};

describe('adapter registry (HTTP, real NATS)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'adapters-int-'));
  const corpus = join(dir, 'corpus');
  const modelConfigDir = join(dir, 'models');
  let nats: NatsServer;
  let conn: MessagingConnection;
  let app: INestApplication;
  let base: string;
  let items: MalformedItem[];

  const objectNames = async (): Promise<string[]> => {
    const store = await new Objm(conn.nc).open(OBJECT_BUCKETS.adapters.bucket);
    return (await store.list()).map((o) => o.name).sort();
  };
  const adapterEvents = async (): Promise<number> =>
    (await (await conn.jsm()).streams.info(STREAMS.ADAPTERS.name)).state.messages;

  const form = (fields: Record<string, string>, files: Record<string, Uint8Array>): FormData => {
    const f = new FormData();
    for (const [k, v] of Object.entries(fields)) f.append(k, v);
    for (const [name, bytes] of Object.entries(files)) f.append(name, new Blob([bytes]), name);
    return f;
  };
  const fields = (name: string, visibility = 'public'): Record<string, string> => ({
    name,
    baseModel: 'tiny',
    visibility,
    pricePer1kTokens: '1000',
    creatorAddress: CREATOR,
    trainedOn: '[]',
  });
  const filesOf = (folder: string): Record<string, Uint8Array> => ({
    'adapter_config.json': readFileSync(join(folder, 'adapter_config.json')),
    'adapter_model.safetensors': readFileSync(join(folder, 'adapter_model.safetensors')),
  });
  const url = (path: string): string => `${base}${path}`;
  const post = (body: FormData, key = 'key-alice'): Promise<Response> =>
    fetch(url('/v1/adapters'), { method: 'POST', headers: { authorization: `Bearer ${key}` }, body });
  const get = (path: string, key = 'key-alice'): Promise<Response> =>
    fetch(url(path), { headers: { authorization: `Bearer ${key}` } });

  beforeAll(async () => {
    nats = await startNatsServer();
    conn = await connectMessaging({ servers: nats.url, name: 'adapters-int-test' });
    execFileSync(process.execPath, [cli, 'malformed', '--out', corpus]);
    execFileSync('mkdir', ['-p', join(modelConfigDir, 'tiny')]);
    execFileSync('cp', [join(corpus, 'base', 'config.json'), join(modelConfigDir, 'tiny', 'config.json')]);
    for (const [out, args] of [
      ['good', ['--rank', '4', '--alpha', '8', '--modules', 'q,v', '--seed', '1']],
      ['good2', ['--rank', '2', '--alpha', '4', '--modules', 'all-linear', '--seed', '2', '--dtype', 'bf16']],
      ['good3', ['--rank', '4', '--alpha', '8', '--modules', 'k,o', '--seed', '3']],
    ] as const)
      execFileSync(process.execPath, [
        cli,
        'adapter',
        '--base',
        join(corpus, 'base'),
        '--out',
        join(dir, out),
        ...args,
      ]);
    items = (JSON.parse(readFileSync(join(corpus, 'manifest.json'), 'utf8')) as { items: MalformedItem[] })
      .items;

    const logger = pino({ level: 'silent' });
    @Module({
      imports: [serviceMessaging({ name: 'gateway-test', natsUrl: nats.url, logger, consume: false })],
      controllers: [AdaptersController],
      providers: [
        { provide: ADMIN_KEY_DIGEST, useValue: digestKey(ADMIN_KEY) },
        { provide: AUTHENTICATOR, useValue: authenticator },
        { provide: GATEWAY_LOGGER, useValue: logger },
        AdminKeyGuard,
        InferenceKeyGuard,
        ...adapterRegistryProviders({ maxUploadBytes: MAX_UPLOAD, modelConfigDir }),
        { provide: APP_FILTER, useValue: new OpenAiErrorFilter(logger) },
      ],
    })
    class TestModule {}
    app = await NestFactory.create<NestFastifyApplication>(TestModule, new FastifyAdapter(), {
      logger: false,
    });
    await app.listen(0, '127.0.0.1');
    const address = app.getHttpServer().address() as { port: number };
    base = `http://127.0.0.1:${address.port}`;
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await conn?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts a real PEFT adapter: 201, both files in the bucket under the sha256, adapters.registered published', async () => {
    const files = filesOf(join(dir, 'good'));
    const sha256 = createHash('sha256').update(files['adapter_model.safetensors']!).digest('hex');
    const before = await adapterEvents();
    const res = await post(form(fields('alice/legal'), files));
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status, JSON.stringify(body)).toBe(201);
    expect(body).toMatchObject({
      adapterId: 'tiny:alice/legal',
      baseModel: 'tiny',
      ownerTenantId: 'alice',
      rank: 4,
      targetModules: ['q_proj', 'v_proj'],
      weightsSha256: sha256,
      weightsObjectKey: `${sha256}/adapter_model.safetensors`,
      sizeBytes: files['adapter_model.safetensors']!.length,
      retired: false,
    });
    expect(await objectNames()).toEqual(
      expect.arrayContaining([`${sha256}/adapter_config.json`, `${sha256}/adapter_model.safetensors`]),
    );
    const store = await new Objm(conn.nc).open(OBJECT_BUCKETS.adapters.bucket);
    expect(Buffer.from((await store.getBlob(`${sha256}/adapter_model.safetensors`))!)).toEqual(
      Buffer.from(files['adapter_model.safetensors']!),
    );
    expect(await adapterEvents()).toBe(before + 1);

    // The same id again: refused, never reused.
    expect((await post(form(fields('alice/legal'), files))).status).toBe(409);
  });

  it('lets exactly one of several concurrent uploads of one new id pass (JetStream decides, not the catalog)', async () => {
    const files = filesOf(join(dir, 'good'));
    const before = await adapterEvents();
    // All of them pass the catalog check before any is published, as uploads through different
    // gateways would: only the expected-subject-sequence publish tells them apart.
    const statuses = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const res = await post(form(fields('alice/racy', 'private'), files));
        const body = (await res.json()) as { error?: { code: string } };
        return res.status === 409 ? `409 ${body.error?.code}` : String(res.status);
      }),
    );
    expect(statuses.sort()).toEqual([
      '201',
      '409 adapter_exists',
      '409 adapter_exists',
      '409 adapter_exists',
    ]);
    expect(await adapterEvents()).toBe(before + 1);
  });

  it('refuses every malformed adapter of the corpus with 400 naming the defect, and stores nothing', async () => {
    const adapters = items.filter((i) => i.kind === 'adapter' && i.name !== 'adapter-pickle-bin');
    expect(adapters.length).toBeGreaterThanOrEqual(8);
    const objectsBefore = await objectNames();
    const eventsBefore = await adapterEvents();
    for (const item of adapters) {
      const res = await post(form(fields(`alice/${item.name}`), filesOf(join(corpus, item.adapter!))));
      const body = (await res.json()) as { error: { message: string } };
      expect(res.status, `${item.name}: ${body.error.message}`).toBe(400);
      const message = body.error.message.toLowerCase();
      expect(
        item.expect.anyOf.some((w) => message.includes(w.toLowerCase())),
        `${item.name}: ${message}`,
      ).toBe(true);
      if (item.expect.tensor) expect(body.error.message, item.name).toContain(item.expect.tensor);
    }
    expect(await objectNames()).toEqual(objectsBefore);
    expect(await adapterEvents()).toBe(eventsBefore);
  });

  it('refuses pickle .bin weights, missing files, oversize uploads and names that could leave the store', async () => {
    const objectsBefore = await objectNames();
    const good = filesOf(join(dir, 'good2'));
    const pickle = await post(
      form(fields('alice/pickled'), {
        'adapter_config.json': good['adapter_config.json']!,
        'adapter_model.bin': readFileSync(join(corpus, 'adapter-pickle-bin', 'adapter_model.bin')),
      }),
    );
    expect(pickle.status).toBe(400);
    expect(((await pickle.json()) as { error: { message: string } }).error.message).toMatch(
      /safetensors only/,
    );

    const missing = await post(
      form(fields('alice/half'), { 'adapter_config.json': good['adapter_config.json']! }),
    );
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toMatch(/Missing file/);

    const big = await post(
      form(fields('alice/huge'), { ...good, 'adapter_model.safetensors': new Uint8Array(MAX_UPLOAD + 1) }),
    );
    expect(big.status).toBe(413);

    for (const name of ['../x', 'A/B', 'a/b/c', 'a/..', '/a', 'a/', '../../etc/passwd']) {
      const res = await post(form(fields(name), good));
      expect(res.status, name).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message, name).toMatch(
        /Invalid adapter name/,
      );
    }
    expect(await objectNames()).toEqual(objectsBefore);
  });

  it('lists, gets and retires; a private adapter is hidden from another tenant', async () => {
    const created = await post(form(fields('alice/secret', 'private'), filesOf(join(dir, 'good3'))));
    expect(created.status).toBe(201);

    const mine = (await (await get('/v1/adapters')).json()) as { data: Array<{ adapterId: string }> };
    expect(mine.data.map((a) => a.adapterId)).toEqual(
      expect.arrayContaining(['tiny:alice/legal', 'tiny:alice/secret']),
    );
    const theirs = (await (await get('/v1/adapters', 'key-bob')).json()) as {
      data: Array<{ adapterId: string }>;
    };
    expect(theirs.data.map((a) => a.adapterId)).toContain('tiny:alice/legal');
    expect(theirs.data.map((a) => a.adapterId)).not.toContain('tiny:alice/secret');

    expect((await get('/v1/adapters/alice/secret')).status).toBe(200);
    expect((await get('/v1/adapters/alice/secret', 'key-bob')).status).toBe(404);
    expect((await get('/v1/adapters/alice/nope')).status).toBe(404);

    const bobDelete = await fetch(url('/v1/adapters/alice/legal'), {
      method: 'DELETE',
      headers: { authorization: 'Bearer key-bob' },
    });
    expect(bobDelete.status).toBe(403);
    const before = await adapterEvents();
    const retired = await fetch(url('/v1/adapters/alice/legal'), {
      method: 'DELETE',
      headers: { authorization: 'Bearer key-alice' },
    });
    expect(retired.status).toBe(200);
    expect(((await retired.json()) as { retired: boolean }).retired).toBe(true);
    expect(await adapterEvents()).toBe(before + 1);
    expect((await get('/v1/adapters/alice/legal')).status).toBe(404);
  });

  it('keeps the admin JSON registration and refuses it without the admin key', async () => {
    const data = {
      adapterId: 'tiny:ops/preloaded',
      baseModel: 'tiny',
      ownerTenantId: 'operator',
      name: 'ops/preloaded',
      visibility: 'public',
      pricePer1kTokens: '0',
      creatorAddress: CREATOR,
      rank: 4,
      targetModules: ['q_proj'],
      weightsSha256: 'a'.repeat(64),
      sizeBytes: 10,
      weightsObjectKey: `${'a'.repeat(64)}/adapter_model.safetensors`,
      trainedOn: [],
    };
    const json = (key: string): Promise<Response> =>
      fetch(url('/v1/adapters'), {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(data),
      });
    expect((await json('key-alice')).status).toBe(403);
    expect((await json(ADMIN_KEY)).status).toBe(201);
    expect((await get('/v1/adapters/ops/preloaded')).status).toBe(200);

    // Fastify's own errors still come out in OpenAI's shape with multipart registered.
    const malformed = await fetch(url('/v1/adapters'), {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: '{"adapterId": ',
    });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
  });

  it('a fresh catalog (another gateway, a restart) rebuilds itself from the ADAPTERS stream', async () => {
    const catalog = new AdapterCatalog(conn, pino({ level: 'silent' }));
    await catalog.onApplicationBootstrap();
    try {
      await waitFor(() => (catalog.get('tiny:ops/preloaded') ? true : undefined), { timeoutMs: 5_000 });
      expect(catalog.get('tiny:alice/legal')?.retired).toBe(true);
      expect(catalog.sha256For('tiny:alice/secret', 'alice')).toMatch(/^[0-9a-f]{64}$/);
      expect(catalog.sha256For('tiny:alice/secret', 'bob')).toBeUndefined();
      expect(catalog.list('bob').map((a) => a.adapterId)).toEqual(['tiny:ops/preloaded']);
    } finally {
      await catalog.onModuleDestroy();
    }
  });
});

/**
 * Tenants, keys, scopes and limits through the real gateway application (in process) with a real
 * PostgreSQL and NATS; a fake worker on NATS answers inference.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { workerGenerateSubject, type InferenceChunk, type InferenceRequest } from '@longtail/contracts';
import {
  connectMessaging,
  serveStream,
  type MessagingConnection,
  type StreamServer,
} from '@longtail/messaging';
import { loadConfig } from '@longtail/service';
import { createLogger } from '@longtail/telemetry';
import { startNatsServer, useDatabase, type NatsServer } from '@longtail/testenv';
import { gatewayConfigSchema } from '../config.js';
import { GatewayModule } from '../gateway.module.js';
import { HeartbeatWorkerRouter } from '../inference/worker-router.js';

const ADMIN_KEY = `lt_admin_${'k'.repeat(32)}`;

async function startGateway(env: Record<string, string>): Promise<NestFastifyApplication> {
  const config = loadConfig(gatewayConfigSchema, { LONGTAIL_ADMIN_KEY: ADMIN_KEY, PORT: '0', ...env });
  const logger = createLogger({ service: 'gateway', level: 'silent' });
  const app = await NestFactory.create<NestFastifyApplication>(
    GatewayModule.forRoot(config, logger),
    new FastifyAdapter({ bodyLimit: 64 * 1024 * 1024 }),
    { logger: false, abortOnError: false },
  );
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  const router = app.get(HeartbeatWorkerRouter);
  vi.spyOn(router, 'knows').mockReturnValue(true);
  vi.spyOn(router, 'route').mockReturnValue([{ workerId: 'fake', subject: workerGenerateSubject('fake') }]);
  return app;
}

describe('gateway auth with a database', () => {
  const database = useDatabase({ prefix: 'gateway_auth' });
  let nats: NatsServer;
  let conn: MessagingConnection;
  let worker: StreamServer;
  let app: NestFastifyApplication;
  let http: FastifyInstance;
  const seen: InferenceRequest[] = [];
  let release: () => void = () => undefined;

  beforeAll(async () => {
    nats = await startNatsServer();
    conn = await connectMessaging({ servers: nats.url, name: 'fake-worker' });
    worker = serveStream(
      conn,
      workerGenerateSubject('fake'),
      async function* (payload): AsyncGenerator<InferenceChunk> {
        const request = payload as InferenceRequest;
        seen.push(request);
        if (request.input.kind === 'text' && request.input.prompt === 'hold')
          await new Promise<void>((resolve) => (release = resolve));
        yield {
          index: 0,
          text: 'ok',
          tokens: 1,
          finishReason: 'stop',
          usage: { promptTokens: 3, completionTokens: 1 },
        };
      },
    );
    await conn.nc.flush();
    app = await startGateway({
      NATS_URL: nats.url,
      DATABASE_URL: database().url,
      MAX_PROMPT_CHARS: '1000',
      INFERENCE_BODY_LIMIT_BYTES: '4096',
    });
    http = app.getHttpAdapter().getInstance();
  });

  afterAll(async () => {
    await app?.close();
    await worker?.stop({ cancel: true });
    await conn?.close();
    await nats?.stop();
  });

  const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
  const admin = bearer(ADMIN_KEY);

  async function tenantWithKey(
    limits: Record<string, number> = {},
    scopes: string[] = ['inference'],
  ): Promise<{ tenantId: string; keyId: string; key: string }> {
    const tenant = await http.inject({
      method: 'POST',
      url: '/v1/admin/tenants',
      headers: admin,
      payload: { name: 'acme', ...limits },
    });
    expect(tenant.statusCode).toBe(201);
    const tenantId = tenant.json<{ id: string }>().id;
    const key = await http.inject({
      method: 'POST',
      url: `/v1/admin/tenants/${tenantId}/keys`,
      headers: admin,
      payload: { scopes },
    });
    expect(key.statusCode).toBe(201);
    const body = key.json<{ id: string; key: string }>();
    return { tenantId, keyId: body.id, key: body.key };
  }

  const complete = (key: string, payload: Record<string, unknown> = {}) =>
    http.inject({
      method: 'POST',
      url: '/v1/completions',
      headers: bearer(key),
      payload: { model: 'tiny', prompt: 'hi', max_tokens: 5, ...payload },
    });

  it('creates a tenant and a key that is shown once and works for inference, as that tenant and key', async () => {
    const { tenantId, keyId, key } = await tenantWithKey();
    expect(key).toMatch(/^lt_[0-9a-f]{32}_/);
    const models = await http.inject({ method: 'GET', url: '/v1/models', headers: bearer(key) });
    expect(models.statusCode).toBe(200);

    const answer = await complete(key);
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toMatchObject({ choices: [{ text: 'ok' }] });
    expect(answer.headers['x-ratelimit-limit-requests']).toBe('600');
    expect(seen.at(-1)).toMatchObject({ tenantId, apiKeyId: keyId });

    const listed = await http.inject({ method: 'GET', url: `/v1/admin/tenants/${tenantId}`, headers: admin });
    expect(listed.statusCode).toBe(200);
    expect(listed.json()).toMatchObject({
      id: tenantId,
      name: 'acme',
      keys: [{ id: keyId, prefix: `lt_${keyId}`, revoked_at: null }],
    });
    expect(listed.body).not.toContain(key.slice(-43));
  });

  it('answers 401 in OpenAI shape for a missing, malformed or unknown key, and a wrong secret', async () => {
    const { key } = await tenantWithKey();
    const wrongSecret = `${key.slice(0, -43)}${'A'.repeat(43)}`;
    for (const headers of [
      {},
      bearer('nonsense'),
      bearer(`lt_${'0'.repeat(32)}_${'A'.repeat(43)}`),
      bearer(wrongSecret),
    ]) {
      const res = await http.inject({ method: 'GET', url: '/v1/models', headers });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'invalid_api_key' } });
    }
  });

  it('answers 401 for a revoked key at once', async () => {
    const { keyId, key } = await tenantWithKey();
    expect((await http.inject({ method: 'GET', url: '/v1/models', headers: bearer(key) })).statusCode).toBe(
      200,
    );
    const revoked = await http.inject({ method: 'DELETE', url: `/v1/admin/keys/${keyId}`, headers: admin });
    expect(revoked.statusCode).toBe(200);
    const res = await complete(key);
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({
      error: { code: 'invalid_api_key', message: 'This API key has been revoked.' },
    });
    expect(
      (await http.inject({ method: 'DELETE', url: '/v1/admin/keys/nope', headers: admin })).statusCode,
    ).toBe(404);
  });

  it('answers 403 for a key without the scope, and admin routes refuse non-admin keys', async () => {
    const adaptersOnly = await tenantWithKey({}, ['adapters']);
    const res = await http.inject({ method: 'GET', url: '/v1/models', headers: bearer(adaptersOnly.key) });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ error: { type: 'permission_error' } });

    const inference = await tenantWithKey();
    const refused = await http.inject({
      method: 'POST',
      url: '/v1/admin/tenants',
      headers: bearer(inference.key),
      payload: { name: 'x' },
    });
    expect(refused.statusCode).toBe(403);
    expect(
      (
        await http.inject({
          method: 'GET',
          url: `/v1/admin/tenants/${inference.tenantId}`,
          headers: bearer('lt_nonsense'),
        })
      ).statusCode,
    ).toBe(401);

    const adminKey = await tenantWithKey({}, ['admin']);
    const allowed = await http.inject({
      method: 'POST',
      url: '/v1/admin/tenants',
      headers: bearer(adminKey.key),
      payload: { name: 'x' },
    });
    expect(allowed.statusCode).toBe(201);
  });

  it('limits requests per minute: 429 with Retry-After and x-ratelimit-* headers', async () => {
    const { key } = await tenantWithKey({ requests_per_min: 2 });
    expect((await complete(key)).statusCode).toBe(200);
    expect((await complete(key)).statusCode).toBe(200);
    const limited = await complete(key);
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({
      error: { type: 'rate_limit_error', code: 'rate_limit_exceeded' },
    });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(limited.headers).toMatchObject({
      'x-ratelimit-limit-requests': '2',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-limit-tokens': expect.any(String),
      'x-ratelimit-remaining-tokens': expect.any(String),
      'x-ratelimit-reset-requests': expect.stringMatching(/s$/),
      'x-ratelimit-reset-tokens': expect.any(String),
    });
  });

  it('limits tokens per minute (prompt + max_tokens reserved) and requests in flight', async () => {
    const { key } = await tenantWithKey({ tokens_per_min: 100 });
    const tooLarge = await complete(key, { max_tokens: 200 });
    expect(tooLarge.statusCode).toBe(429);
    expect(tooLarge.headers['x-ratelimit-limit-tokens']).toBe('100');

    const single = await tenantWithKey({ max_concurrent: 1 });
    const held = complete(single.key, { prompt: 'hold' });
    await vi.waitFor(() => expect(seen.at(-1)?.input).toEqual({ kind: 'text', prompt: 'hold' }));
    const second = await complete(single.key);
    expect(second.statusCode).toBe(429);
    expect(second.headers['retry-after']).toBe('1');
    release();
    expect((await held).statusCode).toBe(200);
    expect((await complete(single.key)).statusCode).toBe(200);
  });

  it('refuses a prompt over the limit (400) and a body over the limit (413)', async () => {
    const { key } = await tenantWithKey();
    const long = await complete(key, { prompt: 'x'.repeat(1001) });
    expect(long.statusCode).toBe(400);
    expect(long.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'prompt_too_long' } });
    const big = await complete(key, { prompt: 'x'.repeat(5000) });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'request_too_large' } });
  });

  it('never stores a secret', async () => {
    const { key } = await tenantWithKey();
    const secret = key.slice(-43);
    const client = new pg.Client({ connectionString: database().url });
    await client.connect();
    try {
      const { rows } = await client.query<{ row: string }>(
        `select row_to_json(k)::text as row from gateway.api_keys k
         union all select row_to_json(t)::text from gateway.tenants t`,
      );
      expect(rows.length).toBeGreaterThan(1);
      const dump = rows.map((r) => r.row).join('\n');
      expect(dump).not.toContain(secret);
      expect(dump).not.toContain(Buffer.from(secret).toString('hex'));
    } finally {
      await client.end();
    }
  });
});

describe('gateway without a database', () => {
  let nats: NatsServer;
  let app: NestFastifyApplication;

  beforeAll(async () => {
    nats = await startNatsServer();
    app = await startGateway({ NATS_URL: nats.url });
  });

  afterAll(async () => {
    await app?.close();
    await nats?.stop();
  });

  it('accepts any bearer key as the anonymous tenant, and none without a key', async () => {
    const http = app.getHttpAdapter().getInstance();
    expect(
      (await http.inject({ method: 'GET', url: '/v1/models', headers: { authorization: 'Bearer anything' } }))
        .statusCode,
    ).toBe(200);
    expect((await http.inject({ method: 'GET', url: '/v1/models' })).statusCode).toBe(401);
    expect(
      (
        await http.inject({
          method: 'POST',
          url: '/v1/admin/tenants',
          headers: { authorization: `Bearer ${ADMIN_KEY}` },
          payload: { name: 'x' },
        })
      ).statusCode,
    ).toBe(404);
  });
});

/**
 * `GET /v1/models` through the real gateway application (in process) with real PostgreSQL (tenants,
 * keys) and NATS: base models come from worker heartbeats (the `workers` KV bucket), adapters from
 * the adapter catalog that follows the ADAPTERS stream — public ones and the caller's tenant's
 * private ones, whether a worker holds them or not — plus the folder adapters a worker serves that
 * the catalog does not know. Another tenant's private adapter and retired adapters are never
 * listed, not even when a worker has one resident.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import { Kvm } from '@nats-io/kv';
import {
  AdapterRegisteredV1,
  AdapterRetiredV1,
  createEvent,
  KV_BUCKETS,
  subjectToken,
  type AdapterRegisteredV1Data,
} from '@longtail/contracts';
import { connectMessaging, EventPublisher, type MessagingConnection } from '@longtail/messaging';
import { loadConfig } from '@longtail/service';
import { createLogger } from '@longtail/telemetry';
import { startNatsServer, useDatabase, waitFor, type NatsServer } from '@longtail/testenv';
import { gatewayConfigSchema } from '../config.js';
import { GatewayModule } from '../gateway.module.js';

const ADMIN_KEY = `lt_admin_${'m'.repeat(32)}`;
const BASE = 'tiny';

interface ModelList {
  object: string;
  data: Array<{ id: string; object: string; created: number; owned_by: string }>;
}

describe('GET /v1/models', () => {
  const database = useDatabase({ prefix: 'gateway_models' });
  let nats: NatsServer;
  let conn: MessagingConnection;
  let app: NestFastifyApplication;
  let http: FastifyInstance;
  const keys: Record<'alice' | 'bob', { tenantId: string; key: string }> = {} as never;

  const admin = { authorization: `Bearer ${ADMIN_KEY}` };

  async function tenantWithKey(name: string): Promise<{ tenantId: string; key: string }> {
    const tenant = await http.inject({ method: 'POST', url: '/v1/admin/tenants', headers: admin, payload: { name } });
    const tenantId = tenant.json<{ id: string }>().id;
    const key = await http.inject({
      method: 'POST',
      url: `/v1/admin/tenants/${tenantId}/keys`,
      headers: admin,
      payload: { scopes: ['inference'] },
    });
    return { tenantId, key: key.json<{ key: string }>().key };
  }

  const adapter = (owner: string, name: string, visibility: 'public' | 'private'): AdapterRegisteredV1Data => ({
    adapterId: `${BASE}:${owner}/${name}`,
    baseModel: BASE,
    ownerTenantId: owner,
    name,
    visibility,
    pricePer1kTokens: '1000',
    creatorAddress: `0x${'12'.repeat(20)}`,
    rank: 4,
    targetModules: ['q_proj', 'v_proj'],
    weightsSha256: 'ab'.repeat(32),
    sizeBytes: 1024,
    weightsObjectKey: `${'ab'.repeat(32)}/adapter_model.safetensors`,
    trainedOn: [],
  });

  const list = async (key: string): Promise<ModelList> => {
    const res = await http.inject({ method: 'GET', url: '/v1/models', headers: { authorization: `Bearer ${key}` } });
    expect(res.statusCode).toBe(200);
    return res.json<ModelList>();
  };
  const ids = async (key: string): Promise<string[]> => (await list(key)).data.map((m) => m.id);

  beforeAll(async () => {
    nats = await startNatsServer();
    const config = loadConfig(gatewayConfigSchema, {
      LONGTAIL_ADMIN_KEY: ADMIN_KEY,
      PORT: '0',
      NATS_URL: nats.url,
      DATABASE_URL: database().url,
    });
    app = await NestFactory.create<NestFastifyApplication>(
      GatewayModule.forRoot(config, createLogger({ service: 'gateway', level: 'silent' })),
      new FastifyAdapter(),
      { logger: false, abortOnError: false },
    );
    await app.init();
    http = app.getHttpAdapter().getInstance();
    await http.ready();
    keys.alice = await tenantWithKey('alice');
    keys.bob = await tenantWithKey('bob');
    const { alice, bob } = { alice: keys.alice.tenantId, bob: keys.bob.tenantId };

    // Given: catalog events on the ADAPTERS stream (as any gateway would publish them) ...
    const publisher = app.get(EventPublisher);
    const registered = [
      adapter(alice, 'public', 'public'),
      adapter(alice, 'private', 'private'),
      adapter(bob, 'public', 'public'),
      adapter(bob, 'private', 'private'),
      adapter(alice, 'retired', 'public'),
    ];
    for (const data of registered)
      await publisher.publish(createEvent(AdapterRegisteredV1, data, { correlationId: 'models-test', causationId: null }));
    await publisher.publish(
      createEvent(
        AdapterRetiredV1,
        { adapterId: `${BASE}:${alice}/retired`, reason: 'replaced' },
        { correlationId: 'models-test', causationId: null },
      ),
    );
    // ... and a live worker of the base model holding a folder adapter, bob's private one and the retired one.
    conn = await connectMessaging({ servers: nats.url, name: 'models-test' });
    const kv = await new Kvm(conn.nc).open(KV_BUCKETS.workers.bucket);
    await kv.put(
      subjectToken('w1'),
      JSON.stringify({
        version: 1,
        workerId: 'w1',
        baseModel: BASE,
        operatorAddress: `0x${'00'.repeat(20)}`,
        state: 'serving',
        inFlight: 0,
        queueDepth: 0,
        residentAdapters: [`${BASE}:local/folder`, `${BASE}:${bob}/private`, `${BASE}:${alice}/retired`],
      }),
    );
    await waitFor(async () => (await ids(keys.alice.key)).includes(`${BASE}:local/folder`), {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'the heartbeat in /v1/models',
    });
    await waitFor(async () => (await ids(keys.bob.key)).includes(`${BASE}:${bob}/private`), {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'the catalog in /v1/models',
    });
  });

  afterAll(async () => {
    await app?.close();
    await conn?.close();
    await nats?.stop();
  });

  it("lists the base model, public catalog adapters, the tenant's own private ones and folder adapters", async () => {
    const { alice, bob } = { alice: keys.alice.tenantId, bob: keys.bob.tenantId };
    // When alice lists the models, then:
    const models = await list(keys.alice.key);
    expect(models.object).toBe('list');
    expect(models.data.map((m) => m.id)).toEqual([
      BASE,
      ...[`${BASE}:${alice}/private`, `${BASE}:${alice}/public`, `${BASE}:${bob}/public`, `${BASE}:local/folder`].sort(),
    ]);
    for (const m of models.data) expect(m.object).toBe('model');
    const own = models.data.find((m) => m.id === `${BASE}:${alice}/private`)!;
    expect(own.owned_by).toBe(alice);
    expect(Math.abs(own.created - Date.now() / 1000)).toBeLessThan(120);
    expect(models.data.find((m) => m.id === `${BASE}:local/folder`)).toMatchObject({ owned_by: 'longtail', created: 0 });
  });

  it("never lists another tenant's private adapter or a retired one, even when a worker holds it", async () => {
    const { alice, bob } = { alice: keys.alice.tenantId, bob: keys.bob.tenantId };
    const forAlice = await ids(keys.alice.key);
    expect(forAlice).not.toContain(`${BASE}:${bob}/private`);
    expect(forAlice).not.toContain(`${BASE}:${alice}/retired`);
    const forBob = await ids(keys.bob.key);
    expect(forBob).toContain(`${BASE}:${bob}/private`);
    expect(forBob).not.toContain(`${BASE}:${alice}/private`);
    expect(forBob).not.toContain(`${BASE}:${alice}/retired`);
  });

  it('without a key: 401 in the OpenAI error shape', async () => {
    const res = await http.inject({ method: 'GET', url: '/v1/models' });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
  });
});

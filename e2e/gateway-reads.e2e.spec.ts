/**
 * Read APIs through the gateway: the gateway asks the owning service over NATS request/reply
 * and answers in OpenAI's error shape when the owner says no or is away.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  freePort,
  startNatsServer,
  type NatsServer,
  type TestDatabase,
} from '@longtail/testenv';
import { startService, waitUntilReady, type ServiceProcess } from './support/services.js';

describe('gateway → ledger and attribution reads', () => {
  let nats: NatsServer;
  let database: TestDatabase;
  let gateway: ServiceProcess;
  let ledger: ServiceProcess;
  let attribution: ServiceProcess;
  const ADMIN_KEY = 'lt_admin_gateway_reads_0123456789';
  const dataDir = mkdtempSync(join(tmpdir(), 'longtail-reads-'));

  beforeAll(async () => {
    [nats, database] = await Promise.all([startNatsServer(), createTestDatabase()]);
    gateway = startService('gateway', await freePort(), {
      NATS_URL: nats.url,
      LONGTAIL_ADMIN_KEY: ADMIN_KEY,
    });
    attribution = startService('attribution', await freePort(), {
      NATS_URL: nats.url,
      DATABASE_URL: database.url,
      EPOCH_SECONDS: '0',
    });
    ledger = startService('ledger', await freePort(), {
      NATS_URL: nats.url,
      DATABASE_URL: database.url,
      LEDGER_DATA_DIR: dataDir,
    });
    await Promise.all([
      waitUntilReady(gateway),
      waitUntilReady(ledger, 60_000),
      waitUntilReady(attribution, 60_000),
    ]);
  });

  afterAll(async () => {
    await Promise.all([gateway?.stop(), ledger?.stop(), attribution?.stop()]);
    await Promise.all([nats?.stop(), database?.drop()]);
    rmSync(dataDir, { recursive: true, force: true });
  });

  const get = async (path: string, key?: string) => {
    const res = await fetch(
      `${gateway.baseUrl}${path}`,
      key ? { headers: { authorization: `Bearer ${key}` } } : {},
    );
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('answers from the ledger, and maps unknown and invalid requests to 404 and 400', async () => {
    expect(await get('/v1/ledger/epochs')).toEqual({ status: 200, body: [] });
    const account = await get(`/v1/ledger/accounts/0x${'12'.repeat(20)}`);
    expect(account.status).toBe(200);
    expect(account.body).toMatchObject({
      epoch: null,
      cumulativeAmount: '0',
      claimed: '0',
      claimable: '0',
      proof: [],
    });
    expect(await get('/v1/ledger/epochs/7')).toMatchObject({
      status: 404,
      body: { error: { type: 'not_found_error' } },
    });
    expect(await get('/v1/ledger/accounts/not-an-address')).toMatchObject({
      status: 400,
      body: { error: { type: 'invalid_request_error', param: 'account' } },
    });
  });

  it("answers attribution queries for the admin key, with the owner's validation errors", async () => {
    expect(await get('/v1/attribution/epochs')).toMatchObject({ status: 401 });
    const epochs = await get('/v1/attribution/epochs', ADMIN_KEY);
    expect(epochs.status).toBe(200);
    expect(Array.isArray(epochs.body)).toBe(true);
    const earnings = await get(`/v1/attribution/earnings?account=0x${'34'.repeat(20)}`, ADMIN_KEY);
    expect(earnings.status).toBe(200);
    expect(await get('/v1/attribution/earnings?account=nope', ADMIN_KEY)).toMatchObject({
      status: 400,
      body: { error: { type: 'invalid_request_error' } },
    });
    expect(await get('/v1/attribution/secrets', ADMIN_KEY)).toMatchObject({ status: 404 });
  });

  it('answers 503 while the ledger is away', async () => {
    await ledger.stop();
    expect(await get('/v1/ledger/epochs')).toMatchObject({
      status: 503,
      body: { error: { code: 'service_unavailable' } },
    });
  });
});

/**
 * Killing NATS or PostgreSQL under a running service makes readiness fail, and it recovers when
 * the server returns, with no lost or duplicated projection rows: events published while
 * PostgreSQL is down wait in the stream and are applied once it is back.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { AdapterRegisteredV1, createEvent } from '@longtail/contracts';
import { connectMessaging, createEventPublisher, type MessagingConnection } from '@longtail/messaging';
import { contractCodec, parseKnownEvent } from '@longtail/service';
import { eventCodec } from '@longtail/messaging';
import {
  freePort,
  startNatsServer,
  startPostgresServer,
  waitFor,
  type NatsServer,
  type PostgresServer,
} from '@longtail/testenv';
import { readiness, startService, waitUntilReady, type ServiceProcess } from './support/services.js';

const adapterEvent = (n: number) =>
  createEvent(
    AdapterRegisteredV1,
    {
      adapterId: `tiny-llama:acme/outage-${n}`,
      baseModel: 'tiny-llama',
      ownerTenantId: 'tenant-acme',
      name: `Outage ${n}`,
      visibility: 'public',
      pricePer1kTokens: '1',
      creatorAddress: '0x' + 'cd'.repeat(20),
      rank: 4,
      targetModules: ['q_proj'],
      weightsSha256: String(n).padStart(64, 'a'),
      sizeBytes: 1024,
      weightsObjectKey: `sha256/${String(n).padStart(64, 'a')}`,
      trainedOn: [],
    },
    { correlationId: `outage-${n}`, causationId: null },
  );

describe('readiness follows NATS and PostgreSQL outages; the projection loses and duplicates nothing', () => {
  let nats: NatsServer;
  let postgres: PostgresServer;
  let scheduler: ServiceProcess;
  let databaseUrl: string;

  beforeAll(async () => {
    // Durable commits: this test crashes PostgreSQL, and the test default (asynchronous commit)
    // may lose the last commits in a crash, as it would in production with that setting.
    [nats, postgres] = await Promise.all([
      startNatsServer(),
      startPostgresServer({ settings: { synchronous_commit: 'on', fsync: 'on' } }),
    ]);
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query('create database scheduler_outage');
    await admin.end();
    databaseUrl = postgres.url.replace(/\/postgres$/, '/scheduler_outage');
    scheduler = startService('scheduler', await freePort(), {
      NATS_URL: nats.url,
      DATABASE_URL: databaseUrl,
      CONSUMER_ACK_WAIT_S: '2',
      LOG_LEVEL: process.env['DEBUG_LOG_LEVEL'] ?? 'info',
    });
    await waitUntilReady(scheduler);
  });

  afterEach((ctx) => {
    if (ctx.task.result?.state === 'fail') console.log(`--- scheduler output ---\n${scheduler.output()}`);
  });

  afterAll(async () => {
    await scheduler?.stop();
    await Promise.all([nats?.stop(), postgres?.destroy()]);
  });

  const publishAll = async (numbers: number[]) => {
    const conn: MessagingConnection = await connectMessaging({ servers: nats.url, name: 'test-publisher' });
    try {
      const publisher = createEventPublisher(conn, eventCodec({ parse: parseKnownEvent, ...contractCodec }));
      for (const n of numbers) await publisher.publish(adapterEvent(n));
    } finally {
      await conn.close();
    }
  };

  const projected = async () => {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ adapter_id: string }>(
        'select adapter_id from scheduler.adapter_catalog',
      );
      return rows.map((r) => r.adapter_id).sort();
    } finally {
      await client.end();
    }
  };
  const expected = (numbers: number[]) => numbers.map((n) => `tiny-llama:acme/outage-${n}`).sort();
  const statusIs = (code: number) => async () => (await readiness(scheduler)).status === code;

  it('PostgreSQL down: not ready, events wait in the stream; back: ready, each applied once', async () => {
    await publishAll([1, 2, 3]);
    await waitFor(async () => (await projected()).length === 3, {
      timeoutMs: 15_000,
      what: 'first events projected',
    });

    await postgres.stop({ mode: 'immediate' });
    await waitFor(statusIs(503), { timeoutMs: 10_000, what: 'readiness to fail without PostgreSQL' });
    expect((await readiness(scheduler)).body).toMatchObject({ checks: { postgres: 'down', nats: 'up' } });
    await publishAll([4, 5, 6]); // stored by JetStream; the projection cannot apply them yet

    await postgres.start();
    await waitFor(statusIs(200), { timeoutMs: 20_000, what: 'readiness to recover with PostgreSQL' });
    await waitFor(async () => (await projected()).length === 6, {
      timeoutMs: 30_000,
      what: 'events from the outage projected',
    });
    expect(await projected()).toEqual(expected([1, 2, 3, 4, 5, 6]));
  });

  it('NATS down: not ready; back: ready, consuming resumes, nothing lost or doubled', async () => {
    const restarted = nats.restart({ downtimeMs: 3000 });
    await waitFor(statusIs(503), { timeoutMs: 10_000, what: 'readiness to fail without NATS' });
    expect((await readiness(scheduler)).body).toMatchObject({ checks: { nats: 'down' } });
    await restarted;
    await waitFor(statusIs(200), { timeoutMs: 30_000, what: 'readiness to recover with NATS' });

    await publishAll([7, 8, 6]); // 6 again, as a new event: same adapter id, ignored by the projection
    await waitFor(async () => (await projected()).length === 8, {
      timeoutMs: 30_000,
      what: 'events after the restart projected',
    });
    expect(await projected()).toEqual(expected([1, 2, 3, 4, 5, 6, 7, 8]));
    expect(scheduler.child.exitCode).toBeNull();
  });
});

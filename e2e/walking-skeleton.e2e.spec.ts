/**
 * The walking skeleton: an event published by one service reaches a projection in another
 * exactly once, also when the consumer dies after committing and before acking, and one trace
 * spans both services (HTTP span → publish → consume).
 *
 * gateway  POST /v1/adapters → adapters.registered (ADAPTERS stream)
 * scheduler  adapter catalog projection (PostgreSQL, schema `scheduler`)
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  freePort,
  startNatsServer,
  waitFor,
  type NatsServer,
  type TestDatabase,
} from '@longtail/testenv';
import { FAILPOINT_EXIT_CODE } from '@longtail/service';
import { startService, waitUntilReady, type ServiceProcess } from './support/services.js';
import { startOtlpReceiver, type OtlpReceiver } from './support/otlp-receiver.js';

const ADMIN_KEY = 'lt_admin_walking_skeleton_0123456789';

const registration = (n: number) => ({
  adapterId: `tiny-llama:acme/skeleton-${n}`,
  baseModel: 'tiny-llama',
  ownerTenantId: 'tenant-acme',
  name: `Skeleton ${n}`,
  visibility: 'public',
  pricePer1kTokens: '1000000000000000',
  creatorAddress: '0x' + 'ab'.repeat(20),
  rank: 8,
  targetModules: ['q_proj', 'v_proj'],
  weightsSha256: String(n).padStart(64, '0'),
  sizeBytes: 4096,
  weightsObjectKey: `sha256/${String(n).padStart(64, '0')}`,
  trainedOn: [],
});

describe('walking skeleton: gateway → JetStream → scheduler projection', () => {
  let nats: NatsServer;
  let database: TestDatabase;
  let otlp: OtlpReceiver;
  let gateway: ServiceProcess;
  const running: ServiceProcess[] = [];

  const schedulerEnv = (extra: Record<string, string> = {}) => ({
    NATS_URL: nats.url,
    DATABASE_URL: database.url,
    CONSUMER_ACK_WAIT_S: '2',
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
    ...extra,
  });
  const launch = (s: ServiceProcess) => (running.push(s), s);

  beforeAll(async () => {
    [nats, database, otlp] = await Promise.all([
      startNatsServer(),
      createTestDatabase(),
      startOtlpReceiver(),
    ]);
    gateway = launch(
      startService('gateway', await freePort(), {
        NATS_URL: nats.url,
        LONGTAIL_ADMIN_KEY: ADMIN_KEY,
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
      }),
    );
    await waitUntilReady(gateway);
  });

  afterAll(async () => {
    await Promise.all(running.map((s) => s.stop()));
    await Promise.all([nats?.stop(), database?.drop(), otlp?.close()]);
  });

  const catalogRows = async () => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const rows = await client.query<{ adapter_id: string }>(
        'select adapter_id from scheduler.adapter_catalog order by adapter_id',
      );
      const checkpoint = await client.query<{ last_sequence: string }>(
        "select last_sequence from scheduler.projection_checkpoints where projection = 'scheduler.adapter_catalog'",
      );
      return { ids: rows.rows.map((r) => r.adapter_id), checkpoint: checkpoint.rows[0]?.last_sequence };
    } finally {
      await client.end();
    }
  };

  const register = async (n: number) => {
    const res = await fetch(`${gateway.baseUrl}/v1/adapters`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
      body: JSON.stringify(registration(n)),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    return (await res.json()) as { eventId: string; sequence: string };
  };

  it('applies an event exactly once when the consumer dies between commit and ack', async () => {
    // Given a scheduler that will exit right after committing its first batch, before the ack.
    const doomed = launch(
      startService(
        'scheduler',
        await freePort(),
        schedulerEnv({ LONGTAIL_FAILPOINTS: 'scheduler.adapter-catalog.after-commit=exit' }),
      ),
    );
    await waitUntilReady(doomed);

    // When an adapter is registered through the gateway.
    const first = await register(1);
    expect(await doomed.exited).toBe(FAILPOINT_EXIT_CODE);
    expect(await catalogRows()).toEqual({ ids: ['tiny-llama:acme/skeleton-1'], checkpoint: first.sequence });

    // And the scheduler comes back: the unacked batch is delivered again.
    const scheduler = launch(startService('scheduler', await freePort(), schedulerEnv()));
    await waitUntilReady(scheduler);
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await waitFor(
        async () => {
          const info = await jsm.consumers.info('ADAPTERS', 'scheduler-adapter-catalog');
          // Two deliveries of the one message (the first died unacked), and it is acked now.
          return (
            info.delivered.consumer_seq >= 2 &&
            info.num_ack_pending === 0 &&
            info.ack_floor.stream_seq >= Number(first.sequence)
          );
        },
        { timeoutMs: 20_000, intervalMs: 200, what: 'the redelivered batch to be acked' },
      );
    } finally {
      await nc.close();
    }

    // Then the redelivery changed nothing, and later events still flow.
    expect(await catalogRows()).toEqual({ ids: ['tiny-llama:acme/skeleton-1'], checkpoint: first.sequence });
    const second = await register(2);
    await waitFor(async () => (await catalogRows()).ids.length === 2, {
      timeoutMs: 10_000,
      what: 'second adapter projected',
    });
    expect(await catalogRows()).toEqual({
      ids: ['tiny-llama:acme/skeleton-1', 'tiny-llama:acme/skeleton-2'],
      checkpoint: second.sequence,
    });
  });

  it('puts the HTTP request, the publish and the consumer in one trace across both services', async () => {
    const server = () =>
      otlp.spans.filter((s) => s.service === 'gateway' && s.kind === 2 && s.name.startsWith('POST'));
    await waitFor(
      () =>
        server().length >= 2 &&
        otlp.spans.filter((s) => s.service === 'scheduler' && s.kind === 5).length >= 2,
      { timeoutMs: 10_000, what: `spans of both registrations (got ${JSON.stringify(otlp.spans)})` },
    );
    // Two registrations; the first one's consumer span died with the doomed scheduler, the
    // redelivery's span (same parent, from the message headers) stands for it.
    for (const http of server()) {
      const trace = otlp.spans.filter((s) => s.traceId === http.traceId);
      const producer = trace.find((s) => s.service === 'gateway' && s.kind === 4);
      expect(producer, 'publish span in the HTTP trace').toBeDefined();
      expect(producer!.parentSpanId).toBe(http.spanId);
      const consumer = trace.find((s) => s.service === 'scheduler' && s.kind === 5);
      expect(consumer, `consumer span in trace ${http.traceId}`).toBeDefined();
      expect(consumer!.parentSpanId).toBe(producer!.spanId);
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectMessaging,
  createEventPublisher,
  eventCodec,
  isWrongLastSequence,
  provision,
  PublishFailed,
  ProvisioningFailed,
  replayStream,
  STREAM_SUBJECT_MUST_NOT_EXIST,
  WrongExpectedSequence,
  type MessagingConnection,
  type ProvisionSpec,
} from '../src/index.js';
import { startNatsServer, type NatsServer } from '@longtail/testenv';
import { testEvent } from './support/events.js';

const spec: ProvisionSpec = {
  streams: [
    { name: 'ADAPTERS', subjects: ['adapters.>'], duplicateWindowMs: 60_000 },
    { name: 'DLQ', subjects: ['dlq.>'] },
  ],
  kv: [{ bucket: 'placements', history: 3, ttlMs: 60_000 }],
  objectStores: [{ bucket: 'adapter-weights' }],
};

let server: NatsServer;
let conn: MessagingConnection;

beforeAll(async () => {
  server = await startNatsServer();
  conn = await connectMessaging({ servers: server.url, name: 'publish-test' });
});
afterAll(async () => {
  await conn?.close();
  await server?.stop();
});

describe('provision', () => {
  it('creates streams and buckets, and a second run changes nothing', async () => {
    const first = await provision(conn, spec);
    expect(first.streams).toEqual({ ADAPTERS: 'created', DLQ: 'created' });

    const second = await provision(conn, spec);
    expect(second.streams).toEqual({ ADAPTERS: 'unchanged', DLQ: 'unchanged' });

    const jsm = await conn.jsm();
    const info = await jsm.streams.info('ADAPTERS');
    expect(info.config.storage).toBe('file');
    expect(info.config.duplicate_window).toBe(60_000 * 1e6);
    expect((await jsm.streams.info('KV_placements')).config.max_msgs_per_subject).toBe(3);
    expect(await jsm.streams.info('OBJ_adapter-weights')).toBeDefined();
  });

  it('runs concurrently from two connections without error', async () => {
    const other = await connectMessaging({ servers: server.url, name: 'publish-test-2' });
    try {
      const racing: ProvisionSpec = {
        streams: [{ name: 'RACE', subjects: ['race.>'] }],
        kv: [{ bucket: 'leases', ttlMs: 5000 }],
      };
      const results = await Promise.all([
        provision(conn, racing),
        provision(other, racing),
        provision(conn, racing),
      ]);
      expect(results.map((r) => r.streams['RACE']).sort()).toContain('created');
    } finally {
      await other.close();
    }
  });

  it('updates a drifted field and refuses to change storage', async () => {
    const report = await provision(conn, {
      streams: [{ name: 'ADAPTERS', subjects: ['adapters.>'], duplicateWindowMs: 30_000 }],
    });
    expect(report.streams['ADAPTERS']).toBe('updated');
    await expect(
      provision(conn, { streams: [{ name: 'ADAPTERS', subjects: ['adapters.>'], storage: 'memory' }] }),
    ).rejects.toBeInstanceOf(ProvisioningFailed);
    await provision(conn, spec);
  });
});

describe('publish', () => {
  it('deduplicates by event id: the second publish is a duplicate and the stream holds one message', async () => {
    const publisher = createEventPublisher(conn, eventCodec());
    const event = testEvent('adapters.registered', { name: 'acme/legal' });

    const first = await publisher.publish(event, { subject: 'adapters.dedup.registered' });
    const second = await publisher.publish(event, { subject: 'adapters.dedup.registered' });

    expect(first).toEqual({ stream: 'ADAPTERS', seq: expect.any(BigInt), duplicate: false });
    expect(second).toEqual({ stream: 'ADAPTERS', seq: first.seq, duplicate: true });
    const jsm = await conn.jsm();
    const last = await jsm.streams.getMessage('ADAPTERS', { last_by_subj: 'adapters.dedup.registered' });
    expect(last?.seq).toBe(Number(first.seq));
    const info = await jsm.streams.info('ADAPTERS', { subjects_filter: 'adapters.dedup.registered' });
    expect(info.state.subjects?.['adapters.dedup.registered']).toBe(1);
  });

  it('expectedLastSubjectSequence: first write, next write, and a stale write', async () => {
    const publisher = createEventPublisher(conn, eventCodec());
    const subject = 'adapters.a1.events';

    const created = await publisher.publish(testEvent('adapters.registered'), {
      subject,
      expectedLastSubjectSequence: STREAM_SUBJECT_MUST_NOT_EXIST,
    });
    const updated = await publisher.publish(testEvent('adapters.updated'), {
      subject,
      expectedLastSubjectSequence: created.seq,
    });
    expect(updated.seq).toBeGreaterThan(created.seq);

    const stale = publisher.publish(testEvent('adapters.updated'), {
      subject,
      expectedLastSubjectSequence: created.seq,
    });
    await expect(stale).rejects.toBeInstanceOf(WrongExpectedSequence);
    await stale.catch((err: WrongExpectedSequence) => {
      expect(err.expected).toBe(created.seq);
      expect(isWrongLastSequence(err)).toBe(true);
    });

    await expect(
      publisher.publish(testEvent('adapters.registered'), {
        subject,
        expectedLastSubjectSequence: STREAM_SUBJECT_MUST_NOT_EXIST,
      }),
    ).rejects.toMatchObject({ name: 'WrongExpectedSequence', expected: 'no-previous' });
  });

  it('a retried first write (same id) is a duplicate, not a concurrency error', async () => {
    const publisher = createEventPublisher(conn, eventCodec());
    const event = testEvent('adapters.registered');
    const opts = {
      subject: 'adapters.a2.events',
      expectedLastSubjectSequence: STREAM_SUBJECT_MUST_NOT_EXIST,
    } as const;
    const first = await publisher.publish(event, opts);
    const retry = await publisher.publish(event, opts);
    expect(retry).toEqual({ ...first, duplicate: true });
  });

  it('a subject no stream captures fails with PublishFailed', async () => {
    const publisher = createEventPublisher(conn, eventCodec());
    await expect(publisher.publish(testEvent('nowhere.event'), { timeoutMs: 1000 })).rejects.toBeInstanceOf(
      PublishFailed,
    );
  });
});

describe('replayStream', () => {
  it('reads from a sequence to the last message at call time, with violations reported', async () => {
    await provision(conn, { streams: [{ name: 'REPLAY', subjects: ['replay.>'] }] });
    const publisher = createEventPublisher(conn, eventCodec());
    for (let i = 0; i < 5; i++) await publisher.publish(testEvent('replay.thing.happened', { i }));
    conn.nc.publish('replay.garbage', 'not json');
    await conn.nc.flush();
    await publisher.publish(testEvent('replay.other.happened', { i: 5 }));

    const all = [];
    for await (const m of replayStream(conn, { stream: 'REPLAY' })) all.push(m);
    // the core publish above is not acked; allow it to be stored or not
    expect(all.filter((m) => m.ok).map((m) => (m.ok ? (m.event.data as { i: number }).i : -1))).toEqual([
      0, 1, 2, 3, 4, 5,
    ]);
    expect(all.map((m) => m.seq)).toEqual([...all.map((m) => m.seq)].sort((a, b) => (a < b ? -1 : 1)));
    const bad = all.find((m) => !m.ok);
    if (bad && !bad.ok) expect(bad.violation).toContain('not JSON');

    const fromThird = [];
    for await (const m of replayStream(conn, {
      stream: 'REPLAY',
      fromSeq: 3n,
      filterSubject: 'replay.thing.>',
    }))
      fromThird.push(m);
    expect(fromThird.map((m) => m.seq)).toEqual([3n, 4n, 5n]);

    const none = [];
    for await (const m of replayStream(conn, { stream: 'REPLAY', filterSubject: 'replay.nothing' }))
      none.push(m);
    expect(none).toEqual([]);
  });
});

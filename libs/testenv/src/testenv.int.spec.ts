import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

import {
  createTestDatabase,
  freePort,
  startNatsServer,
  startPostgresServer,
  useDatabase,
  useNats,
  waitFor,
} from './index.js';

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

describe('shared PostgreSQL', () => {
  const database = useDatabase();

  it('gives each createTestDatabase() its own database', async () => {
    // given a table in this file's database
    await query(database().url, 'create table marker (id int)');
    await query(database().url, 'insert into marker values (1)');
    // when another database is created on the same server
    const other = await createTestDatabase();
    try {
      // then it does not see the table
      const rows = await query<{ n: string }>(
        other.url,
        "select count(*) as n from pg_tables where tablename = 'marker'",
      );
      expect(rows[0]?.n).toBe('0');
      expect(other.name).not.toBe(database().name);
    } finally {
      await other.drop();
    }
  });

  it('drop() removes the database even with connections open', async () => {
    const temporary = await createTestDatabase();
    const client = new pg.Client({ connectionString: temporary.url });
    client.on('error', () => undefined);
    await client.connect();
    await temporary.drop();
    const rows = await query<{ n: string }>(
      database().url,
      `select count(*) as n from pg_database where datname = '${temporary.name}'`,
    );
    expect(rows[0]?.n).toBe('0');
    await client.end().catch(() => undefined);
  });
});

describe('dedicated PostgreSQL', () => {
  it('stop() and start() keep port and data', async () => {
    const server = await startPostgresServer();
    try {
      await query(server.url, "create table kept (v text); insert into kept values ('before restart')");
      const port = server.port;
      await server.stop();
      expect(server.running).toBe(false);
      await expect(query(server.url, 'select 1')).rejects.toThrow();
      await server.start();
      expect(server.port).toBe(port);
      expect(await query<{ v: string }>(server.url, 'select v from kept')).toEqual([{ v: 'before restart' }]);
      // an immediate (crash-like) stop recovers too
      await server.stop({ mode: 'immediate' });
      await server.start();
      expect(await query<{ v: string }>(server.url, 'select v from kept')).toEqual([{ v: 'before restart' }]);
    } finally {
      await server.destroy();
    }
  });
});

describe('NATS with JetStream', () => {
  const nats = useNats();

  it('accepts connections and keeps JetStream data across restart()', async () => {
    const nc = await connect({ servers: nats().url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'KEPT', subjects: ['kept.>'] });
      const js = jetstream(nc);
      const ack = await js.publish('kept.one', 'hello', { msgID: 'one' });
      expect(ack.seq).toBe(1);
      const port = nats().port;

      await nats().restart();

      expect(nats().port).toBe(port);
      const info = await waitFor(() => jsm.streams.info('KEPT').catch(() => undefined), {
        timeoutMs: 10_000,
        what: 'stream KEPT after restart',
      });
      expect(info.state.messages).toBe(1);
      const message = await jsm.streams.getMessage('KEPT', { seq: 1 });
      expect(message?.string()).toBe('hello');
    } finally {
      await nc.close();
    }
  });
});

describe('startNatsServer()', () => {
  const servers: Array<{ stop(): Promise<void> }> = [];
  afterAll(async () => Promise.all(servers.map((server) => server.stop())));

  it('starts on a requested port and removes its temporary store on stop()', async () => {
    const port = await freePort();
    const server = await startNatsServer({ port });
    servers.push(server);
    expect(server.url).toBe(`nats://127.0.0.1:${port}`);
    const { existsSync } = await import('node:fs');
    expect(existsSync(server.storeDir)).toBe(true);
    await server.stop();
    expect(existsSync(server.storeDir)).toBe(false);
  });
});

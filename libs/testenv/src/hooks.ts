/**
 * `describe`-level conveniences: each registers `beforeAll` (start) and `afterAll` (clean up,
 * also when tests failed) and returns an accessor for use inside tests:
 *
 *   const nats = useNats();
 *   const database = useDatabase();
 *   it('...', async () => { const nc = await connect({ servers: nats().url }); ... });
 */
import { afterAll, beforeAll } from 'vitest';

import type { NatsServer, StartNatsServerOptions } from './nats/nats-server.js';
import { startNatsServer } from './nats/start.js';
import type { PostgresServer, StartPostgresServerOptions } from './postgres/postgres-server.js';
import { startPostgresServer } from './postgres/start.js';
import { createTestDatabase, type TestDatabase } from './postgres/test-database.js';

/** Accessor returned by the `use*` hooks; throws when called before `beforeAll` ran. */
export type Use<T> = () => T;

function useResource<T>(what: string, start: () => Promise<T>, stop: (resource: T) => Promise<void>): Use<T> {
  let resource: T | undefined;
  beforeAll(async () => {
    resource = await start();
  });
  afterAll(async () => {
    const current = resource;
    resource = undefined;
    if (current !== undefined) await stop(current);
  });
  return () => {
    if (resource === undefined)
      throw new Error(`${what} is not started: use it inside tests or hooks, not at collection time`);
    return resource;
  };
}

/** A NATS server with JetStream for the enclosing `describe` (or file). */
export function useNats(options?: StartNatsServerOptions): Use<NatsServer> {
  return useResource(
    'NATS server',
    () => startNatsServer(options),
    (server) => server.stop(),
  );
}

/** A fresh database on the shared PostgreSQL server for the enclosing `describe` (or file). */
export function useDatabase(options?: { prefix?: string }): Use<TestDatabase> {
  return useResource(
    'test database',
    () => createTestDatabase(options),
    (database) => database.drop(),
  );
}

/** A dedicated PostgreSQL server (for stop/start under a running service). */
export function usePostgresServer(options?: StartPostgresServerOptions): Use<PostgresServer> {
  return useResource(
    'PostgreSQL server',
    () => startPostgresServer(options),
    (server) => server.destroy(),
  );
}

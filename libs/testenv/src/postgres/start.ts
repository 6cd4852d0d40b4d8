/** Picks the PostgreSQL implementation for the resolved runtime. */
import { resolveRuntime } from '../runtime.js';
import { startLocalPostgres } from './local-postgres.js';
import type { PostgresServer, StartPostgresServerOptions } from './postgres-server.js';

/**
 * Starts a dedicated PostgreSQL server, for tests that stop and start PostgreSQL under a
 * running service. Most tests want {@link createTestDatabase} on the shared server instead.
 * `stop()`/`start()` keep port and data; `destroy()` removes everything.
 */
export async function startPostgresServer(options: StartPostgresServerOptions = {}): Promise<PostgresServer> {
  if ((await resolveRuntime()) === 'local') return startLocalPostgres(options);
  const { startContainerPostgres } = await import('./container-postgres.js');
  return startContainerPostgres(options);
}

/**
 * @longtail/testenv: real servers for integration tests. One PostgreSQL server per test run
 * (global setup; each test file takes its own database on it), plus dedicated NATS and
 * PostgreSQL servers that a test can restart or kill. Local processes by default, containers
 * when a container runtime answers (`LONGTAIL_TESTENV=local|containers` forces one).
 */
import './provided-context.js';

export { createTestDatabase, sharedPostgresAdminUrl, type TestDatabase } from './postgres/test-database.js';
export { startPostgresServer } from './postgres/start.js';
export type {
  PostgresServer,
  PostgresStopMode,
  StartPostgresServerOptions,
} from './postgres/postgres-server.js';
export { startNatsServer } from './nats/start.js';
export type { NatsServer, StartNatsServerOptions } from './nats/nats-server.js';
export { useDatabase, useNats, usePostgresServer, type Use } from './hooks.js';
export { freePort } from './ports.js';
export { waitFor, WaitForTimeoutError, type WaitForOptions } from './wait-for.js';
export { resolveRuntime, type TestenvRuntime } from './runtime.js';

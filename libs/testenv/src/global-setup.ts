/**
 * Vitest global setup: one PostgreSQL server for the whole run, shared by every test file
 * (each file makes its own database on it with `createTestDatabase()`), torn down at the end.
 *
 * - `LONGTAIL_TEST_PG_URL` set: that server is used and nothing is started.
 * - otherwise a container (testcontainers) when a container runtime answers, else local
 *   initdb/postgres processes; `LONGTAIL_TESTENV=local|containers` forces one. The choice is
 *   written to `LONGTAIL_TESTENV` so that forked test workers skip detecting it again.
 * - a run of the `unit` project alone (`--project unit`) starts nothing: unit tests use no servers.
 * Vitest runs a root-level global setup once for all projects; should it ever run per project,
 * the projects still share one server (it is kept on globalThis, reference-counted).
 */
import type { TestProject } from 'vitest/node';

import './provided-context.js';
import type { PostgresServer } from './postgres/postgres-server.js';
import { startPostgresServer } from './postgres/start.js';
import { resolveRuntime } from './runtime.js';

interface SharedServer {
  users: number;
  server: Promise<PostgresServer>;
}

// Vitest may load this module once per project; the server is kept on globalThis so that all
// projects of one run share it.
const SHARED = Symbol.for('longtail.testenv.sharedPostgres');
type WithShared = typeof globalThis & { [SHARED]?: SharedServer };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (onlyUnitTests(project)) return async () => undefined;

  const external = process.env['LONGTAIL_TEST_PG_URL'];
  if (external) {
    project.provide('pgAdminUrl', external);
    return async () => undefined;
  }

  process.env['LONGTAIL_TESTENV'] ||= await resolveRuntime();
  const holder = globalThis as WithShared;
  const shared = (holder[SHARED] ??= { users: 0, server: startPostgresServer() });
  shared.users += 1;
  let server: PostgresServer;
  try {
    server = await shared.server;
  } catch (error) {
    shared.users -= 1;
    if (holder[SHARED] === shared && shared.users === 0) delete holder[SHARED];
    throw error;
  }
  project.provide('pgAdminUrl', server.url);

  return async () => {
    shared.users -= 1;
    if (shared.users > 0) return;
    if (holder[SHARED] === shared) delete holder[SHARED];
    await server.destroy();
  };
}

/** True when this setup serves only the `unit` project (selected alone, or setup run per project). */
function onlyUnitTests(project: TestProject): boolean {
  if (project.name === 'unit') return true;
  const selected = project.vitest.projects.map((p) => p.name);
  return selected.length > 0 && selected.every((name) => name === 'unit');
}

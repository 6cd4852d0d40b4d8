/**
 * A fresh database per test file on the run's shared PostgreSQL server (started by the global
 * setup), so test files never see each other's rows and need no cleanup between them.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

import '../provided-context.js';

export interface TestDatabase {
  /** Connection URL for the new database, as the superuser. */
  readonly url: string;
  readonly name: string;
  /** Drops the database, closing any connections still open (`WITH (FORCE)`). Idempotent. */
  drop(): Promise<void>;
}

let counter = 0;

/**
 * The shared server's admin URL: `LONGTAIL_TEST_PG_URL` when set, else what the global setup
 * provided.
 */
export function sharedPostgresAdminUrl(): string {
  const fromEnv = process.env['LONGTAIL_TEST_PG_URL'];
  if (fromEnv) return fromEnv;
  let provided: string | undefined;
  try {
    provided = inject('pgAdminUrl');
  } catch (error) {
    throw new Error(
      'No shared PostgreSQL: run under vitest with globalSetup libs/testenv/src/global-setup.ts, ' +
        'or set LONGTAIL_TEST_PG_URL.',
      { cause: error },
    );
  }
  if (!provided) {
    throw new Error(
      'No shared PostgreSQL: the global setup did not provide "pgAdminUrl" (is libs/testenv/src/global-setup.ts ' +
        'in globalSetup, and is this project one that starts it?), or set LONGTAIL_TEST_PG_URL.',
    );
  }
  return provided;
}

/** Creates an empty database on the shared server. Pair with `drop()` in `afterAll` (or use `useDatabase()`). */
export async function createTestDatabase(
  options: { adminUrl?: string; prefix?: string } = {},
): Promise<TestDatabase> {
  const admin = options.adminUrl ?? sharedPostgresAdminUrl();
  counter += 1;
  const prefix = (options.prefix ?? 'test')
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 20);
  const name = `${prefix}_${process.pid}_${counter}_${randomBytes(3).toString('hex')}`;
  await adminQuery(admin, `CREATE DATABASE "${name}" TEMPLATE template0 ENCODING 'UTF8'`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      await adminQuery(admin, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}

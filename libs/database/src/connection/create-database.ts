/**
 * A service's database handle: a `pg` pool whose every connection has `search_path` set to the
 * service's own schema (each service owns one PostgreSQL schema and never reads another's), and
 * a Kysely instance on it. The pool survives a PostgreSQL restart: broken clients are dropped and
 * replaced on the next checkout, and their errors are reported, never thrown at the process.
 */
import { Kysely, PostgresDialect, type KyselyPlugin } from 'kysely';
import pg from 'pg';

import { assertIdentifier } from '../identifiers.js';
import { exactTypes } from './type-parsers.js';

export interface CreateDatabaseOptions {
  readonly connectionString: string;
  /** The service's schema: plain lower-case identifier. It need not exist yet (`migrateToLatest` creates it). */
  readonly schema: string;
  /** Max pooled connections. Default 10. */
  readonly poolSize?: number;
  /** Shown in `pg_stat_activity.application_name`. */
  readonly applicationName?: string;
  /** Give up acquiring a connection after this long. Default 5 000 ms. */
  readonly connectionTimeoutMs?: number;
  /** Close connections idle this long. Default 30 000 ms. */
  readonly idleTimeoutMs?: number;
  /** Server-side `statement_timeout` per connection, if any. */
  readonly statementTimeoutMs?: number;
  /**
   * Called when a pooled connection fails outside a query (e.g. PostgreSQL restarted or
   * terminated it). The pool has already dropped that connection. Default: ignored.
   */
  readonly onConnectionError?: (error: Error) => void;
  /** Extra Kysely plugins (e.g. `CamelCasePlugin`). Default: none; tables and columns are snake_case. */
  readonly plugins?: readonly KyselyPlugin[];
}

export interface DatabaseHandle<DB> {
  readonly db: Kysely<DB>;
  readonly pool: pg.Pool;
  readonly schema: string;
  /** Closes the pool. Idempotent. */
  destroy(): Promise<void>;
}

export function createDatabase<DB>(options: CreateDatabaseOptions): DatabaseHandle<DB> {
  const schema = assertIdentifier('schema', options.schema);
  const startupOptions = [`-c search_path=${schema}`];
  if (options.statementTimeoutMs !== undefined) {
    startupOptions.push(`-c statement_timeout=${Math.max(0, Math.trunc(options.statementTimeoutMs))}`);
  }
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5_000,
    idleTimeoutMillis: options.idleTimeoutMs ?? 30_000,
    keepAlive: true,
    // Startup parameters: applied by the server to every new session, reconnections included.
    options: startupOptions.join(' '),
    types: exactTypes,
    ...(options.applicationName ? { application_name: options.applicationName } : {}),
  });

  const onConnectionError = options.onConnectionError ?? (() => undefined);
  const reported = new WeakSet<Error>();
  const report = (error: Error): void => {
    if (reported.has(error)) return; // an idle client's error arrives on the client and the pool
    reported.add(error);
    onConnectionError(error);
  };
  // Idle connections: pg-pool drops the client and emits here; with no listener, the process would crash.
  pool.on('error', report);
  // Checked-out connections have no pool listener while a caller holds them between queries.
  pool.on('connect', (client) => client.on('error', report));

  const db = new Kysely<DB>({
    dialect: new PostgresDialect({ pool }),
    plugins: [...(options.plugins ?? [])],
  });

  let destroyed: Promise<void> | undefined;
  return {
    db,
    pool,
    schema,
    destroy: () => (destroyed ??= db.destroy()),
  };
}

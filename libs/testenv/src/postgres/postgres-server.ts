/**
 * The PostgreSQL server contract shared by the local-process and container implementations.
 */

export type PostgresStopMode =
  /** SIGINT: abort sessions, checkpoint, exit. Clients see "terminating connection due to administrator command". */
  | 'fast'
  /** SIGQUIT: exit at once without a checkpoint, like a crash; the next start runs recovery. */
  | 'immediate';

export interface PostgresServer {
  /** Superuser URL to the `postgres` maintenance database, e.g. `postgres://postgres@127.0.0.1:5433/postgres`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly runtime: 'local' | 'containers';
  /** Whether the server process is up (after `start`, before `stop`). */
  readonly running: boolean;
  /** Stops the server; port and data are kept for `start()`. No-op when stopped. */
  stop(options?: { mode?: PostgresStopMode }): Promise<void>;
  /** Starts a stopped server on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops the server and removes its data. Idempotent. */
  destroy(): Promise<void>;
}

export interface StartPostgresServerOptions {
  /** Port to listen on (local) or to bind on the host (containers). Default: a free port. */
  readonly port?: number;
  /** Extra `-c name=value` settings. */
  readonly settings?: Readonly<Record<string, string>>;
  /** Start-up deadline. Default 60 s. */
  readonly startTimeoutMs?: number;
}

/** Settings that trade durability for speed: test data never needs to survive a power cut. */
export const TEST_SERVER_SETTINGS: Readonly<Record<string, string>> = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_connections: '200',
  TimeZone: 'UTC',
};

export function adminUrl(host: string, port: number, user = 'postgres', password?: string): string {
  const auth =
    password === undefined
      ? encodeURIComponent(user)
      : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return `postgres://${auth}@${host}:${port}/postgres`;
}

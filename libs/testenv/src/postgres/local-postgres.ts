/**
 * PostgreSQL as a local child process: `initdb` into a temporary directory, then `postgres`
 * itself (not `pg_ctl`, so the process is ours to signal and to reap). As root, both run as the
 * `postgres` OS user, in a directory that user owns. Sockets live in that directory too, so two
 * servers never collide on /var/run/postgresql.
 */
import { chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { spawnServer, runCommand, type ServerProcess } from '../process/child.js';
import { onProcessExit, removeQuietly } from '../process/cleanup.js';
import { postgresOsUser, type OsUser } from '../process/service-user.js';
import { freePort } from '../ports.js';
import { waitFor } from '../wait-for.js';
import { acceptsConnections } from './readiness.js';
import {
  adminUrl,
  TEST_SERVER_SETTINGS,
  type PostgresServer,
  type PostgresStopMode,
  type StartPostgresServerOptions,
} from './postgres-server.js';

const HOST = '127.0.0.1';
const STOP_SIGNAL: Record<PostgresStopMode, NodeJS.Signals> = { fast: 'SIGINT', immediate: 'SIGQUIT' };

export async function startLocalPostgres(options: StartPostgresServerOptions = {}): Promise<PostgresServer> {
  const bin = await postgresBinDir();
  const user = postgresOsUser();
  const dir = await mkdtemp(join(tmpdir(), 'longtail-pg-'));
  const unregister = onProcessExit(() => removeQuietly(dir));
  try {
    if (user) await chown(dir, user.uid, user.gid);
    const dataDir = join(dir, 'data');
    await runCommand(
      join(bin, 'initdb'),
      [
        '-D',
        dataDir,
        '-U',
        'postgres',
        '-A',
        'trust',
        '-E',
        'UTF8',
        '--locale=C',
        '--no-sync',
        '--no-instructions',
      ],
      { user, env: { ...process.env, LC_ALL: 'C' } },
    );
    const server = new LocalPostgres(bin, dir, dataDir, user, options, unregister);
    await server.firstStart(options.port);
    return server;
  } catch (error) {
    unregister();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

class LocalPostgres implements PostgresServer {
  readonly host = HOST;
  readonly runtime = 'local' as const;
  #port = 0;
  #process: ServerProcess | undefined;
  #destroyed = false;

  constructor(
    readonly bin: string,
    readonly dir: string,
    readonly dataDir: string,
    readonly user: OsUser | undefined,
    readonly options: StartPostgresServerOptions,
    readonly unregisterDirCleanup: () => void,
  ) {}

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return adminUrl(HOST, this.#port);
  }

  get running(): boolean {
    return this.#process !== undefined && this.#process.exit === undefined;
  }

  /** First start: on a free port unless one was given; another free port if that one was taken meanwhile. */
  async firstStart(port: number | undefined): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.#port = port ?? (await freePort());
      try {
        await this.start();
        return;
      } catch (error) {
        const portTaken = /could not (bind|create listen)|address already in use/i.test(
          this.#process?.output() ?? '',
        );
        if (port !== undefined || !portTaken || attempt >= 3) throw error;
      }
    }
  }

  async start(): Promise<void> {
    if (this.#destroyed) throw new Error('PostgreSQL server was destroyed');
    if (this.running) return;
    const settings = { ...TEST_SERVER_SETTINGS, ...this.options.settings };
    const args = ['-D', this.dataDir, '-p', String(this.#port), '-h', HOST, '-k', this.dir];
    for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
    const proc = spawnServer({
      name: 'postgres',
      command: join(this.bin, 'postgres'),
      args,
      user: this.user,
      env: { ...process.env, LC_ALL: 'C' },
      emergencySignal: 'SIGQUIT',
      reaperRemovesDir: this.dir,
    });
    this.#process = proc;
    await waitFor(() => acceptsConnections(this.url), {
      timeoutMs: this.options.startTimeoutMs ?? 60_000,
      intervalMs: 50,
      what: `PostgreSQL in ${this.dataDir} to accept connections on ${HOST}:${this.#port}`,
      bail: () =>
        proc.exit
          ? new Error(
              `PostgreSQL exited during start-up (${proc.exit.signal ?? `exit ${proc.exit.code}`}):\n${proc.output().trim()}`,
            )
          : undefined,
    }).catch(async (error: unknown) => {
      await proc.terminate('SIGQUIT', 2_000);
      throw error;
    });
  }

  async stop(options: { mode?: PostgresStopMode } = {}): Promise<void> {
    const proc = this.#process;
    if (!proc || proc.exit) return;
    await proc.terminate(STOP_SIGNAL[options.mode ?? 'fast'], 15_000);
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    await this.stop({ mode: 'immediate' });
    await rm(this.dir, { recursive: true, force: true });
    this.unregisterDirCleanup();
  }
}

/** `LONGTAIL_PG_BIN_DIR`, else the newest /usr/lib/postgresql/<major>/bin, else the PATH. */
async function postgresBinDir(): Promise<string> {
  const fromEnv = process.env['LONGTAIL_PG_BIN_DIR'];
  if (fromEnv) return fromEnv;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const majors = (await readdir(root))
      .filter((name) => /^\d+$/.test(name) && existsSync(join(root, name, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (majors[0]) return join(root, majors[0], 'bin');
  }
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'initdb'))) return dir;
  }
  throw new Error(
    'No PostgreSQL server binaries (initdb, postgres) found: install them, set LONGTAIL_PG_BIN_DIR, ' +
      'or set LONGTAIL_TEST_PG_URL to an existing server.',
  );
}

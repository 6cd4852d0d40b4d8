/**
 * PostgreSQL in a container (testcontainers), used when a container runtime answers. The host
 * port is bound explicitly so that a stop/start keeps it; the data lives in the container's own
 * filesystem, so it survives a stop/start and goes with the container.
 */
import { PostgreSqlContainer, type StartedPostgreSqlContainer } from '@testcontainers/postgresql';
import { getContainerRuntimeClient } from 'testcontainers';

import { freePort } from '../ports.js';
import { images } from '../runtime.js';
import { waitFor } from '../wait-for.js';
import { acceptsConnections } from './readiness.js';
import {
  adminUrl,
  TEST_SERVER_SETTINGS,
  type PostgresServer,
  type PostgresStopMode,
  type StartPostgresServerOptions,
} from './postgres-server.js';

const PASSWORD = 'postgres';

export async function startContainerPostgres(
  options: StartPostgresServerOptions = {},
): Promise<PostgresServer> {
  const port = options.port ?? (await freePort());
  const settings = { ...TEST_SERVER_SETTINGS, ...options.settings };
  const command = ['postgres'];
  for (const [name, value] of Object.entries(settings)) command.push('-c', `${name}=${value}`);
  const container = await new PostgreSqlContainer(images.postgres)
    .withDatabase('postgres')
    .withUsername('postgres')
    .withPassword(PASSWORD)
    .withExposedPorts({ container: 5432, host: port })
    .withCommand(command)
    .withStartupTimeout(options.startTimeoutMs ?? 120_000)
    .start();
  return new ContainerPostgres(container, port, options);
}

class ContainerPostgres implements PostgresServer {
  readonly runtime = 'containers' as const;
  readonly host: string;
  #running = true;
  #destroyed = false;

  constructor(
    readonly container: StartedPostgreSqlContainer,
    readonly port: number,
    readonly options: StartPostgresServerOptions,
  ) {
    this.host = container.getHost();
  }

  get url(): string {
    return adminUrl(this.host, this.port, 'postgres', PASSWORD);
  }

  get running(): boolean {
    return this.#running;
  }

  async stop(options: { mode?: PostgresStopMode } = {}): Promise<void> {
    if (!this.#running) return;
    const client = await getContainerRuntimeClient();
    const handle = client.container.getById(this.container.getId());
    if (options.mode === 'immediate') await handle.kill({ signal: 'SIGQUIT' });
    else await client.container.stop(handle, { timeout: 15 });
    await waitFor(async () => !(await client.container.inspect(handle)).State.Running, {
      timeoutMs: 30_000,
      what: `container ${this.container.getId()} to stop`,
    });
    this.#running = false;
  }

  async start(): Promise<void> {
    if (this.#destroyed) throw new Error('PostgreSQL server was destroyed');
    if (this.#running) return;
    const client = await getContainerRuntimeClient();
    await client.container.start(client.container.getById(this.container.getId()));
    await waitFor(() => acceptsConnections(this.url), {
      timeoutMs: this.options.startTimeoutMs ?? 60_000,
      what: `PostgreSQL container on ${this.host}:${this.port} to accept connections`,
    });
    this.#running = true;
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#running = false;
    await this.container.stop({ remove: true, removeVolumes: true, timeout: 0 }).catch(() => undefined);
  }
}

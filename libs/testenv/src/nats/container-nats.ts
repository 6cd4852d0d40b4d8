/**
 * NATS in a container (the nats image, `-js`), used when a container runtime answers. Client and
 * monitoring ports are bound explicitly on the host so that a restart keeps them; the store is in
 * the container's filesystem, which a stop/start keeps.
 */
import { GenericContainer, getContainerRuntimeClient, Wait, type StartedTestContainer } from 'testcontainers';

import { freePort } from '../ports.js';
import { images } from '../runtime.js';
import { sleep } from '../wait-for.js';
import type { NatsServer, StartNatsServerOptions } from './nats-server.js';
import { waitUntilReady } from './readiness.js';

export async function startContainerNats(options: StartNatsServerOptions): Promise<NatsServer> {
  const port = options.port ?? (await freePort());
  const monitorPort = await freePort();
  const storeDir = options.storeDir ?? '/data';
  const container: StartedTestContainer = await new GenericContainer(images.nats)
    .withCommand(['-js', '-m', '8222', '-sd', storeDir])
    .withExposedPorts({ container: 4222, host: port }, { container: 8222, host: monitorPort })
    .withWaitStrategy(Wait.forHttp('/healthz', 8222).forStatusCode(200))
    .withStartupTimeout(options.startTimeoutMs ?? 60_000)
    .start();
  const host = container.getHost();
  let stopped = false;
  return {
    url: `nats://${host}:${port}`,
    port,
    monitorPort,
    storeDir,
    runtime: 'containers',
    async stop() {
      if (stopped) return;
      stopped = true;
      await container.stop({ remove: true, removeVolumes: true }).catch(() => undefined);
    },
    async restart({ downtimeMs = 0 } = {}) {
      if (stopped) throw new Error('NATS server was stopped; start a new one');
      const client = await getContainerRuntimeClient();
      const handle = client.container.getById(container.getId());
      await client.container.stop(handle, { timeout: 10 });
      if (downtimeMs > 0) await sleep(downtimeMs);
      await client.container.start(handle);
      await waitUntilReady(port, monitorPort, options.startTimeoutMs, () => undefined, host);
    },
  };
}

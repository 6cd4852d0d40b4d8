/** Picks the NATS implementation for the resolved runtime. */
import { resolveRuntime } from '../runtime.js';
import { startLocalNats } from './local-nats.js';
import type { NatsServer, StartNatsServerOptions } from './nats-server.js';

/**
 * Starts `nats-server -js` for one test file: ready once JetStream is healthy and the client port
 * answers. `restart()` keeps port and store, so a test can prove that what JetStream acknowledged
 * survives; `stop()` ends it for good.
 */
export async function startNatsServer(options: StartNatsServerOptions = {}): Promise<NatsServer> {
  if ((await resolveRuntime()) === 'local') return startLocalNats(options);
  const { startContainerNats } = await import('./container-nats.js');
  return startContainerNats(options);
}

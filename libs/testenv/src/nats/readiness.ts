/** When is a NATS server ready: JetStream healthy on the monitoring port and INFO on the client port. */
import { connect } from 'node:net';

import { waitFor } from '../wait-for.js';

export const HOST = '127.0.0.1';

export async function waitUntilReady(
  port: number,
  monitorPort: number,
  timeoutMs = 30_000,
  bail: () => Error | undefined,
  host = HOST,
): Promise<void> {
  await waitFor(
    async () => {
      // /healthz answers 200 only once JetStream is enabled and its store recovered.
      const response = await fetch(`http://${host}:${monitorPort}/healthz`, {
        signal: AbortSignal.timeout(2_000),
      });
      if (response.status !== 200) throw new Error(`/healthz: ${response.status} ${await response.text()}`);
      return readsInfo(host, port);
    },
    { timeoutMs, intervalMs: 50, what: `nats-server on ${host}:${port} (JetStream ready)`, bail },
  );
}

/** Connects and waits for the server's INFO line: the client port is really serving. */
function readsInfo(host: string, port: number): Promise<true> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no INFO within 2 s'));
    }, 2_000);
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      socket.destroy();
      if (chunk.toString('utf8').startsWith('INFO ')) resolve(true);
      else reject(new Error(`unexpected greeting: ${chunk.toString('utf8').slice(0, 80)}`));
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/**
 * NATS as a local child process: `nats-server -js` on 127.0.0.1 with a temporary store directory
 * (or the caller's). A restart reuses the client port, the monitoring port and the store.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { spawnServer, type ServerProcess } from '../process/child.js';
import { onProcessExit, removeQuietly } from '../process/cleanup.js';
import { freePort } from '../ports.js';
import { sleep } from '../wait-for.js';
import type { NatsServer, StartNatsServerOptions } from './nats-server.js';
import { HOST, waitUntilReady } from './readiness.js';

export async function startLocalNats(options: StartNatsServerOptions): Promise<NatsServer> {
  const binary = natsServerBinary();
  const ownsStore = options.storeDir === undefined;
  const storeDir = options.storeDir ?? (await mkdtemp(join(tmpdir(), 'longtail-nats-')));
  const unregister = ownsStore ? onProcessExit(() => removeQuietly(storeDir)) : () => undefined;
  let port = options.port ?? (await freePort());
  let monitorPort = await freePort();
  let proc: ServerProcess | undefined;
  let stopped = false;

  const launch = async (): Promise<void> => {
    const current = spawnServer({
      name: 'nats-server',
      command: binary,
      args: [
        '-js',
        '-a',
        HOST,
        '-p',
        String(port),
        '-m',
        String(monitorPort),
        '-sd',
        storeDir,
        '-n',
        `longtail-test-${port}`,
      ],
      emergencySignal: 'SIGKILL',
      reaperRemovesDir: ownsStore ? storeDir : undefined,
    });
    proc = current;
    await waitUntilReady(port, monitorPort, options.startTimeoutMs, () =>
      current.exit
        ? new Error(
            `nats-server exited during start-up (${current.exit.signal ?? `exit ${current.exit.code}`}):\n${current.output().trim()}`,
          )
        : undefined,
    ).catch(async (error: unknown) => {
      await current.terminate('SIGKILL');
      throw error;
    });
  };

  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (error) {
      const portTaken = /address already in use/i.test(proc?.output() ?? '');
      if (!portTaken || attempt >= 3) {
        unregister();
        if (ownsStore) await rm(storeDir, { recursive: true, force: true });
        throw error;
      }
      if (options.port === undefined) port = await freePort();
      monitorPort = await freePort();
    }
  }

  return {
    url: `nats://${HOST}:${port}`,
    port,
    get monitorPort() {
      return monitorPort;
    },
    storeDir,
    runtime: 'local',
    async stop() {
      if (stopped) return;
      stopped = true;
      await proc?.terminate('SIGTERM', 10_000);
      unregister();
      if (ownsStore) await rm(storeDir, { recursive: true, force: true });
    },
    async restart({ downtimeMs = 0 } = {}) {
      if (stopped) throw new Error('NATS server was stopped; start a new one');
      await proc?.terminate('SIGTERM', 10_000);
      if (downtimeMs > 0) await sleep(downtimeMs);
      await launch();
    },
  };
}

function natsServerBinary(): string {
  const fromEnv = process.env['LONGTAIL_NATS_SERVER'];
  if (fromEnv) return fromEnv;
  for (const dir of ['/usr/sbin', '/usr/local/bin', '/usr/bin', ...(process.env['PATH'] ?? '').split(':')]) {
    if (dir && existsSync(join(dir, 'nats-server'))) return join(dir, 'nats-server');
  }
  throw new Error('nats-server not found: install it, or set LONGTAIL_NATS_SERVER to its path.');
}

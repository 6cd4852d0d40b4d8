/**
 * What every service promises an operator: a bad setting is one line naming it (no stack
 * trace), liveness answers, and SIGTERM stops the process gracefully with status 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startNatsServer, type NatsServer } from '@longtail/testenv';
import { startService } from './support/services.js';

describe('service shell', () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it.each([
    ['scheduler', { NATS_URL: 'nats://127.0.0.1:1' }, 'scheduler: config: DATABASE_URL: is required'],
    [
      'scheduler',
      { NATS_URL: 'http://x', DATABASE_URL: 'postgres://x/y' },
      'scheduler: config: NATS_URL: expected one or more nats:// URLs separated by commas',
    ],
    [
      'gateway',
      { NATS_URL: 'nats://127.0.0.1:1', LONGTAIL_ADMIN_KEY: 'short' },
      'gateway: config: LONGTAIL_ADMIN_KEY: must be at least 24 characters',
    ],
    [
      'gpu-worker',
      { NATS_URL: 'nats://127.0.0.1:1', OPERATOR_ADDRESS: 'nope' },
      'gpu-worker: config: OPERATOR_ADDRESS:',
    ],
  ] as const)('%s with a bad setting exits 1 with one line naming it', async (name, env, line) => {
    const service = startService(name, await freePort(), env);
    expect(await service.exited).toBe(1);
    const lines = service.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(line);
  });

  it('gpu-worker answers liveness, then stops on SIGTERM with status 0', async () => {
    const worker = startService('gpu-worker', await freePort(), {
      NATS_URL: nats.url,
      WORKER_ID: 'shell-test',
    });
    try {
      await expect
        .poll(async () => (await fetch(`${worker.baseUrl}/health/live`).catch(() => undefined))?.status, {
          timeout: 30_000,
        })
        .toBe(200);
    } finally {
      expect(await worker.stop()).toBe(0);
    }
    expect(worker.output()).toContain('gpu-worker stopped');
  });
});

/**
 * A gpu-worker lost while it serves a request (issue 5): built gateway + three built workers on
 * real NATS and the tiny Llama with the Llama 3 tokenizer. A worker that dies before its first
 * token (the `gpu-worker.inference.after-admit` failpoint: admitted, then exit) has its request
 * retried on another worker, which answers it in full with the request's one event. A worker
 * SIGKILLed mid-stream leaves the client a clean SSE error event within seconds (the gateway
 * notices the missing keepalives) and the gateway publishes the request's one `inference.failed`,
 * with the dead worker's id and the completion tokens the client received.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KV_BUCKETS, workerGenerateSubject } from '@longtail/contracts';
import { freePort, startNatsServer, waitFor, type NatsServer } from '@longtail/testenv';
import { writeServingModel } from './support/serving-model.js';
import { startService, waitUntilReady, type ServiceProcess } from './support/services.js';

const MODEL = 'tiny-llama';
const FAILPOINT_EXIT_CODE = 86;
const WORKER_IDS = ['wf-e2e-w1', 'wf-e2e-w2', 'wf-e2e-w3'] as const;

interface InferenceEventData {
  requestId: string;
  completionTokens: number;
  workerId: string | null;
  error?: { code: string };
}

describe('serving survives a lost gpu-worker', () => {
  const modelDir = mkdtempSync(join(tmpdir(), 'longtail-worker-failure-'));
  let nats: NatsServer;
  let nc: NatsConnection;
  const workers = new Map<string, ServiceProcess>();
  let gateway: ServiceProcess;
  const events: Array<{ type: string; data: InferenceEventData }> = [];

  beforeAll(async () => {
    writeServingModel(modelDir);
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    nc.subscribe('inference.>', {
      callback: (_err, msg) => {
        const event = msg.json<{ type: string; data: InferenceEventData }>();
        events.push({ type: event.type, data: event.data });
      },
    });
    for (const id of WORKER_IDS) {
      workers.set(
        id,
        startService('gpu-worker', await freePort(), {
          NATS_URL: nats.url,
          WORKER_ID: id,
          BASE_MODEL: MODEL,
          MODEL_DIR: modelDir,
          ENGINE_THREADS: '1',
          HEARTBEAT_INTERVAL_S: '0.5',
          OPERATOR_ADDRESS: `0x${'cd'.repeat(20)}`,
          // The first worker dies on the first request it admits, before any token.
          ...(id === WORKER_IDS[0] ? { LONGTAIL_FAILPOINTS: 'gpu-worker.inference.after-admit=exit' } : {}),
        }),
      );
    }
    gateway = startService('gateway', await freePort(), {
      NATS_URL: nats.url,
      LONGTAIL_ADMIN_KEY: 'lt_admin_worker_failure_e2e_0123456789',
    });
    await Promise.all([...[...workers.values(), gateway].map((s) => waitUntilReady(s, 120_000))]);
    // Every worker heartbeats before the test routes (the gateway watches the same bucket).
    const kv = await new Kvm(nc).open(KV_BUCKETS.workers.bucket);
    await waitFor(
      async () => {
        const keys: string[] = [];
        for await (const k of await kv.keys()) keys.push(k);
        return keys.length === WORKER_IDS.length;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'three worker heartbeats' },
    );
    await new Promise((r) => setTimeout(r, 1000)); // the gateway's watch has them too
  });

  afterAll(async () => {
    // WORKER_FAILURE_E2E_LOGS=1 prints what the services logged.
    if (process.env['WORKER_FAILURE_E2E_LOGS'])
      console.log(gateway?.output(), ...[...workers.values()].map((w) => w.output()));
    await Promise.all([gateway?.stop(), ...[...workers.values()].map((w) => w.stop())]);
    await nc?.close();
    await nats?.stop();
    rmSync(modelDir, { recursive: true, force: true });
  });

  const post = (path: string, body: unknown): Promise<Response> =>
    fetch(`${gateway.baseUrl}/v1/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-anything' },
      body: JSON.stringify(body),
    });

  const eventsOf = (requestId: string) => events.filter((e) => e.data.requestId === requestId);

  it('retries on another worker when the chosen one dies before its first token: full text, one completed event', async () => {
    const prompt = 'Retry me, please:';
    const failing = workers.get(WORKER_IDS[0])!;
    // The router spreads requests over idle workers: within a few, one lands on the failing worker.
    const answers: Array<{ requestId: string; text: string; ms: number }> = [];
    for (let i = 0; i < 6 && failing.child.exitCode === null; i++) {
      const t0 = Date.now();
      const res = await post('completions', { model: MODEL, prompt, max_tokens: 16, temperature: 0 });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { choices: Array<{ text: string }> };
      answers.push({
        requestId: res.headers.get('x-request-id')!,
        text: body.choices[0]!.text,
        ms: Date.now() - t0,
      });
    }
    expect(await failing.exited).toBe(FAILPOINT_EXIT_CODE);
    expect(failing.output()).toContain('failpoint gpu-worker.inference.after-admit');
    // A reference answer from a live worker: every answer (the retried one included) is the same
    // greedy text, and each request has exactly one event, a completed one from a live worker.
    const ref = await post('completions', { model: MODEL, prompt, max_tokens: 16, temperature: 0 });
    const refText = ((await ref.json()) as { choices: Array<{ text: string }> }).choices[0]!.text;
    expect(refText.length).toBeGreaterThan(0);
    for (const a of answers) expect(a.text).toBe(refText);
    for (const a of answers) {
      await waitFor(() => eventsOf(a.requestId).length > 0, {
        timeoutMs: 5000,
        intervalMs: 20,
        what: 'an event',
      });
    }
    await new Promise((r) => setTimeout(r, 500)); // a duplicate would arrive right behind
    for (const a of answers) {
      expect(eventsOf(a.requestId)).toHaveLength(1);
      expect(eventsOf(a.requestId)[0]).toMatchObject({ type: 'inference.completed' });
      expect(eventsOf(a.requestId)[0]!.data.workerId).not.toBe(WORKER_IDS[0]);
    }
    // The retried request waited for the lost worker's silence (about 5 s), not for a 30 s timeout.
    const slowest = Math.max(...answers.map((a) => a.ms));
    expect(slowest).toBeGreaterThan(3000);
    expect(slowest).toBeLessThan(10_000);
  });

  it('ends the stream with an error event when the serving worker is SIGKILLed mid-stream; one inference.failed', async () => {
    const alive = WORKER_IDS.filter((id) => workers.get(id)!.child.exitCode === null);
    expect(alive).toHaveLength(2);
    // Which worker takes the request: the first generate request seen on NATS after this point.
    let servedBy: string | undefined;
    nc.subscribe('worker.*.generate', {
      max: 1,
      callback: (_err, msg) => {
        servedBy = alive.find((id) => workerGenerateSubject(id) === msg.subject);
      },
    });
    await nc.flush();
    const res = await post('completions', {
      model: MODEL,
      prompt: 'Kill me:',
      max_tokens: 3500,
      temperature: 0,
      logprobs: 1,
      stream: true,
    });
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-request-id')!;
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let tokensReceived = 0;
    let text = '';
    let killedAt: number | undefined;
    let error: { code?: string; type?: string; message?: string } | undefined;
    let done = false;
    const readAll = (async () => {
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) return;
        buffer += value;
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const line = buffer.slice(0, cut).replace(/^data: /, '');
          buffer = buffer.slice(cut + 2);
          if (line === '[DONE]') {
            done = true;
            continue;
          }
          const data = JSON.parse(line) as {
            error?: typeof error;
            choices?: Array<{ text: string; logprobs: { tokens: string[] } | null }>;
          };
          if (data.error) {
            error = data.error;
            continue;
          }
          for (const c of data.choices ?? []) {
            text += c.text;
            tokensReceived += c.logprobs?.tokens.length ?? 0;
          }
          if (killedAt === undefined && tokensReceived > 0) {
            expect(servedBy).toBeDefined();
            killedAt = Date.now();
            workers.get(servedBy!)!.child.kill('SIGKILL');
          }
        }
      }
    })();
    await Promise.race([
      readAll,
      new Promise((_, reject) => setTimeout(() => reject(new Error('the stream hung')), 20_000)),
    ]);
    expect(killedAt).toBeDefined();
    expect(await workers.get(servedBy!)!.exited).toBe('SIGKILL');
    expect(Date.now() - killedAt!).toBeLessThan(10_000);
    expect(done).toBe(false); // it did not finish: the worker was killed long before 3,500 tokens
    expect(error).toMatchObject({ type: 'server_error', code: 'worker_lost' });
    expect(text.length).toBeGreaterThan(0);
    expect(tokensReceived).toBeLessThan(3500);

    await waitFor(() => eventsOf(requestId).length > 0, {
      timeoutMs: 5000,
      intervalMs: 20,
      what: 'the failed event',
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(eventsOf(requestId)).toEqual([
      {
        type: 'inference.failed',
        data: expect.objectContaining({
          workerId: servedBy,
          completionTokens: tokensReceived,
          error: expect.objectContaining({ code: 'worker_lost' }),
        }),
      },
    ]);

    // Nothing hangs: the remaining worker still answers.
    const after = await post('completions', {
      model: MODEL,
      prompt: 'Still there?',
      max_tokens: 4,
      temperature: 0,
    });
    expect(after.status).toBe(200);
  });
});

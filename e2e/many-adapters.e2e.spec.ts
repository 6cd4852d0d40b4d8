/**
 * Many adapters through the whole serving path: 50 adapters, 500 requests through the official
 * `openai` client, 25 at a time, each on a random adapter (or the base model). Every answer must
 * equal the engine called directly with the same adapter and prompt, and every request must
 * produce exactly one inference event with the client's token counts.
 *
 * Seeded sampling (temperature 0.9, a seed per request) over the 128k-token Llama 3 vocabulary:
 * the worker batches each request with up to 24 others, the direct call runs it with whatever
 * else this process has in flight, so the texts agree only because the engine is batch-invariant
 * (its default; native/README.md, "Batch invariance"). With an addon built with batch invariance
 * off in both the worker and this process, 11 of the 500 differed (2026-12-07; 4 of 500 in the
 * first seeded version of this test, before the option existed).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '@longtail/engine-node';
import { freePort, startNatsServer, waitFor, type NatsServer } from '@longtail/testenv';
import { writeServingAdapter, writeServingModel } from './support/serving-model.js';
import { startService, waitUntilReady, type ServiceProcess } from './support/services.js';

const MODEL = 'tiny-llama';
const EOS = [128001, 128008, 128009];
const ADAPTERS = 50;
const REQUESTS = 500;
const MAX_TOKENS = 8;
const TEMPERATURE = 0.9;

describe('50 adapters, 500 requests through the gateway', () => {
  const dir = mkdtempSync(join(tmpdir(), 'longtail-many-'));
  const modelDir = join(dir, 'model');
  const adapterDirs: Record<string, string> = {};
  let nats: NatsServer;
  let nc: NatsConnection;
  let worker: ServiceProcess;
  let gateway: ServiceProcess;
  let engine: Engine;
  let tokenizer: Tokenizer;
  const events: Array<{
    type: string;
    data: { requestId: string; completionTokens: number; adapterId: string | null };
  }> = [];

  beforeAll(async () => {
    writeServingModel(modelDir, 5);
    for (let i = 0; i < ADAPTERS; i++) {
      const id = `${MODEL}:many/a${i}`;
      adapterDirs[id] = join(dir, `a${i}`);
      writeServingAdapter(modelDir, adapterDirs[id]!, 100 + i, 2 << (i % 3));
    }
    const config = JSON.parse(readFileSync(join(modelDir, 'tokenizer_config.json'), 'utf8')) as object;
    tokenizer = new Tokenizer(
      JSON.parse(readFileSync(join(modelDir, 'tokenizer.json'), 'utf8')) as object,
      config,
    );
    nats = await startNatsServer();
    [engine, nc] = await Promise.all([Engine.open(modelDir, { threads: 1 }), connect({ servers: nats.url })]);
    for (const [id, path] of Object.entries(adapterDirs)) engine.registerAdapter(id, path);
    nc.subscribe('inference.>', { callback: (_err, msg) => void events.push(msg.json()) });
    worker = startService('gpu-worker', await freePort(), {
      NATS_URL: nats.url,
      WORKER_ID: 'many-w1',
      BASE_MODEL: MODEL,
      MODEL_DIR: modelDir,
      ENGINE_THREADS: '1',
      ADAPTER_DIRS: JSON.stringify(adapterDirs),
      HEARTBEAT_INTERVAL_S: '0.5',
    });
    gateway = startService('gateway', await freePort(), {
      NATS_URL: nats.url,
      LONGTAIL_ADMIN_KEY: 'lt_admin_many_adapters_0123456789',
    });
    await Promise.all([waitUntilReady(worker, 60_000), waitUntilReady(gateway, 60_000)]);
  });

  afterAll(async () => {
    await Promise.all([gateway?.stop(), worker?.stop()]);
    await nc?.close();
    await engine?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every answer equals the engine called directly, with one event each', async () => {
    const openai = new OpenAI({ apiKey: 'sk-any', baseURL: `${gateway.baseUrl}/v1`, maxRetries: 0 });
    await waitFor(async () => (await openai.models.list()).data.some((m) => m.id === MODEL), {
      timeoutMs: 20_000,
      what: 'the worker in /v1/models',
    });
    const decode = (ids: number[]) =>
      tokenizer.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false });
    const ids = Object.keys(adapterDirs);
    const jobs = Array.from({ length: REQUESTS }, (_, i) => ({
      i,
      adapter: i % 10 === 0 ? null : ids[(i * 7919) % ADAPTERS]!,
      prompt: `Request ${i}: tell me about item ${(i * 31) % 97}`,
    }));
    const mismatches: string[] = [];
    const sampled = new Map<number, number[]>();
    const seen = new Map<string, number>();
    for (let at = 0; at < jobs.length; at += 25) {
      await Promise.all(
        jobs.slice(at, at + 25).map(async ({ i, adapter, prompt }) => {
          const res = await openai.completions.create({
            model: adapter ?? MODEL,
            prompt,
            max_tokens: MAX_TOKENS,
            temperature: TEMPERATURE,
            seed: 5000 + i,
          });
          const gen = engine.generate(tokenizer.encode(prompt).ids, {
            ...(adapter ? { adapter } : {}),
            sampling: { temperature: TEMPERATURE, seed: 5000 + i, maxTokens: MAX_TOKENS, stopTokenIds: EOS },
          });
          const want = await gen.result;
          sampled.set(i, want.tokens);
          if (res.choices[0]!.text !== decode(want.tokens))
            mismatches.push(`request ${i} on ${adapter ?? MODEL}`);
          seen.set(res.id.replace(/^cmpl-/, ''), res.usage!.completion_tokens);
        }),
      );
    }
    expect(mismatches).toEqual([]);
    // The sampling is real: seeded answers are not the greedy ones.
    const greedy = await Promise.all(
      jobs.slice(0, 25).map(
        async ({ adapter, prompt }) =>
          (
            await engine.generate(tokenizer.encode(prompt).ids, {
              ...(adapter ? { adapter } : {}),
              sampling: { temperature: 0, maxTokens: MAX_TOKENS, stopTokenIds: EOS },
            }).result
          ).tokens,
      ),
    );
    const differ = greedy.filter((g, i) => g.join() !== sampled.get(i)!.join()).length;
    expect(differ).toBeGreaterThan(0);
    await waitFor(
      () =>
        seen.size === REQUESTS && [...seen.keys()].every((id) => events.some((e) => e.data.requestId === id)),
      {
        timeoutMs: 10_000,
        what: 'one event per request',
      },
    );
    await new Promise((r) => setTimeout(r, 200)); // a duplicate would arrive right behind
    expect(events).toHaveLength(REQUESTS);
    for (const e of events) {
      expect(e.type).toBe('inference.completed');
      expect(e.data.completionTokens).toBe(seen.get(e.data.requestId));
    }
  }, 180_000);
});

/**
 * Serving end to end: the official `openai` client → gateway → NATS → gpu-worker → engine, on a
 * tiny generated Llama with the real Llama 3 tokenizer and chat template. Every answer is checked
 * against the engine called directly (greedy) and the tokenizer libraries used directly; every
 * request must produce exactly one inference event whose token counts equal what the client got.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '@longtail/engine-node';
import { freePort, startNatsServer, waitFor, type NatsServer } from '@longtail/testenv';
import { writeServingAdapter, writeServingModel } from './support/serving-model.js';
import { startService, waitUntilReady, type ServiceProcess } from './support/services.js';

const MODEL = 'tiny-llama';
const WORKER_ID = 'serving-e2e-w1';
const EOS = [128001, 128008, 128009];
const ADAPTER = `${MODEL}:acme/support`;

interface InferenceEventData {
  requestId: string;
  completionTokens: number;
  promptTokens: number;
  finishReason?: string;
  workerId: string | null;
  adapterId: string | null;
}

describe('serving: OpenAI API → gateway → gpu-worker → engine', () => {
  const modelDir = mkdtempSync(join(tmpdir(), 'longtail-serving-'));
  const adapterDir = `${modelDir}-adapter`;
  let nats: NatsServer;
  let nc: NatsConnection;
  let worker: ServiceProcess;
  let gateway: ServiceProcess;
  let engine: Engine;
  let tokenizer: Tokenizer;
  let chatTemplate: Template;
  let openai: OpenAI;
  const events: Array<{ type: string; data: InferenceEventData }> = [];

  beforeAll(async () => {
    writeServingModel(modelDir);
    writeServingAdapter(modelDir, adapterDir, 3);
    const config = JSON.parse(readFileSync(join(modelDir, 'tokenizer_config.json'), 'utf8')) as {
      chat_template: string;
    };
    tokenizer = new Tokenizer(
      JSON.parse(readFileSync(join(modelDir, 'tokenizer.json'), 'utf8')) as object,
      config,
    );
    chatTemplate = new Template(config.chat_template);
    nats = await startNatsServer();
    [engine, nc] = await Promise.all([Engine.open(modelDir, { threads: 1 }), connect({ servers: nats.url })]);
    engine.registerAdapter(ADAPTER, adapterDir);
    nc.subscribe('inference.>', {
      callback: (_err, msg) => {
        const event = msg.json<{ type: string; data: InferenceEventData }>();
        events.push({ type: event.type, data: event.data });
      },
    });
    worker = startService('gpu-worker', await freePort(), {
      NATS_URL: nats.url,
      WORKER_ID,
      BASE_MODEL: MODEL,
      MODEL_DIR: modelDir,
      ENGINE_THREADS: '1',
      ADAPTER_DIRS: JSON.stringify({ [ADAPTER]: adapterDir }),
      HEARTBEAT_INTERVAL_S: '0.5',
      OPERATOR_ADDRESS: `0x${'ab'.repeat(20)}`,
    });
    gateway = startService('gateway', await freePort(), {
      NATS_URL: nats.url,
      LONGTAIL_ADMIN_KEY: 'lt_admin_serving_e2e_0123456789',
    });
    await Promise.all([waitUntilReady(worker, 60_000), waitUntilReady(gateway, 60_000)]);
    openai = new OpenAI({ apiKey: 'sk-anything', baseURL: `${gateway.baseUrl}/v1`, maxRetries: 0 });
    await waitFor(async () => (await openai.models.list()).data.some((m) => m.id === MODEL), {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: 'the worker in /v1/models',
    });
  });

  afterAll(async () => {
    // SERVING_E2E_LOGS=1 prints what the services logged, for a failure that needs it.
    if (process.env['SERVING_E2E_LOGS']) console.log(worker?.output(), gateway?.output());
    await Promise.all([gateway?.stop(), worker?.stop()]);
    await nc?.close();
    await engine?.close();
    await nats?.stop();
    rmSync(modelDir, { recursive: true, force: true });
    rmSync(adapterDir, { recursive: true, force: true });
  });

  const decode = (ids: number[]) =>
    tokenizer.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false });

  /** The engine's greedy answer to the same prompt ids. */
  async function greedy(
    prompt: number[],
    maxTokens: number,
    adapter?: string,
  ): Promise<{ text: string; tokens: number; finish: string }> {
    const gen = engine.generate(prompt, {
      ...(adapter ? { adapter } : {}),
      sampling: { temperature: 0, maxTokens, stopTokenIds: EOS },
    });
    const result = await gen.result;
    return { text: decode(result.tokens), tokens: result.tokens.length, finish: result.finishReason };
  }

  const chatPrompt = (messages: Array<{ role: string; content: string }>) =>
    tokenizer.encode(
      chatTemplate.render({ messages, add_generation_prompt: true, bos_token: '<|begin_of_text|>' }),
      { add_special_tokens: false },
    ).ids;

  /** Exactly one inference event for the request, with these counts. */
  async function expectOneEvent(
    requestId: string,
    usage: { prompt_tokens: number; completion_tokens: number },
    finish: string,
  ) {
    await waitFor(() => events.some((e) => e.data.requestId === requestId), {
      timeoutMs: 5000,
      intervalMs: 20,
      what: `event of ${requestId}`,
    });
    await new Promise((r) => setTimeout(r, 100)); // a duplicate would arrive right behind
    const mine = events.filter((e) => e.data.requestId === requestId);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      type: 'inference.completed',
      data: {
        promptTokens: usage.prompt_tokens,
        completionTokens: usage.completion_tokens,
        finishReason: finish,
        workerId: WORKER_ID,
      },
    });
  }

  const requestIdOf = (id: string) => id.replace(/^(chatcmpl|cmpl)-/, '');

  it("completions, not streamed: the engine's greedy text, usage, one event", async () => {
    const prompt = 'The quick brown fox';
    const expected = await greedy(tokenizer.encode(prompt).ids, 24);
    const res = await openai.completions.create({ model: MODEL, prompt, max_tokens: 24, temperature: 0 });
    expect(res.object).toBe('text_completion');
    expect(res.choices[0]!.text).toBe(expected.text);
    expect(res.choices[0]!.finish_reason).toBe(expected.finish === 'length' ? 'length' : 'stop');
    expect(res.usage).toEqual({
      prompt_tokens: tokenizer.encode(prompt).ids.length,
      completion_tokens: expected.tokens,
      total_tokens: tokenizer.encode(prompt).ids.length + expected.tokens,
    });
    await expectOneEvent(requestIdOf(res.id), res.usage!, res.choices[0]!.finish_reason);
  });

  it('completions, streamed with include_usage: the same text in pieces, usage in the last chunk', async () => {
    const prompt = 'Once upon a time';
    const expected = await greedy(tokenizer.encode(prompt).ids, 40);
    const stream = await openai.completions.create({
      model: MODEL,
      prompt,
      max_tokens: 40,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let pieces = 0;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let id = '';
    for await (const chunk of stream) {
      id = chunk.id;
      for (const c of chunk.choices) {
        text += c.text;
        if (c.text) pieces++;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(expected.text);
    expect(pieces).toBeGreaterThan(1);
    expect(usage).toMatchObject({ completion_tokens: expected.tokens });
    await expectOneEvent(requestIdOf(id), usage!, expected.finish === 'length' ? 'length' : 'stop');
  });

  it("chat, not streamed and streamed: the chat template, the engine's greedy reply", async () => {
    const messages = [
      { role: 'system' as const, content: 'You are terse.' },
      { role: 'user' as const, content: 'Say something in 日本語 😀' },
    ];
    const expected = await greedy(chatPrompt(messages), 32);
    const res = await openai.chat.completions.create({
      model: MODEL,
      messages,
      max_completion_tokens: 32,
      temperature: 0,
    });
    expect(res.object).toBe('chat.completion');
    expect(res.choices[0]!.message).toMatchObject({ role: 'assistant', content: expected.text });
    expect(res.usage).toMatchObject({
      prompt_tokens: chatPrompt(messages).length,
      completion_tokens: expected.tokens,
    });
    await expectOneEvent(requestIdOf(res.id), res.usage!, res.choices[0]!.finish_reason);

    const stream = await openai.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 32,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let role: string | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null = null;
    let id = '';
    for await (const chunk of stream) {
      id = chunk.id;
      expect(chunk.object).toBe('chat.completion.chunk');
      for (const c of chunk.choices) {
        role ??= c.delta.role;
        text += c.delta.content ?? '';
        finish = c.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(role).toBe('assistant');
    expect(text).toBe(expected.text);
    expect(text).not.toContain('\uFFFD');
    expect(usage).toMatchObject({ completion_tokens: expected.tokens });
    await expectOneEvent(requestIdOf(id), usage!, finish!);
  });

  it('stop strings end the text before the stop string; n choices each get one', async () => {
    const prompt = 'The quick brown fox';
    const full = await greedy(tokenizer.encode(prompt).ids, 24);
    // A stop string from the middle of the greedy text.
    const stop = full.text.slice(Math.floor(full.text.length / 2), Math.floor(full.text.length / 2) + 3);
    const res = await openai.completions.create({
      model: MODEL,
      prompt,
      max_tokens: 24,
      temperature: 0,
      stop: [stop],
      n: 2,
    });
    expect(res.choices).toHaveLength(2);
    for (const c of res.choices) {
      expect(c.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
      expect(c.finish_reason).toBe('stop');
    }
    await expectOneEvent(requestIdOf(res.id), res.usage!, 'stop');
  });

  it('returns logprobs: one entry per completion token, the greedy token first among the alternatives', async () => {
    const messages = [{ role: 'user' as const, content: 'Hello' }];
    const expected = await greedy(chatPrompt(messages), 8);
    const res = await openai.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 8,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
    });
    const content = res.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(expected.tokens);
    expect(res.usage!.completion_tokens).toBe(expected.tokens);
    for (const entry of content) {
      expect(entry.top_logprobs).toHaveLength(3);
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top_logprobs[0]!.logprob).toBeCloseTo(entry.logprob, 5);
    }
    const completion = await openai.completions.create({
      model: MODEL,
      prompt: 'Hello',
      max_tokens: 8,
      temperature: 0,
      logprobs: 2,
    });
    const lp = completion.choices[0]!.logprobs!;
    expect(lp.tokens).toHaveLength(completion.usage!.completion_tokens);
    expect(lp.token_logprobs).toHaveLength(completion.usage!.completion_tokens);
    expect(Object.keys(lp.top_logprobs![0]!).length).toBeGreaterThanOrEqual(1);
  });

  it('serves an adapter (`base:owner/name`) as the engine does with the same adapter', async () => {
    const prompt = 'The quick brown fox';
    const [base, expected] = [
      await greedy(tokenizer.encode(prompt).ids, 16),
      await greedy(tokenizer.encode(prompt).ids, 16, ADAPTER),
    ];
    expect(expected.text).not.toBe(base.text); // the adapter changes the answer
    const res = await openai.completions.create({ model: ADAPTER, prompt, max_tokens: 16, temperature: 0 });
    expect(res.model).toBe(ADAPTER);
    expect(res.choices[0]!.text).toBe(expected.text);
    await expectOneEvent(requestIdOf(res.id), res.usage!, res.choices[0]!.finish_reason);
    expect(events.find((e) => e.data.requestId === requestIdOf(res.id))?.data).toMatchObject({
      adapterId: ADAPTER,
    });
    await expect(
      openai.completions.create({ model: `${MODEL}:acme/nope`, prompt, max_tokens: 4 }),
    ).rejects.toMatchObject({ status: 404 });
  });

  it('a client that goes away mid-stream cancels the generation in the engine', async () => {
    const prompt = 'Count forever:';
    // The greedy answer runs at least 200 tokens, so 3000 would take seconds unless cancelled.
    const full = await greedy(tokenizer.encode(prompt).ids, 200);
    expect(full.finish).toBe('length');
    const abort = new AbortController();
    const stream = await openai.completions.create(
      { model: MODEL, prompt, max_tokens: 3000, temperature: 0, stream: true },
      { signal: abort.signal },
    );
    let received = '';
    let id = '';
    try {
      for await (const chunk of stream) {
        id = chunk.id;
        received += chunk.choices[0]?.text ?? '';
        if (received.length > 10) abort.abort();
      }
    } catch {
      // the aborted request
    }
    expect(abort.signal.aborted).toBe(true);
    expect(full.text.startsWith(received)).toBe(true);
    const requestId = requestIdOf(id);
    await waitFor(() => events.some((e) => e.data.requestId === requestId), {
      timeoutMs: 5000,
      intervalMs: 20,
      what: 'the cancelled event',
    });
    const event = events.filter((e) => e.data.requestId === requestId);
    expect(event).toHaveLength(1);
    expect(event[0]).toMatchObject({ type: 'inference.completed', data: { finishReason: 'cancelled' } });
    expect(event[0]!.data.completionTokens).toBeLessThan(1000);
    // The worker's heartbeat carries the engine's own counts: nothing running or waiting.
    const kv = await new Kvm(nc).open('workers');
    await waitFor(
      async () => {
        const beat = (await kv.get(WORKER_ID))?.json<{ inFlight: number; queueDepth: number }>();
        return beat !== undefined && beat.inFlight === 0 && beat.queueDepth === 0;
      },
      { timeoutMs: 5000, intervalMs: 50, what: 'an idle engine' },
    );
  });

  it("answers errors in OpenAI's shape: unknown model 404, malformed JSON 400, unknown parameter 400, no key 401", async () => {
    await expect(
      openai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toMatchObject({
      status: 404,
      code: 'model_not_found',
    });
    const post = (body: string, headers: Record<string, string> = { authorization: 'Bearer sk-x' }) =>
      fetch(`${gateway.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
    const malformed = await post('{"model": "tiny-llama", "messages": [');
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
    const unknown = await post(
      JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], frobnicate: 1 }),
    );
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({
      error: { type: 'invalid_request_error', param: 'frobnicate' },
    });
    const noKey = await post(
      JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }),
      {},
    );
    expect(noKey.status).toBe(401);
  });

  it('drains on SIGTERM: the running stream completes, then the model is unavailable (503)', async () => {
    const prompt = 'Drain me:';
    const expected = await greedy(tokenizer.encode(prompt).ids, 300);
    const stream = await openai.completions.create({
      model: MODEL,
      prompt,
      max_tokens: 300,
      temperature: 0,
      stream: true,
    });
    let text = '';
    let stopping: Promise<number | string> | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      stopping ??= worker.stop();
    }
    expect(text).toBe(expected.text);
    expect(await stopping).toBe(0);
    const refused = await openai.completions
      .create({ model: MODEL, prompt, max_tokens: 4 })
      .catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(OpenAI.APIError);
    const { status, requestID } = refused as InstanceType<typeof OpenAI.APIError>;
    expect(status).toBe(503);
    // The request no worker took has its one event too, from the gateway.
    await waitFor(() => events.some((e) => e.data.requestId === requestID), {
      timeoutMs: 5000,
      intervalMs: 20,
      what: 'the 503 event',
    });
    expect(events.filter((e) => e.data.requestId === requestID)).toMatchObject([
      { type: 'inference.failed', data: { workerId: null, completionTokens: 0 } },
    ]);
  });
});

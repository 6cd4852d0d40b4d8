/**
 * An uploaded adapter is served: `POST /v1/adapters` (multipart) → NATS Object Store → a
 * gpu-worker that has never seen it fetches it by sha256 into its cache → the answer equals the
 * engine called directly with the same adapter (greedy). Another tenant's private adapter and a
 * retired adapter are not served.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '@longtail/engine-node';
import { freePort, startNatsServer, waitFor, type NatsServer } from '@longtail/testenv';
import { writeServingAdapter, writeServingModel } from './support/serving-model.js';
import { startService, waitUntilReady, type ServiceProcess } from './support/services.js';

const MODEL = 'tiny-llama';
const ADAPTER = `${MODEL}:acme/uploaded`;
const EOS = [128001, 128008, 128009];

describe('adapter upload → object store → worker → engine', () => {
  const dir = mkdtempSync(join(tmpdir(), 'longtail-adapter-upload-'));
  const modelDir = join(dir, 'models', MODEL);
  const adapterDir = join(dir, 'adapter');
  const cacheDir = join(dir, 'cache');
  let nats: NatsServer;
  let worker: ServiceProcess;
  let gateway: ServiceProcess;
  let engine: Engine;
  let tokenizer: Tokenizer;
  let sha256: string;

  const completion = (model: string, prompt: string): Promise<Response> =>
    fetch(`${gateway.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-anything', 'content-type': 'application/json' },
      body: JSON.stringify({ model, prompt, max_tokens: 12, temperature: 0 }),
    });

  beforeAll(async () => {
    mkdirSync(join(dir, 'models'), { recursive: true });
    writeServingModel(modelDir);
    writeServingAdapter(modelDir, adapterDir, 5);
    sha256 = createHash('sha256')
      .update(readFileSync(join(adapterDir, 'adapter_model.safetensors')))
      .digest('hex');
    tokenizer = new Tokenizer(
      JSON.parse(readFileSync(join(modelDir, 'tokenizer.json'), 'utf8')) as object,
      JSON.parse(readFileSync(join(modelDir, 'tokenizer_config.json'), 'utf8')) as object,
    );
    nats = await startNatsServer();
    engine = await Engine.open(modelDir, { threads: 1 });
    engine.registerAdapter(ADAPTER, adapterDir);
    worker = startService('gpu-worker', await freePort(), {
      NATS_URL: nats.url,
      WORKER_ID: 'adapter-upload-e2e',
      BASE_MODEL: MODEL,
      MODEL_DIR: modelDir,
      ENGINE_THREADS: '1',
      ADAPTER_CACHE_DIR: cacheDir,
      HEARTBEAT_INTERVAL_S: '0.5',
      OPERATOR_ADDRESS: `0x${'ab'.repeat(20)}`,
    });
    gateway = startService('gateway', await freePort(), {
      NATS_URL: nats.url,
      LONGTAIL_ADMIN_KEY: 'lt_admin_adapter_upload_e2e_0123456789',
      MODEL_CONFIG_DIR: join(dir, 'models'),
    });
    await Promise.all([waitUntilReady(worker, 60_000), waitUntilReady(gateway, 60_000)]);
    await waitFor(async () => (await completion(MODEL, 'hi')).status === 200, {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: 'the worker to serve the base model',
    });
  });

  afterAll(async () => {
    if (process.env['ADAPTER_E2E_LOGS']) console.log(worker?.output(), gateway?.output());
    await Promise.all([gateway?.stop(), worker?.stop()]);
    await engine?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves an uploaded adapter fetched from the object store, equal to the engine with that adapter', async () => {
    const form = new FormData();
    for (const [k, v] of Object.entries({
      name: 'acme/uploaded',
      baseModel: MODEL,
      visibility: 'public',
      pricePer1kTokens: '1000',
      creatorAddress: `0x${'cd'.repeat(20)}`,
      trainedOn: '[]',
    }))
      form.append(k, v);
    for (const file of ['adapter_config.json', 'adapter_model.safetensors'])
      form.append(file, new Blob([readFileSync(join(adapterDir, file))]), file);
    const upload = await fetch(`${gateway.baseUrl}/v1/adapters`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-anything' },
      body: form,
    });
    expect(upload.status, await upload.clone().text()).toBe(201);
    expect(((await upload.json()) as { weightsSha256: string }).weightsSha256).toBe(sha256);

    const prompt = 'The quick brown fox';
    const direct = await engine.generate(tokenizer.encode(prompt).ids, {
      adapter: ADAPTER,
      sampling: { temperature: 0, maxTokens: 12, stopTokenIds: EOS },
    }).result;
    const expected = tokenizer.decode(direct.tokens, {
      skip_special_tokens: true,
      clean_up_tokenization_spaces: false,
    });

    const res = await completion(ADAPTER, prompt);
    const body = (await res.json()) as { choices: Array<{ text: string }> };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.choices[0]!.text).toBe(expected);
    expect(existsSync(join(cacheDir, sha256, 'adapter_model.safetensors'))).toBe(true);

    const base = (await (await completion(MODEL, prompt)).json()) as { choices: Array<{ text: string }> };
    expect(base.choices[0]!.text).not.toBe(expected); // the adapter changed the answer
  });

  it('a retired adapter is no longer served', async () => {
    const retired = await fetch(`${gateway.baseUrl}/v1/adapters/acme/uploaded`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer sk-anything' },
    });
    expect(retired.status).toBe(200);
    expect((await completion(ADAPTER, 'hello')).status).toBe(404);
  });
});

/**
 * The worker's serving loop in process, over real NATS with the real engine and a tiny model with
 * the Llama 3 tokenizer: admission (BAD_REQUEST, OVERLOADED, draining), and the inference event
 * each admitted request publishes exactly once.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OBJECT_BUCKETS,
  workerAdaptersSubject,
  workerGenerateSubject,
  type WorkerAdapterReply,
  type EventEnvelope,
  type InferenceChunk,
  type InferenceRequest,
} from '@longtail/contracts';
import {
  CommandFailed,
  connectMessaging,
  createCommandClient,
  NoResponders,
  requestStream,
  type EventPublisher,
  type MessagingConnection,
} from '@longtail/messaging';
import { startNatsServer, type NatsServer } from '@longtail/testenv';
import { Objm } from '@nats-io/obj';
import { workerConfigSchema, type WorkerConfig } from '../config.js';
import { AdapterCommands } from '../registry/adapter-commands.js';
import { adapterObjectKey, CONFIG_FILE, WEIGHTS_FILE } from './adapter-resolver.js';
import { InferenceServer } from './inference.server.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const CORRUPT_SHA = 'ab'.repeat(32);

describe('InferenceServer', () => {
  const modelDir = mkdtempSync(join(tmpdir(), 'longtail-worker-'));
  const adapterDir = `${modelDir}-adapter`;
  const cacheDir = `${modelDir}-cache`;
  let nats: NatsServer;
  let conn: MessagingConnection;
  let server: InferenceServer;
  let config: WorkerConfig;
  const events: EventEnvelope[] = [];
  const publisher = {
    publish: (event: EventEnvelope) => {
      events.push(event);
      return Promise.resolve({ stream: 'INFERENCE', seq: BigInt(events.length), duplicate: false });
    },
  } as unknown as EventPublisher;
  const subject = workerGenerateSubject('w-int');
  let counter = 0;
  const request = (over: Partial<InferenceRequest> = {}): InferenceRequest => ({
    requestId: `req-${++counter}`,
    tenantId: 'anonymous',
    model: 'tiny-llama',
    adapterId: null,
    adapterSha256: null,
    input: { kind: 'text', prompt: 'Hello' },
    sampling: { maxTokens: 8, temperature: 0 },
    n: 1,
    ...over,
  });
  const eventsOf = (requestId: string) =>
    events.filter((e) => (e.data as { requestId: string }).requestId === requestId);

  beforeAll(async () => {
    execFileSync(process.execPath, [
      `${root}libs/model-fixtures/src/cli.ts`,
      'model',
      '--out',
      modelDir,
      '--hidden',
      '32',
      '--layers',
      '2',
      '--heads',
      '2',
      '--kv-heads',
      '1',
      '--intermediate',
      '64',
      '--vocab',
      '128256',
      '--dtype',
      'f32',
      '--seed',
      '8',
      '--tied',
      '--max-pos',
      '4096',
      '--tokenizer',
      'llama3',
    ]);
    execFileSync(process.execPath, [
      `${root}libs/model-fixtures/src/cli.ts`,
      'adapter',
      '--base',
      modelDir,
      '--out',
      adapterDir,
      '--rank',
      '4',
      '--alpha',
      '16',
      '--modules',
      'all-linear',
      '--seed',
      '3',
    ]);
    nats = await startNatsServer();
    conn = await connectMessaging({ servers: nats.url, name: 'worker-int' });
    // The adapter in the object store, by the hash of its weights (and a corrupt copy).
    const store = await new Objm(conn.nc).create(OBJECT_BUCKETS.adapters.bucket);
    const weights = readFileSync(join(adapterDir, WEIGHTS_FILE));
    const peftConfig = readFileSync(join(adapterDir, CONFIG_FILE));
    await store.putBlob({ name: adapterObjectKey(sha256(weights), WEIGHTS_FILE) }, weights);
    await store.putBlob({ name: adapterObjectKey(sha256(weights), CONFIG_FILE) }, peftConfig);
    await store.putBlob({ name: adapterObjectKey(CORRUPT_SHA, WEIGHTS_FILE) }, weights);
    await store.putBlob({ name: adapterObjectKey(CORRUPT_SHA, CONFIG_FILE) }, peftConfig);
    config = workerConfigSchema.parse({
      NATS_URL: nats.url,
      WORKER_ID: 'w-int',
      MODEL_DIR: modelDir,
      MAX_QUEUE: '1',
      ENGINE_THREADS: '1',
      ADAPTER_CACHE_DIR: cacheDir,
      ADAPTER_DIRS: JSON.stringify({ 'tiny-llama:acme/local': adapterDir }),
    });
    server = new InferenceServer(conn, config, pino({ level: 'silent' }), publisher);
    await server.onModuleInit();
  });

  afterAll(async () => {
    await server?.beforeApplicationShutdown();
    await conn?.close();
    await nats?.stop();
    for (const dir of [modelDir, adapterDir, cacheDir]) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an invalid request with BAD_REQUEST and publishes nothing for it', async () => {
    const chunks = requestStream(conn, subject, { requestId: 'bad', model: 'tiny-llama' });
    await expect(chunks.next()).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect(eventsOf('bad')).toHaveLength(0);
  });

  it('refuses with OVERLOADED beyond MAX_QUEUE; the cancelled request publishes one completed event', async () => {
    const long = request({ sampling: { maxTokens: 3000, temperature: 0 } });
    const running = requestStream<InferenceChunk>(conn, subject, long);
    const first = await running.next();
    expect(first.done).toBe(false);
    const refused = request();
    await expect(requestStream(conn, subject, refused).next()).rejects.toMatchObject({ code: 'OVERLOADED' });
    await running.return(); // the caller leaves: cancels at the worker
    await expect.poll(() => eventsOf(long.requestId).length).toBe(1);
    expect(eventsOf(long.requestId)[0]).toMatchObject({
      type: 'inference.completed',
      data: { finishReason: 'cancelled', workerId: 'w-int' },
    });
    expect(eventsOf(refused.requestId)).toHaveLength(0);
    await expect.poll(() => server.load().inFlight).toBe(0);
  });

  it('publishes inference.failed when the engine refuses the request (prompt beyond the context)', async () => {
    const tooLong = request({ input: { kind: 'text', prompt: 'a b '.repeat(3000) } });
    await expect(requestStream(conn, subject, tooLong).next()).rejects.toBeInstanceOf(CommandFailed);
    await expect.poll(() => eventsOf(tooLong.requestId).length).toBe(1);
    expect(eventsOf(tooLong.requestId)[0]).toMatchObject({
      type: 'inference.failed',
      data: { error: { code: 'bad_request' }, completionTokens: 0 },
    });
  });

  const text = async (req: InferenceRequest): Promise<string> => {
    let out = '';
    for await (const c of requestStream<InferenceChunk>(conn, subject, req)) out += c.text;
    return out;
  };

  it('fetches an adapter from the object store by sha256 into the cache: same answer as the same folder', async () => {
    const weightsSha = sha256(readFileSync(join(adapterDir, WEIGHTS_FILE)));
    const fromStore = await text(request({ adapterId: 'tiny-llama:acme/stored', adapterSha256: weightsSha }));
    const fromFolder = await text(request({ adapterId: 'tiny-llama:acme/local' }));
    const base = await text(request());
    expect(fromStore).toBe(fromFolder);
    expect(fromStore).not.toBe(base);
    expect(existsSync(join(cacheDir, weightsSha, WEIGHTS_FILE))).toBe(true);
    expect(server.load().residentAdapters).toEqual(
      expect.arrayContaining(['tiny-llama:acme/stored', 'tiny-llama:acme/local']),
    );
  });

  it('refuses an adapter whose weights do not match their hash, and caches nothing', async () => {
    const corrupt = request({ adapterId: 'tiny-llama:acme/corrupt', adapterSha256: CORRUPT_SHA });
    await expect(requestStream(conn, subject, corrupt).next()).rejects.toMatchObject({
      code: 'ADAPTER_UNAVAILABLE',
    });
    expect(existsSync(join(cacheDir, CORRUPT_SHA))).toBe(false);
    await expect.poll(() => eventsOf(corrupt.requestId).length).toBe(1);
    expect(eventsOf(corrupt.requestId)[0]).toMatchObject({
      type: 'inference.failed',
      data: { error: { code: 'adapter_unavailable' } },
    });
  });

  it('takes the scheduler\'s load and evict commands, fenced by term; an adapter in use is not evicted', async () => {
    const commands = new AdapterCommands(conn, config, pino({ level: 'silent' }), server);
    commands.onApplicationBootstrap();
    try {
      const ask = (payload: unknown) =>
        createCommandClient(conn).request<WorkerAdapterReply>(workerAdaptersSubject('w-int'), payload);
      const local = 'tiny-llama:acme/local';
      const before = server.load().adapterRequests;
      expect(await ask({ op: 'load', adapterId: local, adapterSha256: null, term: 5 })).toEqual({ ok: true });
      expect(server.load().residentAdapters).toContain(local);
      // A request after the prefetch finds it ready: warm.
      const served = request({ adapterId: local });
      for await (const _ of requestStream(conn, subject, served)) void _;
      expect(server.load().adapterRequests).toEqual({ warm: before.warm + 1, cold: before.cold });
      // A scheduler with an older term is refused, whatever it asks.
      expect(await ask({ op: 'evict', adapterId: local, adapterSha256: null, term: 4 })).toMatchObject({
        ok: false,
        code: 'STALE_TERM',
      });
      // In use: refused, still resident; once the request ends, evicted.
      const long = requestStream<InferenceChunk>(conn, subject, request({ adapterId: local, sampling: { maxTokens: 3000, temperature: 0 } }));
      await long.next();
      expect(await ask({ op: 'evict', adapterId: local, adapterSha256: null, term: 5 })).toMatchObject({ ok: false, code: 'IN_USE' });
      expect(server.load().residentAdapters).toContain(local);
      await long.return();
      await expect.poll(() => server.load().inFlight).toBe(0);
      await expect.poll(async () => (await ask({ op: 'evict', adapterId: local, adapterSha256: null, term: 6 })).ok).toBe(true);
      expect(server.load().residentAdapters).not.toContain(local);
      expect(await ask({ op: 'load', adapterId: 'tiny-llama:acme/nowhere', adapterSha256: null, term: 6 })).toMatchObject({
        ok: false,
        code: 'FETCH_FAILED',
      });
      expect(await ask({ op: 'load', adapterId: local, term: 6 })).toMatchObject({ ok: false, code: 'INVALID' });
      expect(commands.term).toBe(6);
    } finally {
      await commands.beforeApplicationShutdown();
    }
  });

  it('drains: a running request completes, a new one finds no worker', async () => {
    const running = request({ sampling: { maxTokens: 200, temperature: 0 } });
    const chunks: InferenceChunk[] = [];
    const stream = requestStream<InferenceChunk>(conn, subject, running);
    const first = await stream.next();
    chunks.push(first.value as InferenceChunk);
    const draining = server.beforeApplicationShutdown();
    for await (const c of stream) chunks.push(c);
    await draining;
    const last = chunks.at(-1)!;
    expect(last.finishReason).toBe('length');
    expect(last.usage?.completionTokens).toBe(chunks.reduce((n, c) => n + c.tokens, 0));
    expect(eventsOf(running.requestId)).toMatchObject([
      { type: 'inference.completed', data: { finishReason: 'length', completionTokens: 200 } },
    ]);
    await expect(
      requestStream(conn, subject, request(), { firstReplyTimeoutMs: 1000 }).next(),
    ).rejects.toBeInstanceOf(NoResponders);
  });
});

/**
 * Routing over real NATS: a worker that refuses before the first chunk (OVERLOADED, DRAINING) or
 * is not there (no responders) is skipped for the next; when none takes the request the caller
 * gets 429 (busy) or 503 (none); a worker's BAD_REQUEST is a 400 and is not retried.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  INFERENCE_ERROR_CODES,
  workerGenerateSubject,
  type EventEnvelope,
  type InferenceChunk,
  type InferenceRequest,
} from '@longtail/contracts';
import {
  CommandError,
  connectMessaging,
  serveStream,
  type EventPublisher,
  type MessagingConnection,
  type StreamServer,
} from '@longtail/messaging';
import { startNatsServer, type NatsServer } from '@longtail/testenv';
import { pino } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import { ApiError } from '../http/openai-errors.js';
import { InferenceClient } from './inference-client.js';
import type { WorkerRoute, WorkerRouter } from './worker-router.js';

const request = (): InferenceRequest => ({
  requestId: uuidv7(),
  tenantId: 'anonymous',
  model: 'tiny',
  adapterId: null,
  adapterSha256: null,
  input: { kind: 'text', prompt: 'hi' },
  sampling: { maxTokens: 2 },
  n: 1,
});

const routeTo = (...workerIds: string[]): WorkerRouter => ({
  route: (): WorkerRoute[] =>
    workerIds.map((workerId) => ({ workerId, subject: workerGenerateSubject(workerId) })),
  models: () => ({ baseModels: ['tiny'], adapters: [] }),
  knows: () => true,
});

describe('InferenceClient', () => {
  let nats: NatsServer;
  let conn: MessagingConnection;
  const servers: StreamServer[] = [];
  const calls: string[] = [];
  const events: EventEnvelope[] = [];
  const publisher = {
    publish: (event: EventEnvelope) => {
      events.push(event);
      return Promise.resolve({ stream: 'INFERENCE', seq: 1n, duplicate: false });
    },
  } as unknown as EventPublisher;

  const worker = (id: string, answer: 'ok' | keyof typeof INFERENCE_ERROR_CODES) =>
    servers.push(
      serveStream(conn, workerGenerateSubject(id), async function* (): AsyncGenerator<InferenceChunk> {
        calls.push(id);
        if (answer !== 'ok') throw new CommandError(INFERENCE_ERROR_CODES[answer], `${id} says ${answer}`);
        yield { index: 0, text: 'a', tokens: 1, finishReason: null };
        yield {
          index: 0,
          text: 'b',
          tokens: 1,
          finishReason: 'length',
          usage: { promptTokens: 1, completionTokens: 2 },
        };
      }),
    );

  /** A worker that goes silent (as a killed one does) after `chunksFirst` chunks. */
  const silentWorker = (id: string, chunksFirst: number) =>
    servers.push(
      serveStream(
        conn,
        workerGenerateSubject(id),
        async function* (_p, meta): AsyncGenerator<InferenceChunk> {
          calls.push(id);
          for (let i = 0; i < chunksFirst; i++) yield { index: 0, text: 'x', tokens: 2, finishReason: null };
          await new Promise<void>((resolve) => meta.signal.addEventListener('abort', () => resolve()));
        },
      ),
    );

  beforeAll(async () => {
    process.env['GATEWAY_STREAM_IDLE_TIMEOUT_MS'] = '300';
    nats = await startNatsServer();
    conn = await connectMessaging({ servers: nats.url, name: 'inference-client-test' });
    worker('busy', 'Overloaded');
    worker('leaving', 'Draining');
    worker('good', 'ok');
    worker('picky', 'BadRequest');
    silentWorker('mute', 0);
    silentWorker('dies', 2);
    await conn.nc.flush();
  });

  afterAll(async () => {
    delete process.env['GATEWAY_STREAM_IDLE_TIMEOUT_MS'];
    await Promise.all(servers.map((s) => s.stop({ cancel: true })));
    await conn?.close();
    await nats?.stop();
  });

  const start = (router: WorkerRouter) =>
    new InferenceClient(conn, router, publisher, pino({ level: 'silent' })).start(
      request(),
      new AbortController().signal,
    );

  it('skips a busy, a draining and an absent worker, and streams from the next', async () => {
    calls.length = 0;
    events.length = 0;
    const started = await start(routeTo('busy', 'absent', 'leaving', 'good'));
    expect(started?.workerId).toBe('good');
    const rest: InferenceChunk[] = [];
    for await (const chunk of started!.rest) rest.push(chunk);
    expect([started!.first, ...rest].map((c) => c.text).join('')).toBe('ab');
    expect(calls).toEqual(['busy', 'leaving', 'good']);
    expect(events).toHaveLength(0); // the worker publishes the event of a request it took
  });

  it('answers 429 when every worker is busy, 503 when none is there, with one inference.failed each', async () => {
    events.length = 0;
    await expect(start(routeTo('busy', 'leaving'))).rejects.toMatchObject({
      status: 429,
      body: { type: 'rate_limit_error' },
    });
    await expect(start(routeTo('absent', 'leaving'))).rejects.toMatchObject({ status: 503 });
    await expect(start(routeTo())).rejects.toBeInstanceOf(ApiError);
    expect(events.map((e) => [e.type, (e.data as { error: { code: string } }).error.code])).toEqual([
      ['inference.failed', 'no_worker_available'],
      ['inference.failed', 'no_worker_serving'],
      ['inference.failed', 'no_worker_serving'],
    ]);
    expect(events[0]!.data).toMatchObject({ workerId: null, operatorAddress: null, completionTokens: 0 });
  });

  it('does not retry a request the worker calls bad: 400', async () => {
    calls.length = 0;
    await expect(start(routeTo('picky', 'good'))).rejects.toMatchObject({
      status: 400,
      body: { type: 'invalid_request_error' },
    });
    expect(calls).toEqual(['picky']);
  });

  it('retries a worker lost before its first chunk on the next one, with no gateway event', async () => {
    calls.length = 0;
    events.length = 0;
    const started = await start(routeTo('mute', 'good'));
    expect(started?.workerId).toBe('good');
    for await (const _chunk of started!.rest);
    expect(calls).toEqual(['mute', 'good']);
    expect(events).toHaveLength(0);
  });

  it('answers 502 worker_lost when every worker is lost before its first chunk, with one event', async () => {
    events.length = 0;
    await expect(start(routeTo('mute'))).rejects.toMatchObject({
      status: 502,
      body: { code: 'worker_lost' },
    });
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({
      workerId: 'mute',
      completionTokens: 0,
      error: { code: 'worker_lost' },
    });
  });

  it('ends the stream with 502 worker_lost when the worker goes silent mid-stream, with one event', async () => {
    events.length = 0;
    const t0 = Date.now();
    const started = await start(routeTo('dies', 'good'));
    expect(started?.workerId).toBe('dies');
    let received = started!.first.tokens;
    const failure = await (async () => {
      for await (const chunk of started!.rest) received += chunk.tokens;
    })().catch((err: unknown) => err);
    expect(failure).toMatchObject({ status: 502, body: { type: 'server_error', code: 'worker_lost' } });
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(received).toBe(4);
    expect(events.map((e) => [e.type, e.id])).toEqual([['inference.failed', expect.any(String)]]);
    expect(events[0]!.data).toMatchObject({
      workerId: 'dies',
      completionTokens: 4,
      error: { code: 'worker_lost' },
    });
  });
});

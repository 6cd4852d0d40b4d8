/**
 * The transport wired the way services wire it: contracts' parse/encode/subject functions and
 * stream hints. Proves the types fit and that a contract violation never reaches a handler.
 */
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEvent,
  encodeEvent,
  InferenceCompletedV1,
  KV_BUCKETS,
  OBJECT_BUCKETS,
  parseEvent,
  STREAMS,
  subjectFor,
  type InferenceCompleted,
} from '@longtail/contracts';
import {
  EventPublisher,
  LongtailHeaders,
  MessagingModule,
  MessagingService,
  OnEvents,
  STREAM_SUBJECT_MUST_NOT_EXIST,
  type EventMeta,
} from '../src/index.js';
import { startNatsServer, type NatsServer } from '@longtail/testenv';
import { eventually } from './support/events.js';

const completedData = {
  requestId: 'req-0195f3c4-9a1b',
  tenantId: 'tenant-globex',
  apiKeyId: 'key-7',
  model: 'llama-3-8b',
  adapterId: 'llama-3-8b:acme/legal-ur',
  workerId: 'gpu-node-3-0',
  operatorAddress: '0x4444444444444444444444444444444444444444',
  promptTokens: 412,
  completionTokens: 128,
  finishReason: 'stop',
  timings: { queuedMs: 4, firstTokenMs: 61, totalMs: 1_930 },
  startedAt: '2026-01-31T12:00:00.000Z',
  endedAt: '2026-01-31T12:00:01.930Z',
} as const;

let server: NatsServer;
let app: INestApplicationContext;
const received: Array<{ event: InferenceCompleted; meta: EventMeta }> = [];

@Injectable()
class UsageProjection {
  @OnEvents({ stream: STREAMS.INFERENCE.name, durable: 'usage', filterSubject: 'inference.completed.>' })
  async apply(event: InferenceCompleted, meta: EventMeta): Promise<void> {
    received.push({ event, meta });
  }
}

beforeAll(async () => {
  server = await startNatsServer();
  @Module({
    imports: [
      MessagingModule.forRoot({
        servers: server.url,
        name: 'contracts-test',
        provision: {
          streams: Object.values(STREAMS),
          kv: Object.values(KV_BUCKETS),
          objectStores: Object.values(OBJECT_BUCKETS),
        },
        parse: parseEvent,
        encode: encodeEvent,
        subjectFor,
      }),
    ],
    providers: [UsageProjection],
  })
  class AppModule {}
  app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  await app.init();
});
afterAll(async () => {
  await app?.close();
  await server?.stop();
});

describe('with @longtail/contracts', () => {
  it('publishes a contract event on its subject and hands the validated event to the handler', async () => {
    const event = createEvent(InferenceCompletedV1, completedData, {
      correlationId: 'req-0195f3c4-9a1b',
      causationId: null,
    });
    const result = await app
      .get(EventPublisher)
      .publish(event, { expectedLastSubjectSequence: STREAM_SUBJECT_MUST_NOT_EXIST });
    expect(result).toMatchObject({ stream: 'INFERENCE', duplicate: false });

    await eventually(() => received.length === 1);
    expect(received[0]?.event).toEqual(event);
    expect(received[0]?.meta.subject).toBe(subjectFor(event));
  });

  it('dead-letters a message that breaks the contract with the violation as the reason', async () => {
    const conn = app.get(MessagingService).connection;
    await conn.js.publish(
      'inference.completed.req-bad',
      JSON.stringify({ id: 'nope', type: 'inference.completed', version: 1 }),
    );
    const jsm = await conn.jsm();
    await eventually(async () => (await jsm.streams.info('DLQ')).state.messages === 1);
    const dlq = await jsm.streams.getMessage('DLQ', { last_by_subj: 'dlq.INFERENCE.usage' });
    expect(dlq?.header.get(LongtailHeaders.DlqReason)).toMatch(/^contract violation: /);
    expect(received).toHaveLength(1);
  });
});

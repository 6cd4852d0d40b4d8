import { Inject, Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { SpanKind } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '@longtail/contracts';
import { startTelemetry, type TelemetryHandle } from '@longtail/telemetry';
import {
  EventPublisher,
  LongtailHeaders,
  MessagingModule,
  MessagingService,
  OnEvents,
  type EventMeta,
  type MessagingModuleOptions,
  type ReceivedEvent,
} from '../src/index.js';
import { startNatsServer, type NatsServer } from '@longtail/testenv';
import { eventually, sleep, testEvent } from './support/events.js';

let server: NatsServer;
let telemetry: TelemetryHandle;
const spans = new InMemorySpanExporter();

beforeAll(async () => {
  telemetry = startTelemetry({ serviceName: 'consumer-test', exporter: spans });
  server = await startNatsServer();
});
afterAll(async () => {
  await telemetry?.shutdown();
  await server?.stop();
});

function options(): MessagingModuleOptions {
  return {
    servers: server.url,
    name: 'consumer-test',
    connection: { reconnectTimeWaitMs: 100 },
    provision: {
      streams: [
        { name: 'INFERENCE', subjects: ['inference.>'] },
        { name: 'DLQ', subjects: ['dlq.>'] },
      ],
    },
  };
}

async function boot(
  ...providers: Array<new (...args: never[]) => unknown>
): Promise<INestApplicationContext> {
  @Module({ imports: [MessagingModule.forRoot(options())], providers })
  class AppModule {}
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  await app.init();
  return app;
}

async function consumerState(app: INestApplicationContext, durable: string) {
  const jsm = await app.get(MessagingService).connection.jsm();
  return jsm.consumers.info('INFERENCE', durable);
}

async function deadLetters(app: INestApplicationContext, durable: string) {
  const jsm = await app.get(MessagingService).connection.jsm();
  const info = await jsm.streams.info('DLQ', { subjects_filter: `dlq.INFERENCE.${durable}` });
  const count = info.state.subjects?.[`dlq.INFERENCE.${durable}`] ?? 0;
  if (count === 0) return [];
  const last = await jsm.streams.getMessage('DLQ', { last_by_subj: `dlq.INFERENCE.${durable}` });
  return [{ count, last: last! }];
}

describe('@OnEvents', () => {
  it('delivers each event once to the handler and acks it', async () => {
    const seen: Array<{ event: EventEnvelope; meta: EventMeta }> = [];
    @Injectable()
    class Projection {
      @OnEvents({ stream: 'INFERENCE', durable: 'once', filterSubject: 'inference.once.>' })
      async apply(event: EventEnvelope, meta: EventMeta): Promise<void> {
        seen.push({ event, meta });
      }
    }
    const app = await boot(Projection);
    try {
      const publisher = app.get(EventPublisher);
      const events = [1, 2, 3].map((i) => testEvent('inference.completed', { i }));
      for (const e of events) await publisher.publish(e, { subject: 'inference.once.completed' });

      await eventually(() => seen.length === 3);
      await sleep(300);
      expect(seen.map((s) => s.event.id)).toEqual(events.map((e) => e.id));
      expect(seen.map((s) => s.meta.deliveryCount)).toEqual([1, 1, 1]);
      expect(seen[0]?.meta).toMatchObject({
        stream: 'INFERENCE',
        durable: 'once',
        subject: 'inference.once.completed',
      });
      expect(typeof seen[0]?.meta.seq).toBe('bigint');
      const state = await consumerState(app, 'once');
      expect(state.num_ack_pending).toBe(0);
      expect(state.num_pending).toBe(0);
      expect(state.ack_floor.stream_seq).toBe(Number(seen[2]?.meta.seq));
      expect(state.config.ack_policy).toBe('explicit');
    } finally {
      await app.close();
    }
  });

  it('retries a failing handler with backoff, then dead-letters it with the reason', async () => {
    const attempts: Array<{ at: number; deliveryCount: number }> = [];
    @Injectable()
    class Failing {
      @OnEvents({
        stream: 'INFERENCE',
        durable: 'failing',
        filterSubject: 'inference.failing.>',
        maxDeliver: 3,
        backoffMs: [200, 400],
      })
      async apply(_event: EventEnvelope, meta: EventMeta): Promise<void> {
        attempts.push({ at: Date.now(), deliveryCount: meta.deliveryCount });
        throw new Error('database unavailable');
      }
    }
    const app = await boot(Failing);
    try {
      const publisher = app.get(EventPublisher);
      const event = testEvent('inference.completed');
      const { seq } = await publisher.publish(event, { subject: 'inference.failing.completed' });

      await eventually(async () => (await deadLetters(app, 'failing')).length === 1);
      expect(attempts.map((a) => a.deliveryCount)).toEqual([1, 2, 3]);
      expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(180);
      expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(380);

      const [dlq] = await deadLetters(app, 'failing');
      expect(dlq!.count).toBe(1);
      const h = dlq!.last.header;
      expect(h.get(LongtailHeaders.DlqReason)).toContain('database unavailable');
      expect(h.get(LongtailHeaders.DlqStream)).toBe('INFERENCE');
      expect(h.get(LongtailHeaders.DlqSeq)).toBe(String(seq));
      expect(h.get(LongtailHeaders.DlqSubject)).toBe('inference.failing.completed');
      expect(JSON.parse(new TextDecoder().decode(dlq!.last.data)).id).toBe(event.id);

      await sleep(700);
      expect(attempts).toHaveLength(3); // terminated: no further delivery
      const state = await consumerState(app, 'failing');
      expect(state.num_ack_pending).toBe(0);
      expect(state.config.backoff).toHaveLength(2);
    } finally {
      await app.close();
    }
  });

  it('dead-letters an event that violates the contract at once and goes on with the next', async () => {
    const seen: string[] = [];
    @Injectable()
    class Strict {
      @OnEvents({ stream: 'INFERENCE', durable: 'strict', filterSubject: 'inference.strict.>' })
      async apply(event: EventEnvelope): Promise<void> {
        seen.push(event.id);
      }
    }
    const app = await boot(Strict);
    try {
      const conn = app.get(MessagingService).connection;
      const h = natsHeaders();
      h.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
      await conn.js.publish(
        'inference.strict.completed',
        JSON.stringify({ id: 'x', type: 'inference.completed' }),
        { headers: h },
      );
      const good = testEvent('inference.completed');
      await app.get(EventPublisher).publish(good, { subject: 'inference.strict.completed' });

      await eventually(() => seen.length === 1);
      expect(seen).toEqual([good.id]);
      await eventually(async () => (await deadLetters(app, 'strict')).length === 1);
      const [dlq] = await deadLetters(app, 'strict');
      expect(dlq!.last.header.get(LongtailHeaders.DlqReason)).toMatch(/^contract violation: /);
      expect(dlq!.last.header.get(LongtailHeaders.DlqDeliveries)).toBe('1');
      expect(dlq!.last.header.get('traceparent')).toContain('0af7651916cd43dd8448eb211c80319c');
    } finally {
      await app.close();
    }
  });

  it('batch handler: all-or-nothing, every event acked once the batch succeeds', async () => {
    const batches: Array<ReadonlyArray<ReceivedEvent>> = [];
    let failNext = true;
    @Injectable()
    class Batcher {
      @OnEvents({
        stream: 'INFERENCE',
        durable: 'batcher',
        filterSubject: 'inference.batch.>',
        batch: { size: 4, maxWaitMs: 1000 },
        backoffMs: [100],
      })
      async apply(batch: ReadonlyArray<ReceivedEvent>): Promise<void> {
        batches.push(batch);
        if (failNext) {
          failNext = false;
          throw new Error('transaction rolled back');
        }
      }
    }
    const app = await boot(Batcher);
    try {
      const publisher = app.get(EventPublisher);
      const events = Array.from({ length: 10 }, (_, i) => testEvent('inference.completed', { i }));
      for (const e of events) await publisher.publish(e, { subject: 'inference.batch.completed' });

      await eventually(async () => {
        const s = await consumerState(app, 'batcher');
        return s.num_pending === 0 && s.num_ack_pending === 0;
      }, 15_000);
      expect(batches.every((b) => b.length <= 4)).toBe(true);
      const failed = batches[0]!;
      const succeededIds = new Set(batches.slice(1).flatMap((b) => b.map((r) => r.event.id)));
      for (const r of failed) expect(succeededIds.has(r.event.id)).toBe(true); // the failed batch came back whole
      expect(succeededIds).toEqual(new Set(events.map((e) => e.id)));
      const redelivered = batches
        .slice(1)
        .flatMap((b) => b)
        .filter((r) => failed.some((f) => f.event.id === r.event.id));
      expect(redelivered.every((r) => r.meta.deliveryCount === 2)).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('continues the publisher trace: the consumer span is a child of the publish span', async () => {
    spans.reset();
    let handlerTraceId: string | undefined;
    const { trace } = await import('@opentelemetry/api');
    @Injectable()
    class Traced {
      @OnEvents({ stream: 'INFERENCE', durable: 'traced', filterSubject: 'inference.traced.>' })
      async apply(): Promise<void> {
        handlerTraceId = trace.getActiveSpan()?.spanContext().traceId;
      }
    }
    const app = await boot(Traced);
    try {
      await app
        .get(EventPublisher)
        .publish(testEvent('inference.completed'), { subject: 'inference.traced.completed' });
      await eventually(() => handlerTraceId !== undefined);
      await eventually(() => spans.getFinishedSpans().some((s) => s.kind === SpanKind.CONSUMER));
      const producer = spans.getFinishedSpans().find((s) => s.kind === SpanKind.PRODUCER)!;
      const consumer = spans.getFinishedSpans().find((s) => s.kind === SpanKind.CONSUMER)!;
      expect(consumer.spanContext().traceId).toBe(producer.spanContext().traceId);
      expect(consumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
      expect(handlerTraceId).toBe(producer.spanContext().traceId);
      expect(producer.resource.attributes['service.name']).toBe('consumer-test');
    } finally {
      await app.close();
    }
  });

  it('shutdown lets the in-flight handler finish and ack before the connection closes', async () => {
    const log: string[] = [];
    let started = false;
    @Injectable()
    class Slow {
      constructor(@Inject(MessagingService) private readonly messaging: MessagingService) {}
      @OnEvents({ stream: 'INFERENCE', durable: 'slow', filterSubject: 'inference.slow.>', prefetch: 4 })
      async apply(event: EventEnvelope): Promise<void> {
        started = true;
        log.push(`start ${(event.data as { i: number }).i}`);
        await sleep(600);
        log.push(`end ${(event.data as { i: number }).i} connected=${this.messaging.isConnected()}`);
      }
    }
    const app = await boot(Slow);
    const conn = app.get(MessagingService).connection;
    const publisher = app.get(EventPublisher);
    for (let i = 0; i < 3; i++)
      await publisher.publish(testEvent('inference.completed', { i }), {
        subject: 'inference.slow.completed',
      });
    await eventually(() => started);
    conn.onStatus((s) => {
      if (s.kind === 'closed') log.push('closed');
    });
    await app.close();
    expect(log).toEqual(['start 0', 'end 0 connected=true', 'closed']);

    // The finished one is acked; the others are back for the next instance.
    const { connectMessaging } = await import('../src/index.js');
    const probe = await connectMessaging({ servers: server.url, name: 'probe' });
    try {
      const info = await (await probe.jsm()).consumers.info('INFERENCE', 'slow');
      expect(info.ack_floor.stream_seq).toBeGreaterThan(0);
      expect(info.num_pending + info.num_ack_pending + info.num_redelivered).toBeGreaterThanOrEqual(2);
    } finally {
      await probe.close();
    }
  });

  it('keeps a slow handler alive with progress acks: no redelivery while it runs past ack wait', async () => {
    const deliveries: number[] = [];
    @Injectable()
    class Slow {
      @OnEvents({
        stream: 'INFERENCE',
        durable: 'patient',
        filterSubject: 'inference.patient.>',
        ackWaitMs: 1000,
        backoffMs: [100],
      })
      async apply(_event: EventEnvelope, meta: EventMeta): Promise<void> {
        deliveries.push(meta.deliveryCount);
        await sleep(2500); // server-side ack wait is 1000 + 100 ms
      }
    }
    const app = await boot(Slow);
    try {
      await app
        .get(EventPublisher)
        .publish(testEvent('inference.completed'), { subject: 'inference.patient.completed' });
      await eventually(async () => (await consumerState(app, 'patient')).ack_floor.stream_seq > 0, 10_000);
      expect(deliveries).toEqual([1]);
      expect((await consumerState(app, 'patient')).num_redelivered).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('shares the work of one durable between two instances: each event handled once', async () => {
    const handled: Array<{ instance: string; id: string }> = [];
    let instance = 'a';
    @Injectable()
    class Worker {
      readonly name = instance;
      @OnEvents({ stream: 'INFERENCE', durable: 'shared', filterSubject: 'inference.shared.>', prefetch: 2 })
      async apply(event: EventEnvelope): Promise<void> {
        handled.push({ instance: this.name, id: event.id });
        await sleep(5);
      }
    }
    const a = await boot(Worker);
    instance = 'b';
    const b = await boot(Worker);
    try {
      const publisher = a.get(EventPublisher);
      const events = Array.from({ length: 40 }, (_, i) => testEvent('inference.completed', { i }));
      await Promise.all(events.map((e) => publisher.publish(e, { subject: 'inference.shared.completed' })));
      await eventually(() => handled.length >= 40);
      await sleep(300);
      expect(handled).toHaveLength(40);
      expect(new Set(handled.map((h) => h.id)).size).toBe(40);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('survives a nats-server restart and goes on consuming', async () => {
    const seen: number[] = [];
    @Injectable()
    class Durable {
      @OnEvents({ stream: 'INFERENCE', durable: 'restart', filterSubject: 'inference.restart.>' })
      async apply(event: EventEnvelope): Promise<void> {
        seen.push((event.data as { i: number }).i);
      }
    }
    const app = await boot(Durable);
    try {
      const messaging = app.get(MessagingService);
      const publisher = app.get(EventPublisher);
      await publisher.publish(testEvent('inference.completed', { i: 1 }), {
        subject: 'inference.restart.completed',
      });
      await eventually(() => seen.length === 1);

      const restarted = server.restart({ downtimeMs: 1000 });
      await eventually(() => !messaging.isConnected(), 10_000); // readiness reports the outage
      await restarted;
      await eventually(() => messaging.isConnected(), 15_000);
      await eventually(async () => {
        try {
          await publisher.publish(testEvent('inference.completed', { i: 2 }), {
            subject: 'inference.restart.completed',
          });
          return true;
        } catch {
          return false;
        }
      }, 15_000);
      await eventually(() => seen.includes(2), 15_000);
      expect(seen[0]).toBe(1);
    } finally {
      await app.close();
    }
  });
});

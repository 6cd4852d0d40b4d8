import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTracer, startTelemetry, type TelemetryHandle } from '@longtail/telemetry';
import {
  CommandClient,
  CommandError,
  CommandFailed,
  MessagingModule,
  NoResponders,
  OnCommand,
  OnStream,
  RequestTimeout,
  type CommandMeta,
  type StreamMeta,
} from '../src/index.js';
import { startNatsServer, type NatsServer } from '@longtail/testenv';
import { sleep } from './support/events.js';

let server: NatsServer;
let telemetry: TelemetryHandle;
let app: INestApplicationContext;
const spans = new InMemorySpanExporter();
let seenTraceId: string | undefined;
const cancelled: string[] = [];

@Injectable()
class Scheduler {
  @OnCommand('scheduler.place', { queue: 'scheduler' })
  place(payload: unknown, meta: CommandMeta): { worker: string; adapter: string } {
    seenTraceId = trace.getActiveSpan()?.spanContext().traceId;
    const { adapter } = payload as { adapter: string };
    if (adapter === 'unknown/adapter') throw new CommandError('ADAPTER_NOT_FOUND', `no adapter ${adapter}`);
    if (adapter === 'crash') throw new Error('boom');
    return { worker: `w1 via ${meta.subject}`, adapter };
  }

  @OnStream('worker.generate', { queue: 'workers' })
  async *generate(payload: unknown, meta: StreamMeta): AsyncGenerator<{ token: string }> {
    const { prompt, failAt } = payload as { prompt: string; failAt?: number };
    const words = prompt.split(' ');
    for (let i = 0; i < words.length; i++) {
      if (meta.signal.aborted) {
        cancelled.push(prompt);
        return;
      }
      if (i === failAt) throw new CommandError('ENGINE_OOM', 'KV cache exhausted');
      yield { token: words[i]! };
      await sleep(20);
    }
  }

  @OnCommand('scheduler.slow')
  async slow(): Promise<string> {
    await sleep(1500);
    return 'late';
  }
}

beforeAll(async () => {
  telemetry = startTelemetry({ serviceName: 'commands-test', exporter: spans });
  server = await startNatsServer();
  // forRootAsync: options from a factory (as from a config service)
  @Module({
    imports: [
      MessagingModule.forRootAsync({
        useFactory: async () => ({ servers: server.url, name: 'commands-test' }),
      }),
    ],
    providers: [Scheduler],
  })
  class AppModule {}
  app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  await app.init();
});
afterAll(async () => {
  await app?.close();
  await telemetry?.shutdown();
  await server?.stop();
});

describe('request/reply', () => {
  it('returns the handler result, in the caller trace', async () => {
    const client = app.get(CommandClient);
    const parent = getTracer().startSpan('gateway request');
    const reply = await context.with(trace.setSpan(context.active(), parent), () =>
      client.request<{ worker: string; adapter: string }>('scheduler.place', { adapter: 'acme/legal' }),
    );
    parent.end();
    expect(reply).toEqual({ worker: 'w1 via scheduler.place', adapter: 'acme/legal' });
    expect(seenTraceId).toBe(parent.spanContext().traceId);
    const server = spans.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER);
    expect(server?.spanContext().traceId).toBe(parent.spanContext().traceId);
  });

  it('maps a domain error to CommandFailed with its code', async () => {
    const client = app.get(CommandClient);
    await expect(client.request('scheduler.place', { adapter: 'unknown/adapter' })).rejects.toMatchObject({
      name: 'CommandFailed',
      code: 'ADAPTER_NOT_FOUND',
      detail: 'no adapter unknown/adapter',
    });
    await expect(client.request('scheduler.place', { adapter: 'crash' })).rejects.toBeInstanceOf(
      CommandFailed,
    );
    await expect(client.request('scheduler.place', { adapter: 'crash' })).rejects.toMatchObject({
      code: 'INTERNAL',
    });
  });

  it('fails with NoResponders when nobody listens', async () => {
    await expect(app.get(CommandClient).request('nobody.home', {})).rejects.toBeInstanceOf(NoResponders);
  });

  it('fails with RequestTimeout when the reply is late', async () => {
    const started = Date.now();
    await expect(
      app.get(CommandClient).request('scheduler.slow', {}, { timeoutMs: 300 }),
    ).rejects.toBeInstanceOf(RequestTimeout);
    expect(Date.now() - started).toBeLessThan(1200);
  });
});

describe('streamed replies', () => {
  it('yields every chunk in order, then ends', async () => {
    const tokens: string[] = [];
    for await (const chunk of app
      .get(CommandClient)
      .requestStream<{ token: string }>('worker.generate', { prompt: 'a b c d e' })) {
      tokens.push(chunk.token);
    }
    expect(tokens).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('surfaces a handler error after the chunks sent before it', async () => {
    const tokens: string[] = [];
    const run = async () => {
      for await (const chunk of app
        .get(CommandClient)
        .requestStream<{ token: string }>('worker.generate', { prompt: 'a b c d', failAt: 2 })) {
        tokens.push(chunk.token);
      }
    };
    await expect(run()).rejects.toMatchObject({ name: 'CommandFailed', code: 'ENGINE_OOM' });
    expect(tokens).toEqual(['a', 'b']);
  });

  it('cancels the handler when the caller stops reading', async () => {
    const prompt = Array.from({ length: 50 }, (_, i) => `w${i}`).join(' ');
    let n = 0;
    for await (const _chunk of app.get(CommandClient).requestStream('worker.generate', { prompt })) {
      if (++n === 3) break;
    }
    await sleep(200);
    expect(cancelled).toContain(prompt);
  });

  it('NoResponders and first-reply timeout', async () => {
    const drain = async (subject: string, timeoutMs?: number) => {
      for await (const _ of app
        .get(CommandClient)
        .requestStream(subject, {}, timeoutMs ? { firstReplyTimeoutMs: timeoutMs } : {})) {
        // nothing
      }
    };
    await expect(drain('nobody.streams')).rejects.toBeInstanceOf(NoResponders);
    await expect(drain('scheduler.slow', 300)).rejects.toBeInstanceOf(RequestTimeout);
  });
});

import { Writable } from 'node:stream';
import { context, trace, SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createLogger,
  extractTraceContext,
  getTracer,
  injectTraceContext,
  NestPinoLogger,
  otlpTracesUrl,
  redactUrl,
  startTelemetry,
  type TelemetryHandle,
} from '../src/index.js';

function capture(): { stream: Writable; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

class MapHeaders {
  readonly values = new Map<string, string>();
  set(key: string, value: string): void {
    this.values.set(key, value);
  }
  get(key: string): string {
    return this.values.get(key) ?? '';
  }
  keys(): string[] {
    return [...this.values.keys()];
  }
}

let handle: TelemetryHandle | undefined;
afterEach(async () => {
  await handle?.shutdown();
  handle = undefined;
});

describe('logger', () => {
  it('stamps trace_id and span_id of the active span on a log line', async () => {
    handle = startTelemetry({ serviceName: 'test', exporter: new InMemorySpanExporter() });
    const out = capture();
    const logger = createLogger({ service: 'test', destination: out.stream, level: 'info' });

    const span = getTracer().startSpan('work');
    context.with(trace.setSpan(context.active(), span), () => logger.info('inside'));
    span.end();
    logger.info('outside');

    const [inside, outside] = out.lines();
    expect(inside).toMatchObject({
      msg: 'inside',
      level: 'info',
      service: 'test',
      trace_id: span.spanContext().traceId,
      span_id: span.spanContext().spanId,
    });
    expect(outside).not.toHaveProperty('trace_id');
  });

  it('redacts secrets in log objects, headers and nested config', () => {
    const out = capture();
    const logger = createLogger({ service: 'test', destination: out.stream, level: 'info' });
    logger.info(
      {
        password: 'hunter2',
        apiKey: 'lt_live_abc',
        req: { headers: { authorization: 'Bearer xyz', 'x-api-key': 'k1', accept: 'json' } },
        config: { nats: { token: 'natstok' }, privateKey: '0xdeadbeef' },
      },
      'secrets',
    );
    const text = JSON.stringify(out.lines()[0]);
    for (const secret of ['hunter2', 'lt_live_abc', 'Bearer xyz', 'k1"', 'natstok', '0xdeadbeef']) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain('"accept":"json"');
    expect(text).toContain('[REDACTED]');
  });

  it('masks passwords in connection strings', () => {
    expect(redactUrl('postgres://app:s3cret@db:5432/longtail')).toBe(
      'postgres://app:[REDACTED]@db:5432/longtail',
    );
    expect(redactUrl('nats://user:pw@nats:4222,nats://h2:4222')).toBe(
      'nats://user:[REDACTED]@nats:4222,nats://h2:4222',
    );
    expect(redactUrl('https://rpc.example/v1?apikey=abc&x=1')).toBe(
      'https://rpc.example/v1?apikey=[REDACTED]&x=1',
    );
    expect(redactUrl('postgres://db:5432/x')).toBe('postgres://db:5432/x');
  });

  it('NestPinoLogger writes Nest messages as JSON with context', () => {
    const out = capture();
    const nest = new NestPinoLogger(
      createLogger({ service: 'test', destination: out.stream, level: 'info' }),
    );
    nest.log('Nest application successfully started', 'NestApplication');
    nest.error('boom', 'Error: boom\n    at x', 'ExceptionsHandler');
    nest.debug('hidden');
    const [log, error, ...rest] = out.lines();
    expect(log).toMatchObject({
      level: 'info',
      msg: 'Nest application successfully started',
      context: 'NestApplication',
    });
    expect(error).toMatchObject({ level: 'error', msg: 'boom', context: 'ExceptionsHandler' });
    expect(error?.['stack']).toContain('Error: boom');
    expect(rest).toHaveLength(0);
  });
});

describe('tracing', () => {
  it('exports spans with service.name to an injected exporter', async () => {
    const exporter = new InMemorySpanExporter();
    handle = startTelemetry({ serviceName: 'svc-a', exporter });
    expect(handle.tracing).toBe(true);
    getTracer().startSpan('one', { kind: SpanKind.INTERNAL }).end();
    await handle.flush();
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('one');
    expect(span?.resource.attributes['service.name']).toBe('svc-a');
  });

  it('exports over OTLP/HTTP when an endpoint is configured', async () => {
    handle = startTelemetry({
      serviceName: 'svc',
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9/' },
    });
    expect(handle.tracing).toBe(true);
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toBe(
      'http://collector:4318/v1/traces',
    );
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/custom' })).toBe(
      'http://c:4318/custom',
    );
  });

  it('records nothing without an endpoint or exporter', async () => {
    handle = startTelemetry({ serviceName: 'svc', env: {} });
    expect(handle.tracing).toBe(false);
    const span = getTracer().startSpan('noop');
    expect(span.isRecording()).toBe(false);
    span.end();
  });

  it('round-trips W3C trace context through headers', async () => {
    handle = startTelemetry({ serviceName: 'svc', exporter: new InMemorySpanExporter() });
    const parent = getTracer().startSpan('parent');
    const headers = new MapHeaders();
    injectTraceContext(headers, trace.setSpan(context.active(), parent));
    expect(headers.get('traceparent')).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);

    const extracted = extractTraceContext(headers);
    const child = getTracer().startSpan('child', {}, extracted);
    expect(child.spanContext().traceId).toBe(parent.spanContext().traceId);
    child.end();
    parent.end();

    const none = extractTraceContext(new MapHeaders());
    expect(trace.getSpanContext(none)).toBeUndefined();
  });
});

/**
 * Tracing bootstrap for every longtail process: one call at the top of `main` installs the
 * AsyncLocalStorage context manager, the W3C trace-context propagator and (when there is
 * somewhere to send spans) a tracer provider. Without `OTEL_EXPORTER_OTLP_ENDPOINT` and without
 * an injected exporter no provider is registered, so every tracer is the API's no-op tracer and
 * tracing costs nothing beyond context propagation: an upstream `traceparent` still flows through
 * NATS headers and into log lines, so a trace started elsewhere stays joined.
 */
import {
  context,
  propagation,
  trace,
  ROOT_CONTEXT,
  type Context,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  SimpleSpanProcessor,
  TracerProvider,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

export interface TelemetryOptions {
  /** Resource `service.name`, e.g. `gateway`. */
  readonly serviceName: string;
  /**
   * Where spans go. Tests pass an `InMemorySpanExporter` (exported through a simple, synchronous
   * processor so spans are visible as soon as they end). Without one, spans go to OTLP/HTTP when
   * `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and nowhere (no provider at all) otherwise.
   */
  readonly exporter?: SpanExporter;
  /** Defaults to `process.env`; lets tests choose the OTLP branch without touching globals. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface TelemetryHandle {
  /** True when a tracer provider is registered (spans are recorded and exported). */
  readonly tracing: boolean;
  /** Exports every span that has ended; nothing is lost on a graceful stop. */
  flush(): Promise<void>;
  /** Flushes, shuts the exporter down and unregisters the globals. Idempotent. */
  shutdown(): Promise<void>;
}

let active: TelemetryHandle | undefined;

/**
 * Installs the process-wide tracing globals. Call it first in `main`, before anything creates
 * spans. Calling it again replaces the previous setup (whose provider is flushed and shut down
 * in the background), which is what tests that start several apps in one process need.
 */
export function startTelemetry(options: TelemetryOptions): TelemetryHandle {
  const previous = active;
  active = undefined;
  if (previous) void previous.shutdown();

  const env = options.env ?? process.env;
  // The globals refuse to be set twice; clearing them first makes a restart well defined.
  trace.disable();
  context.disable();
  propagation.disable();

  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());

  const processor = spanProcessorFor(options.exporter, env);
  let provider: TracerProvider | undefined;
  if (processor) {
    provider = new TracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }),
      spanProcessors: [processor],
    });
    trace.setGlobalTracerProvider(provider);
  }

  let stopped: Promise<void> | undefined;
  const handle: TelemetryHandle = {
    tracing: provider !== undefined,
    flush: async () => {
      await provider?.forceFlush();
    },
    shutdown: () => {
      stopped ??= (async () => {
        try {
          await provider?.shutdown();
        } finally {
          // A replaced setup leaves the globals to its successor.
          if (active === handle) {
            active = undefined;
            trace.disable();
            propagation.disable();
            context.disable();
          }
        }
      })();
      return stopped;
    },
  };
  active = handle;
  return handle;
}

function spanProcessorFor(
  exporter: SpanExporter | undefined,
  env: Readonly<Record<string, string | undefined>>,
): SpanProcessor | undefined {
  if (exporter) return new SimpleSpanProcessor({ exporter });
  const url = otlpTracesUrl(env);
  if (url === undefined) return undefined;
  // Headers and timeout still come from the standard OTEL_EXPORTER_OTLP_* variables.
  return new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url }) as unknown as SpanExporter });
}

/**
 * The OTLP/HTTP traces URL: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given, or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces` (the spec's rule); undefined when neither is set.
 */
export function otlpTracesUrl(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const traces = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']?.trim();
  if (traces) return traces;
  const base = env['OTEL_EXPORTER_OTLP_ENDPOINT']?.trim();
  if (!base) return undefined;
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

/** The tracer longtail libraries create spans with; a no-op tracer until telemetry starts. */
export function getTracer(name = 'longtail'): Tracer {
  return trace.getTracer(name);
}

/** Anything that can carry a header value, e.g. nats.js `MsgHdrs`. */
export interface HeaderSetter {
  set(key: string, value: string): void;
}

/**
 * Anything headers can be read from. nats.js `MsgHdrs.get` returns `''` for a missing key,
 * which is treated as missing.
 */
export interface HeaderGetter {
  get(key: string): string | undefined | null;
  keys?(): Iterable<string>;
}

const setter: TextMapSetter<HeaderSetter> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

const getter: TextMapGetter<HeaderGetter> = {
  get: (carrier, key) => {
    const value = carrier.get(key);
    return value === null || value === undefined || value === '' ? undefined : value;
  },
  keys: (carrier) => (carrier.keys ? [...carrier.keys()] : []),
};

/** Writes W3C `traceparent` / `tracestate` for `ctx` (default: the active context). */
export function injectTraceContext(headers: HeaderSetter, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, setter);
}

/**
 * Reads W3C `traceparent` / `tracestate` into a context whose parent span is the remote one.
 * Without headers the result is `base` (default: the root context), so a span started under it
 * begins a new trace.
 */
export function extractTraceContext(
  headers: HeaderGetter | undefined | null,
  base: Context = ROOT_CONTEXT,
): Context {
  if (!headers) return base;
  return propagation.extract(base, headers, getter);
}

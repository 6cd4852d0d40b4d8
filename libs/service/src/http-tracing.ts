/**
 * One SERVER span per HTTP request, continuing the caller's W3C trace context when the request
 * carries `traceparent`. The span is the active context for the route handler, so the events the
 * handler publishes (and the consumers downstream) join the same trace.
 */
import { SpanKind, SpanStatusCode, context, trace, type Span } from '@opentelemetry/api';
import { extractTraceContext, getTracer } from '@longtail/telemetry';
import type { FastifyInstance, FastifyRequest } from 'fastify';

const spans = new WeakMap<FastifyRequest, Span>();

export function traceHttpRequests(fastify: FastifyInstance): void {
  const tracer = getTracer('http');
  fastify.addHook('onRequest', (request, _reply, done) => {
    const parent = extractTraceContext({ get: (key) => headerValue(request.headers[key]) });
    const span = tracer.startSpan(
      `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`,
      {
        kind: SpanKind.SERVER,
        attributes: { 'http.request.method': request.method, 'url.path': request.url.split('?')[0] },
      },
      parent,
    );
    spans.set(request, span);
    context.with(trace.setSpan(parent, span), done);
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    const span = spans.get(request);
    if (span) {
      span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
    done();
  });
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

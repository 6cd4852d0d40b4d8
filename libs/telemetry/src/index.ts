/**
 * @longtail/telemetry: tracing bootstrap, W3C trace-context helpers for message headers, and
 * the JSON logger (with secret redaction and a Nest adapter). Call `startTelemetry` first in
 * every service's `main`.
 */
export {
  startTelemetry,
  getTracer,
  otlpTracesUrl,
  injectTraceContext,
  extractTraceContext,
  type TelemetryOptions,
  type TelemetryHandle,
  type HeaderSetter,
  type HeaderGetter,
} from './tracing.js';
export {
  createLogger,
  redactUrl,
  NestPinoLogger,
  REDACT_PATHS,
  REDACTED,
  type Logger,
  type LoggerOptions,
} from './logger.js';

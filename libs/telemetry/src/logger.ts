/**
 * Structured logging: pino JSON lines on stdout, each stamped with the service name and the
 * `trace_id` / `span_id` of the span active when the line was written, so logs and traces join
 * on one id. Secrets never reach the output: well-known secret fields are censored wherever they
 * sit in the first three levels of a log object, and `redactUrl` masks the password in a
 * connection string before it is logged.
 */
import { trace } from '@opentelemetry/api';
import type { LoggerService, LogLevel } from '@nestjs/common';
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

/** Field names whose values are secrets, in the spellings that occur in practice. */
const SECRET_KEYS = [
  'password',
  'passwd',
  'pass',
  'secret',
  'clientSecret',
  'client_secret',
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'idToken',
  'id_token',
  'apiKey',
  'api_key',
  'apikey',
  'privateKey',
  'private_key',
  'mnemonic',
  'seed',
  'authorization',
  'Authorization',
  'cookie',
  'Cookie',
  'set-cookie',
  'x-api-key',
  'X-Api-Key',
  'credentials',
  'connectionString',
] as const;

function pathFor(prefix: string, key: string): string {
  const safe = /^[A-Za-z_$][\w$]*$/.test(key) ? key : `["${key}"]`;
  if (prefix === '') return safe;
  return safe.startsWith('[') ? `${prefix}${safe}` : `${prefix}.${safe}`;
}

/**
 * Redaction paths (pino/fast-redact syntax): every secret key at the top level and up to three
 * levels down (`*.key`, `*.*.key`, `*.*.*.key`), which covers `req.headers.authorization` and
 * `config.nats.password`. Deeper nesting is not scanned: keep secrets out of deep structures.
 */
export const REDACT_PATHS: readonly string[] = Object.freeze(
  ['', '*', '*.*', '*.*.*'].flatMap((prefix) => SECRET_KEYS.map((key) => pathFor(prefix, key))),
);

export const REDACTED = '[REDACTED]';

/**
 * Masks credentials in a URL or connection string:
 * `postgres://app:s3cret@db:5432/x` → `postgres://app:[REDACTED]@db:5432/x`, and query
 * parameters such as `password=`, `token=`, `apikey=`. Text that is not a URL is returned with
 * the same `user:password@` pattern masked.
 */
export function redactUrl(value: string): string {
  return value
    .replace(/(\/\/[^/\s:@]*:)([^@\s/]*)@/g, `$1${REDACTED}@`)
    .replace(
      /([?&;](?:password|passwd|pass|secret|token|access_token|api[_-]?key|apikey|key|sig|signature)=)([^&;#\s]*)/gi,
      `$1${REDACTED}`,
    );
}

export interface LoggerOptions {
  /** Written as `service` on every line. */
  readonly service: string;
  /** Default: `LOG_LEVEL` or `info`. */
  readonly level?: LevelWithSilent;
  /** Default: stdout. Tests pass a stream to read the lines back. */
  readonly destination?: DestinationStream;
  /** Extra fields on every line. */
  readonly base?: Record<string, unknown>;
}

const LEVELS: ReadonlySet<string> = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** Creates the process logger. One per process; derive per-component loggers with `.child()`. */
export function createLogger(options: LoggerOptions): Logger {
  const envLevel = process.env['LOG_LEVEL']?.toLowerCase();
  const level: LevelWithSilent =
    options.level ?? (envLevel && LEVELS.has(envLevel) ? (envLevel as LevelWithSilent) : 'info');
  return pino(
    {
      level,
      base: { service: options.service, ...options.base },
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACT_PATHS], censor: REDACTED },
      // Read the active span per line: the log and the trace share one id.
      mixin() {
        const span = trace.getActiveSpan();
        if (!span) return {};
        const ctx = span.spanContext();
        if (!trace.isSpanContextValid(ctx)) return {};
        return { trace_id: ctx.traceId, span_id: ctx.spanId };
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/**
 * Nest `LoggerService` on top of a pino logger, so Nest's own messages (bootstrap, routes,
 * exceptions) are JSON lines with the same fields. Use with `NestFactory.create(App, { logger:
 * new NestPinoLogger(logger) })` or `app.useLogger(...)`.
 */
export class NestPinoLogger implements LoggerService {
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  log(message: unknown, ...optionalParams: unknown[]): void {
    this.#write('info', message, optionalParams);
  }
  error(message: unknown, ...optionalParams: unknown[]): void {
    this.#write('error', message, optionalParams);
  }
  warn(message: unknown, ...optionalParams: unknown[]): void {
    this.#write('warn', message, optionalParams);
  }
  debug(message: unknown, ...optionalParams: unknown[]): void {
    this.#write('debug', message, optionalParams);
  }
  verbose(message: unknown, ...optionalParams: unknown[]): void {
    this.#write('trace', message, optionalParams);
  }
  fatal(message: unknown, ...optionalParams: unknown[]): void {
    this.#write('fatal', message, optionalParams);
  }
  setLogLevels(levels: LogLevel[]): void {
    // Nest passes the enabled levels; the most verbose one becomes pino's threshold.
    const order: Array<[LogLevel, LevelWithSilent]> = [
      ['verbose', 'trace'],
      ['debug', 'debug'],
      ['log', 'info'],
      ['warn', 'warn'],
      ['error', 'error'],
      ['fatal', 'fatal'],
    ];
    const found = order.find(([nest]) => levels.includes(nest));
    this.#logger.level = found ? found[1] : 'silent';
  }

  /**
   * Nest calls `logger.log(message, context)` and `logger.error(message, stack, context)`:
   * the last string parameter is the context (the class name), a string before it on `error`
   * is the stack.
   */
  #write(
    level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace',
    message: unknown,
    params: unknown[],
  ): void {
    const fields: Record<string, unknown> = {};
    const rest = [...params];
    if (rest.length > 0 && typeof rest[rest.length - 1] === 'string') {
      fields['context'] = rest.pop();
    }
    if ((level === 'error' || level === 'fatal') && typeof rest[0] === 'string') {
      fields['stack'] = rest.shift();
    }
    if (rest.length > 0) fields['params'] = rest;
    if (message instanceof Error) {
      this.#logger[level]({ ...fields, err: message }, message.message);
    } else if (typeof message === 'object' && message !== null) {
      this.#logger[level]({ ...fields, ...(message as Record<string, unknown>) });
    } else {
      this.#logger[level](fields, String(message));
    }
  }
}

/**
 * The shell every longtail service runs in: configuration checked before anything starts,
 * telemetry first, JSON logs, a Nest application on Fastify with `/health/live` and
 * `/health/ready`, and a graceful stop on SIGTERM/SIGINT (readiness fails at once, consumers
 * drain and ack what they hold, connections close, spans are flushed).
 */
import 'reflect-metadata';
import { Module, type DynamicModule, type INestApplication, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { createLogger, NestPinoLogger, startTelemetry, type Logger } from '@longtail/telemetry';
import type { z } from 'zod';
import { ConfigError, loadConfig, type BaseConfig } from './config.js';
import { HealthController, Lifecycle, READINESS_PROBES, type ReadinessProbe } from './health.js';
import { traceHttpRequests } from './http-tracing.js';

export interface ServiceDefinition<S extends z.ZodObject> {
  /** `gateway`, `scheduler`, ... : the service name in logs, traces and health. */
  readonly name: string;
  /** The environment schema; extend `baseConfigSchema`. */
  readonly config: S;
  /** The root module, built from the validated configuration. */
  module(config: z.infer<S>, logger: Logger): DynamicModule | Type;
  /** Host to listen on; default `HOST` or 127.0.0.1. */
  readonly host?: string;
}

export interface RunningService {
  readonly app: INestApplication;
  readonly logger: Logger;
  /** The port actually bound (useful with PORT=0). */
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Starts a service. A configuration error prints one line to stderr and exits with status 1;
 * any other start-up failure is logged with its cause and exits with status 1.
 */
export async function runService<S extends z.ZodObject>(definition: ServiceDefinition<S>): Promise<RunningService> {
  let config: z.infer<S> & BaseConfig;
  try {
    config = loadConfig(definition.config) as z.infer<S> & BaseConfig;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${definition.name}: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const telemetry = startTelemetry({ serviceName: definition.name });
  const logger = createLogger({ service: definition.name, level: config.LOG_LEVEL });
  try {
    const adapter = new FastifyAdapter({ bodyLimit: 64 * 1024 * 1024 });
    traceHttpRequests(adapter.getInstance());
    const app = await NestFactory.create<NestFastifyApplication>(definition.module(config, logger), adapter, {
      logger: new NestPinoLogger(logger),
      abortOnError: false,
    });
    const host = definition.host ?? process.env['HOST'] ?? '127.0.0.1';
    await app.listen(config.PORT, host);
    const address = app.getHttpServer().address();
    const port = typeof address === 'object' && address ? address.port : config.PORT;
    logger.info({ port, host }, `${definition.name} listening`);

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopping ??= (async () => {
        const watchdog = setTimeout(() => {
          logger.error(`${definition.name}: shutdown took longer than ${config.SHUTDOWN_TIMEOUT_S} s; exiting`);
          process.exit(1);
        }, config.SHUTDOWN_TIMEOUT_S * 1000);
        watchdog.unref();
        logger.info(`${definition.name} stopping`);
        await app.close();
        await telemetry.shutdown();
        logger.info(`${definition.name} stopped`);
        logger.flush();
        clearTimeout(watchdog);
      })());
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        void stop().then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      });
    }
    return { app, logger, port, stop };
  } catch (err) {
    logger.fatal({ err }, `${definition.name} failed to start`);
    logger.flush();
    await telemetry.shutdown();
    process.exit(1);
  }
}

export interface HealthModuleOptions {
  /** Modules that export what the probe factory injects. */
  readonly imports?: DynamicModule['imports'];
  readonly inject?: Array<Type | string | symbol>;
  useFactory(...deps: never[]): ReadonlyArray<ReadinessProbe> | Promise<ReadonlyArray<ReadinessProbe>>;
}

/** `/health/live` and `/health/ready` with the service's own readiness probes. */
@Module({})
export class HealthModule {
  static register(options: HealthModuleOptions): DynamicModule {
    return {
      module: HealthModule,
      imports: options.imports ?? [],
      controllers: [HealthController],
      providers: [
        Lifecycle,
        { provide: READINESS_PROBES, inject: options.inject ?? [], useFactory: options.useFactory },
      ],
    };
  }
}

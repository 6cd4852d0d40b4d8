/**
 * A service's PostgreSQL handle as a Nest provider: connects to the service's own schema,
 * applies its migrations (plus the projection checkpoint table) before the application starts,
 * and closes the pool after everything else has stopped.
 */
import { Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import {
  createDatabase,
  migrateToLatest,
  pingDatabase,
  withProjectionCheckpoints,
  type DatabaseHandle,
  type Migration,
} from '@longtail/database';
import { MessagingService } from '@longtail/messaging';
import type { Logger } from '@longtail/telemetry';
import type { ReadinessProbe } from './health.js';

/** Injection token of the service's `DatabaseHandle`. */
export const DATABASE = Symbol('longtail:database');

export interface ServiceDatabaseOptions {
  readonly url: string;
  readonly schema: string;
  readonly applicationName: string;
  readonly migrations: Readonly<Record<string, Migration>>;
  readonly logger?: Logger;
}

class DatabaseCloser implements OnApplicationShutdown {
  constructor(@Inject(DATABASE) private readonly handle: DatabaseHandle<unknown>) {}
  async onApplicationShutdown(): Promise<void> {
    await this.handle.destroy();
  }
}

@Module({})
export class ServiceDatabaseModule {
  static forRoot(options: ServiceDatabaseOptions): DynamicModule {
    return {
      module: ServiceDatabaseModule,
      global: true,
      providers: [
        {
          provide: DATABASE,
          useFactory: async () => {
            const handle = createDatabase<unknown>({
              connectionString: options.url,
              schema: options.schema,
              applicationName: options.applicationName,
              onConnectionError: (err) => options.logger?.warn({ err: err.message }, 'database connection lost'),
            });
            const report = await migrateToLatest(handle, withProjectionCheckpoints(options.migrations));
            if (report.applied.length) options.logger?.info({ applied: report.applied }, 'migrations applied');
            return handle;
          },
        },
        DatabaseCloser,
      ],
      exports: [DATABASE],
    };
  }
}

export function natsProbe(messaging: MessagingService): ReadinessProbe {
  return { name: 'nats', probe: async () => messaging.isConnected() };
}

export function postgresProbe(handle: DatabaseHandle<unknown>): ReadinessProbe {
  return { name: 'postgres', probe: async () => (await pingDatabase(handle, 1000)).ok };
}

import { Module, type DynamicModule } from '@nestjs/common';
import { MessagingService } from '@longtail/messaging';
import { DATABASE, HealthModule, ServiceDatabaseModule, natsProbe, postgresProbe, serviceMessaging } from '@longtail/service';
import type { DatabaseHandle } from '@longtail/database';
import type { Logger } from '@longtail/telemetry';
import type { z } from 'zod';
import { AdapterCatalogProjection } from './catalog/adapter-catalog.projection.js';
import { schedulerMigrations } from './catalog/migrations.js';
import type { schedulerConfigSchema } from './config.js';
import { SCHEDULER_LOGGER, SCHEDULER_NODE_OPTIONS, SchedulerNode } from './table/scheduler-node.js';

@Module({})
export class SchedulerModule {
  static forRoot(config: z.infer<typeof schedulerConfigSchema>, logger: Logger): DynamicModule {
    return {
      module: SchedulerModule,
      imports: [
        serviceMessaging({ name: 'scheduler', natsUrl: config.NATS_URL, logger }),
        ServiceDatabaseModule.forRoot({
          url: config.DATABASE_URL,
          schema: 'scheduler',
          applicationName: 'longtail-scheduler',
          migrations: schedulerMigrations,
          logger,
        }),
        HealthModule.register({
          inject: [MessagingService, DATABASE],
          useFactory: (messaging: MessagingService, db: DatabaseHandle<unknown>) => [natsProbe(messaging), postgresProbe(db)],
        }),
      ],
      providers: [
        AdapterCatalogProjection,
        { provide: SCHEDULER_LOGGER, useValue: logger },
        {
          provide: SCHEDULER_NODE_OPTIONS,
          useValue: {
            leaseTtlMs: config.LEASE_TTL_S * 1000,
            leaseRenewMs: Math.min(config.LEASE_RENEW_MS, (config.LEASE_TTL_S * 1000) / 2),
            workerLivenessMs: config.WORKER_LIVENESS_S * 1000,
          },
        },
        SchedulerNode,
      ],
    };
  }
}

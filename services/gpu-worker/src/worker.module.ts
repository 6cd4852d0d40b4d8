import { Module, type DynamicModule } from '@nestjs/common';
import { MessagingService } from '@longtail/messaging';
import { HealthModule, natsProbe, serviceMessaging } from '@longtail/service';
import type { Logger } from '@longtail/telemetry';
import type { WorkerConfig } from './config.js';
import { InferenceServer } from './inference/inference.server.js';
import { AdapterCommands } from './registry/adapter-commands.js';
import { WorkerHeartbeat } from './registry/heartbeat.js';
import { WORKER_CONFIG, WORKER_LOGGER } from './registry/tokens.js';

@Module({})
export class WorkerModule {
  static forRoot(config: WorkerConfig, logger: Logger): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        serviceMessaging({ name: `gpu-worker-${config.WORKER_ID}`, natsUrl: config.NATS_URL, logger }),
        HealthModule.register({ inject: [MessagingService], useFactory: (m: MessagingService) => [natsProbe(m)] }),
      ],
      providers: [
        { provide: WORKER_CONFIG, useValue: config },
        { provide: WORKER_LOGGER, useValue: logger },
        InferenceServer,
        WorkerHeartbeat,
        AdapterCommands,
      ],
    };
  }
}

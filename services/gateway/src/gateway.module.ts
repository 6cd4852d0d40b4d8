import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { MessagingService } from '@longtail/messaging';
import { HealthModule, natsProbe, serviceMessaging, type ReadinessProbe } from '@longtail/service';
import type { Logger } from '@longtail/telemetry';
import { AdaptersController } from './adapters/adapters.controller.js';
import { adapterRegistryProviders } from './adapters/adapter-registry.providers.js';
import { AUTH_PROBES, AuthModule } from './auth/auth.module.js';
import type { GatewayConfig } from './config.js';
import { AdminKeyGuard } from './http/admin-key.guard.js';
import { InferenceKeyGuard } from './http/inference-key.guard.js';
import { OpenAiErrorFilter } from './http/openai-errors.js';
import { CompletionsController } from './inference/completions.controller.js';
import { InferenceClient } from './inference/inference-client.js';
import { PlacementWorkerRouter } from './inference/placement-router.js';
import { HeartbeatWorkerRouter, WORKER_ROUTER } from './inference/worker-router.js';
import { GATEWAY_LOGGER } from './logger.token.js';
import { AttributionReadsController } from './reads/attribution.controller.js';
import { LedgerReadsController } from './reads/ledger.controller.js';
import { PlacementReadsController } from './reads/placement.controller.js';
import { ServiceReads } from './reads/service-reads.js';

@Module({})
export class GatewayModule {
  static forRoot(config: GatewayConfig, logger: Logger): DynamicModule {
    return {
      module: GatewayModule,
      imports: [
        serviceMessaging({ name: 'gateway', natsUrl: config.NATS_URL, logger, consume: false }),
        AuthModule.forRoot(config, logger),
        HealthModule.register({
          inject: [MessagingService, AUTH_PROBES],
          useFactory: (m: MessagingService, auth: ReadinessProbe[]) => [natsProbe(m), ...auth],
        }),
      ],
      controllers: [
        AdaptersController,
        AttributionReadsController,
        LedgerReadsController,
        PlacementReadsController,
        CompletionsController,
      ],
      providers: [
        AdminKeyGuard,
        InferenceKeyGuard,
        { provide: GATEWAY_LOGGER, useValue: logger },
        HeartbeatWorkerRouter,
        PlacementWorkerRouter,
        { provide: WORKER_ROUTER, useExisting: PlacementWorkerRouter },
        InferenceClient,
        ServiceReads,
        ...adapterRegistryProviders({ maxUploadBytes: config.ADAPTER_UPLOAD_MAX_BYTES, modelConfigDir: config.MODEL_CONFIG_DIR }),
        { provide: APP_FILTER, useValue: new OpenAiErrorFilter(logger) },
      ],
    };
  }
}

/**
 * Tenants, API keys and limits. With `DATABASE_URL` the gateway owns the `gateway` schema and
 * enforces keys; without it, any bearer key is accepted as the `anonymous` tenant (a warning is
 * logged at start). Global, so the key guards resolve in every module.
 */
import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import type { DatabaseHandle } from '@longtail/database';
import { DATABASE, ServiceDatabaseModule, postgresProbe, type ReadinessProbe } from '@longtail/service';
import type { Logger } from '@longtail/telemetry';
import type { GatewayConfig } from '../config.js';
import { ADMIN_KEY_DIGEST, digestKey } from '../http/admin-key.guard.js';
import { AdminController } from './admin.controller.js';
import { ApiKeyStore } from './api-key-store.js';
import { AUTH_SETTINGS, InferenceAdmission } from './admission.js';
import { Authenticator } from './authenticator.js';
import { INFERENCE_BODY_LIMIT, InferenceBodyLimit } from './body-limit.js';
import { gatewayMigrations } from './migrations.js';
import { AUTHENTICATOR } from './principal.js';
import { RateLimiter } from './rate-limiter.js';
import type { GatewayTables } from './tables.js';

/** Readiness probes of the auth store (PostgreSQL when there is one). */
export const AUTH_PROBES = Symbol('longtail:gateway:auth-probes');

@Module({})
export class AuthModule {
  static forRoot(config: GatewayConfig, logger: Logger): DynamicModule {
    const common: Provider[] = [
      { provide: ADMIN_KEY_DIGEST, useValue: digestKey(config.LONGTAIL_ADMIN_KEY) },
      { provide: AUTH_SETTINGS, useValue: { maxPromptChars: config.MAX_PROMPT_CHARS } },
      { provide: INFERENCE_BODY_LIMIT, useValue: config.INFERENCE_BODY_LIMIT_BYTES },
      { provide: RateLimiter, useValue: new RateLimiter() },
      InferenceAdmission,
      InferenceBodyLimit,
    ];
    const exports = [ADMIN_KEY_DIGEST, AUTHENTICATOR, AUTH_PROBES, InferenceAdmission];
    const url = config.DATABASE_URL;
    if (url === undefined) {
      logger.warn(
        'DATABASE_URL is not set: API keys are not checked; every bearer key is the anonymous tenant',
      );
      return {
        module: AuthModule,
        global: true,
        providers: [
          ...common,
          { provide: AUTHENTICATOR, useValue: null },
          { provide: AUTH_PROBES, useValue: [] },
        ],
        exports,
      };
    }
    return {
      module: AuthModule,
      global: true,
      imports: [
        ServiceDatabaseModule.forRoot({
          url,
          schema: 'gateway',
          applicationName: 'longtail-gateway',
          migrations: gatewayMigrations,
          logger,
        }),
      ],
      controllers: [AdminController],
      providers: [
        ...common,
        {
          provide: ApiKeyStore,
          inject: [DATABASE],
          useFactory: (db: DatabaseHandle<GatewayTables>) => new ApiKeyStore(db),
        },
        {
          provide: AUTHENTICATOR,
          inject: [ApiKeyStore],
          useFactory: (store: ApiKeyStore) => new Authenticator(store, config.API_KEY_CACHE_TTL_MS),
        },
        {
          provide: AUTH_PROBES,
          inject: [DATABASE],
          useFactory: (db: DatabaseHandle<unknown>): ReadinessProbe[] => [postgresProbe(db)],
        },
      ],
      exports,
    };
  }
}

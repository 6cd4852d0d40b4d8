/**
 * @longtail/service: the shell every service runs in (configuration, health, graceful stop)
 * and the failpoints tests use to crash a service at a chosen place.
 */
export { ConfigError, baseConfigSchema, databaseConfigSchema, loadConfig, type BaseConfig } from './config.js';
export { HealthController, Lifecycle, READINESS_PROBES, type ReadinessProbe, type ReadinessReport } from './health.js';
export { HealthModule, runService, type HealthModuleOptions, type RunningService, type ServiceDefinition } from './run-service.js';
export { FAILPOINT_EXIT_CODE, failpoint } from './failpoints.js';
export { contractCodec, longtailProvisionSpec, parseKnownEvent, serviceMessaging, type ServiceMessagingOptions } from './messaging.js';
export { DATABASE, ServiceDatabaseModule, natsProbe, postgresProbe, type ServiceDatabaseOptions } from './database.js';
export { commandPayload } from './commands.js';

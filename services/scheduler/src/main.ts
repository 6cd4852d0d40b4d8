/**
 * The scheduler: worker registry, adapter placement and load/evict commands. Today it keeps the
 * adapter catalog that placement will read (a projection of the ADAPTERS stream).
 */
import { runService } from '@longtail/service';
import { schedulerConfigSchema } from './config.js';
import { SchedulerModule } from './scheduler.module.js';

await runService({
  name: 'scheduler',
  config: schedulerConfigSchema,
  module: (config, logger) => SchedulerModule.forRoot(config, logger),
});

/** A gpu-worker: one per GPU (or CPU box); hosts the engine and serves inference. */
import { runService } from '@longtail/service';
import { workerConfigSchema } from './config.js';
import { WorkerModule } from './worker.module.js';

await runService({
  name: 'gpu-worker',
  config: workerConfigSchema,
  module: (config, logger) => WorkerModule.forRoot(config, logger),
});

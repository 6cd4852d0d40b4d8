/** The gateway: the HTTP API of longtail. */
import { runService } from '@longtail/service';
import { gatewayConfigSchema } from './config.js';
import { GatewayModule } from './gateway.module.js';

await runService({
  name: 'gateway',
  config: gatewayConfigSchema,
  module: (config, logger) => GatewayModule.forRoot(config, logger),
});

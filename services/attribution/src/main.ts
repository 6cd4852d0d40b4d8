/**
 * The attribution service: prices every inference, splits each fee among the operator, the
 * adapter creator, the Datanet contributors and the treasury, closes epochs at the markers in the
 * INFERENCE stream and announces their exact totals. Configuration: see app/attribution-options.ts.
 */
import 'reflect-metadata';

import { runService } from '@longtail/service';

import { attributionConfigSchema, optionsFromConfig } from './app/attribution-options.js';
import { AttributionModule } from './app/attribution.module.js';

await runService({
  name: 'attribution',
  config: attributionConfigSchema,
  module: (config) => AttributionModule.register(optionsFromConfig(config)),
});

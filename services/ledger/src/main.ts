/**
 * The ledger service: turns closed attribution epochs into cumulative Merkle roots, posts each
 * to the distributor contract exactly once, publishes `ledger.payout.posted`, and serves claim
 * proofs. Configuration: see app/ledger-config.ts (no chain settings = embedded anvil).
 */
import 'reflect-metadata';

import { runService } from '@longtail/service';

import { ledgerConfigSchema, optionsFromConfig } from './app/ledger-config.js';
import { LedgerModule } from './app/ledger.module.js';

await runService({
  name: 'ledger',
  config: ledgerConfigSchema,
  module: (config, logger) => LedgerModule.register(optionsFromConfig(config), logger),
});

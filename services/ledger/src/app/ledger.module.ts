/**
 * The ledger service as a Nest module: its PostgreSQL schema (migrated at start), the chain (an
 * external one from configuration, or the embedded anvil), the distributor gateway, the
 * EpochPoster, the ATTRIBUTION consumer, and the read API over NATS and HTTP, with readiness
 * probes for NATS, PostgreSQL and the chain. `LedgerModule.register(options)`; `main.ts` builds
 * the options from the environment, tests build them by hand.
 */
import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import type { LedgerPayoutPostedV1 } from '@longtail/contracts';
import type { DatabaseHandle } from '@longtail/database';
import { EventPublisher, MessagingService } from '@longtail/messaging';
import { DATABASE, HealthModule, natsProbe, postgresProbe, ServiceDatabaseModule, serviceMessaging } from '@longtail/service';
import type { Logger } from '@longtail/telemetry';
import type { Address, Hex } from 'viem';

import { publicClientFor } from '../chain/clients.js';
import { DistributorGateway } from '../chain/distributor-gateway.js';
import { startEmbeddedChain, type EmbeddedChain } from '../chain/embedded-chain.js';
import { distributorCallAbi } from '../chain/artifacts.js';
import { EpochPoster } from '../payouts/epoch-poster.js';
import { LedgerQueries } from '../queries/ledger-queries.js';
import { ledgerMigrations } from '../store/migrations.js';
import type { LedgerDatabase } from '../store/schema.js';
import { LedgerCommands } from './ledger-commands.js';
import type { LedgerOptions } from './ledger-config.js';
import { LedgerConsumers } from './ledger-consumers.js';
import { LedgerHttpController } from './ledger-http.controller.js';
import { LEDGER_CHAIN, LEDGER_OPTIONS } from './tokens.js';

/** The chain the ledger works on, whichever way it was configured. */
export interface ResolvedChain {
  readonly rpcUrl: string;
  readonly chainId: number;
  readonly posterKey: Hex;
  readonly distributor: Address;
  readonly fromBlock: bigint;
  readonly embedded?: EmbeddedChain;
}

/** Stops the embedded anvil after everything else has stopped. */
@Injectable()
class ChainLifecycle implements OnApplicationShutdown {
  constructor(@Inject(LEDGER_CHAIN) private readonly chain: ResolvedChain) {}
  async onApplicationShutdown(): Promise<void> {
    await this.chain.embedded?.stop();
  }
}

/** The chain as a global provider, so that the health probes (another module) can see it. */
@Module({})
class LedgerChainModule {
  static register(options: LedgerOptions, logger?: Logger): DynamicModule {
    return {
      module: LedgerChainModule,
      global: true,
      providers: [
        {
          provide: LEDGER_CHAIN,
          useFactory: async (): Promise<ResolvedChain> => {
            if (options.chain.kind === 'external') return options.chain;
            const embedded = await startEmbeddedChain(options.chain);
            logger?.info({ rpcUrl: embedded.rpcUrl, distributor: embedded.distributor, token: embedded.token }, 'embedded anvil chain started');
            return { rpcUrl: embedded.rpcUrl, chainId: embedded.chainId, posterKey: embedded.posterKey, distributor: embedded.distributor, fromBlock: embedded.deployedAtBlock, embedded };
          },
        },
        ChainLifecycle,
      ],
      exports: [LEDGER_CHAIN],
    };
  }
}

@Module({})
export class LedgerModule {
  static register(options: LedgerOptions, logger?: Logger): DynamicModule {
    return {
      module: LedgerModule,
      imports: [
        LedgerChainModule.register(options, logger),
        serviceMessaging({ name: 'ledger', natsUrl: options.natsUrl, ...(logger ? { logger } : {}) }),
        ServiceDatabaseModule.forRoot({ url: options.databaseUrl, schema: options.schema, applicationName: 'ledger', migrations: ledgerMigrations, ...(logger ? { logger } : {}) }),
        HealthModule.register({
          inject: [MessagingService, DATABASE, LEDGER_CHAIN],
          useFactory: (messaging: MessagingService, db: DatabaseHandle<unknown>, chain: ResolvedChain) => [
            natsProbe(messaging),
            postgresProbe(db),
            { name: 'chain', probe: async () => (await publicClientFor(chain).getChainId()) === chain.chainId },
          ],
        }),
      ],
      controllers: [LedgerHttpController],
      providers: [
        { provide: LEDGER_OPTIONS, useValue: options },
        {
          provide: DistributorGateway,
          inject: [LEDGER_CHAIN],
          useFactory: (chain: ResolvedChain) =>
            new DistributorGateway({ rpcUrl: chain.rpcUrl, chainId: chain.chainId, distributor: chain.distributor, posterKey: chain.posterKey, fromBlock: chain.fromBlock }),
        },
        {
          provide: EpochPoster,
          inject: [DATABASE, DistributorGateway, EventPublisher, LEDGER_CHAIN],
          useFactory: (db: DatabaseHandle<LedgerDatabase>, gateway: DistributorGateway, publisher: EventPublisher, chain: ResolvedChain) =>
            new EpochPoster({
              db: db.db,
              chain: gateway,
              chainId: chain.chainId,
              publisher: { publish: async (event: LedgerPayoutPostedV1) => void (await publisher.publish(event)) },
              policy: { confirmations: options.confirmations, stuckAfterBlocks: options.stuckAfterBlocks, feeBumpPercent: options.feeBumpPercent },
              pollIntervalMs: options.pollIntervalMs,
              ...(logger ? { logger } : {}),
            }),
        },
        {
          provide: LedgerQueries,
          inject: [DATABASE, LEDGER_CHAIN],
          useFactory: (db: DatabaseHandle<LedgerDatabase>, chain: ResolvedChain) => {
            const client = publicClientFor(chain);
            return new LedgerQueries(
              db.db,
              {
                claimed: (account) => client.readContract({ address: chain.distributor, abi: distributorCallAbi, functionName: 'claimed', args: [account] }),
                merkleRoot: () => client.readContract({ address: chain.distributor, abi: distributorCallAbi, functionName: 'merkleRoot' }),
              },
              { distributor: chain.distributor, chainId: chain.chainId },
            );
          },
        },
        LedgerConsumers,
        LedgerCommands,
      ],
      exports: [LedgerQueries, EpochPoster],
    };
  }
}

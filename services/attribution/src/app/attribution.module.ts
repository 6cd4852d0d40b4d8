/**
 * The attribution service as a Nest module: its database (migrated at start), the fact book
 * loaded from it, the projector, the consumers, the epoch closer and relay, and the read API
 * over NATS and HTTP. `AttributionModule.register(options)`; `main.ts` builds the options from
 * the environment, tests build them by hand.
 */
import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';

import { encodeEvent, subjectFor, type KnownEvent } from '@longtail/contracts';
import { createDatabase, migrateToLatest, type DatabaseHandle } from '@longtail/database';
import {
  EventPublisher,
  MESSAGING_CONNECTION,
  MessagingModule,
  MessagingService,
  type MessagingConnection,
} from '@longtail/messaging';
import { HealthModule, longtailProvisionSpec, natsProbe, postgresProbe } from '@longtail/service';

import { EpochClosedRelay } from '../epochs/epoch-closed-relay.js';
import { EpochCloser } from '../epochs/epoch-closer.js';
import { FactBook } from '../facts/facts.js';
import { AttributionProjector } from '../ingest/attribution-projector.js';
import { parseAttributionEvent } from '../ingest/codec.js';
import { loadFactBook } from '../projections/facts-projection.js';
import { ATTRIBUTION_MIGRATIONS } from '../projections/migrations.js';
import type { AttributionTables } from '../projections/schema.js';
import { AttributionQueries } from '../queries/attribution-queries.js';
import { AttributionCommands } from './attribution-commands.js';
import { AttributionConsumers, factsCaughtUp } from './attribution-consumers.js';
import { AttributionHttpController } from './attribution-http.controller.js';
import { DatanetCommands } from './datanet-commands.js';
import type { AttributionOptions } from './attribution-options.js';
import { ATTRIBUTION_DB, ATTRIBUTION_OPTIONS } from './tokens.js';

/** Closes the pool after messaging has drained (Nest calls onApplicationShutdown last). */
@Injectable()
class DatabaseLifecycle implements OnApplicationShutdown {
  constructor(@Inject(ATTRIBUTION_DB) private readonly handle: DatabaseHandle<AttributionTables>) {}
  async onApplicationShutdown(): Promise<void> {
    await this.handle.destroy();
  }
}

/** The service's database (migrated at start), global so that the health probes can use it. */
@Module({})
class AttributionDatabaseModule {
  static register(options: AttributionOptions): DynamicModule {
    return {
      module: AttributionDatabaseModule,
      global: true,
      providers: [
        {
          provide: ATTRIBUTION_DB,
          useFactory: async (): Promise<DatabaseHandle<AttributionTables>> => {
            const handle = createDatabase<AttributionTables>({
              connectionString: options.databaseUrl,
              schema: options.schema,
              applicationName: 'attribution',
            });
            await migrateToLatest(handle, ATTRIBUTION_MIGRATIONS);
            return handle;
          },
        },
        DatabaseLifecycle,
      ],
      exports: [ATTRIBUTION_DB],
    };
  }
}

@Module({})
export class AttributionModule {
  static register(options: AttributionOptions): DynamicModule {
    return {
      module: AttributionModule,
      imports: [
        AttributionDatabaseModule.register(options),
        HealthModule.register({
          inject: [MessagingService, ATTRIBUTION_DB],
          // postgresProbe only pings the pool.
          useFactory: (messaging: MessagingService, db: DatabaseHandle<AttributionTables>) => [
            natsProbe(messaging),
            postgresProbe(db as unknown as DatabaseHandle<unknown>),
          ],
        }),
        MessagingModule.forRoot({
          servers: options.natsServers,
          name: 'attribution',
          provision: longtailProvisionSpec(),
          parse: parseAttributionEvent as never,
          encode: (event) => encodeEvent(event as KnownEvent),
          subjectFor: (event) => subjectFor(event as KnownEvent),
        }),
      ],
      controllers: [AttributionHttpController],
      providers: [
        { provide: ATTRIBUTION_OPTIONS, useValue: options },
        {
          provide: FactBook,
          inject: [ATTRIBUTION_DB],
          useFactory: (h: DatabaseHandle<AttributionTables>) => loadFactBook(h.db),
        },
        {
          provide: AttributionProjector,
          inject: [ATTRIBUTION_DB, FactBook, MESSAGING_CONNECTION],
          useFactory: (h: DatabaseHandle<AttributionTables>, facts: FactBook, conn: MessagingConnection) =>
            new AttributionProjector(h.db, facts, {
              factsCaughtUp: factsCaughtUp(conn, options.durablePrefix ?? 'attribution'),
              ...(options.factWaitMs !== undefined ? { factWaitMs: options.factWaitMs } : {}),
              ...(options.afterCommit ? { afterCommit: options.afterCommit } : {}),
              ...(options.beforeCommit ? { beforeCommit: options.beforeCommit } : {}),
            }),
        },
        {
          provide: EpochClosedRelay,
          inject: [ATTRIBUTION_DB, EventPublisher],
          useFactory: (h: DatabaseHandle<AttributionTables>, p: EventPublisher) =>
            new EpochClosedRelay(h.db, p),
        },
        {
          provide: EpochCloser,
          inject: [ATTRIBUTION_DB, EventPublisher, FactBook],
          useFactory: (h: DatabaseHandle<AttributionTables>, p: EventPublisher, f: FactBook) =>
            new EpochCloser(h.db, p, f),
        },
        {
          provide: AttributionQueries,
          inject: [ATTRIBUTION_DB],
          useFactory: (h: DatabaseHandle<AttributionTables>) => new AttributionQueries(h.db),
        },
        AttributionConsumers,
        AttributionCommands,
        DatanetCommands,
      ],
    };
  }
}

/**
 * The ledger's only consumer: `attribution.epoch.closed` from the ATTRIBUTION stream, in small
 * batches, applied by the epoch projection (balances + outbox + checkpoint in one transaction).
 * The messaging lib acks a batch once the handler resolves and validates every event against its
 * contract first (a malformed event is dead-lettered, never applied). After each batch the poster
 * is nudged so a new root goes out without waiting for its next tick.
 */
import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { DatabaseHandle } from '@longtail/database';
import { MessagingService, type ReceivedEvent } from '@longtail/messaging';
import { DATABASE } from '@longtail/service';

import { applyEpochEvents, type EpochClosedEvent } from '../epochs/epoch-projection.js';
import { EpochPoster } from '../payouts/epoch-poster.js';
import type { LedgerDatabase } from '../store/schema.js';
import type { LedgerOptions } from './ledger-config.js';
import { LEDGER_OPTIONS } from './tokens.js';

export const EPOCHS_DURABLE = 'ledger-epochs';

@Injectable()
export class LedgerConsumers implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(
    @Inject(LEDGER_OPTIONS) private readonly options: LedgerOptions,
    @Inject(MessagingService) private readonly messaging: MessagingService,
    @Inject(DATABASE) private readonly database: DatabaseHandle<LedgerDatabase>,
    @Inject(EpochPoster) private readonly poster: EpochPoster,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.messaging.consume(
      {
        stream: 'ATTRIBUTION',
        durable: this.options.durable ?? EPOCHS_DURABLE,
        filterSubject: 'attribution.epoch.closed.>',
        batch: { size: 16, maxWaitMs: 1000 },
        // An epoch of a million accounts takes a while to apply (tree build): long ack wait.
        ackWaitMs: 120_000,
        maxDeliver: 20,
        backoffMs: [1000, 5000, 15000, 60000],
      },
      async (batch: ReadonlyArray<ReceivedEvent>) => {
        const events = batch.map((item) => ({ seq: item.meta.seq, event: item.event as unknown as EpochClosedEvent }));
        await applyEpochEvents(this.database.db, events);
        this.poster.nudge();
      },
    );
    this.poster.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.poster.stop();
  }
}

/**
 * The ledger's moving parts without Nest, for integration tests: a migrated ledger schema on the
 * test PostgreSQL, attribution epoch events, and an EpochPoster pointed at a chain fixture.
 */
import { createEvent, summariseTotals, AttributionEpochClosedV1, type LedgerPayoutPostedV1 } from '@longtail/contracts';
import { createDatabase, migrateToLatest, withProjectionCheckpoints, type DatabaseHandle, type SequencedEvent } from '@longtail/database';
import type { Address, Hex } from 'viem';

import { DistributorGateway } from '../src/chain/distributor-gateway.js';
import { applyEpochEvents } from '../src/epochs/epoch-projection.js';
import { EpochPoster, type EpochPosterOptions, type PosterCrashPoint } from '../src/payouts/epoch-poster.js';
import type { PosterPolicy } from '../src/payouts/decide.js';
import { LEDGER_SCHEMA, ledgerMigrations } from '../src/store/migrations.js';
import type { LedgerDatabase } from '../src/store/schema.js';

export async function openLedgerDatabase(url: string): Promise<DatabaseHandle<LedgerDatabase>> {
  const handle = createDatabase<LedgerDatabase>({ connectionString: url, schema: LEDGER_SCHEMA, applicationName: 'ledger-test' });
  await migrateToLatest(handle, withProjectionCheckpoints(ledgerMigrations));
  return handle;
}

let sequence = 0n;

/** A valid `attribution.epoch.closed` for `shares` (account → amount in base units). */
export function epochClosed(epoch: number, shares: ReadonlyArray<readonly [Address, bigint]>): SequencedEvent<AttributionEpochClosedV1> {
  const summary = summariseTotals(shares.map(([account, amount]) => ({ account, amount })));
  const event = createEvent(
    AttributionEpochClosedV1,
    {
      epoch,
      policyVersion: 1,
      totals: summary.totals.map((t) => ({ account: t.account, amount: t.amount })),
      totalAmount: summary.totalAmount,
      totalsHash: summary.totalsHash,
      eventCount: 0,
      firstSequence: 1,
      lastSequence: 0,
    },
    { correlationId: `epoch-${epoch}`, causationId: null, occurredAt: '2026-01-01T00:00:00.000Z' },
  );
  sequence += 1n;
  return { seq: sequence, event };
}

export class CollectingPublisher {
  readonly events: LedgerPayoutPostedV1[] = [];
  async publish(event: LedgerPayoutPostedV1): Promise<void> {
    if (!this.events.some((e) => e.id === event.id)) this.events.push(event);
  }
}

export interface PosterSetup {
  readonly db: DatabaseHandle<LedgerDatabase>;
  readonly rpcUrl: string;
  readonly chainId: number;
  readonly distributor: Address;
  readonly posterKey: Hex;
  readonly publisher?: CollectingPublisher;
  readonly policy?: PosterPolicy;
  readonly crashAt?: PosterCrashPoint;
}

export class SimulatedCrash extends Error {
  override readonly name = 'SimulatedCrash';
}

export function makePoster(setup: PosterSetup): { poster: EpochPoster; publisher: CollectingPublisher; gateway: DistributorGateway } {
  const publisher = setup.publisher ?? new CollectingPublisher();
  const gateway = new DistributorGateway({ rpcUrl: setup.rpcUrl, chainId: setup.chainId, distributor: setup.distributor, posterKey: setup.posterKey });
  const options: EpochPosterOptions = {
    db: setup.db.db,
    chain: gateway,
    chainId: setup.chainId,
    publisher,
    policy: setup.policy ?? { confirmations: 1, stuckAfterBlocks: 3, feeBumpPercent: 125 },
    pollIntervalMs: 50,
    crashAt: (point) => {
      if (point === setup.crashAt) throw new SimulatedCrash(`simulated crash at ${point}`);
    },
  };
  return { poster: new EpochPoster(options), publisher, gateway };
}

export { applyEpochEvents };

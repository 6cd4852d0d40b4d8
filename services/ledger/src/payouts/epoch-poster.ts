/**
 * The EpochPoster: the thin I/O shell around `decide`. Each tick takes the lowest epoch not yet
 * published, reads the chain, asks `decide` what to do, does it and records it, inside one
 * PostgreSQL transaction that holds an advisory lock (so two ledger instances never post at
 * once) and the outbox row lock. A crash anywhere loses at most the tick's uncommitted record; the
 * next tick re-reads the chain, which is why a broadcast that was never recorded is adopted, not
 * repeated.
 *
 * Crash points for tests: `ledger.poster.after-broadcast` (the transaction is out, the outbox does
 * not know) and `ledger.poster.after-record` (the outbox says sent, nothing confirmed yet). By
 * default they are failpoints (`LONGTAIL_FAILPOINTS=ledger.poster.after-broadcast=exit`); in-process
 * tests pass `crashAt` to throw instead.
 */
import { sql, type Kysely } from 'kysely';
import { v7 as uuidv7 } from 'uuid';
import type { Hex } from 'viem';
import { createEvent, LedgerPayoutPostedV1 } from '@longtail/contracts';
import { failpoint } from '@longtail/service';
import type { Logger } from '@longtail/telemetry';

import type { DistributorGateway } from '../chain/distributor-gateway.js';
import type { LedgerDatabase } from '../store/schema.js';
import {
  nextUnpublished,
  payoutRecord,
  recordConfirmed,
  recordError,
  recordMined,
  recordPublished,
  recordSent,
  toPayoutRow,
  type PayoutOutboxRecord,
} from '../store/payout-outbox.js';
import { decide, DEFAULT_POSTER_POLICY, type PosterAction, type PosterPolicy } from './decide.js';
import { PayoutHaltCode, PayoutHalted } from './errors.js';

export type PosterCrashPoint = 'ledger.poster.after-broadcast' | 'ledger.poster.after-record';

/** Publishes `ledger.payout.posted`; must be idempotent by event id (JetStream msg-id dedup is). */
export interface PayoutPublisher {
  publish(event: LedgerPayoutPostedV1): Promise<void>;
}

export interface EpochPosterOptions {
  readonly db: Kysely<LedgerDatabase>;
  readonly chain: DistributorGateway;
  readonly chainId: number;
  readonly publisher: PayoutPublisher;
  readonly policy?: PosterPolicy;
  readonly logger?: Logger;
  /** Pause between ticks when there is nothing to do or the poster waits. Default 1000 ms. */
  readonly pollIntervalMs?: number;
  /** Called at each crash point; default: the failpoint of that name. */
  readonly crashAt?: (point: PosterCrashPoint) => void;
}

export type TickOutcome =
  | { readonly kind: 'idle' }
  | { readonly kind: 'busy' }
  | { readonly kind: 'acted'; readonly epoch: bigint; readonly action: PosterAction }
  | { readonly kind: 'failed'; readonly epoch: bigint | undefined; readonly error: Error };

/** advisory-lock key: one poster per database at a time. */
const POSTER_LOCK = 0x6c656467; // 'ledg'

export class EpochPoster {
  readonly #o: EpochPosterOptions;
  readonly #policy: PosterPolicy;
  #running: Promise<void> | undefined;
  #stop: AbortController | undefined;
  #wake: (() => void) | undefined;
  #lastError = new Map<bigint, string>();

  constructor(options: EpochPosterOptions) {
    this.#o = options;
    this.#policy = options.policy ?? DEFAULT_POSTER_POLICY;
  }

  /** One step for the lowest unpublished epoch. Never throws: failures come back as `failed`. */
  async tick(): Promise<TickOutcome> {
    let epoch: bigint | undefined;
    let afterCommit: (() => void) | undefined;
    try {
      const outcome = await this.#o.db.transaction().execute(async (trx): Promise<TickOutcome> => {
        const lock = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(${POSTER_LOCK}) as locked`.execute(trx);
        if (!lock.rows[0]?.locked) return { kind: 'busy' };
        const record = await nextUnpublished(trx);
        if (!record) return { kind: 'idle' };
        epoch = record.epoch;
        const row = toPayoutRow(record);
        if (row.state === 'confirmed') {
          await this.#publish(trx, record);
          return { kind: 'acted', epoch: row.epoch, action: { kind: 'publish' } };
        }
        const view = await this.#o.chain.readView(row);
        if (view.chainId !== this.#o.chainId) {
          throw new PayoutHalted(PayoutHaltCode.WrongChain, row.epoch, `the RPC serves chain ${view.chainId}, CHAIN_ID is ${this.#o.chainId}`);
        }
        const action = decide(row, view, this.#policy);
        switch (action.kind) {
          case 'wait':
            break;
          case 'halt':
            throw new PayoutHalted(action.code, row.epoch, action.message);
          case 'approve':
            await this.#o.chain.approveMax();
            break;
          case 'mint':
            await this.#o.chain.mint(action.amount);
            break;
          case 'send': {
            const hash = await this.#o.chain.sendPostRoot(row, action);
            this.#crash('ledger.poster.after-broadcast');
            await recordSent(trx, row.epoch, { hash, nonce: action.nonce, maxFeePerGas: action.maxFeePerGas, maxPriorityFeePerGas: action.maxPriorityFeePerGas, sentAtBlock: view.head });
            this.#o.logger?.info(
              { epoch: String(row.epoch), tx: hash, nonce: action.nonce, replaces: action.replaces, maxFeePerGas: String(action.maxFeePerGas) },
              action.replaces ? 'postRoot re-sent' : 'postRoot sent',
            );
            afterCommit = () => this.#crash('ledger.poster.after-record');
            break;
          }
          case 'adopt':
            await recordMined(trx, row.epoch, action.txHash, action.blockNumber);
            this.#o.logger?.info({ epoch: String(row.epoch), tx: action.txHash, block: String(action.blockNumber) }, 'root is in a block');
            break;
          case 'confirm':
            await this.#confirm(trx, row.epoch, action.txHash, action.blockNumber);
            break;
          case 'publish':
            await this.#publish(trx, record);
            break;
        }
        if (this.#lastError.delete(row.epoch)) {
          await trx.updateTable('payout_outbox').set({ last_error: null }).where('epoch', '=', row.epoch).execute();
        }
        return { kind: 'acted', epoch: row.epoch, action };
      });
      afterCommit?.();
      return outcome;
    } catch (caught) {
      const error = caught instanceof Error ? caught : new Error(String(caught));
      if (error.name === 'SimulatedCrash') throw error;
      if (epoch !== undefined) await this.#noteError(epoch, error);
      return { kind: 'failed', epoch, error };
    }
  }

  /** Ticks until the poster has nothing left to do now (idle, waiting, or failing). For tests and tools. */
  async drain(maxTicks = 100): Promise<TickOutcome> {
    let last: TickOutcome = { kind: 'idle' };
    for (let i = 0; i < maxTicks; i++) {
      last = await this.tick();
      if (last.kind !== 'acted' || last.action.kind === 'wait') return last;
    }
    return last;
  }

  /** Runs ticks in the background until `stop()`; `nudge()` skips the pause (a new epoch arrived). */
  start(): void {
    if (this.#running) return;
    const stop = (this.#stop = new AbortController());
    this.#running = (async () => {
      while (!stop.signal.aborted) {
        const outcome = await this.tick();
        const busy = outcome.kind === 'acted' && outcome.action.kind !== 'wait';
        if (!busy) await this.#pause(this.#o.pollIntervalMs ?? 1000, stop.signal);
      }
    })();
  }

  nudge(): void {
    this.#wake?.();
  }

  async stop(): Promise<void> {
    this.#stop?.abort();
    this.#wake?.();
    await this.#running;
    this.#running = undefined;
  }

  async #confirm(db: Kysely<LedgerDatabase>, epoch: bigint, txHash: Hex, blockNumber: bigint): Promise<void> {
    const blockTime = await this.#o.chain.blockTime(blockNumber);
    await recordConfirmed(db, epoch, { txHash, blockNumber, blockTime, payoutEventId: uuidv7() });
    this.#o.logger?.info({ epoch: String(epoch), tx: txHash, block: String(blockNumber) }, 'root confirmed');
  }

  async #publish(db: Kysely<LedgerDatabase>, record: PayoutOutboxRecord): Promise<void> {
    const current = (await payoutRecord(db, record.epoch)) ?? record;
    const source = await db.selectFrom('ledger_epochs').select(['event_id', 'correlation_id']).where('epoch', '=', record.epoch).executeTakeFirstOrThrow();
    const event = createEvent(
      LedgerPayoutPostedV1,
      {
        epoch: Number(current.epoch),
        epochTotalsHash: current.epoch_totals_hash,
        merkleRoot: current.merkle_root,
        chainId: this.#o.chainId,
        distributorAddress: this.#o.chain.distributor.toLowerCase(),
        txHash: current.posted_tx_hash!,
        blockNumber: Number(current.posted_block),
        cumulativeTotal: current.cumulative_total,
      },
      {
        id: current.payout_event_id!,
        correlationId: source.correlation_id,
        causationId: source.event_id,
        occurredAt: current.posted_block_time!,
      },
    );
    await this.#o.publisher.publish(event);
    await recordPublished(db, record.epoch);
    this.#o.logger?.info({ epoch: String(record.epoch), eventId: event.id }, 'ledger.payout.posted published');
  }

  async #noteError(epoch: bigint, error: Error): Promise<void> {
    const message = error.message;
    if (this.#lastError.get(epoch) !== message) {
      // Log a new error once, not every tick.
      this.#lastError.set(epoch, message);
      if (error instanceof PayoutHalted) this.#o.logger?.error({ epoch: String(epoch), code: error.code }, message);
      else this.#o.logger?.warn({ epoch: String(epoch) }, `payout step failed, will retry: ${message}`);
    }
    try {
      await recordError(this.#o.db, epoch, message);
    } catch {
      // The database may be what failed; the next tick tries again.
    }
  }

  #crash(point: PosterCrashPoint): void {
    if (this.#o.crashAt) this.#o.crashAt(point);
    else failpoint(point);
  }

  #pause(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

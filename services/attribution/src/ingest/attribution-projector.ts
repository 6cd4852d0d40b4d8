/**
 * AttributionProjector: applies batches of stream events to attribution's tables, exactly once.
 * It is what the Nest consumers, the replay command and the tests all call, so the live path and
 * the replay path cannot drift apart.
 *
 * Facts batches go through `applyProjectionBatch` with the facts projection and are absorbed
 * into the shared `FactBook` after commit. Inference batches are applied the same way; when an
 * event needs a fact not seen yet (`FactNotReady`), the prefix before it is committed, the fact is
 * looked up in the tables (the facts consumer may just have written it), and the batch goes on; a
 * fact still missing after `factWaitMs` makes the call throw, so the consumer retries the rest
 * later (nothing after the missing fact is applied: order is kept).
 */
import type { Kysely } from 'kysely';

import {
  applyProjectionBatch,
  fillStreamGaps,
  isDatabaseError,
  readCheckpoint,
  type ProjectionRef,
  type SequencedEvent,
} from '@longtail/database';

import type { FactBook } from '../facts/facts.js';
import { describeMissing, type MissingFactRef } from '../inference/attribute.js';
import {
  absorbFacts,
  applyFactEvents,
  loadMissingFact,
  type StreamEvent,
} from '../projections/facts-projection.js';
import {
  applyInferenceEvents,
  FactNotReady,
  recordRejection,
  INFERENCE_PROJECTION,
  type ClosedEpochRecord,
  type InferenceBatchOutcome,
  type RejectedEvent,
} from '../projections/inference-projection.js';
import type { AttributionTables } from '../projections/schema.js';
import type { StreamGapSource } from '@longtail/messaging';

/** Most sequences one batch may fill from the stream (a larger hole means something else is wrong). */
const MAX_GAP_FILL = 20_000;

export class FactStillMissing extends Error {
  override readonly name = 'FactStillMissing';
  constructor(
    readonly missing: MissingFactRef,
    waitedMs: number,
  ) {
    super(
      `${describeMissing(missing)} still unknown after ${waitedMs} ms; the rest of the batch is retried later`,
    );
  }
}

export interface ProjectorOptions {
  /** How long an inference batch waits for a missing fact before giving up (ms). Default 5000. */
  readonly factWaitMs?: number;
  /**
   * Test hook, called right after a batch's transaction commits and before the caller acks:
   * throwing here simulates a crash between commit and ack.
   */
  readonly afterCommit?: (info: { readonly projection: string; readonly lastSeq: bigint }) => void;
  /**
   * Whether the fact projections have applied everything their streams held when asked. When a
   * fact is still missing after `factWaitMs` and the facts are caught up, the fact does not exist:
   * the event that needs it is refused (recorded in rejected_events, dead-lettered by the caller)
   * instead of holding up the stream. Without it, the batch fails and is retried.
   */
  readonly factsCaughtUp?: () => Promise<boolean>;
  /** Test hook, called inside the transaction after the rows are written: throwing rolls it all back. */
  readonly beforeCommit?: (info: { readonly projection: string; readonly lastSeq: bigint }) => void;
}

export interface InferenceApplyResult {
  readonly closed: readonly ClosedEpochRecord[];
  readonly rejected: readonly RejectedEvent[];
  /** Events newly applied (not skipped as already applied). */
  readonly applied: number;
}

export class AttributionProjector {
  readonly #db: Kysely<AttributionTables>;
  readonly #facts: FactBook;
  readonly #factWaitMs: number;
  readonly #afterCommit: ProjectorOptions['afterCommit'];
  readonly #beforeCommit: ProjectorOptions['beforeCommit'];
  readonly #factsCaughtUp: ProjectorOptions['factsCaughtUp'];

  constructor(db: Kysely<AttributionTables>, facts: FactBook, options: ProjectorOptions = {}) {
    this.#db = db;
    this.#facts = facts;
    this.#factWaitMs = options.factWaitMs ?? 5000;
    this.#afterCommit = options.afterCommit;
    this.#beforeCommit = options.beforeCommit;
    this.#factsCaughtUp = options.factsCaughtUp;
  }

  get facts(): FactBook {
    return this.#facts;
  }

  /**
   * Applies fact events of one stream (ADAPTERS, DATANETS or ATTRIBUTION policies). With `gaps`,
   * sequences missing between the checkpoint and the batch are read from the stream first.
   */
  async applyFacts(
    ref: ProjectionRef,
    received: ReadonlyArray<SequencedEvent<StreamEvent>>,
    gaps?: StreamGapSource<StreamEvent>,
  ): Promise<number> {
    const events = gaps ? await this.#contiguous(ref.projection, received, gaps) : received;
    if (events.length === 0) return 0;
    const outcome = await applyProjectionBatch(this.#db, ref, events, async (trx, batch) => {
      await applyFactEvents(trx, batch);
      this.#beforeCommit?.({ projection: ref.projection, lastSeq: batch[batch.length - 1]!.seq });
    });
    absorbFacts(
      this.#facts,
      events.map((e) => e.event),
    );
    this.#afterCommit?.({ projection: ref.projection, lastSeq: events[events.length - 1]!.seq });
    return outcome.kind === 'APPLIED' ? outcome.count : 0;
  }

  /**
   * Applies INFERENCE events in stream order; see the module comment for missing facts. With
   * `gaps`, sequences missing between the checkpoint and the batch are read from the stream first.
   */
  async applyInference(
    received: ReadonlyArray<SequencedEvent<StreamEvent>>,
    gaps?: StreamGapSource<StreamEvent>,
  ): Promise<InferenceApplyResult> {
    const events = gaps ? await this.#contiguous(INFERENCE_PROJECTION.projection, received, gaps) : received;
    const closed: ClosedEpochRecord[] = [];
    const rejected: RejectedEvent[] = [];
    let applied = 0;
    let remaining = events;
    let waitedMs = 0;
    while (remaining.length > 0) {
      let fresh: ReadonlyArray<SequencedEvent<StreamEvent>> = [];
      let result: InferenceBatchOutcome | undefined;
      try {
        const outcome = await applyProjectionBatch(
          this.#db,
          INFERENCE_PROJECTION,
          remaining,
          async (trx, batch) => {
            fresh = batch;
            result = await applyInferenceEvents(trx, batch, this.#facts);
            this.#beforeCommit?.({
              projection: INFERENCE_PROJECTION.projection,
              lastSeq: batch[batch.length - 1]!.seq,
            });
          },
        );
        if (outcome.kind === 'APPLIED') applied += outcome.count;
        if (result) {
          closed.push(...result.closed);
          rejected.push(...result.rejected);
        }
        this.#afterCommit?.({
          projection: INFERENCE_PROJECTION.projection,
          lastSeq: remaining[remaining.length - 1]!.seq,
        });
        return { closed, rejected, applied };
      } catch (error) {
        const notReady = factNotReady(error);
        if (!notReady) throw error;
        const blockedSeq = fresh[notReady.index]!.seq;
        const prefix = remaining.filter((e) => e.seq < blockedSeq);
        if (prefix.length > 0) {
          const head = await this.applyInference(prefix);
          closed.push(...head.closed);
          rejected.push(...head.rejected);
          applied += head.applied;
        }
        remaining = remaining.filter((e) => e.seq >= blockedSeq);
        try {
          waitedMs = await this.#waitForFact(notReady.missing, waitedMs);
        } catch (error) {
          if (!(error instanceof FactStillMissing) || !(await this.#factsCaughtUp?.())) throw error;
          const blocked = remaining[0]!;
          const rejection = {
            seq: blocked.seq,
            eventId: blocked.event.id,
            eventType: blocked.event.type,
            reason: `${describeMissing(notReady.missing)} does not exist`,
          };
          await applyProjectionBatch(this.#db, INFERENCE_PROJECTION, [blocked], (trx) =>
            recordRejection(trx, rejection),
          );
          rejected.push(rejection);
          remaining = remaining.slice(1);
          waitedMs = 0;
        }
      }
    }
    return { closed, rejected, applied };
  }

  /** The batch sorted, without what the checkpoint covers, with every hole before and inside it filled from the stream. */
  async #contiguous(
    projection: string,
    received: ReadonlyArray<SequencedEvent<StreamEvent>>,
    gaps: StreamGapSource<StreamEvent>,
  ): Promise<SequencedEvent<StreamEvent>[]> {
    const checkpoint = (await readCheckpoint(this.#db, projection))?.lastSequence ?? 0n;
    return fillStreamGaps(projection, checkpoint, received, gaps, MAX_GAP_FILL);
  }

  async #waitForFact(missing: MissingFactRef, alreadyWaitedMs: number): Promise<number> {
    let waited = alreadyWaitedMs;
    for (;;) {
      if (await loadMissingFact(this.#facts, this.#db, missing)) return waited;
      if (waited >= this.#factWaitMs) throw new FactStillMissing(missing, waited);
      await new Promise((resolve) => setTimeout(resolve, 100));
      waited += 100;
    }
  }
}

function factNotReady(error: unknown): FactNotReady | undefined {
  if (error instanceof FactNotReady) return error;
  if (isDatabaseError(error) && error.cause instanceof FactNotReady) return error.cause;
  return undefined;
}

/**
 * Exactly-once effects for projections fed by an at-least-once stream. A batch of events is
 * applied in ONE transaction together with the projection's checkpoint:
 *
 *   1. lock the checkpoint row (`SELECT ... FOR UPDATE`; created at 0 when absent),
 *   2. drop the events at or below the checkpoint (already applied: redelivery),
 *   3. `apply` the rest, in order, inside the same transaction,
 *   4. move the checkpoint to the last applied sequence, commit.
 *
 * A redelivered event therefore changes nothing, a crash anywhere rolls back rows and checkpoint
 * together, and two appliers racing on one projection serialise on the row lock (the second sees
 * the first's checkpoint and skips what it applied). Sequences may have gaps (a filtered consumer
 * sees a sparse subset of the stream) but must strictly increase within a batch.
 */
import { sql, type Kysely, type Transaction } from 'kysely';

import {
  ProjectionApplyError,
  ProjectionBatchNotIncreasingError,
  ProjectionStreamMismatchError,
} from '../errors.js';
import type { ProjectionCheckpointTables } from './checkpoint-table.js';

/** An event with its stream sequence (JetStream `seq`, 1-based). */
export interface SequencedEvent<E> {
  readonly seq: bigint;
  readonly event: E;
}

export interface ProjectionRef {
  /** Projection name: the checkpoint row's key, e.g. `attribution.shares`. */
  readonly projection: string;
  /** The stream the sequences belong to, e.g. `INFERENCE`. */
  readonly stream: string;
}

/** Writes the effects of `events` (already filtered and in order) using `trx` only. */
export type ProjectionApply<DB, E> = (
  trx: Transaction<DB>,
  events: ReadonlyArray<SequencedEvent<E>>,
) => Promise<void>;

export type ProjectionOutcome =
  /** `count` events with sequences `from`..`to` were applied; the checkpoint moved from `previous` to `to`. */
  | {
      readonly kind: 'APPLIED';
      readonly from: bigint;
      readonly to: bigint;
      readonly count: number;
      readonly previous: bigint;
    }
  /** Every event was at or below the checkpoint (`lastSequence`): nothing was written. */
  | { readonly kind: 'IGNORED'; readonly lastSequence: bigint };

export interface ProjectionCheckpoint {
  readonly projection: string;
  readonly stream: string;
  /** 0n when the projection has applied nothing yet. */
  readonly lastSequence: bigint;
  readonly updatedAt: Date;
}

export async function applyProjectionBatch<DB, E>(
  db: Kysely<DB>,
  ref: ProjectionRef,
  events: ReadonlyArray<SequencedEvent<E>>,
  apply: ProjectionApply<DB, E>,
): Promise<ProjectionOutcome> {
  assertIncreasing(ref.projection, events);
  return db.transaction().execute(async (trx) => {
    const checkpoints = trx as unknown as Transaction<ProjectionCheckpointTables>;
    const lastSequence = await lockCheckpoint(checkpoints, ref);
    const firstFresh = events.findIndex((item) => item.seq > lastSequence);
    if (firstFresh === -1) return { kind: 'IGNORED', lastSequence };

    const fresh = firstFresh === 0 ? events : events.slice(firstFresh);
    const from = fresh[0]!.seq;
    const to = fresh[fresh.length - 1]!.seq;
    try {
      await apply(trx, fresh);
    } catch (error) {
      throw new ProjectionApplyError(ref.projection, from, to, error);
    }
    await checkpoints
      .updateTable('projection_checkpoints')
      // `updated_at` is bookkeeping for operators, not projection state: wall clock is fine here.
      .set({ last_sequence: to, updated_at: sql<Date>`now()` })
      .where('projection', '=', ref.projection)
      .execute();
    return { kind: 'APPLIED', from, to, count: fresh.length, previous: lastSequence };
  });
}

/** The projection's checkpoint, or `undefined` when it has never applied a batch. */
export async function readCheckpoint<DB>(
  db: Kysely<DB>,
  projection: string,
): Promise<ProjectionCheckpoint | undefined> {
  const row = await (db as unknown as Kysely<ProjectionCheckpointTables>)
    .selectFrom('projection_checkpoints')
    .select(['projection', 'stream', 'last_sequence', 'updated_at'])
    .where('projection', '=', projection)
    .executeTakeFirst();
  return (
    row && {
      projection: row.projection,
      stream: row.stream,
      lastSequence: row.last_sequence,
      updatedAt: row.updated_at,
    }
  );
}

async function lockCheckpoint(
  trx: Transaction<ProjectionCheckpointTables>,
  ref: ProjectionRef,
): Promise<bigint> {
  const select = () =>
    trx
      .selectFrom('projection_checkpoints')
      .select(['stream', 'last_sequence'])
      .where('projection', '=', ref.projection)
      .forUpdate()
      .executeTakeFirst();
  let row = await select();
  if (!row) {
    // Concurrent first appliers: one inserts, the other waits on the key, then does nothing.
    await trx
      .insertInto('projection_checkpoints')
      .values({ projection: ref.projection, stream: ref.stream, last_sequence: 0n })
      .onConflict((conflict) => conflict.column('projection').doNothing())
      .execute();
    row = await select();
  }
  if (!row) throw new Error(`checkpoint row for projection "${ref.projection}" vanished while locking it`);
  if (row.stream !== ref.stream)
    throw new ProjectionStreamMismatchError(ref.projection, ref.stream, row.stream);
  return row.last_sequence;
}

function assertIncreasing(projection: string, events: ReadonlyArray<SequencedEvent<unknown>>): void {
  let previous: bigint | undefined;
  for (let index = 0; index < events.length; index++) {
    const seq = events[index]!.seq;
    if (typeof seq !== 'bigint' || seq <= 0n)
      throw new ProjectionBatchNotIncreasingError(projection, index, undefined, seq);
    if (previous !== undefined && seq <= previous)
      throw new ProjectionBatchNotIncreasingError(projection, index, previous, seq);
    previous = seq;
  }
}

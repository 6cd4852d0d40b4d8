/** Test harness: the attribution app in-process, a publisher for scenarios, the reference model. */
import 'reflect-metadata';

import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import { sql } from 'kysely';

import { connectMessaging, type MessagingConnection } from '@longtail/messaging';
import { createDatabase, readCheckpoint, type DatabaseHandle } from '@longtail/database';

import type { AttributionOptions } from '../../src/app/attribution-options.js';
import { AttributionModule } from '../../src/app/attribution.module.js';
import { parseAttributionEvent } from '../../src/ingest/codec.js';
import { toAttributionInput } from '../../src/model/attribution-input.js';
import { evolve, initialState, type AttributionState } from '../../src/model/attribution-model.js';
import { INFERENCE_PROJECTION } from '../../src/projections/inference-projection.js';
import type { AttributionTables } from '../../src/projections/schema.js';
import type { ScenarioMessage } from './scenario.js';

export async function startAttributionApp({
  natsUrl,
  ...options
}: Partial<AttributionOptions> & { natsUrl: string; databaseUrl: string }): Promise<INestApplicationContext> {
  const app = await NestFactory.createApplicationContext(
    AttributionModule.register({
      natsServers: natsUrl,
      schema: 'attribution',
      epochSeconds: 0,
      inferenceBatch: 200,
      factWaitMs: 1000,
      retryBackoffMs: [20],
      ...options,
    }),
    { logger: false },
  );
  await app.init();
  return app;
}

const encoder = new TextEncoder();

/** Publishes messages in order (pipelined, at most `window` unacknowledged); returns their stream sequences. */
export async function publishAll(
  conn: MessagingConnection,
  messages: readonly ScenarioMessage[],
  window = 256,
): Promise<number[]> {
  const seqs = new Array<number>(messages.length);
  let inFlight: Promise<void>[] = [];
  for (let i = 0; i < messages.length; i += 1) {
    const m = messages[i]!;
    inFlight.push(
      conn.js
        .publish(m.subject, encoder.encode(JSON.stringify(m.event)), { msgID: String(m.event['id']) })
        .then((ack) => {
          seqs[i] = ack.seq;
        }),
    );
    if (inFlight.length >= window) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
  return seqs;
}

/** The reference model over the messages: facts first (all of them), then INFERENCE in stream order. */
export function expectedState(
  facts: readonly ScenarioMessage[],
  inference: readonly ScenarioMessage[],
  inferenceSeqs: readonly number[],
): AttributionState {
  const state = initialState();
  for (const m of facts) {
    const parsed = parseAttributionEvent(encoder.encode(JSON.stringify(m.event)));
    if (parsed.ok) evolve(state, toAttributionInput(parsed.event, 0));
  }
  const ordered = inference.map((m, i) => ({ m, seq: inferenceSeqs[i]! })).sort((a, b) => a.seq - b.seq);
  const seen = new Set<number>();
  for (const { m, seq } of ordered) {
    if (seen.has(seq)) continue; // a message the server de-duplicated
    seen.add(seq);
    const parsed = parseAttributionEvent(encoder.encode(JSON.stringify(m.event)));
    if (parsed.ok) evolve(state, toAttributionInput(parsed.event, seq));
  }
  return state;
}

export async function connect(url: string): Promise<MessagingConnection> {
  return connectMessaging({ servers: url, name: 'attribution-test' });
}

export function openDb(url: string, schema = 'attribution'): DatabaseHandle<AttributionTables> {
  return createDatabase<AttributionTables>({ connectionString: url, schema, poolSize: 2 });
}

/** Waits until the inference projection has applied `seq` (or throws after `timeoutMs`). */
export async function waitForInference(
  db: DatabaseHandle<AttributionTables>,
  seq: number,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const checkpoint = await readCheckpoint(db.db, INFERENCE_PROJECTION.projection).catch(() => undefined);
    if (checkpoint && checkpoint.lastSequence >= BigInt(seq)) return;
    if (Date.now() > deadline)
      throw new Error(
        `inference projection stuck at ${checkpoint?.lastSequence ?? 'none'}, waiting for ${seq}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Closed epochs as the projection has them: totals per account. */
export async function liveClosedEpochs(db: DatabaseHandle<AttributionTables>) {
  const epochs = await db.db
    .selectFrom('epochs')
    .selectAll()
    .where('status', '=', 'closed')
    .orderBy('epoch')
    .execute();
  const out = [];
  for (const e of epochs) {
    const totals = await db.db
      .selectFrom('epoch_account_earnings')
      .select(['account', 'amount'])
      .where('epoch', '=', e.epoch)
      .orderBy('account')
      .execute();
    out.push({
      epoch: e.epoch,
      policyVersion: e.policy_version,
      feeTotal: e.fee_total,
      totalsHash: e.totals_hash,
      eventCount: Number(e.event_count),
      totals,
    });
  }
  return out;
}

export async function countRows(
  db: DatabaseHandle<AttributionTables>,
  table: keyof AttributionTables,
): Promise<number> {
  const { rows } = await sql<{ n: bigint }>`select count(*) as n from ${sql.table(table)}`.execute(db.db);
  return Number(rows[0]!.n);
}

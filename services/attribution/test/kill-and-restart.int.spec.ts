/**
 * Given the attribution consumer is killed at seeded random points (a crash inside the
 * transaction, which rolls back, or between commit and ack, which makes the batch come back), and
 * the whole app is torn down and recreated now and then,
 * when the stream has been consumed,
 * then no event was counted twice or lost: the state hashes the same as a clean replay and the
 * closed epochs equal the reference model's.
 */
import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, describe, expect, it } from 'vitest';

import { useDatabase, useNats } from '@longtail/testenv';

import { attributionStateHash, replayAttribution } from '../src/replay/replay.js';
import {
  connect,
  countRows,
  expectedState,
  liveClosedEpochs,
  openDb,
  publishAll,
  startAttributionApp,
  waitForInference,
} from './support/harness.js';
import { generateScenario, prng } from './support/scenario.js';

class InjectedCrash extends Error {
  override readonly name = 'InjectedCrash';
}

describe('attribution: killed at random points', () => {
  const nats = useNats();
  const database = useDatabase({ prefix: 'attr_kill' });
  let app: INestApplicationContext | undefined;
  afterAll(async () => app?.close());

  it('never double-counts or loses an event across 50+ kills and restarts', async () => {
    const scenario = generateScenario({
      seed: 2026,
      adapters: 40,
      datanets: 8,
      contributors: 150,
      inferences: 2400,
      epochs: 3,
    });
    const rand = prng(99); // the kill schedule
    let kills = { inside: 0, afterCommit: 0 };
    let restartsWanted = 0;
    const decide = (where: 'inside' | 'afterCommit') => () => {
      if (rand() < 0.4) {
        kills = { ...kills, [where]: kills[where] + 1 };
        if ((kills.inside + kills.afterCommit) % 12 === 0) restartsWanted += 1;
        throw new InjectedCrash(
          `injected crash ${where === 'inside' ? 'before commit' : 'between commit and ack'}`,
        );
      }
    };
    const start = () =>
      startAttributionApp({
        natsUrl: nats().url,
        databaseUrl: database().url,
        inferenceBatch: 20,
        beforeCommit: decide('inside'),
        afterCommit: decide('afterCommit'),
      });
    app = await start();
    const conn = await connect(nats().url);
    const db = openDb(database().url);
    try {
      await publishAll(conn, scenario.facts);
      const seqs = await publishAll(conn, scenario.inference);
      const lastValid = Math.max(
        ...seqs.filter((_, i) => scenario.inference[i]!.subject !== 'inference.completed.bad'),
      );

      let restarts = 0;
      const deadline = Date.now() + 80_000;
      for (;;) {
        const checkpoint = await db.db
          .selectFrom('projection_checkpoints')
          .select('last_sequence')
          .where('projection', '=', 'attribution.inference')
          .executeTakeFirst();
        if (checkpoint && checkpoint.last_sequence >= BigInt(lastValid)) break;
        if (Date.now() > deadline) throw new Error(`stuck at ${checkpoint?.last_sequence}`);
        if (restartsWanted > restarts) {
          restarts += 1;
          await app.close();
          app = await start();
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      await waitForInference(db, lastValid);
      expect(kills.inside + kills.afterCommit).toBeGreaterThanOrEqual(50);
      expect(restarts).toBeGreaterThanOrEqual(3);

      const model = expectedState(scenario.facts, scenario.inference, seqs);
      const live = await liveClosedEpochs(db);
      expect(live.map((e) => [e.epoch, e.totalsHash, BigInt(e.feeTotal), e.eventCount])).toEqual(
        model.closed.map((e) => [e.epoch, e.totalsHash, e.feeTotal, e.eventCount]),
      );
      expect(await countRows(db, 'priced_requests')).toBe(model.priced.size);
      const open = await db.db
        .selectFrom('epochs')
        .selectAll()
        .where('status', '=', 'open')
        .executeTakeFirstOrThrow();
      expect(BigInt(open.fee_total)).toBe(model.current.feeTotal);
      expect(Number(open.event_count)).toBe(model.current.eventCount);

      const liveHash = await attributionStateHash(db.db, 'attribution');
      const replayed = await replayAttribution({ conn, connectionString: database().url });
      expect(replayed.hash.tables).toEqual(liveHash.tables);
      console.log(
        `kills: ${kills.inside} inside the transaction, ${kills.afterCommit} between commit and ack; ${restarts} restarts`,
      );
    } finally {
      await db.destroy();
      await conn.close();
    }
  });
});

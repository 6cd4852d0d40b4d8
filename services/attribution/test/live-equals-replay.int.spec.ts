/**
 * Given a stream of thousands of mixed events (duplicates, a policy change mid-stream, retired
 * adapters, a Datanet where one contributor holds almost all the weight, a malformed event),
 * when the attribution service consumes it live and the replay command rebuilds it,
 * then both states hash the same, every closed epoch's totals equal the reference model's and sum
 * to the epoch's fees, and the malformed event is dead-lettered without stopping the stream.
 */
import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, describe, expect, it } from 'vitest';

import { useDatabase, useNats } from '@longtail/testenv';
import { replayStream } from '@longtail/messaging';

import { replayAttribution, attributionStateHash } from '../src/replay/replay.js';
import { parseAttributionEvent } from '../src/ingest/codec.js';
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
import { generateScenario } from './support/scenario.js';

describe('attribution: live consumption equals replay', () => {
  const nats = useNats();
  const database = useDatabase({ prefix: 'attr_live' });
  let app: INestApplicationContext | undefined;
  afterAll(async () => app?.close());

  it('prices, splits and closes epochs exactly, and replays to the same state hash', async () => {
    const scenario = generateScenario({
      seed: 42,
      adapters: 60,
      datanets: 12,
      contributors: 300,
      inferences: 3000,
      epochs: 4,
    });
    app = await startAttributionApp({
      natsUrl: nats().url,
      databaseUrl: database().url,
      inferenceBatch: 250,
    });
    const conn = await connect(nats().url);
    const db = openDb(database().url);
    try {
      // Inferences follow the facts at once, before the facts are projected: the inference consumer
      // must wait for them (a registration always precedes the inferences on its adapter), not misprice.
      await publishAll(conn, scenario.facts);
      const seqs = await publishAll(conn, scenario.inference);
      const lastValid = Math.max(
        ...seqs.filter((_, i) => scenario.inference[i]!.subject !== 'inference.completed.bad'),
      );
      await waitForInference(db, lastValid);

      const model = expectedState(scenario.facts, scenario.inference, seqs);
      expect(model.closed).toHaveLength(4);
      expect(model.closed.map((e) => e.policyVersion)).toEqual([1, 1, 2, 2]);

      const live = await liveClosedEpochs(db);
      expect(live.map((e) => e.epoch)).toEqual(model.closed.map((e) => e.epoch));
      live.forEach((e, i) => {
        const expected = model.closed[i]!;
        expect(e.totals).toEqual(
          expected.totals.map((t) => ({ account: t.account, amount: t.amount.toString() })),
        );
        expect(e.totalsHash).toBe(expected.totalsHash);
        expect(BigInt(e.feeTotal)).toBe(expected.feeTotal);
        expect(e.totals.reduce((s, t) => s + BigInt(t.amount), 0n)).toBe(expected.feeTotal);
        expect(e.eventCount).toBe(expected.eventCount);
      });
      // Each request priced once, whatever its copies.
      const distinct = new Set(
        scenario.inference
          .filter(
            (m) =>
              (m.stream === 'INFERENCE' && String(m.event['type']).startsWith('inference.c')) ||
              String(m.event['type']) === 'inference.failed',
          )
          .map((m) => (m.event['data'] as { requestId: string }).requestId),
      );
      distinct.delete('bad');
      distinct.delete('ghost-42');
      // The inference on a never-registered adapter was refused, recorded and dead-lettered.
      expect(await db.db.selectFrom('rejected_events').select(['event_type', 'reason']).execute()).toEqual([
        {
          event_type: 'inference.completed',
          reason: 'adapter llama-3-8b:ghost/never-registered does not exist',
        },
      ]);
      expect(await countRows(db, 'priced_requests')).toBe(distinct.size);

      // attribution.epoch.closed events: one per epoch, totals = the fees of the epoch.
      await expect
        .poll(
          async () => {
            let n = 0;
            for await (const m of replayStream(conn, {
              stream: 'ATTRIBUTION',
              filterSubject: 'attribution.epoch.closed.>',
            }))
              if (m.ok) n += 1;
            return n;
          },
          { timeout: 10_000 },
        )
        .toBe(4);
      const announced = [];
      for await (const m of replayStream(conn, {
        stream: 'ATTRIBUTION',
        filterSubject: 'attribution.epoch.closed.>',
        parse: parseAttributionEvent as never,
      })) {
        if (m.ok)
          announced.push(
            m.event as unknown as { data: { epoch: number; totalAmount: string; totalsHash: string } },
          );
      }
      expect(announced.map((e) => [e.data.epoch, BigInt(e.data.totalAmount), e.data.totalsHash])).toEqual(
        model.closed.map((e) => [e.epoch, e.feeTotal, e.totalsHash]),
      );

      // The malformed event was dead-lettered, with its reason, and the stream went on.
      const dlq = await (await conn.jsm()).streams.info('DLQ');
      expect(dlq.state.messages).toBeGreaterThanOrEqual(2);
      const reasons = [];
      for await (const m of replayStream(conn, {
        stream: 'DLQ',
        parse: () => ({ ok: true, event: {} as never }),
      }))
        reasons.push(m.seq);
      const jsm = await conn.jsm();
      const headers = await Promise.all(
        reasons.map(async (seq) =>
          (await jsm.streams.getMessage('DLQ', { seq: Number(seq) }))?.header.get('Longtail-Dlq-Reason'),
        ),
      );
      expect(headers).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/contract violation|invalid/i),
          expect.stringMatching(/never-registered does not exist/),
        ]),
      );

      const liveHash = await attributionStateHash(db.db, 'attribution');
      const replayed = await replayAttribution({ conn, connectionString: database().url });
      expect(replayed.hash.tables).toEqual(liveHash.tables);
      expect(replayed.hash.sha256).toBe(liveHash.sha256);
    } finally {
      await db.destroy();
      await conn.close();
    }
  });
});

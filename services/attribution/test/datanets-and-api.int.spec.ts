/**
 * Given a Datanet created, contributed to (content stored in the object store) and snapshotted
 * through the service's commands, and an adapter trained on that snapshot,
 * when inferences are served and the epoch is closed by the closer command,
 * then the read API reports each account's earnings, a statement naming the adapters and the
 * Datanet its amount came from, per-adapter and per-Datanet revenue and hourly usage.
 */
import { createHash } from 'node:crypto';

import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, describe, expect, it } from 'vitest';

import { createCommandClient } from '@longtail/messaging';
import { useDatabase, useNats } from '@longtail/testenv';

import { connect, openDb, publishAll, startAttributionApp, waitForInference } from './support/harness.js';
import { address, uuidV7, prng } from './support/scenario.js';

describe('attribution: Datanet commands and the read API', () => {
  const nats = useNats();
  const database = useDatabase({ prefix: 'attr_api' });
  let app: INestApplicationContext | undefined;
  afterAll(async () => app?.close());

  it('pays the contributors of the snapshot an adapter was trained on, and explains it', async () => {
    app = await startAttributionApp({
      natsUrl: nats().url,
      databaseUrl: database().url,
      genesisPolicy: {
        operatorBps: 1000,
        creatorBps: 5000,
        contributorsBps: 3000,
        treasuryBps: 1000,
        treasuryAddress: address(9, 9),
      },
    });
    const conn = await connect(nats().url);
    const client = createCommandClient(conn);
    const db = openDb(database().url);
    try {
      const alice = address(1, 1);
      const bob = address(2, 2);
      await client.request('longtail.datanets.create', {
        datanetId: 'acme/legal',
        name: 'Legal corpus',
        ownerTenantId: 'acme',
      });
      const content = Buffer.from('the contract is void');
      const add = (
        contributionId: string,
        contributorAddress: string,
        sizeTokens: number,
        withContent = false,
      ) =>
        client.request('longtail.datanets.add-contribution', {
          datanetId: 'acme/legal',
          contributionId,
          contributorAddress,
          contentSha256: withContent
            ? createHash('sha256').update(content).digest('hex')
            : createHash('sha256').update(contributionId).digest('hex'),
          sizeTokens,
          ...(withContent ? { contentBase64: content.toString('base64') } : {}),
        });
      // Commands decide on the projected state, so each waits for the previous to be projected.
      const projected = async (table: 'datanets' | 'datanet_contributions' | 'snapshots', n: number) =>
        expect
          .poll(
            async () =>
              Number(
                (
                  await db.db
                    .selectFrom(table)
                    .select((eb) => eb.fn.countAll().as('n'))
                    .executeTakeFirstOrThrow()
                ).n,
              ),
            { timeout: 10_000 },
          )
          .toBe(n);
      await projected('datanets', 1);
      expect(await add('c1', alice, 300, true)).toMatchObject({
        objectKey: expect.stringMatching(/^acme\/legal\//),
      });
      await add('c2', bob, 100);
      await projected('datanet_contributions', 2);
      await expect(add('c2', bob, 100)).rejects.toMatchObject({ code: 'contribution_exists' });
      expect(
        await client.request('longtail.datanets.cut-snapshot', { datanetId: 'acme/legal', snapshotId: 's1' }),
      ).toMatchObject({ contributors: 2 });
      await projected('snapshots', 1);

      // An adapter trained on the snapshot, and 10 inferences of 1,000 tokens at 1e18 per 1k tokens.
      const rand = prng(5);
      const adapterId = 'llama-3-8b:acme/legal-ur';
      const creator = address(3, 3);
      const operator = address(4, 4);
      const t0 = Date.parse('2026-03-01T10:00:00.000Z');
      const env = (type: string, ms: number, data: Record<string, unknown>) => ({
        id: uuidV7(ms, rand),
        type,
        version: 1,
        occurredAt: new Date(ms).toISOString(),
        correlationId: 'c',
        causationId: null,
        data,
      });
      await publishAll(conn, [
        {
          stream: 'ADAPTERS',
          subject: 'adapters.registered.x',
          event: env('adapters.registered', t0, {
            adapterId,
            baseModel: 'llama-3-8b',
            ownerTenantId: 'acme',
            name: 'Legal UR',
            visibility: 'public',
            pricePer1kTokens: '1000000000000000000',
            creatorAddress: creator,
            rank: 8,
            targetModules: ['q_proj'],
            weightsSha256: 'ab'.repeat(32),
            sizeBytes: 10,
            weightsObjectKey: 'a/b',
            trainedOn: [{ datanetId: 'acme/legal', snapshotId: 's1', mixWeightBps: 10_000 }],
          }),
        },
      ]);
      const inferences = Array.from({ length: 10 }, (_, i) => ({
        stream: 'INFERENCE' as const,
        subject: `inference.completed.r${i}`,
        event: env('inference.completed', t0 + 1000 * (i + 1), {
          requestId: `r${i}`,
          tenantId: 'tenant-a',
          model: 'llama-3-8b',
          adapterId,
          promptTokens: 400,
          completionTokens: 600,
          timings: { queuedMs: 1, firstTokenMs: 10, totalMs: 100 * (i + 1) },
          startedAt: new Date(t0).toISOString(),
          endedAt: new Date(t0 + 1000 * (i + 1)).toISOString(),
          workerId: 'w1',
          operatorAddress: operator,
          finishReason: 'stop',
        }),
      }));
      const seqs = await publishAll(conn, inferences);
      await waitForInference(db, Math.max(...seqs));
      expect(await client.request('longtail.attribution.close-epoch', {})).toMatchObject({
        epoch: 0,
        outcome: 'requested',
      });
      expect(await client.request('longtail.attribution.close-epoch', {})).toMatchObject({
        epoch: 0,
        outcome: 'already-requested',
      });
      await expect
        .poll(
          async () =>
            (await db.db.selectFrom('epochs').select('status').where('epoch', '=', 0).executeTakeFirst())
              ?.status,
          { timeout: 10_000 },
        )
        .toBe('closed');

      // 10 × 1e18: operator 10 %, creator 50 %, treasury 10 %, contributors 30 % split 300:100.
      const earnings = async (account: string) =>
        client.request<{ epoch: number; amount: string }[]>('longtail.attribution.earnings', { account });
      expect(await earnings(operator)).toEqual([
        { epoch: 0, status: 'closed', amount: '1000000000000000000' },
      ]);
      expect(await earnings(creator)).toEqual([
        { epoch: 0, status: 'closed', amount: '5000000000000000000' },
      ]);
      expect(await earnings(alice)).toEqual([{ epoch: 0, status: 'closed', amount: '2250000000000000000' }]);
      expect(await earnings(bob)).toEqual([{ epoch: 0, status: 'closed', amount: '750000000000000000' }]);
      expect(await client.request('longtail.attribution.statement', { account: alice, epoch: 0 })).toEqual({
        epoch: 0,
        account: alice,
        total: '2250000000000000000',
        lines: [
          {
            role: 'contributor',
            adapterId: null,
            datanetId: 'acme/legal',
            snapshotId: 's1',
            amount: '2250000000000000000',
          },
        ],
      });
      expect(
        await client.request('longtail.attribution.statement', { account: creator, epoch: 0 }),
      ).toMatchObject({
        lines: [{ role: 'creator', adapterId, amount: '5000000000000000000' }],
      });
      expect(await client.request('longtail.attribution.adapter-revenue', { adapterId })).toMatchObject([
        { epoch: 0, requests: '10', tokens: '10000', fee: '10000000000000000000' },
      ]);
      expect(
        await client.request('longtail.attribution.datanet-revenue', { datanetId: 'acme/legal' }),
      ).toMatchObject([{ epoch: 0, snapshot_id: 's1', amount: '3000000000000000000' }]);
      const usage = await client.request<{ hour: string; requests: string; p50Ms: number; p95Ms: number }[]>(
        'longtail.attribution.usage',
        {
          adapterId,
          from: '2026-03-01T00:00:00.000Z',
          to: '2026-03-02T00:00:00.000Z',
        },
      );
      expect(usage).toEqual([
        {
          hour: '2026-03-01T10:00:00Z',
          requests: '10',
          failed: '0',
          promptTokens: '4000',
          completionTokens: '6000',
          p50Ms: 500,
          p95Ms: 1000,
          p99Ms: 1000,
        },
      ]);
      await expect(
        client.request('longtail.attribution.earnings', { account: 'nope' }),
      ).rejects.toMatchObject({ code: 'invalid_request' });
    } finally {
      await db.destroy();
      await conn.close();
    }
  });
});

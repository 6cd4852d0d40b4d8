/**
 * The ledger as it runs: the Nest module on real NATS (JetStream), PostgreSQL and anvil. Epoch
 * events published to ATTRIBUTION become roots on chain and `ledger.payout.posted` events; the
 * NATS and HTTP APIs serve proofs; the claim CLI's function claims with them, over several epochs.
 */
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { encodeEvent, parseEvent, subjectFor, type KnownEvent } from '@longtail/contracts';
import { connectMessaging, createCommandClient, createEventPublisher, eventCodec, type CommandClient, type EventPublisher, type MessagingConnection } from '@longtail/messaging';
import { useDatabase, useNats, waitFor } from '@longtail/testenv';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Address } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { accountAt, startChainFixture, tokenBalance, type ChainFixture } from '../../test/chain-fixture.js';
import { epochClosed } from '../../test/ledger-fixture.js';
import { distributorCallAbi } from '../chain/artifacts.js';
import { claimPayout, readClaimInput } from '../cli/claim.js';
import type { AccountPayout, EpochPayoutStatus } from '../queries/ledger-queries.js';
import type { LedgerOptions } from './ledger-config.js';
import { LedgerModule } from './ledger.module.js';

const E18 = 10n ** 18n;
const nats = useNats();
const database = useDatabase({ prefix: 'ledger_service' });
let f: ChainFixture;
let app: INestApplication;
let httpUrl: string;
let conn: MessagingConnection;
let publisher: EventPublisher;
let commands: CommandClient;

beforeAll(async () => {
  f = await startChainFixture();
  const options: LedgerOptions = {
    natsUrl: nats().url,
    databaseUrl: database().url,
    schema: 'ledger',
    chain: { kind: 'external', rpcUrl: f.chain.rpcUrl, chainId: f.chain.chainId, posterKey: f.chain.privateKeys[1]!, distributor: f.contracts.distributor, fromBlock: 0n },
    confirmations: 2,
    stuckAfterBlocks: 3,
    feeBumpPercent: 125,
    pollIntervalMs: 100,
  };
  const fastify = await NestFactory.create<NestFastifyApplication>(LedgerModule.register(options), new FastifyAdapter(), { logger: false, abortOnError: false });
  app = fastify;
  await fastify.listen(0, '127.0.0.1');
  const address = fastify.getHttpServer().address();
  httpUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  conn = await connectMessaging({ servers: nats().url, name: 'ledger-test' });
  publisher = createEventPublisher(
    conn,
    eventCodec({ encode: (e) => encodeEvent(e as KnownEvent), subjectFor: (e) => subjectFor(e as KnownEvent), parse: (raw) => parseEvent(raw) }),
  );
  commands = createCommandClient(conn);
});

afterAll(async () => {
  await app?.close();
  await conn?.close();
  await f?.stop();
});

/** With CONFIRMATIONS=2 and automine, a root needs one more block on top: mine one now and then. */
async function mineUntil<T>(check: () => Promise<T | undefined>): Promise<T> {
  return waitFor(
    async () => {
      const value = await check();
      if (value === undefined) await f.publicClient.request({ method: 'evm_mine' } as never);
      return value;
    },
    { timeoutMs: 30_000, intervalMs: 150 },
  ) as Promise<T>;
}

async function payoutPublished(epoch: number): Promise<EpochPayoutStatus> {
  return mineUntil(async () => {
    const statuses = await commands.request<EpochPayoutStatus[]>('longtail.ledger.epochs', {});
    const status = statuses.find((s) => s.epoch === epoch);
    return status?.state === 'published' ? status : undefined;
  });
}

const [dana, eli] = [accountAt(200), accountAt(201)] as [Address, Address];

describe('ledger service', () => {
  it('given epochs published to ATTRIBUTION, then roots go on chain once, payouts are published, and the CLI claims the difference each time', async () => {
    await publisher.publish(epochClosed(0, [[dana, 4n * E18], [eli, 1n * E18]]).event);
    const first = await payoutPublished(0);
    expect(first).toMatchObject({ epoch: 0, cumulativeTotal: String(5n * E18), accountCount: 2, lastError: null });

    // NATS API: Dana's proof; the CLI claims it (proof from the HTTP API).
    const viaNats = await commands.request<AccountPayout>('longtail.ledger.account', { account: dana });
    expect(viaNats).toMatchObject({ epoch: 0, cumulativeAmount: String(4n * E18), claimed: '0', claimable: String(4n * E18) });
    const input = await readClaimInput(`${httpUrl}/v1/ledger/accounts/${dana}`);
    const claimed = await claimPayout({ rpcUrl: f.chain.rpcUrl, distributor: f.contracts.distributor, key: f.chain.privateKeys[7]!, input });
    expect(claimed.paid).toBe(String(4n * E18));
    expect(await tokenBalance(f, dana)).toBe(4n * E18);

    // Two more epochs; Dana claims again and gets only what is new; a proof file works too.
    await publisher.publish(epochClosed(1, [[dana, 2n * E18]]).event);
    await publisher.publish(epochClosed(2, [[dana, 1n * E18], [eli, 3n * E18]]).event);
    await payoutPublished(2);
    const file = join(mkdtempSync(join(tmpdir(), 'ledger-proof-')), 'dana.json');
    writeFileSync(file, await (await fetch(`${httpUrl}/v1/ledger/accounts/${dana}`)).text());
    const again = await claimPayout({ rpcUrl: f.chain.rpcUrl, distributor: f.contracts.distributor, key: f.chain.privateKeys[7]!, input: await readClaimInput(file) });
    expect(again.paid).toBe(String(3n * E18));
    expect(await tokenBalance(f, dana)).toBe(7n * E18);
    const nothing = await claimPayout({ rpcUrl: f.chain.rpcUrl, distributor: f.contracts.distributor, key: f.chain.privateKeys[7]!, input: await readClaimInput(file) });
    expect(nothing).toMatchObject({ paid: '0', txHash: null });

    // Every epoch on chain exactly once, and a ledger.payout.posted for each in the LEDGER stream.
    const logs = await f.publicClient.getContractEvents({ address: f.contracts.distributor, abi: distributorCallAbi, eventName: 'RootPosted', fromBlock: 0n });
    expect(logs.map((l) => l.args.epoch)).toEqual([0n, 1n, 2n]);
    const jsm = await conn.jsm();
    const stream = await jsm.streams.info('LEDGER');
    expect(stream.state.messages).toBe(3);
    const last = await jsm.streams.getMessage('LEDGER', { last_by_subj: 'ledger.payout.posted.2' });
    const event = parseEvent(last!.data);
    expect(event.ok && event.event.data).toMatchObject({ epoch: 2, cumulativeTotal: String(11n * E18), txHash: logs[2]!.transactionHash });
  });

  it('given an epoch event that breaks its contract, then it is dead-lettered and nothing is posted for it', async () => {
    // Raw bytes: the publisher would refuse to encode it (totalAmount is not the sum of the totals).
    const bad = epochClosed(3, [[eli, 1n]]).event;
    const body = new TextEncoder().encode(JSON.stringify({ ...bad, data: { ...bad.data, totalAmount: '999' } }));
    await conn.js.publish('attribution.epoch.closed.3', body, { msgID: bad.id });
    const jsm = await conn.jsm();
    const dead = await waitFor(() => jsm.streams.getMessage('DLQ', { last_by_subj: 'dlq.ATTRIBUTION.ledger-epochs' }).then((m) => m ?? undefined, () => undefined), { timeoutMs: 15_000, intervalMs: 200 });
    expect(dead.header.get('Longtail-Dlq-Reason')).toMatch(/contract violation/);
    const statuses = await commands.request<EpochPayoutStatus[]>('longtail.ledger.epochs', {});
    expect(statuses.map((s) => s.epoch)).toEqual([0, 1, 2]);
  });

  it('given a bad request, then the APIs answer with a clear error', async () => {
    await expect(commands.request('longtail.ledger.account', { account: 'nope' })).rejects.toThrow(/must be an EVM address/);
    await expect(commands.request('longtail.ledger.epoch', { epoch: 99 })).rejects.toThrow(/no payout for epoch 99/);
    expect((await fetch(`${httpUrl}/v1/ledger/accounts/nope`)).status).toBe(400);
    expect((await fetch(`${httpUrl}/v1/ledger/epochs/99`)).status).toBe(404);
    expect((await fetch(`${httpUrl}/health/ready`)).status).toBe(200);
  });
});

/**
 * The built ledger service as a process (`services/ledger/dist/main.js`, so `npm run build`
 * first), killed by failpoints at the two dangerous moments: after broadcasting postRoot and
 * before recording it, and after recording it and before confirmation. Each time a fresh process
 * resumes from the outbox and the chain: every epoch's root is on chain exactly once, and claims
 * still work.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { encodeEvent, parseEvent, subjectFor, type KnownEvent } from '@longtail/contracts';
import { createDatabase, type DatabaseHandle } from '@longtail/database';
import { connectMessaging, createEventPublisher, eventCodec, type EventPublisher, type MessagingConnection } from '@longtail/messaging';
import { FAILPOINT_EXIT_CODE } from '@longtail/service';
import { useDatabase, useNats, waitFor } from '@longtail/testenv';
import type { Address } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { accountAt, claim, startChainFixture, tokenBalance, type ChainFixture } from '../../test/chain-fixture.js';
import { epochClosed } from '../../test/ledger-fixture.js';
import { distributorCallAbi } from '../chain/artifacts.js';
import { CumulativeTree } from '../tree/cumulative-tree.js';
import type { LedgerDatabase } from '../store/schema.js';

const MAIN = resolve(import.meta.dirname, '../../dist/main.js');

const E18 = 10n ** 18n;

describe('ledger process killed by failpoints', () => {
  const nats = useNats();
  const database = useDatabase({ prefix: 'ledger_failpoints' });
  let f: ChainFixture;
  let conn: MessagingConnection;
  let publisher: EventPublisher;
  let db: DatabaseHandle<LedgerDatabase>;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first (npm run build:ts)`);
    f = await startChainFixture();
    conn = await connectMessaging({ servers: nats().url, name: 'ledger-failpoints-test' });
    publisher = createEventPublisher(
      conn,
      eventCodec({ encode: (e) => encodeEvent(e as KnownEvent), subjectFor: (e) => subjectFor(e as KnownEvent), parse: (raw) => parseEvent(raw) }),
    );
    db = createDatabase<LedgerDatabase>({ connectionString: database().url, schema: 'ledger' });
  });
  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await db?.destroy();
    await conn?.close();
    await f?.stop();
  });

  function startLedger(failpoint?: string): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
    const child = spawn(process.execPath, [MAIN], {
      env: {
        ...process.env,
        PORT: '0',
        LOG_LEVEL: 'info',
        NATS_URL: nats().url,
        DATABASE_URL: database().url,
        CHAIN_RPC_URL: f.chain.rpcUrl,
        CHAIN_ID: String(f.chain.chainId),
        POSTER_PRIVATE_KEY: f.chain.privateKeys[1]!,
        DISTRIBUTOR_ADDRESS: f.contracts.distributor,
        POSTER_POLL_MS: '100',
        LONGTAIL_FAILPOINTS: failpoint ?? '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    return { child, exited, output: () => output };
  }

  const state = async (epoch: number) =>
    (await db.db.selectFrom('payout_outbox').select('state').where('epoch', '=', BigInt(epoch)).executeTakeFirst())?.state;
  const postedEpochs = async () =>
    (await f.publicClient.getContractEvents({ address: f.contracts.distributor, abi: distributorCallAbi, eventName: 'RootPosted', fromBlock: 0n })).map((l) => l.args.epoch);

  const alice = accountAt(300) as Address;

  async function crashed(ledger: ReturnType<typeof startLedger>, failpoint: string): Promise<void> {
    const code = await Promise.race([ledger.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000))]);
    expect(code, ledger.output()).toBe(FAILPOINT_EXIT_CODE);
    expect(ledger.output()).toContain(`failpoint ${failpoint}: exiting`);
  }

  it('given a crash after broadcast (epoch 0), then one after recording (epoch 1), then each restarted ledger resumes and every root is on chain exactly once', async () => {
    // 1. Killed after broadcasting epoch 0's postRoot, before the outbox knew.
    const first = startLedger('ledger.poster.after-broadcast=exit');
    const jsm = await conn.jsm();
    await waitFor(() => jsm.streams.info('ATTRIBUTION').then(() => true, () => false), { timeoutMs: 60_000, intervalMs: 200, what: 'ATTRIBUTION stream' });
    await publisher.publish(epochClosed(0, [[alice, 1n * E18]]).event);
    await crashed(first, 'ledger.poster.after-broadcast');
    expect(await state(0)).toBe('planned');
    expect(await postedEpochs()).toEqual([0n]); // the broadcast went out

    // 2. The next process adopts epoch 0 from the chain (no send), then is killed after recording epoch 1.
    const second = startLedger('ledger.poster.after-record=exit');
    await waitFor(async () => (await state(0)) === 'published', { timeoutMs: 60_000, intervalMs: 200, what: 'epoch 0 published' });
    await publisher.publish(epochClosed(1, [[alice, 2n * E18]]).event);
    await crashed(second, 'ledger.poster.after-record');
    expect(await state(1)).toBe('sent');

    // 3. A clean process confirms and publishes epoch 1.
    const third = startLedger();
    try {
      await waitFor(async () => (await state(1)) === 'published', { timeoutMs: 60_000, intervalMs: 200, what: 'epoch 1 published' });
    } finally {
      third.child.kill('SIGTERM');
      await third.exited;
    }
    expect(await postedEpochs()).toEqual([0n, 1n]);
    expect((await db.db.selectFrom('payout_outbox').select(['epoch', 'send_count']).orderBy('epoch').execute()).map((r) => r.send_count)).toEqual([0, 1]);
    // The poster key is a secret: in no log line, whatever happened.
    const key = f.chain.privateKeys[1]!.slice(2).toLowerCase();
    for (const ledger of [first, second, third]) expect(ledger.output().toLowerCase()).not.toContain(key);
    expect(second.output()).toContain('root confirmed');
  });

  it('given the two crashes, then the account claims its cumulative amount with the posted root', async () => {
    const tree = CumulativeTree.build([{ account: alice, cumulativeAmount: 3n * E18 }]);
    await claim(f, alice, 3n * E18, tree.proofAt(0));
    expect(await tokenBalance(f, alice)).toBe(3n * E18);
  });
});

/**
 * From closed epochs to claims, against a real chain (anvil) and a real PostgreSQL: the poster
 * posts each epoch's root exactly once through crashes, dropped and refused transactions, and
 * stops with a clear error where it must (wrong key, no funding, a chain that lost its state).
 */
import { useDatabase } from '@longtail/testenv';
import type { DatabaseHandle } from '@longtail/database';
import type { Address, Hex } from 'viem';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { accountAt, claim, revertOf, startChainFixture, tokenBalance, type ChainFixture } from '../../test/chain-fixture.js';
import { applyEpochEvents, epochClosed, makePoster, openLedgerDatabase, SimulatedCrash } from '../../test/ledger-fixture.js';
import { startRpcProxy, type RpcProxy } from '../../test/rpc-proxy.js';
import { distributorCallAbi, longtailTokenAbi } from '../chain/artifacts.js';
import { LedgerQueries } from '../queries/ledger-queries.js';
import type { LedgerDatabase } from '../store/schema.js';
import { PayoutHaltCode } from './errors.js';

const E18 = 10n ** 18n;
const database = useDatabase({ prefix: 'ledger_poster' });
let f: ChainFixture;
let handle: DatabaseHandle<LedgerDatabase>;
let chainSnapshot: Hex;

beforeAll(async () => {
  f = await startChainFixture();
  handle = await openLedgerDatabase(database().url);
});
afterAll(async () => {
  await handle?.destroy();
  await f?.stop();
});
beforeEach(async () => {
  chainSnapshot = await f.publicClient.request({ method: 'evm_snapshot' } as never);
  await handle.db.deleteFrom('payout_outbox').execute();
  await handle.db.deleteFrom('epoch_totals').execute();
  await handle.db.deleteFrom('epoch_rejections').execute();
  await handle.db.deleteFrom('ledger_epochs').execute();
  await handle.db.deleteFrom('account_balances').execute();
  await handle.db.deleteFrom('projection_checkpoints').execute();
});
afterEach(async () => {
  await f.publicClient.request({ method: 'evm_revert', params: [chainSnapshot] } as never);
});

const setup = (over: Partial<Parameters<typeof makePoster>[0]> = {}) =>
  makePoster({ db: handle, rpcUrl: f.chain.rpcUrl, chainId: f.chain.chainId, distributor: f.contracts.distributor, posterKey: f.chain.privateKeys[1]!, ...over });

const rootPostedLogs = () =>
  f.publicClient.getContractEvents({ address: f.contracts.distributor, abi: distributorCallAbi, eventName: 'RootPosted', fromBlock: 0n });

const queries = () =>
  new LedgerQueries(
    handle.db,
    {
      claimed: (account) => f.publicClient.readContract({ address: f.contracts.distributor, abi: distributorCallAbi, functionName: 'claimed', args: [account] }),
      merkleRoot: () => f.publicClient.readContract({ address: f.contracts.distributor, abi: distributorCallAbi, functionName: 'merkleRoot' }),
    },
    { distributor: f.contracts.distributor, chainId: f.chain.chainId },
  );

const [alice, bob, carol] = [accountAt(100), accountAt(101), accountAt(102)] as [Address, Address, Address];

async function claimFromApi(account: Address): Promise<bigint> {
  const payout = await queries().accountPayout(account);
  const before = await tokenBalance(f, account);
  await claim(f, account, BigInt(payout.cumulativeAmount), payout.proof);
  return (await tokenBalance(f, account)) - before;
}

describe('EpochPoster: the happy path', () => {
  it('given three closed epochs, then each root is posted once, published, and claims pay cumulative − claimed', async () => {
    await applyEpochEvents(handle.db, [epochClosed(0, [[alice, 5n * E18], [bob, 1n * E18]])]);
    const { poster, publisher } = setup();
    expect(await poster.drain()).toEqual({ kind: 'idle' });

    expect(await claimFromApi(alice)).toBe(5n * E18);
    await applyEpochEvents(handle.db, [epochClosed(1, [[alice, 2n * E18], [carol, 3n * E18]]), epochClosed(2, [[bob, 4n * E18]])]);
    await poster.drain();

    // Alice claimed epoch 0; now she gets only epoch 1's 2. Bob and Carol collect everything at once.
    expect(await claimFromApi(alice)).toBe(2n * E18);
    expect(await claimFromApi(bob)).toBe(5n * E18);
    expect(await claimFromApi(carol)).toBe(3n * E18);
    const again = await queries().accountPayout(alice);
    expect(again).toMatchObject({ epoch: 2, cumulativeAmount: String(7n * E18), claimed: String(7n * E18), claimable: '0' });
    expect((await revertOf(f.publicClient.simulateContract({ account: f.claimer.account, address: f.contracts.distributor, abi: distributorCallAbi, functionName: 'claim', args: [alice, 7n * E18, again.proof] }))).name).toBe('NothingToClaim');

    const logs = await rootPostedLogs();
    expect(logs.map((l) => l.args.epoch)).toEqual([0n, 1n, 2n]);
    expect(publisher.events.map((e) => [e.data.epoch, e.data.cumulativeTotal, e.data.txHash])).toEqual(logs.map((l) => [Number(l.args.epoch), String(l.args.cumulativeTotal), l.transactionHash]));
    expect(publisher.events[2]!.data).toMatchObject({ chainId: f.chain.chainId, distributorAddress: f.contracts.distributor.toLowerCase(), cumulativeTotal: String(15n * E18) });
    expect((await queries().epochStatuses()).map((s) => s.state)).toEqual(['published', 'published', 'published']);
    // Funded exactly: what is promised minus what is claimed.
    expect(await tokenBalance(f, f.contracts.distributor)).toBe(0n);
  });

  it('given a root mined but not yet confirmed, then proofs are already for it (the root claims are checked against)', async () => {
    await applyEpochEvents(handle.db, [epochClosed(0, [[alice, 5n * E18]])]);
    const { poster } = setup();
    await poster.drain();
    await applyEpochEvents(handle.db, [epochClosed(1, [[alice, 1n * E18]])]);
    const slow = setup({ policy: { confirmations: 5, stuckAfterBlocks: 3, feeBumpPercent: 125 } });
    await slow.poster.drain();
    expect((await queries().epochStatus(1))!.state).toBe('sent');
    expect(await queries().accountPayout(alice)).toMatchObject({ epoch: 1, cumulativeAmount: String(6n * E18) });
    expect(await claimFromApi(alice)).toBe(6n * E18);
  });

  it('given epochs of 3 and 300 accounts, then posting costs the same gas', async () => {
    const many = Array.from({ length: 300 }, (_, i) => [accountAt(1000 + i), BigInt(i + 1) * E18] as const);
    await applyEpochEvents(handle.db, [epochClosed(0, many.slice(0, 3)), epochClosed(1, many), epochClosed(2, many)]);
    await setup().poster.drain();
    const gas = await Promise.all((await rootPostedLogs()).map(async (l) => (await f.publicClient.getTransactionReceipt({ hash: l.transactionHash! })).gasUsed));
    // Epoch 0 writes fresh storage slots; epochs 1 (300 accounts) and 2 (300) cost the same as any later post.
    expect(gas[1]).toBe(gas[2]);
    expect(Number(gas[1])).toBeLessThan(60_000);
  });
});

describe('EpochPoster: two ledger instances', () => {
  it('given two posters on one database, when both run at once, then every root is posted exactly once', async () => {
    await applyEpochEvents(handle.db, [epochClosed(0, [[alice, 1n]]), epochClosed(1, [[bob, 2n]]), epochClosed(2, [[carol, 3n]])]);
    const [a, b] = [setup(), setup()];
    await Promise.all([a.poster.drain(), b.poster.drain(), a.poster.drain()]);
    await a.poster.drain();
    expect((await rootPostedLogs()).map((l) => l.args.epoch)).toEqual([0n, 1n, 2n]);
    expect([...a.publisher.events, ...b.publisher.events].map((e) => e.data.epoch).sort()).toEqual([0, 1, 2]);
  });
});

describe('EpochPoster: crashes', () => {
  it.each(['ledger.poster.after-broadcast', 'ledger.poster.after-record'] as const)(
    'given a crash at %s, when a new poster starts from the outbox, then the root is on chain exactly once and claims work',
    async (point) => {
      await applyEpochEvents(handle.db, [epochClosed(0, [[alice, 5n * E18]]), epochClosed(1, [[alice, 1n * E18]])]);
      const crashing = setup({ crashAt: point });
      await expect(crashing.poster.drain()).rejects.toThrow(SimulatedCrash);
      const afterCrash = (await queries().epochStatus(0))!;
      expect(afterCrash.state).toBe(point === 'ledger.poster.after-broadcast' ? 'planned' : 'sent');

      const restarted = setup();
      await restarted.poster.drain();
      expect((await rootPostedLogs()).map((l) => l.args.epoch)).toEqual([0n, 1n]);
      expect(restarted.publisher.events.map((e) => e.data.epoch)).toEqual([0, 1]);
      expect(await claimFromApi(alice)).toBe(6n * E18);
    },
  );

  it('given a crash after publishing but before recording it, then the re-publish carries the same event id', async () => {
    await applyEpochEvents(handle.db, [epochClosed(0, [[alice, 5n * E18]])]);
    const first = setup();
    const failing = { publish: async (e: (typeof first.publisher.events)[number]) => { first.publisher.events.push(e); throw new Error('NATS went away'); } };
    const { poster } = setup({ publisher: failing as never });
    await poster.drain();
    expect((await queries().epochStatus(0))!.state).toBe('confirmed');
    const retry = setup();
    await retry.poster.drain();
    expect(retry.publisher.events[0]!.id).toBe(first.publisher.events[0]!.id);
  });
});

describe('EpochPoster: an unreliable node', () => {
  let proxy: RpcProxy;
  beforeEach(async () => {
    proxy = await startRpcProxy(f.chain.rpcUrl);
    // Fund the poster up front, so that postRoot is the only transaction the proxy sees.
    const mint = await f.poster.writeContract({ address: f.contracts.token, abi: longtailTokenAbi, functionName: 'mint', args: [f.poster.account.address, 100n * E18] });
    await f.publicClient.waitForTransactionReceipt({ hash: mint });
  });
  afterEach(async () => {
    await proxy.close();
  });

  it('given a node that drops the transaction, then it is re-sent with the same nonce and higher fees, and posted once', async () => {
    await applyEpochEvents(handle.db, [epochClosed(0, [[alice, 5n * E18]])]);
    proxy.plan('drop');
    const { poster } = setup({ rpcUrl: proxy.url });
    await poster.drain();
    expect(proxy.seen.map((s) => s.behaviour)).toEqual(['drop', 'forward']);
    const status = (await queries().epochStatus(0))!;
    expect(status).toMatchObject({ state: 'published', sendCount: 2 });
    expect((await rootPostedLogs()).length).toBe(1);
  });

  it('given a node that refuses the transaction, then the step fails with the node’s message, is retried, and posted once', async () => {
    await applyEpochEvents(handle.db, [epochClosed(0, [[alice, 5n * E18]])]);
    proxy.plan('refuse', 'refuse');
    const { poster } = setup({ rpcUrl: proxy.url });
    const first = await poster.tick();
    expect(first).toMatchObject({ kind: 'failed' });
    expect(first.kind === 'failed' && first.error.message).toMatch(/broadcast postRoot: .*node is overloaded/);
    expect((await queries().epochStatus(0))!.lastError).toMatch(/node is overloaded/);
    await poster.tick();
    await poster.drain();
    expect((await queries().epochStatus(0))!).toMatchObject({ state: 'published', lastError: null });
    expect((await rootPostedLogs()).length).toBe(1);
  });
});

describe('EpochPoster: a transaction stuck in the mempool', () => {
  it('given postRoot pending while blocks pass (fees too low for the base fee), then it is replaced with the same nonce and higher fees, and posted once', async () => {
    const mint = await f.poster.writeContract({ address: f.contracts.token, abi: longtailTokenAbi, functionName: 'mint', args: [f.poster.account.address, 100n * E18] });
    await f.publicClient.waitForTransactionReceipt({ hash: mint });
    await applyEpochEvents(handle.db, [epochClosed(0, [[alice, 5n * E18]])]);
    const rpc = (method: string, params: unknown[] = []) => f.publicClient.request({ method, params } as never);
    await rpc('evm_setAutomine', [false]);
    try {
      const { poster } = setup();
      expect(await poster.tick()).toMatchObject({ kind: 'acted', action: { kind: 'send', nonce: expect.any(Number) } });
      const sent = (await handle.db.selectFrom('payout_outbox').selectAll().executeTakeFirstOrThrow());
      // The base fee jumps far above what the transaction offers: blocks pass, it stays pending.
      await rpc('anvil_setNextBlockBaseFeePerGas', ['0x' + (1000n * 10n ** 9n).toString(16)]);
      for (let i = 0; i < 3; i++) await rpc('evm_mine');
      expect(await poster.tick()).toMatchObject({ kind: 'acted', action: { kind: 'send', nonce: sent.tx_nonce, replaces: sent.tx_hash } });
      const replaced = await handle.db.selectFrom('payout_outbox').selectAll().executeTakeFirstOrThrow();
      expect(BigInt(replaced.tx_max_fee_per_gas!)).toBeGreaterThan(BigInt(sent.tx_max_fee_per_gas!));
      expect(replaced.send_count).toBe(2);
      await rpc('evm_mine');
      await poster.drain();
      expect((await queries().epochStatus(0))!).toMatchObject({ state: 'published', txHash: replaced.tx_hash });
      expect((await rootPostedLogs()).length).toBe(1);
    } finally {
      await rpc('evm_setAutomine', [true]);
    }
  });
});

describe('EpochPoster: refusing to post', () => {
  it('given a poster key without POSTER_ROLE, then poster_not_authorized and nothing is posted', async () => {
    await applyEpochEvents(handle.db, [epochClosed(0, [[alice, 5n * E18]])]);
    const outcome = await setup({ posterKey: f.chain.privateKeys[5]! }).poster.drain();
    expect(outcome).toMatchObject({ kind: 'failed' });
    expect(outcome.kind === 'failed' && outcome.error.message).toContain(PayoutHaltCode.PosterNotAuthorized);
    expect((await queries().epochStatus(0))!).toMatchObject({ state: 'planned', lastError: expect.stringContaining('POSTER_ROLE') });
    expect(await rootPostedLogs()).toEqual([]);
  });

  it('given a poster that holds no tokens and may not mint, then insufficient_funding and nothing is posted', async () => {
    // Dev account 3 gets POSTER_ROLE but not MINTER_ROLE.
    const role = await f.publicClient.readContract({ address: f.contracts.distributor, abi: distributorCallAbi, functionName: 'POSTER_ROLE' });
    const grant = await f.admin.writeContract({ address: f.contracts.distributor, abi: distributorCallAbi, functionName: 'grantRole', args: [role, f.chain.accounts[3]!] });
    await f.publicClient.waitForTransactionReceipt({ hash: grant });
    await applyEpochEvents(handle.db, [epochClosed(0, [[alice, 5n * E18]])]);
    const outcome = await setup({ posterKey: f.chain.privateKeys[3]! }).poster.drain();
    expect(outcome.kind === 'failed' && outcome.error.message).toMatch(/insufficient_funding: posting epoch 0 adds 5000000000000000000 base units/);
    expect(await rootPostedLogs()).toEqual([]);
  });

  it('given a chain id other than CHAIN_ID, then wrong_chain and nothing is posted', async () => {
    await applyEpochEvents(handle.db, [epochClosed(0, [[alice, 5n * E18]])]);
    const { poster } = makePoster({ db: handle, rpcUrl: f.chain.rpcUrl, chainId: 999, distributor: f.contracts.distributor, posterKey: f.chain.privateKeys[1]! });
    const outcome = await poster.drain();
    expect(outcome.kind === 'failed' && outcome.error.message).toContain('wrong_chain');
    expect(await rootPostedLogs()).toEqual([]);
  });
});

describe('epoch intake', () => {
  it('given epoch 1 before epoch 0, then 1 waits (parked), and both are planned in order once 0 arrives', async () => {
    await applyEpochEvents(handle.db, [epochClosed(1, [[bob, 2n]])]);
    expect(await queries().epochStatuses()).toEqual([]);
    await applyEpochEvents(handle.db, [epochClosed(0, [[bob, 1n]])]);
    expect((await queries().epochStatuses()).map((s) => [s.epoch, s.cumulativeTotal])).toEqual([
      [0, '1'],
      [1, '3'],
    ]);
  });

  it('given an epoch again with the same totals, then ignored; with other totals, then rejected and recorded', async () => {
    const e0 = epochClosed(0, [[bob, 1n]]);
    await applyEpochEvents(handle.db, [e0]);
    await applyEpochEvents(handle.db, [{ ...epochClosed(0, [[bob, 1n]]) }]);
    await applyEpochEvents(handle.db, [epochClosed(0, [[bob, 9n]])]);
    expect((await queries().epochStatuses()).map((s) => s.cumulativeTotal)).toEqual(['1']);
    const rejections = await handle.db.selectFrom('epoch_rejections').selectAll().execute();
    expect(rejections.map((r) => r.reason)).toEqual([expect.stringContaining('already received (applied) with totalsHash')]);
  });
});

describe('EpochPoster: a chain that restarts', () => {
  it('given anvil restarted without state (contracts gone), then distributor_missing, nothing posted, and it resumes on a chain with state', async () => {
    const { startChainFixture: start } = await import('../../test/chain-fixture.js');
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const stateFile = join(mkdtempSync(join(tmpdir(), 'ledger-anvil-')), 'state.json');
    const own = await start({ stateFile });
    try {
      const make = () => makePoster({ db: handle, rpcUrl: own.chain.rpcUrl, chainId: own.chain.chainId, distributor: own.contracts.distributor, posterKey: own.chain.privateKeys[1]! });
      await applyEpochEvents(handle.db, [epochClosed(0, [[alice, 5n * E18]])]);
      await make().poster.drain();
      await applyEpochEvents(handle.db, [epochClosed(1, [[alice, 1n * E18]])]);

      // A restart with --state keeps everything: the poster carries on with epoch 1, no repeat of 0.
      await own.chain.restart();
      await make().poster.drain();
      const logs = await own.publicClient.getContractEvents({ address: own.contracts.distributor, abi: distributorCallAbi, eventName: 'RootPosted', fromBlock: 0n });
      expect(logs.map((l) => l.args.epoch)).toEqual([0n, 1n]);

      // Without the state file the chain starts empty: the poster says so and posts nothing.
      await applyEpochEvents(handle.db, [epochClosed(2, [[alice, 1n * E18]])]);
      const { rmSync } = await import('node:fs');
      await own.chain.stop();
      rmSync(stateFile);
      await own.chain.restart();
      const outcome = await make().poster.drain();
      expect(outcome.kind === 'failed' && outcome.error.message).toMatch(/distributor_missing: no contract code at DISTRIBUTOR_ADDRESS/);
      expect(await own.publicClient.getCode({ address: own.contracts.distributor })).toBeUndefined();
    } finally {
      await own.stop();
    }
  });
});

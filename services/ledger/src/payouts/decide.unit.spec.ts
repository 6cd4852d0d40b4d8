import type { Hex } from 'viem';
import { describe, expect, it } from 'vitest';

import { bumpedFees, decide, type ChainView, type PayoutRow, type PosterPolicy } from './decide.js';
import { PayoutHaltCode } from './errors.js';

const ROOT = `0x${'ab'.repeat(32)}` as Hex;
const TX = `0x${'01'.repeat(32)}` as Hex;
const OTHER_TX = `0x${'02'.repeat(32)}` as Hex;
const policy: PosterPolicy = { confirmations: 3, stuckAfterBlocks: 5, feeBumpPercent: 125 };

const planned = (over: Partial<PayoutRow> = {}): PayoutRow => ({ epoch: 4n, state: 'planned', merkleRoot: ROOT, cumulativeTotal: 1000n, ...over });
const sent = (over: Partial<PayoutRow> = {}): PayoutRow =>
  planned({ state: 'sent', tx: { hash: TX, nonce: 7, maxFeePerGas: 100n, maxPriorityFeePerGas: 10n, sentAtBlock: 50n }, ...over });
const chain = (over: Partial<ChainView> = {}): ChainView => ({
  distributorDeployed: true,
  posterIsAuthorized: true,
  nextEpoch: 4n,
  totalFunded: 600n,
  head: 52n,
  posterNonce: { latest: 7, pending: 7 },
  posterTokenBalance: 400n,
  posterAllowance: 10n ** 30n,
  posterCanMint: false,
  fees: { maxFeePerGas: 90n, maxPriorityFeePerGas: 9n },
  ...over,
});

describe('decide: planned', () => {
  it('given the chain expects this epoch and the poster is funded, then send with the pending nonce at market fees', () => {
    expect(decide(planned(), chain(), policy)).toEqual({ kind: 'send', nonce: 7, maxFeePerGas: 90n, maxPriorityFeePerGas: 9n });
  });

  it('given the chain already has our root (crash after broadcast, before recording), then adopt it without sending', () => {
    const view = chain({ nextEpoch: 5n, posted: { txHash: TX, blockNumber: 51n, root: ROOT } });
    expect(decide(planned(), view, policy)).toEqual({ kind: 'adopt', txHash: TX, blockNumber: 51n });
  });

  it('given an unrecorded pending transaction from the poster, then wait for it rather than send a second', () => {
    expect(decide(planned(), chain({ posterNonce: { latest: 7, pending: 8 } }), policy)).toMatchObject({ kind: 'wait' });
  });

  it('given the chain has this epoch with another root, then halt with root_mismatch', () => {
    const view = chain({ nextEpoch: 5n, posted: { txHash: TX, blockNumber: 51n, root: `0x${'cd'.repeat(32)}` } });
    expect(decide(planned(), view, policy)).toMatchObject({ kind: 'halt', code: PayoutHaltCode.RootMismatch });
  });

  it('given the chain is past this epoch without its log, then halt with chain_ahead', () => {
    expect(decide(planned(), chain({ nextEpoch: 6n }), policy)).toMatchObject({ kind: 'halt', code: PayoutHaltCode.ChainAhead });
  });

  it('given the chain expects an earlier epoch (reset chain, redeployed contract), then halt with chain_behind', () => {
    expect(decide(planned(), chain({ nextEpoch: 0n, totalFunded: 0n }), policy)).toMatchObject({ kind: 'halt', code: PayoutHaltCode.ChainBehind });
  });

  it('given no code at the distributor, then halt with distributor_missing, whatever the row says', () => {
    expect(decide(planned(), chain({ distributorDeployed: false }), policy)).toMatchObject({ kind: 'halt', code: PayoutHaltCode.DistributorMissing });
    expect(decide(sent(), chain({ distributorDeployed: false }), policy)).toMatchObject({ kind: 'halt', code: PayoutHaltCode.DistributorMissing });
  });

  it('given a poster without POSTER_ROLE, then halt with poster_not_authorized', () => {
    expect(decide(planned(), chain({ posterIsAuthorized: false }), policy)).toMatchObject({ kind: 'halt', code: PayoutHaltCode.PosterNotAuthorized });
  });

  it('given the poster holds less than posting adds, then mint the shortfall if it may, else halt with insufficient_funding', () => {
    const poor = chain({ posterTokenBalance: 100n });
    expect(decide(planned(), { ...poor, posterCanMint: true }, policy)).toEqual({ kind: 'mint', amount: 300n });
    expect(decide(planned(), poor, policy)).toMatchObject({ kind: 'halt', code: PayoutHaltCode.InsufficientFunding });
  });

  it('given no allowance for what posting adds, then approve first', () => {
    expect(decide(planned(), chain({ posterAllowance: 0n }), policy)).toEqual({ kind: 'approve' });
  });

  it('given nothing new to fund (empty epoch), then send without approval or balance', () => {
    const view = chain({ totalFunded: 1000n, posterAllowance: 0n, posterTokenBalance: 0n });
    expect(decide(planned(), view, policy)).toMatchObject({ kind: 'send' });
  });

  it('given a cumulative total below what is funded, then halt', () => {
    expect(decide(planned({ cumulativeTotal: 5n }), chain(), policy)).toMatchObject({ kind: 'halt', code: PayoutHaltCode.CumulativeTotalDecreased });
  });
});

describe('decide: sent', () => {
  it('given our transaction is pending for fewer blocks than stuckAfterBlocks, then wait', () => {
    expect(decide(sent(), chain({ tx: { status: 'pending' }, posterNonce: { latest: 7, pending: 8 } }), policy)).toMatchObject({ kind: 'wait' });
  });

  it('given our transaction is pending too long, then replace it: same nonce, fees bumped 25%', () => {
    const view = chain({ head: 55n, tx: { status: 'pending' }, posterNonce: { latest: 7, pending: 8 } });
    expect(decide(sent(), view, policy)).toEqual({ kind: 'send', nonce: 7, maxFeePerGas: 126n, maxPriorityFeePerGas: 14n, replaces: TX });
  });

  it('given the node no longer knows our transaction and the nonce is unused (dropped), then re-send with the same nonce and bumped fees', () => {
    expect(decide(sent(), chain({ tx: { status: 'unknown' } }), policy)).toMatchObject({ kind: 'send', nonce: 7, replaces: TX });
  });

  it('given our transaction mined but reverted (no RootPosted), then send anew with the next nonce', () => {
    const view = chain({ tx: { status: 'mined', reverted: true }, posterNonce: { latest: 8, pending: 8 } });
    expect(decide(sent(), view, policy)).toEqual({ kind: 'send', nonce: 8, maxFeePerGas: 90n, maxPriorityFeePerGas: 9n });
  });

  it('given the root is mined in a replacement we did not record, then adopt that transaction', () => {
    const view = chain({ nextEpoch: 5n, posted: { txHash: OTHER_TX, blockNumber: 51n, root: ROOT } });
    expect(decide(sent(), view, policy)).toEqual({ kind: 'adopt', txHash: OTHER_TX, blockNumber: 51n });
  });

  it('given the root is mined and recorded, then wait until N confirmations, then confirm', () => {
    const row = sent({ postedAt: { txHash: TX, blockNumber: 51n } });
    const posted = { txHash: TX, blockNumber: 51n, root: ROOT };
    expect(decide(row, chain({ nextEpoch: 5n, posted, head: 52n }), policy)).toMatchObject({ kind: 'wait' });
    expect(decide(row, chain({ nextEpoch: 5n, posted, head: 53n }), policy)).toEqual({ kind: 'confirm', txHash: TX, blockNumber: 51n });
  });

  it('given the root was seen mined but the log is gone (reorg or reset chain), then halt with chain_behind', () => {
    const row = sent({ postedAt: { txHash: TX, blockNumber: 51n } });
    expect(decide(row, chain(), policy)).toMatchObject({ kind: 'halt', code: PayoutHaltCode.ChainBehind });
  });
});

describe('decide: confirmed and published', () => {
  it('given a confirmed row, then publish; given a published one, then nothing', () => {
    expect(decide(planned({ state: 'confirmed' }), chain(), policy)).toEqual({ kind: 'publish' });
    expect(decide(planned({ state: 'published' }), chain(), policy)).toMatchObject({ kind: 'wait' });
  });
});

describe('bumpedFees', () => {
  it('given market fees below the bumped ones, then the bumped ones (≥ +10% as nodes require)', () => {
    const fees = bumpedFees({ maxFeePerGas: 1000n, maxPriorityFeePerGas: 100n }, { maxFeePerGas: 1n, maxPriorityFeePerGas: 1n }, 110);
    expect(fees.maxFeePerGas).toBeGreaterThanOrEqual(1100n);
    expect(fees.maxPriorityFeePerGas).toBeGreaterThanOrEqual(110n);
  });

  it('given market fees above the bumped ones, then the market fees, and maxFee never below the tip', () => {
    expect(bumpedFees({ maxFeePerGas: 10n, maxPriorityFeePerGas: 1n }, { maxFeePerGas: 500n, maxPriorityFeePerGas: 600n }, 125)).toEqual({
      maxFeePerGas: 600n,
      maxPriorityFeePerGas: 600n,
    });
  });
});

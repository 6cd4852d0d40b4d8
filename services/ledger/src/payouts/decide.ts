/**
 * What the poster does next for one epoch's payout, decided from two facts only: the epoch's row
 * in the payout outbox (what we have done) and a view of the chain (what is true). Pure: no I/O,
 * no clock, so every crash window, dropped transaction and chain surprise is a plain input in
 * `decide.unit.spec.ts`.
 *
 * The outbox moves  planned → sent → confirmed → published.
 *   planned    root and cumulative total fixed; nothing known to be on chain
 *   sent       a postRoot transaction is out (tx hash, nonce, fees recorded) or already mined
 *   confirmed  the RootPosted log of this epoch is N blocks deep; the event to publish is fixed
 *   published  `ledger.payout.posted` is in the LEDGER stream
 *
 * Exactly once on chain: the distributor refuses an epoch below `nextEpoch`, and before sending
 * we read `nextEpoch` and the epoch's RootPosted log. If the chain already has our root (a crash
 * after broadcast, before the outbox was updated) we adopt that transaction instead of sending.
 * A transaction from the poster that we did not record (pending nonce above the mined one) is
 * waited for, then replaced only if it is stuck, so we never race our own unknown broadcast.
 */
import type { Hex } from 'viem';

import { PayoutHaltCode, type PayoutHaltCode as HaltCode } from './errors.js';

export type PayoutState = 'planned' | 'sent' | 'confirmed' | 'published';

/** The outbox row of one epoch: what the poster has done so far. */
export interface PayoutRow {
  readonly epoch: bigint;
  readonly state: PayoutState;
  readonly merkleRoot: Hex;
  /** Sum of all cumulative amounts in the tree, base units. */
  readonly cumulativeTotal: bigint;
  /** The transaction last sent for this epoch (state sent), if we sent one. */
  readonly tx?: SentTransaction | undefined;
  /** Where the root landed (state sent when mined, confirmed, published). */
  readonly postedAt?: { readonly txHash: Hex; readonly blockNumber: bigint } | undefined;
}

export interface SentTransaction {
  readonly hash: Hex;
  readonly nonce: number;
  readonly maxFeePerGas: bigint; // wei
  readonly maxPriorityFeePerGas: bigint; // wei
  /** Chain head when it was sent: how long it has been pending is measured in blocks. */
  readonly sentAtBlock: bigint;
}

/** What the chain says, read just before deciding. */
export interface ChainView {
  /** False when there is no code at the distributor address (wrong address, or the chain was reset). */
  readonly distributorDeployed: boolean;
  readonly posterIsAuthorized: boolean;
  /** Distributor's `nextEpoch`: epochs below it are posted. */
  readonly nextEpoch: bigint;
  /** Distributor's `totalFunded`, base units. */
  readonly totalFunded: bigint;
  /** The RootPosted log of this row's epoch, if the chain has one. */
  readonly posted?: { readonly txHash: Hex; readonly blockNumber: bigint; readonly root: Hex } | undefined;
  readonly head: bigint;
  /** Poster's transaction counts: mined (`latest`) and including its mempool (`pending`). */
  readonly posterNonce: { readonly latest: number; readonly pending: number };
  /** Status of `row.tx.hash`: in the mempool, mined (with a reverted flag), or unknown to the node. */
  readonly tx?: { readonly status: 'pending' } | { readonly status: 'mined'; readonly reverted: boolean } | { readonly status: 'unknown' } | undefined;
  readonly posterTokenBalance: bigint;
  readonly posterAllowance: bigint;
  readonly posterCanMint: boolean;
  /** Current market fees (wei), e.g. viem `estimateFeesPerGas`. */
  readonly fees: { readonly maxFeePerGas: bigint; readonly maxPriorityFeePerGas: bigint };
}

export interface PosterPolicy {
  /** Blocks a RootPosted log must be under (its own block counts as 1) to be confirmed. */
  readonly confirmations: number;
  /** Blocks a sent transaction may stay pending before it is replaced with higher fees. */
  readonly stuckAfterBlocks: number;
  /** Fee multiplier for a replacement, in percent (≥ 110: nodes require a 10% bump). */
  readonly feeBumpPercent: number;
}

export const DEFAULT_POSTER_POLICY: PosterPolicy = { confirmations: 1, stuckAfterBlocks: 3, feeBumpPercent: 125 };

export type PosterAction =
  /** Nothing to do now; look again later. */
  | { readonly kind: 'wait'; readonly reason: string }
  /** Something an operator must fix; nothing is sent. Retried later, in case it was transient. */
  | { readonly kind: 'halt'; readonly code: HaltCode; readonly message: string }
  /** Let the distributor pull the poster's tokens (approve once, for the maximum). */
  | { readonly kind: 'approve' }
  /** Mint `amount` to the poster (demo funding: the poster holds MINTER_ROLE). */
  | { readonly kind: 'mint'; readonly amount: bigint }
  /** Sign and broadcast postRoot with this nonce and these fees; `replaces` a stuck/dropped one. */
  | {
      readonly kind: 'send';
      readonly nonce: number;
      readonly maxFeePerGas: bigint;
      readonly maxPriorityFeePerGas: bigint;
      readonly replaces?: Hex | undefined;
    }
  /** The chain already has this epoch's root: record that transaction without sending. */
  | { readonly kind: 'adopt'; readonly txHash: Hex; readonly blockNumber: bigint }
  /** The root is deep enough: mark confirmed. */
  | { readonly kind: 'confirm'; readonly txHash: Hex; readonly blockNumber: bigint }
  /** Publish `ledger.payout.posted`, then mark published. */
  | { readonly kind: 'publish' };

export function decide(row: PayoutRow, chain: ChainView, policy: PosterPolicy = DEFAULT_POSTER_POLICY): PosterAction {
  if (row.state === 'published') return { kind: 'wait', reason: 'already published' };
  if (row.state === 'confirmed') return { kind: 'publish' };

  if (!chain.distributorDeployed) {
    return halt(
      PayoutHaltCode.DistributorMissing,
      'no contract code at DISTRIBUTOR_ADDRESS: wrong address, or the chain was reset (a restarted dev chain without --state loses every contract)',
    );
  }

  // 1. Has the chain got this epoch's root already? Then adopt it, whatever our row says.
  if (chain.posted) {
    if (chain.posted.root.toLowerCase() !== row.merkleRoot.toLowerCase()) {
      return halt(
        PayoutHaltCode.RootMismatch,
        `epoch ${row.epoch} is on chain with root ${chain.posted.root}, the ledger computed ${row.merkleRoot}`,
      );
    }
    const depth = chain.head - chain.posted.blockNumber + 1n;
    if (row.state === 'planned' || row.postedAt?.txHash !== chain.posted.txHash) {
      return { kind: 'adopt', txHash: chain.posted.txHash, blockNumber: chain.posted.blockNumber };
    }
    if (depth >= BigInt(policy.confirmations)) {
      return { kind: 'confirm', txHash: chain.posted.txHash, blockNumber: chain.posted.blockNumber };
    }
    return { kind: 'wait', reason: `root in block ${chain.posted.blockNumber}, ${depth}/${policy.confirmations} confirmations` };
  }
  if (row.state === 'sent' && row.postedAt) {
    // We saw it mined, and now there is no log: a reorg or a reset chain took it away.
    return halt(
      PayoutHaltCode.ChainBehind,
      `epoch ${row.epoch} was mined in block ${row.postedAt.blockNumber} (${row.postedAt.txHash}) but the chain no longer has it: reorg deeper than expected, or the chain was reset`,
    );
  }
  if (chain.nextEpoch > row.epoch) {
    return halt(
      PayoutHaltCode.ChainAhead,
      `the distributor is at epoch ${chain.nextEpoch - 1n} but has no root for epoch ${row.epoch}: another poster skipped it`,
    );
  }
  if (chain.nextEpoch < row.epoch) {
    return halt(
      PayoutHaltCode.ChainBehind,
      `the distributor expects epoch ${chain.nextEpoch} next, the ledger is at epoch ${row.epoch}: earlier roots are missing on chain (was the chain reset?)`,
    );
  }

  // 2. Not on chain yet (nextEpoch == epoch). Can we post at all?
  if (!chain.posterIsAuthorized) {
    return halt(PayoutHaltCode.PosterNotAuthorized, 'the poster key does not hold POSTER_ROLE on the distributor (wrong POSTER_PRIVATE_KEY?)');
  }
  if (row.cumulativeTotal < chain.totalFunded) {
    return halt(
      PayoutHaltCode.CumulativeTotalDecreased,
      `cumulative total ${row.cumulativeTotal} is below what the distributor already holds for (${chain.totalFunded})`,
    );
  }

  // 3. A transaction of ours in flight?
  if (row.state === 'sent' && row.tx) {
    const tx = row.tx;
    const status = chain.tx?.status ?? 'unknown';
    if (status === 'pending') {
      if (chain.head - tx.sentAtBlock < BigInt(policy.stuckAfterBlocks)) {
        return { kind: 'wait', reason: `postRoot ${tx.hash} pending since block ${tx.sentAtBlock}` };
      }
      return replace(tx, chain, policy);
    }
    if (status === 'unknown' && chain.posterNonce.latest <= tx.nonce) {
      // The node forgot it (dropped from the mempool, or a node that restarted): same nonce, higher fees.
      return replace(tx, chain, policy);
    }
    // Mined without a RootPosted log (reverted), or the nonce went to another transaction: send anew.
  } else if (chain.posterNonce.pending > chain.posterNonce.latest) {
    // 4. No transaction recorded, yet the poster has one in flight: maybe ours, broadcast just before
    // a crash. Wait for it to land (then step 1 adopts it); if it is stuck, replace it.
    return { kind: 'wait', reason: `poster has ${chain.posterNonce.pending - chain.posterNonce.latest} unrecorded pending transaction(s)` };
  }

  // 5. Fund, then send.
  const owed = row.cumulativeTotal - chain.totalFunded;
  if (owed > 0n && chain.posterAllowance < owed) return { kind: 'approve' };
  if (owed > chain.posterTokenBalance) {
    if (chain.posterCanMint) return { kind: 'mint', amount: owed - chain.posterTokenBalance };
    return halt(
      PayoutHaltCode.InsufficientFunding,
      `posting epoch ${row.epoch} adds ${owed} base units to the distributor; the poster holds ${chain.posterTokenBalance} and cannot mint`,
    );
  }
  return { kind: 'send', nonce: chain.posterNonce.pending, ...chain.fees };
}

/** Fees for a replacement: the market's, or the previous ones bumped by the policy, whichever is higher. */
export function bumpedFees(
  previous: { readonly maxFeePerGas: bigint; readonly maxPriorityFeePerGas: bigint },
  market: { readonly maxFeePerGas: bigint; readonly maxPriorityFeePerGas: bigint },
  feeBumpPercent: number,
): { maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } {
  const bump = (wei: bigint): bigint => (wei * BigInt(feeBumpPercent) + 99n) / 100n + 1n;
  const priority = max(bump(previous.maxPriorityFeePerGas), market.maxPriorityFeePerGas);
  const fee = max(bump(previous.maxFeePerGas), market.maxFeePerGas, priority);
  return { maxFeePerGas: fee, maxPriorityFeePerGas: priority };
}

function replace(tx: SentTransaction, chain: ChainView, policy: PosterPolicy): PosterAction {
  return { kind: 'send', nonce: tx.nonce, ...bumpedFees(tx, chain.fees, policy.feeBumpPercent), replaces: tx.hash };
}

function halt(code: HaltCode, message: string): PosterAction {
  return { kind: 'halt', code, message };
}

function max(...values: bigint[]): bigint {
  return values.reduce((a, b) => (a > b ? a : b));
}

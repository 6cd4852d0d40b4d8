/**
 * Why the poster stopped for an epoch, as stable codes (an operator greps for them; a health probe
 * or an alert can match them). A halt sends nothing; the poster looks again on its next tick, so a
 * fixed cause (funding arrived, the chain came back) resumes without a restart.
 */
export const PayoutHaltCode = {
  /** No code at DISTRIBUTOR_ADDRESS: wrong address or a reset chain. */
  DistributorMissing: 'distributor_missing',
  /** The chain id the RPC reports is not CHAIN_ID. */
  WrongChain: 'wrong_chain',
  /** The poster key lacks POSTER_ROLE. */
  PosterNotAuthorized: 'poster_not_authorized',
  /** The poster cannot pay what posting adds to the distributor, and cannot mint. */
  InsufficientFunding: 'insufficient_funding',
  /** The chain has this epoch with another root. */
  RootMismatch: 'root_mismatch',
  /** The chain is past this epoch without its root. */
  ChainAhead: 'chain_ahead',
  /** The chain lacks roots the ledger has posted or expects before this epoch. */
  ChainBehind: 'chain_behind',
  /** The new cumulative total is below what the distributor was funded with. */
  CumulativeTotalDecreased: 'cumulative_total_decreased',
} as const;
export type PayoutHaltCode = (typeof PayoutHaltCode)[keyof typeof PayoutHaltCode];

/** The poster stopped for an epoch: `code` says why, the message says what to fix. */
export class PayoutHalted extends Error {
  override readonly name = 'PayoutHalted';
  constructor(
    readonly code: PayoutHaltCode,
    readonly epoch: bigint,
    message: string,
  ) {
    super(`epoch ${epoch}: ${code}: ${message}`);
  }
}

/** An epoch event the ledger will not apply (after it passed the contract schema). */
export class EpochRejected extends Error {
  override readonly name = 'EpochRejected';
  constructor(
    readonly epoch: number,
    readonly reason: string,
  ) {
    super(`epoch ${epoch} rejected: ${reason}`);
  }
}

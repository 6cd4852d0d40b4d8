/**
 * Pricing: what one inference costs, in base units (18 decimals).
 *
 * Rounding rule: fee = floor(pricePer1kTokens × (promptTokens + completionTokens) / 1000). The
 * sub-unit remainder (< 1 base unit, i.e. < 10^-18 of a token of currency) is dropped in the
 * payer's favour and never carried: carrying it per (tenant, adapter) would make every fee depend
 * on the history of that pair, for no amount anyone could ever claim.
 *
 * What is billed: `inference.completed` (stop, length or cancelled: tokens processed are billable)
 * on an adapter. `inference.failed` is never billed, and a request on the bare base model
 * (adapterId null) has no adapter price, so both price at 0 (they still count as usage).
 */

/** The parts of an inference that pricing reads. */
export interface BillableInference {
  readonly outcome: 'completed' | 'failed';
  readonly adapterId: string | null;
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/** The adapter terms that pricing reads: fixed by `adapters.registered`. */
export interface AdapterPrice {
  /** Base units per 1,000 tokens (prompt + completion). */
  readonly pricePer1kTokens: bigint;
}

export const TOKENS_PER_PRICE_UNIT = 1000n;

/** Fee of one inference in base units; `adapter` is the registration of `inference.adapterId`. */
export function price(inference: BillableInference, adapter: AdapterPrice | null): bigint {
  if (inference.outcome !== 'completed' || inference.adapterId === null || adapter === null) return 0n;
  const tokens = BigInt(inference.promptTokens) + BigInt(inference.completionTokens);
  return (adapter.pricePer1kTokens * tokens) / TOKENS_PER_PRICE_UNIT;
}

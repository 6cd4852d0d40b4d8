/**
 * The canonical encoding of an epoch's per-account totals and its hash. The attribution service
 * computes `totalsHash` when it closes an epoch; every consumer (the ledger, an auditor in another
 * language) recomputes it from `totals` and must get the same bytes.
 *
 * Canonical encoding, version 1 (ASCII, hence identical in UTF-8):
 *
 *     longtail.totals.v1\n
 *     <account>,<amount>\n        one line per account
 *
 * - `account`: `0x` + 40 lowercase hex digits;
 * - `amount`: base units as a decimal string without sign or leading zeros, greater than 0 (an
 *   account with nothing is left out);
 * - lines sorted by `account` ascending (byte order; the same as string order for lowercase hex);
 *   each account appears once;
 * - every line, the last included, ends with a single `\n` (0x0A); an empty set of totals is the
 *   header line alone.
 *
 * `totalsHash` = SHA-256 of those bytes, as 64 lowercase hex digits.
 */
import { createHash } from 'node:crypto';

import { CONTRACT_VIOLATION_CODES, ContractViolation, issuesFromZod } from '../errors.js';
import { EvmAddressSchema, PositiveBaseUnitsSchema } from '../fields.js';

export const TOTALS_ENCODING_HEADER = 'longtail.totals.v1';

/** What one account is owed, in base units. */
export interface AccountAmount {
  readonly account: string;
  readonly amount: string;
}

/** The totals of an epoch, ready to go into `attribution.epoch.closed`. */
export interface EpochTotals {
  /** Sorted by account ascending, accounts lowercase and unique, amounts > 0. */
  readonly totals: readonly AccountAmount[];
  /** Sum of all amounts, base units. */
  readonly totalAmount: string;
  /** SHA-256 (hex) of the canonical encoding of `totals`. */
  readonly totalsHash: string;
}

/**
 * The canonical encoding of `totals` (see the module comment). Entries may come in any order and
 * with addresses in any case; a duplicate account, an amount of 0 or a malformed value throws a
 * `ContractViolation`.
 */
export function canonicalTotalsEncoding(totals: Iterable<AccountAmount>): string {
  const normalised = normaliseTotals(totals);
  let out = `${TOTALS_ENCODING_HEADER}\n`;
  for (const entry of normalised) out += `${entry.account},${entry.amount}\n`;
  return out;
}

/** SHA-256 (64 lowercase hex digits) of `canonicalTotalsEncoding(totals)`. */
export function totalsHash(totals: Iterable<AccountAmount>): string {
  return createHash('sha256').update(canonicalTotalsEncoding(totals), 'utf8').digest('hex');
}

/**
 * Folds per-account shares (an account may appear many times, amounts as bigint or base-unit
 * strings, zero allowed) into the epoch totals: summed per account, zeros dropped, sorted, with
 * their sum and hash.
 */
export function summariseTotals(
  shares: Iterable<{ readonly account: string; readonly amount: string | bigint }>,
): EpochTotals {
  const byAccount = new Map<string, bigint>();
  for (const share of shares) {
    const account = parseAccount(share.account);
    const amount = typeof share.amount === 'bigint' ? share.amount : BigInt(parseAmount(share.amount, true));
    if (amount < 0n) throw totalsViolation('amount must not be negative');
    byAccount.set(account, (byAccount.get(account) ?? 0n) + amount);
  }
  const totals = [...byAccount]
    .filter(([, amount]) => amount > 0n)
    .map(([account, amount]) => Object.freeze({ account, amount: amount.toString() }))
    .sort(byAccountAscending);
  const totalAmount = totals.reduce((sum, entry) => sum + BigInt(entry.amount), 0n).toString();
  return Object.freeze({ totals: Object.freeze(totals), totalAmount, totalsHash: totalsHash(totals) });
}

function normaliseTotals(totals: Iterable<AccountAmount>): AccountAmount[] {
  const normalised = [...totals]
    .map((entry) => ({ account: parseAccount(entry.account), amount: parseAmount(entry.amount, false) }))
    .sort(byAccountAscending);
  for (let i = 1; i < normalised.length; i += 1) {
    if (normalised[i - 1]!.account === normalised[i]!.account)
      throw totalsViolation(`duplicate account ${normalised[i]!.account}`);
  }
  return normalised;
}

function byAccountAscending(a: AccountAmount, b: AccountAmount): number {
  return a.account < b.account ? -1 : a.account > b.account ? 1 : 0;
}

function parseAccount(account: string): string {
  const result = EvmAddressSchema.safeParse(account);
  if (!result.success) throw totalsViolation('invalid account', result.error, ['account']);
  return result.data;
}

function parseAmount(amount: string, allowZero: boolean): string {
  if (allowZero && amount === '0') return amount;
  const result = PositiveBaseUnitsSchema.safeParse(amount);
  if (!result.success) throw totalsViolation('invalid amount', result.error, ['amount']);
  return result.data;
}

function totalsViolation(
  summary: string,
  cause?: import('zod').ZodError,
  path: string[] = [],
): ContractViolation {
  return new ContractViolation(CONTRACT_VIOLATION_CODES.InvalidData, `totals: ${summary}`, {
    issues: cause ? issuesFromZod(cause, path) : [],
    cause,
  });
}

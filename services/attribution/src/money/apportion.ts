/**
 * Largest-remainder apportionment: divides a whole number of base units among claims in proportion
 * to their weights so that the parts are non-negative integers that sum to exactly the whole.
 *
 * Each claim first gets floor(total × weight / Σweight); the units left over (fewer than the number
 * of claims) go one each to the claims with the largest remainders. Ties between equal remainders
 * go to the claim with the smaller key (plain code-unit string order; keys are lowercase addresses
 * or ids), so the result depends only on the set of claims, never on the order they are given in.
 */

/** One claim on a whole: a unique key (e.g. a lowercase address) and a non-negative weight. */
export interface Claim {
  readonly key: string;
  readonly weight: bigint;
}

export class ApportionError extends Error {
  override readonly name = 'ApportionError';
}

/**
 * Parts of `total` (base units) for each claim, in the order of `claims`.
 * @throws ApportionError when total < 0, a weight < 0, keys repeat, or the weights sum to 0 while total > 0.
 */
export function apportion(total: bigint, claims: readonly Claim[]): bigint[] {
  if (total < 0n) throw new ApportionError(`total must not be negative, got ${total}`);
  let weightSum = 0n;
  for (const claim of claims) {
    if (claim.weight < 0n) throw new ApportionError(`weight of ${claim.key} must not be negative`);
    weightSum += claim.weight;
  }
  if (weightSum === 0n) {
    if (total === 0n) return claims.map(() => 0n);
    throw new ApportionError('weights sum to 0, nothing can receive a non-zero total');
  }
  if (claims.length > 1) assertUniqueKeys(claims);
  return apportionOver(
    total,
    claims.map((c) => c.weight),
    weightSum,
    (i) => claims[i]!.key,
  );
}

/**
 * The core of `apportion` for callers that apportion many totals over claims they validated once
 * (weights >= 0, `weightSum` = Σweights > 0, unique keys): `keyOf(i)` is only called to break a
 * tie between equal remainders, so a caller may build keys lazily.
 */
export function apportionOver(
  total: bigint,
  weights: readonly bigint[],
  weightSum: bigint,
  keyOf: (index: number) => string,
): bigint[] {
  const n = weights.length;
  const parts = new Array<bigint>(n);
  const remainders = new Array<bigint>(n);
  let assigned = 0n;
  for (let i = 0; i < n; i += 1) {
    const scaled = total * weights[i]!;
    const part = scaled / weightSum;
    parts[i] = part;
    remainders[i] = scaled - part * weightSum;
    assigned += part;
  }
  let leftover = total - assigned; // 0 <= leftover < n
  if (leftover === 0n) return parts;
  const order = parts.map((_, i) => i);
  order.sort((a, b) => {
    const ra = remainders[a]!;
    const rb = remainders[b]!;
    if (ra !== rb) return ra > rb ? -1 : 1;
    const ka = keyOf(a);
    const kb = keyOf(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  for (const i of order) {
    if (leftover === 0n) break;
    parts[i] = parts[i]! + 1n;
    leftover -= 1n;
  }
  return parts;
}

export function assertUniqueKeys(claims: readonly Claim[]): void {
  const seen = new Set<string>();
  for (const claim of claims) {
    if (seen.has(claim.key)) throw new ApportionError(`claim key ${claim.key} appears twice`);
    seen.add(claim.key);
  }
}

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
  const parts = new Array<bigint>(claims.length);
  const remainders = new Array<bigint>(claims.length);
  let assigned = 0n;
  for (let i = 0; i < claims.length; i += 1) {
    const scaled = total * claims[i]!.weight;
    const part = scaled / weightSum;
    parts[i] = part;
    remainders[i] = scaled - part * weightSum;
    assigned += part;
  }
  let leftover = total - assigned; // 0 <= leftover < claims.length
  if (claims.length > 1) assertUniqueKeys(claims);
  if (leftover === 0n) return parts;
  const order = claims.map((_, i) => i);
  order.sort((a, b) => {
    const ra = remainders[a]!;
    const rb = remainders[b]!;
    if (ra !== rb) return ra > rb ? -1 : 1;
    const ka = claims[a]!.key;
    const kb = claims[b]!.key;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  for (const i of order) {
    if (leftover === 0n) break;
    parts[i] = parts[i]! + 1n;
    leftover -= 1n;
  }
  return parts;
}

function assertUniqueKeys(claims: readonly Claim[]): void {
  const seen = new Set<string>();
  for (const claim of claims) {
    if (seen.has(claim.key)) throw new ApportionError(`claim key ${claim.key} appears twice`);
    seen.add(claim.key);
  }
}

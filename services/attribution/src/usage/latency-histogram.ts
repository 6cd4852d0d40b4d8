/**
 * Latency histograms with fixed buckets, so that hourly usage rows add up exactly (a histogram of
 * an hour is the sum of its batches' histograms) and percentiles are deterministic: the same
 * events give the same p50/p95/p99 however they were batched, live or replayed.
 *
 * Bucket i counts requests with totalMs <= LATENCY_BUCKET_BOUNDS_MS[i] (and > the previous
 * bound); the last bucket counts everything above the last bound. A percentile is reported as
 * the upper bound of the bucket holding the nearest-rank sample (⌈p·n⌉-th smallest), i.e. "p95
 * <= 750 ms"; for the overflow bucket it is null ("above the last bound").
 */

/** Upper bounds, ms. 22 bounds → 23 buckets. */
export const LATENCY_BUCKET_BOUNDS_MS: readonly number[] = Object.freeze([
  5, 10, 25, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 20000,
  30000, 60000,
]);
export const LATENCY_BUCKETS = LATENCY_BUCKET_BOUNDS_MS.length + 1;

export function latencyBucket(totalMs: number): number {
  // Linear scan: 22 comparisons, cheaper than a binary search's branches at this size.
  for (let i = 0; i < LATENCY_BUCKET_BOUNDS_MS.length; i += 1)
    if (totalMs <= LATENCY_BUCKET_BOUNDS_MS[i]!) return i;
  return LATENCY_BUCKET_BOUNDS_MS.length;
}

export function emptyHistogram(): bigint[] {
  return new Array<bigint>(LATENCY_BUCKETS).fill(0n);
}

/**
 * Upper bound (ms) of the bucket holding the nearest-rank p-quantile, p in permille (950 = p95);
 * null when the histogram is empty or the sample lies above the last bound.
 */
export function percentileMs(histogram: readonly bigint[], permille: number): number | null {
  const total = histogram.reduce((s, c) => s + c, 0n);
  if (total === 0n) return null;
  // nearest rank: ceil(p * n), at least 1 (integer arithmetic, no floats)
  let rank = (BigInt(permille) * total + 999n) / 1000n;
  if (rank < 1n) rank = 1n;
  let seen = 0n;
  for (let i = 0; i < histogram.length; i += 1) {
    seen += histogram[i]!;
    if (seen >= rank) return LATENCY_BUCKET_BOUNDS_MS[i] ?? null;
  }
  return null;
}

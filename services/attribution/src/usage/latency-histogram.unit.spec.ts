import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  emptyHistogram,
  LATENCY_BUCKET_BOUNDS_MS,
  latencyBucket,
  percentileMs,
} from './latency-histogram.js';

describe('latency histogram', () => {
  it('reports the bucket bound of the nearest-rank percentile', () => {
    const h = emptyHistogram();
    for (const ms of [3, 8, 40, 90, 90, 120, 400, 900, 2500, 70_000]) h[latencyBucket(ms)]! += 1n;
    expect(percentileMs(h, 500)).toBe(100); // 5th of 10 samples: 90 ms, bucket <= 100
    expect(percentileMs(h, 900)).toBe(3000); // 9th: 2500 ms
    expect(percentileMs(h, 990)).toBeNull(); // 10th: above the last bound
    expect(percentileMs(emptyHistogram(), 500)).toBeNull();
  });

  it('is the same however the samples were split into batches (histograms add)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 100_000 }), { minLength: 1, maxLength: 200 }),
        fc.nat(),
        (samples, cut) => {
          const all = emptyHistogram();
          const a = emptyHistogram();
          const b = emptyHistogram();
          samples.forEach((ms, i) => {
            all[latencyBucket(ms)]! += 1n;
            (i < cut % samples.length ? a : b)[latencyBucket(ms)]! += 1n;
          });
          const sum = a.map((x, i) => x + b[i]!);
          for (const p of [500, 950, 990]) expect(percentileMs(sum, p)).toBe(percentileMs(all, p));
          const sorted = [...samples].sort((x, y) => x - y);
          const exact = sorted[Math.max(0, Math.ceil(0.95 * sorted.length) - 1)]!;
          const bound = percentileMs(all, 950);
          if (bound === null) expect(exact).toBeGreaterThan(LATENCY_BUCKET_BOUNDS_MS.at(-1)!);
          else expect(exact).toBeLessThanOrEqual(bound);
        },
      ),
    );
  });
});

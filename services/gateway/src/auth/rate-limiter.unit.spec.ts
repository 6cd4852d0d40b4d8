import { describe, expect, it } from 'vitest';
import { formatResetDuration, RateLimiter, TokenBucket } from './rate-limiter.js';

describe('TokenBucket', () => {
  it('starts full, empties, and refills at capacity per minute', () => {
    const bucket = new TokenBucket(60, 0);
    expect(bucket.waitMs(60, 0)).toBe(0);
    bucket.take(60, 0);
    expect(bucket.remaining(0)).toBe(0);
    expect(bucket.waitMs(1, 0)).toBe(1000); // 60 per minute: one a second
    expect(bucket.remaining(30_000)).toBe(30);
    expect(bucket.remaining(120_000)).toBe(60); // never above capacity
    expect(bucket.resetMs(120_000)).toBe(0);
  });

  it('never admits more than its capacity, and an overrun is paid back before the next take', () => {
    const bucket = new TokenBucket(100, 0);
    expect(bucket.waitMs(101, 0)).toBe(Infinity);
    bucket.take(150, 0); // reconciled usage above the reservation
    expect(bucket.remaining(0)).toBe(0);
    expect(bucket.waitMs(10, 0)).toBe(36_000); // 60 below zero + 10, at 100 per minute
    bucket.give(1000, 0);
    expect(bucket.remaining(0)).toBe(100);
  });
});

describe('RateLimiter', () => {
  const limits = { requestsPerMin: 2, tokensPerMin: 100, maxConcurrent: 5 };

  it('limits requests per minute with Retry-After and x-ratelimit-* headers', () => {
    let now = 0;
    const limiter = new RateLimiter(() => now);
    const first = limiter.admit('t', limits, 10);
    expect(first.ok).toBe(true);
    expect(first.headers).toMatchObject({
      'x-ratelimit-limit-requests': '2',
      'x-ratelimit-remaining-requests': '1',
      'x-ratelimit-reset-requests': '30s',
      'x-ratelimit-limit-tokens': '100',
      'x-ratelimit-remaining-tokens': '90',
      'x-ratelimit-reset-tokens': '6s',
    });
    expect(limiter.admit('t', limits, 10).ok).toBe(true);
    const third = limiter.admit('t', limits, 10);
    expect(third).toMatchObject({ ok: false, retryAfterS: 30 });
    expect(third.headers['x-ratelimit-remaining-requests']).toBe('0');
    expect(limiter.admit('other', limits, 10).ok).toBe(true); // per tenant
    now = 30_000;
    expect(limiter.admit('t', limits, 10).ok).toBe(true);
  });

  it('reserves tokens at admission and reconciles them with usage', () => {
    const limiter = new RateLimiter(() => 0);
    const roomy = { ...limits, requestsPerMin: 100 };
    const a = limiter.admit('t', roomy, 80);
    expect(a.ok && a.headers['x-ratelimit-remaining-tokens']).toBe('20');
    expect(limiter.admit('t', roomy, 30).ok).toBe(false);
    if (a.ok) a.lease.settle(20); // used 20 of 80: 60 come back
    const b = limiter.admit('t', roomy, 30);
    expect(b.ok && b.headers['x-ratelimit-remaining-tokens']).toBe('50');
    expect(limiter.admit('t', roomy, 101)).toMatchObject({ ok: false, retryAfterS: 60 });
  });

  it('caps requests in flight; settling frees the slot once', () => {
    const limiter = new RateLimiter(() => 0);
    const one = { requestsPerMin: 100, tokensPerMin: 1000, maxConcurrent: 1 };
    const a = limiter.admit('t', one, 1);
    expect(limiter.admit('t', one, 1)).toMatchObject({ ok: false, retryAfterS: 1 });
    if (a.ok) {
      a.lease.settle(1);
      a.lease.settle(1);
    }
    const b = limiter.admit('t', one, 1);
    expect(b.ok).toBe(true);
    expect(limiter.admit('t', one, 1).ok).toBe(false);
  });

  it('writes reset durations as OpenAI does', () => {
    expect(formatResetDuration(0)).toBe('0s');
    expect(formatResetDuration(250)).toBe('250ms');
    expect(formatResetDuration(1500)).toBe('1.5s');
    expect(formatResetDuration(360_000)).toBe('6m0s');
  });
});

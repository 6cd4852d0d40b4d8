/**
 * Per-tenant rate limits, in memory in this gateway process: requests per minute and tokens per
 * minute as token buckets that refill continuously, and a cap on requests in flight.
 *
 * A cluster of gateways each applies the full limits on its own, so a tenant can get N times
 * its limits across N gateways (a documented limit: run one gateway per tenant's traffic, or set a
 * tenant's limits to its share). A shared counter on every request costs too much: measured with
 * NATS KV compare-and-set (get + update at the revision, bench/serving.ts `sharedRateLimitCounter`),
 * ~0.4 ms and 0.25–0.4 ms of gateway CPU a request uncontended (the gateway's whole request is
 * ~0.55 ms), and one hot tenant at 16 requests in flight collapses to 128–719 increments/s with
 * p99 0.5–1.2 s and thousands of conflicts in 3 s. The
 * design to build instead: each gateway leases blocks of a tenant's budget (e.g. 1/16 of a minute's
 * limit) from the shared bucket with one compare-and-set and spends them locally, so the shared
 * store sees one update per block, not per request.
 *
 * Tokens are reserved at admission (prompt estimate + max_tokens × n) and reconciled with the
 * usage the worker reports when the request ends: the unused part is given back, an overrun is
 * charged (the bucket may go below zero and the next request waits for it).
 */
import type { TenantLimits } from './api-key-store.js';

/** A bucket of `capacity` units refilled at `capacity` per minute. `now` is milliseconds. */
export class TokenBucket {
  #level: number;
  #updatedAt: number;
  readonly #perMs: number;

  constructor(
    readonly capacity: number,
    now: number,
  ) {
    this.#level = capacity;
    this.#updatedAt = now;
    this.#perMs = capacity / 60_000;
  }

  #refill(now: number): void {
    if (now > this.#updatedAt) {
      this.#level = Math.min(this.capacity, this.#level + (now - this.#updatedAt) * this.#perMs);
      this.#updatedAt = now;
    }
  }

  /** Milliseconds until `amount` units are available: 0 when they are now, Infinity when never. */
  waitMs(amount: number, now: number): number {
    this.#refill(now);
    if (amount > this.capacity) return Infinity;
    return this.#level >= amount ? 0 : Math.ceil((amount - this.#level) / this.#perMs);
  }

  /** Takes `amount` units unconditionally (the level may go below zero: an overrun). */
  take(amount: number, now: number): void {
    this.#refill(now);
    this.#level -= amount;
  }

  /** Gives `amount` units back, never above capacity. */
  give(amount: number, now: number): void {
    this.#refill(now);
    this.#level = Math.min(this.capacity, this.#level + amount);
  }

  remaining(now: number): number {
    this.#refill(now);
    return Math.max(0, Math.floor(this.#level));
  }

  /** Milliseconds until the bucket is full again. */
  resetMs(now: number): number {
    this.#refill(now);
    return Math.ceil((this.capacity - this.#level) / this.#perMs);
  }
}

/** OpenAI's duration style for `x-ratelimit-reset-*`: `0s`, `250ms`, `1.5s`, `6m0s`. */
export function formatResetDuration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const seconds = Math.round(ms / 100) / 10;
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${Math.round(seconds - minutes * 60)}s`;
}

export type RateLimitHeaders = Record<string, string>;

export interface Lease {
  /** Ends the request: frees its concurrency slot and reconciles tokens with actual usage (when known). Idempotent. */
  settle(actualTokens?: number): void;
}

export type Admission =
  | { readonly ok: true; readonly lease: Lease; readonly headers: RateLimitHeaders }
  | {
      readonly ok: false;
      readonly message: string;
      readonly retryAfterS: number;
      readonly headers: RateLimitHeaders;
    };

interface TenantState {
  limits: TenantLimits;
  requests: TokenBucket;
  tokens: TokenBucket;
  inFlight: number;
}

export class RateLimiter {
  readonly #tenants = new Map<string, TenantState>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Admits one request reserving `tokens`, or says how long to wait. */
  admit(tenantId: string, limits: TenantLimits, tokens: number): Admission {
    const now = this.now();
    const state = this.#state(tenantId, limits, now);
    const reserve = Math.max(0, Math.ceil(tokens));
    if (state.inFlight >= limits.maxConcurrent) {
      return {
        ok: false,
        message: `Too many concurrent requests for this tenant (limit ${limits.maxConcurrent}). Retry when one finishes.`,
        retryAfterS: 1,
        headers: headersOf(state, now),
      };
    }
    const requestWait = state.requests.waitMs(1, now);
    const tokenWait = state.tokens.waitMs(reserve, now);
    if (tokenWait === Infinity) {
      return {
        ok: false,
        message: `Request too large: it reserves ${reserve} tokens (prompt + max_tokens × n) and the limit is ${limits.tokensPerMin} tokens per minute.`,
        retryAfterS: 60,
        headers: headersOf(state, now),
      };
    }
    if (requestWait > 0 || tokenWait > 0) {
      const which =
        requestWait >= tokenWait
          ? `requests per minute (limit ${limits.requestsPerMin})`
          : `tokens per minute (limit ${limits.tokensPerMin})`;
      return {
        ok: false,
        message: `Rate limit reached for ${which}. Please try again later.`,
        retryAfterS: Math.max(1, Math.ceil(Math.max(requestWait, tokenWait) / 1000)),
        headers: headersOf(state, now),
      };
    }
    state.requests.take(1, now);
    state.tokens.take(reserve, now);
    state.inFlight += 1;
    let settled = false;
    const lease: Lease = {
      settle: (actualTokens) => {
        if (settled) return;
        settled = true;
        state.inFlight -= 1;
        if (actualTokens === undefined) return;
        const at = this.now();
        const difference = reserve - actualTokens;
        if (difference > 0) state.tokens.give(difference, at);
        else if (difference < 0) state.tokens.take(-difference, at);
      },
    };
    return { ok: true, lease, headers: headersOf(state, now) };
  }

  #state(tenantId: string, limits: TenantLimits, now: number): TenantState {
    let state = this.#tenants.get(tenantId);
    if (!state) {
      state = {
        limits,
        requests: new TokenBucket(limits.requestsPerMin, now),
        tokens: new TokenBucket(limits.tokensPerMin, now),
        inFlight: 0,
      };
      this.#tenants.set(tenantId, state);
    } else if (
      state.limits.requestsPerMin !== limits.requestsPerMin ||
      state.limits.tokensPerMin !== limits.tokensPerMin ||
      state.limits.maxConcurrent !== limits.maxConcurrent
    ) {
      // Limits changed: new buckets at the new sizes, requests in flight still counted.
      state.limits = limits;
      state.requests = new TokenBucket(limits.requestsPerMin, now);
      state.tokens = new TokenBucket(limits.tokensPerMin, now);
    }
    return state;
  }
}

function headersOf(state: TenantState, now: number): RateLimitHeaders {
  return {
    'x-ratelimit-limit-requests': String(state.limits.requestsPerMin),
    'x-ratelimit-remaining-requests': String(state.requests.remaining(now)),
    'x-ratelimit-reset-requests': formatResetDuration(state.requests.resetMs(now)),
    'x-ratelimit-limit-tokens': String(state.limits.tokensPerMin),
    'x-ratelimit-remaining-tokens': String(state.tokens.remaining(now)),
    'x-ratelimit-reset-tokens': formatResetDuration(state.tokens.resetMs(now)),
  };
}

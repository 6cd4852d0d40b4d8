/**
 * Bearer key → principal (tenant, key id, scopes, limits). Key rows are cached in memory for a
 * short time (default 30 s) so the hot path is no database round trip; a miss or an expired
 * entry reads the row again, which is when a revocation made elsewhere is seen. A revocation
 * through this gateway's admin endpoint evicts at once.
 */
import { parseApiKey, secretMatches, type Scope } from './api-key.js';
import type { ApiKeyStore, StoredKey, TenantLimits } from './api-key-store.js';

export interface Principal {
  readonly tenantId: string;
  /** Undefined for the operator's admin key and for the keyless (no database) mode. */
  readonly apiKeyId: string | undefined;
  readonly scopes: readonly Scope[];
  /** Undefined: not rate limited. */
  readonly limits: TenantLimits | undefined;
}

export type Authentication =
  { ok: true; principal: Principal } | { ok: false; reason: 'malformed' | 'unknown' | 'revoked' };

const MAX_CACHED = 10_000;

export class Authenticator {
  readonly #cache = new Map<string, { key: StoredKey | undefined; expiresAt: number }>();

  constructor(
    private readonly store: ApiKeyStore,
    private readonly ttlMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  async authenticate(token: string): Promise<Authentication> {
    const parsed = parseApiKey(token);
    if (!parsed) return { ok: false, reason: 'malformed' };
    const key = await this.#lookup(parsed.id);
    // Unknown ids and wrong secrets look the same to the caller.
    if (!key || !secretMatches(parsed.secret, key.secretSha256)) return { ok: false, reason: 'unknown' };
    if (key.revoked) return { ok: false, reason: 'revoked' };
    return {
      ok: true,
      principal: { tenantId: key.tenantId, apiKeyId: key.id, scopes: key.scopes, limits: key.limits },
    };
  }

  /** Drops a cached key (after a revocation). */
  evict(keyId: string): void {
    this.#cache.delete(keyId);
  }

  async #lookup(id: string): Promise<StoredKey | undefined> {
    const now = this.now();
    const cached = this.#cache.get(id);
    if (cached && cached.expiresAt > now) return cached.key;
    const key = await this.store.findKey(id);
    if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
    this.#cache.set(id, { key, expiresAt: now + this.ttlMs });
    return key;
  }
}

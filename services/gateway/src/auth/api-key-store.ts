/** Tenants and API keys in the `gateway` schema. Only this class runs queries on them. */
import { randomUUID } from 'node:crypto';
import type { DatabaseHandle } from '@longtail/database';
import { generateApiKey, type Scope } from './api-key.js';
import type { GatewayTables } from './tables.js';

export interface TenantLimits {
  readonly requestsPerMin: number;
  readonly tokensPerMin: number;
  readonly maxConcurrent: number;
}

export const DEFAULT_TENANT_LIMITS: TenantLimits = {
  requestsPerMin: 600,
  tokensPerMin: 1_000_000,
  maxConcurrent: 32,
};

export interface Tenant {
  readonly id: string;
  readonly name: string;
  readonly limits: TenantLimits;
  readonly createdAt: Date;
}

export interface ApiKeyInfo {
  readonly id: string;
  readonly tenantId: string;
  readonly prefix: string;
  readonly scopes: readonly Scope[];
  readonly createdAt: Date;
  readonly revokedAt: Date | null;
}

/** What authentication needs of a key: its digest, scopes, revocation and its tenant's limits. */
export interface StoredKey {
  readonly id: string;
  readonly tenantId: string;
  readonly secretSha256: Buffer;
  readonly scopes: readonly Scope[];
  readonly revoked: boolean;
  readonly limits: TenantLimits;
}

export class ApiKeyStore {
  constructor(private readonly handle: DatabaseHandle<GatewayTables>) {}

  private get db() {
    return this.handle.db;
  }

  async createTenant(name: string, limits: TenantLimits = DEFAULT_TENANT_LIMITS): Promise<Tenant> {
    const row = await this.db
      .insertInto('tenants')
      .values({
        id: randomUUID(),
        name,
        requests_per_min: limits.requestsPerMin,
        tokens_per_min: limits.tokensPerMin,
        max_concurrent: limits.maxConcurrent,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return { id: row.id, name: row.name, limits: limitsOf(row), createdAt: row.created_at };
  }

  async getTenant(id: string): Promise<(Tenant & { keys: ApiKeyInfo[] }) | undefined> {
    const row = await this.db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) return undefined;
    const keys = await this.db
      .selectFrom('api_keys')
      .select(['id', 'tenant_id', 'prefix', 'scopes', 'created_at', 'revoked_at'])
      .where('tenant_id', '=', id)
      .orderBy('created_at')
      .execute();
    return {
      id: row.id,
      name: row.name,
      limits: limitsOf(row),
      createdAt: row.created_at,
      keys: keys.map((k) => ({
        id: k.id,
        tenantId: k.tenant_id,
        prefix: k.prefix,
        scopes: k.scopes,
        createdAt: k.created_at,
        revokedAt: k.revoked_at,
      })),
    };
  }

  /** A new key for the tenant; the whole key is in the result and nowhere else. Undefined: no such tenant. */
  async createKey(
    tenantId: string,
    scopes: readonly Scope[],
  ): Promise<{ key: string; info: ApiKeyInfo } | undefined> {
    const tenant = await this.db
      .selectFrom('tenants')
      .select('id')
      .where('id', '=', tenantId)
      .executeTakeFirst();
    if (!tenant) return undefined;
    const generated = generateApiKey();
    const row = await this.db
      .insertInto('api_keys')
      .values({
        id: generated.id,
        tenant_id: tenantId,
        prefix: generated.prefix,
        secret_sha256: generated.secretSha256,
        scopes: [...new Set(scopes)],
        revoked_at: null,
      })
      .returning(['id', 'tenant_id', 'prefix', 'scopes', 'created_at', 'revoked_at'])
      .executeTakeFirstOrThrow();
    return {
      key: generated.key,
      info: {
        id: row.id,
        tenantId: row.tenant_id,
        prefix: row.prefix,
        scopes: row.scopes,
        createdAt: row.created_at,
        revokedAt: row.revoked_at,
      },
    };
  }

  /** Revokes a key (idempotent). False when there is no such key. */
  async revokeKey(id: string): Promise<boolean> {
    const result = await this.db
      .updateTable('api_keys')
      .set({ revoked_at: new Date() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (result.numUpdatedRows > 0n) return true;
    const exists = await this.db.selectFrom('api_keys').select('id').where('id', '=', id).executeTakeFirst();
    return exists !== undefined;
  }

  async findKey(id: string): Promise<StoredKey | undefined> {
    const row = await this.db
      .selectFrom('api_keys')
      .innerJoin('tenants', 'tenants.id', 'api_keys.tenant_id')
      .select([
        'api_keys.id',
        'api_keys.tenant_id',
        'api_keys.secret_sha256',
        'api_keys.scopes',
        'api_keys.revoked_at',
        'tenants.requests_per_min',
        'tenants.tokens_per_min',
        'tenants.max_concurrent',
      ])
      .where('api_keys.id', '=', id)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      id: row.id,
      tenantId: row.tenant_id,
      secretSha256: row.secret_sha256,
      scopes: row.scopes,
      revoked: row.revoked_at !== null,
      limits: limitsOf(row),
    };
  }
}

const limitsOf = (row: {
  requests_per_min: number;
  tokens_per_min: number;
  max_concurrent: number;
}): TenantLimits => ({
  requestsPerMin: row.requests_per_min,
  tokensPerMin: row.tokens_per_min,
  maxConcurrent: row.max_concurrent,
});

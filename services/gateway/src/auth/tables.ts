import type { ColumnType, Generated } from 'kysely';
import type { Scope } from './api-key.js';

export interface TenantsTable {
  id: string;
  name: string;
  requests_per_min: number;
  tokens_per_min: number;
  max_concurrent: number;
  created_at: Generated<Date>;
}

export interface ApiKeysTable {
  /** The key id, also the middle part of the key (`lt_<id>_<secret>`). */
  id: string;
  tenant_id: string;
  /** `lt_<id>`: what a listing shows; contains nothing of the secret. */
  prefix: string;
  /** SHA-256 of the secret part. The secret itself is never stored. */
  secret_sha256: Buffer;
  scopes: ColumnType<Scope[], Scope[], Scope[]>;
  created_at: Generated<Date>;
  revoked_at: Date | null;
}

export interface GatewayTables {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
}

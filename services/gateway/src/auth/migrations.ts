import { sql, type Kysely } from 'kysely';
import type { Migration } from '@longtail/database';

/** The gateway's schema `gateway`: tenants and their API keys (secrets are never stored, only SHA-256). */
export const gatewayMigrations: Record<string, Migration> = {
  '0001_tenants_and_api_keys': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('tenants')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('requests_per_min', 'integer', (c) => c.notNull().check(sql`requests_per_min > 0`))
        .addColumn('tokens_per_min', 'integer', (c) => c.notNull().check(sql`tokens_per_min > 0`))
        .addColumn('max_concurrent', 'integer', (c) => c.notNull().check(sql`max_concurrent > 0`))
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('prefix', 'text', (c) => c.notNull())
        .addColumn('secret_sha256', 'bytea', (c) => c.notNull())
        .addColumn('scopes', sql`text[]`, (c) =>
          c
            .notNull()
            .check(sql`scopes <@ array['inference','adapters','admin']::text[] and cardinality(scopes) > 0`),
        )
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('revoked_at', 'timestamptz')
        .execute();
      await db.schema.createIndex('api_keys_tenant_id').on('api_keys').column('tenant_id').execute();
    },
  },
};

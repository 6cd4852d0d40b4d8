import { sql, type Kysely } from 'kysely';
import type { Migration } from '@longtail/database';

export const schedulerMigrations: Record<string, Migration> = {
  '0001_adapter_catalog': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('adapter_catalog')
        .addColumn('adapter_id', 'text', (c) => c.primaryKey())
        .addColumn('base_model', 'text', (c) => c.notNull())
        .addColumn('rank', 'integer', (c) => c.notNull())
        .addColumn('size_bytes', 'bigint', (c) => c.notNull())
        .addColumn('weights_sha256', 'text', (c) => c.notNull())
        .addColumn('weights_object_key', 'text', (c) => c.notNull())
        .addColumn('registered_at', 'timestamptz', (c) => c.notNull())
        .addColumn('retired_at', 'timestamptz')
        .addColumn('updated_seq', 'bigint', (c) => c.notNull().defaultTo(sql`0`))
        .execute();
    },
  },
};

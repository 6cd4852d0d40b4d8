/**
 * A fingerprint of a schema's projection state, to prove that live application and a replay from
 * the stream produce the same rows ("byte-identical results").
 *
 * Canonical encoding, per table: every row as `to_jsonb(row) - excluded columns` rendered to text
 * (jsonb sorts keys; session TimeZone pinned to UTC and extra_float_digits to 1 so that
 * timestamps and floats print the same everywhere), rows ordered by `orderBy` columns and then by
 * that text under the "C" collation, joined with '\n', hashed with sha256 in PostgreSQL. The
 * schema hash is sha256 over `longtail-schema-state-v1\n` and one `name\trows\tsha256\n` line per
 * table, tables sorted by name. The schema's own name is not part of it, so a live schema and a
 * rebuild schema compare directly.
 */
import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';

import { assertIdentifier } from '../identifiers.js';

export interface HashedTable {
  /** Table name inside the schema. */
  readonly name: string;
  /**
   * Columns that order the rows (ideally the primary key). Ties, and tables without `orderBy`,
   * fall back to the encoded row text, so the order is always total.
   */
  readonly orderBy?: string | readonly string[];
  /** Columns left out of the hash: wall-clock bookkeeping such as `updated_at`. */
  readonly exclude?: readonly string[];
}

export interface SchemaStateHash {
  /** Hex sha256 over all listed tables. */
  readonly sha256: string;
  /** Per-table row counts and hashes, to see which table differs. */
  readonly tables: ReadonlyArray<{ readonly name: string; readonly rows: number; readonly sha256: string }>;
}

export async function hashSchemaState<DB>(
  db: Kysely<DB>,
  schema: string,
  tables: readonly HashedTable[],
): Promise<SchemaStateHash> {
  assertIdentifier('schema', schema);
  const sorted = [...tables].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const results = await db.transaction().execute(async (trx) => {
    await sql`set local "TimeZone" = 'UTC'`.execute(trx);
    await sql`set local extra_float_digits = 1`.execute(trx);
    const out: Array<{ name: string; rows: number; sha256: string }> = [];
    for (const table of sorted) {
      assertIdentifier('table', table.name);
      const orderBy = typeof table.orderBy === 'string' ? [table.orderBy] : (table.orderBy ?? []);
      const excluded = [...(table.exclude ?? [])];
      const encoded = sql`(to_jsonb(t) - ${excluded}::text[])::text`;
      const ordering = [
        ...orderBy.map((column) => sql`t.${sql.id(assertIdentifier('column', column))}`),
        sql`${encoded} collate "C"`,
      ];
      const { rows } = await sql<{ rows: bigint; digest: string }>`
        select count(*) as rows,
               encode(sha256(convert_to(coalesce(string_agg(${encoded}, E'\n' order by ${sql.join(ordering)}), ''), 'UTF8')), 'hex') as digest
        from ${sql.id(schema, table.name)} as t`.execute(trx);
      const row = rows[0]!;
      out.push({ name: table.name, rows: Number(row.rows), sha256: row.digest });
    }
    return out;
  });
  const hash = createHash('sha256').update('longtail-schema-state-v1\n');
  for (const table of results) hash.update(`${table.name}\t${table.rows}\t${table.sha256}\n`);
  return { sha256: hash.digest('hex'), tables: results };
}

/**
 * Result parsing for one pool (not pg's process-wide registry): integers that can exceed 2^53
 * and exact decimals never become JS numbers.
 *   int8 / bigint / count(*)   → bigint        int8[]    → bigint[]
 *   numeric                    → string        numeric[] → string[]   (pg's default is float: lossy)
 *   date                       → 'YYYY-MM-DD'  date[]    → string[]   (pg's default is a local-time Date)
 * Everything else keeps pg's default (timestamptz → Date, jsonb → parsed JSON, ...).
 */
import pg from 'pg';

const OID = {
  INT8: 20,
  INT8_ARRAY: 1016,
  NUMERIC: 1700,
  NUMERIC_ARRAY: 1231,
  DATE: 1082,
  DATE_ARRAY: 1182,
  TEXT_ARRAY: 1009,
} as const;

type Parser = (value: string) => unknown;
type NestedStrings = string | null | NestedStrings[];

const parseStringArray = (pg.types.getTypeParser as (oid: number, format: 'text') => unknown)(
  OID.TEXT_ARRAY,
  'text',
) as (value: string) => NestedStrings[];

function mapNested(value: NestedStrings, fn: (s: string) => unknown): unknown {
  if (value === null) return null;
  if (Array.isArray(value)) return value.map((item) => mapNested(item, fn));
  return fn(value);
}

const textOverrides = new Map<number, Parser>([
  [OID.INT8, (value) => BigInt(value)],
  [OID.INT8_ARRAY, (value) => parseStringArray(value).map((item) => mapNested(item, BigInt))],
  [OID.NUMERIC, (value) => value],
  [OID.NUMERIC_ARRAY, (value) => parseStringArray(value)],
  [OID.DATE, (value) => value],
  [OID.DATE_ARRAY, (value) => parseStringArray(value)],
]);

/** A `types` object for `pg.Pool`/`pg.Client` config. */
export const exactTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format !== 'binary') {
      const override = textOverrides.get(oid);
      if (override) return override;
    }
    return pg.types.getTypeParser(oid, format ?? 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

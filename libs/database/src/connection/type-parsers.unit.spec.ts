import { describe, expect, it } from 'vitest';

import { exactTypes } from './type-parsers.js';

const parse = (oid: number, text: string): unknown =>
  (exactTypes.getTypeParser(oid, 'text') as (v: string) => unknown)(text);

describe('exactTypes', () => {
  it('parses int8 to bigint, beyond 2^53', () => {
    expect(parse(20, '9007199254740993')).toBe(9007199254740993n);
    expect(parse(1016, '{1,NULL,-9007199254740993}')).toEqual([1n, null, -9007199254740993n]);
  });

  it('keeps numeric exact as strings, arrays included (pg parses numeric[] as floats)', () => {
    expect(parse(1700, '0.1000000000000000000001')).toBe('0.1000000000000000000001');
    expect(parse(1231, '{0.1,1e-30}')).toEqual(['0.1', '1e-30']);
  });

  it('keeps date as the calendar day, not a local-time Date', () => {
    expect(parse(1082, '2026-11-25')).toBe('2026-11-25');
  });

  it('leaves other types to pg', () => {
    expect(parse(23, '42')).toBe(42);
    expect(parse(3802, '{"a":1}')).toEqual({ a: 1 });
  });
});

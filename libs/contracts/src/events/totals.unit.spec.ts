import { createHash } from 'node:crypto';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { CONTRACT_VIOLATION_CODES } from '../errors.js';
import { canonicalTotalsEncoding, summariseTotals, totalsHash } from './totals.js';

/** Property tests run thousands of cases; on a busy shared machine they need more than the default 10 s. */
const PROPERTY_TIMEOUT_MS = 60_000;

const A = '0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const B = '0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const C = '0x0000000000000000000000000000000000000001';

const account = fc
  .uint8Array({ minLength: 20, maxLength: 20 })
  .map((bytes) => `0x${Buffer.from(bytes).toString('hex')}`);
const amount = fc.bigInt({ min: 1n, max: (1n << 128n) - 1n }).map(String);
const totals = fc.uniqueArray(fc.record({ account, amount }), {
  selector: (entry) => entry.account,
  maxLength: 30,
});

describe('canonical totals encoding', () => {
  it('given totals, then the encoding is the header and one sorted "<account>,<amount>" line each, newline-terminated', () => {
    const encoding = canonicalTotalsEncoding([
      { account: B, amount: '2' },
      { account: A.toUpperCase().replace('0X', '0x'), amount: '10' },
      { account: C, amount: '1000000000000000000' },
    ]);

    expect(encoding).toBe(`longtail.totals.v1\n${C},1000000000000000000\n${A},10\n${B},2\n`);
  });

  it('given no totals, then the encoding is the header line and the hash is its SHA-256', () => {
    expect(canonicalTotalsEncoding([])).toBe('longtail.totals.v1\n');
    expect(totalsHash([])).toBe(createHash('sha256').update('longtail.totals.v1\n').digest('hex'));
  });

  it(
    'given the same totals in any order, then the hash is the same',
    () => {
      fc.assert(
        fc.property(totals, fc.func(fc.integer()), (entries, rank) => {
          const shuffled = [...entries].sort((x, y) => rank(x.account) - rank(y.account));

          expect(totalsHash(shuffled)).toBe(totalsHash(entries));
          expect(totalsHash(shuffled)).toMatch(/^[0-9a-f]{64}$/);
        }),
        { numRuns: 300 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it('given totals that differ in one amount, then the hashes differ', () => {
    expect(totalsHash([{ account: A, amount: '10' }])).not.toBe(totalsHash([{ account: A, amount: '11' }]));
  });

  it.each([
    [
      'a duplicate account',
      [
        { account: A, amount: '1' },
        { account: A.toUpperCase().replace('0X', '0x'), amount: '2' },
      ],
    ],
    ['a zero amount', [{ account: A, amount: '0' }]],
    ['a negative amount', [{ account: A, amount: '-1' }]],
    ['an amount with leading zeros', [{ account: A, amount: '01' }]],
    ['a bad account', [{ account: '0x12', amount: '1' }]],
  ])('given %s, then it is refused', (_name, entries) => {
    expect(() => totalsHash(entries)).toThrow(
      expect.objectContaining({ code: CONTRACT_VIOLATION_CODES.InvalidData }),
    );
  });
});

describe('summariseTotals', () => {
  it('given shares with repeated accounts, zeros and mixed case, then they fold into sorted totals with sum and hash', () => {
    const summary = summariseTotals([
      { account: B, amount: 5n },
      { account: A, amount: '3' },
      { account: B.toUpperCase().replace('0X', '0x'), amount: '7' },
      { account: C, amount: 0n },
    ]);

    expect(summary.totals).toEqual([
      { account: A, amount: '3' },
      { account: B, amount: '12' },
    ]);
    expect(summary.totalAmount).toBe('15');
    expect(summary.totalsHash).toBe(totalsHash(summary.totals));
  });

  it(
    'given any shares in any order, then the summary is the same',
    () => {
      fc.assert(
        fc.property(
          fc.array(fc.record({ account, amount: fc.bigInt({ min: 0n, max: 10n ** 30n }) })),
          (shares) => {
            expect(summariseTotals([...shares].reverse())).toEqual(summariseTotals(shares));
          },
        ),
        { numRuns: 200 },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it('given a negative share, then it is refused', () => {
    expect(() => summariseTotals([{ account: A, amount: -1n }])).toThrow(
      expect.objectContaining({ code: 'invalid_data' }),
    );
  });
});

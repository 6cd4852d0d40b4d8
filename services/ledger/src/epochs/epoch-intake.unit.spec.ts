import { describe, expect, it } from 'vitest';

import { classifyEpoch, MAX_CUMULATIVE_TOTAL } from './epoch-intake.js';

const data = (epoch: number, totalsHash = 'a'.repeat(64), totalAmount = '10') => ({ epoch, totalsHash, totalAmount });

describe('classifyEpoch', () => {
  it('given the next expected epoch, then apply', () => {
    expect(classifyEpoch(data(0), 0n, undefined, 0n)).toEqual({ kind: 'apply' });
    expect(classifyEpoch(data(5), 5n, undefined, 100n)).toEqual({ kind: 'apply' });
  });

  it('given an epoch ahead of the next expected one, then park it until the gap closes', () => {
    expect(classifyEpoch(data(7), 5n, undefined, 0n)).toEqual({ kind: 'park', waitingFor: 5n });
  });

  it('given a known epoch with the same totals hash (redelivery or re-publish), then duplicate', () => {
    expect(classifyEpoch(data(3), 5n, { status: 'applied', totalsHash: 'a'.repeat(64) }, 0n)).toEqual({ kind: 'duplicate' });
    expect(classifyEpoch(data(7), 5n, { status: 'parked', totalsHash: 'a'.repeat(64) }, 0n)).toEqual({ kind: 'duplicate' });
  });

  it('given a known epoch with other totals, then reject, naming both hashes', () => {
    const decision = classifyEpoch(data(3, 'b'.repeat(64)), 5n, { status: 'applied', totalsHash: 'a'.repeat(64) }, 0n);
    expect(decision).toMatchObject({ kind: 'reject', reason: expect.stringMatching(/already received \(applied\) with totalsHash a{64}; this event has b{64}/) });
  });

  it('given an unknown epoch below the next expected one, then reject', () => {
    expect(classifyEpoch(data(1), 5n, undefined, 0n)).toMatchObject({ kind: 'reject' });
  });

  it('given totals that would take the cumulative total past the contract limit (2^192-1), then reject', () => {
    expect(classifyEpoch(data(0, 'a'.repeat(64), '2'), 0n, undefined, MAX_CUMULATIVE_TOTAL - 1n)).toMatchObject({ kind: 'reject', reason: expect.stringContaining('2^192-1') });
    expect(classifyEpoch(data(0, 'a'.repeat(64), '1'), 0n, undefined, MAX_CUMULATIVE_TOTAL - 1n)).toEqual({ kind: 'apply' });
  });
});

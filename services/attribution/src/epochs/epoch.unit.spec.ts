import { describe, expect, it } from 'vitest';

import { decideClose, GENESIS_EPOCH, policyForEpoch } from './epoch.js';
import type { SplitPolicy } from '../split/split-policy.js';

const policy = (version: number, effectiveFromEpoch: number): SplitPolicy => ({
  version,
  effectiveFromEpoch,
  operatorBps: 2500,
  creatorBps: 2500,
  contributorsBps: 2500,
  treasuryBps: 2500,
  treasuryAddress: `0x${'e'.repeat(40)}`,
});
const policies = new Map([1, 2, 3].map((v) => [v, policy(v, v === 1 ? 0 : v * 2)]));
const marker = (epoch: number, nextPolicyVersion: number, sequence = 100) => ({
  epoch,
  nextPolicyVersion,
  sequence,
  occurredAt: '2026-03-01T00:00:00.000Z',
});

describe('epoch markers', () => {
  it('given the open epoch, when its marker arrives, then it closes and the next opens after the marker', () => {
    const outcome = decideClose(GENESIS_EPOCH, marker(0, 1, 57), (v) => policies.get(v));
    expect(outcome).toEqual({
      kind: 'close',
      closing: GENESIS_EPOCH,
      next: { epoch: 1, policyVersion: 1, openedAt: '2026-03-01T00:00:00.000Z', firstSequence: 58 },
    });
  });

  it('ignores a marker for any other epoch (a duplicate, a racing closer)', () => {
    expect(decideClose({ ...GENESIS_EPOCH, epoch: 3 }, marker(2, 1), (v) => policies.get(v)).kind).toBe(
      'ignore',
    );
    expect(decideClose({ ...GENESIS_EPOCH, epoch: 3 }, marker(4, 1), (v) => policies.get(v)).kind).toBe(
      'ignore',
    );
  });

  it('waits for a policy it has not seen, and rejects one that is older or not yet effective', () => {
    expect(decideClose(GENESIS_EPOCH, marker(0, 9), (v) => policies.get(v))).toEqual({
      kind: 'wait',
      missing: { kind: 'policy', version: 9 },
    });
    expect(
      decideClose({ ...GENESIS_EPOCH, epoch: 5, policyVersion: 2 }, marker(5, 1), (v) => policies.get(v))
        .kind,
    ).toBe('reject');
    expect(decideClose(GENESIS_EPOCH, marker(0, 3), (v) => policies.get(v)).kind).toBe('reject');
  });

  it('the closer names the newest policy effective by the next epoch, never an older one', () => {
    const list = [...policies.values()];
    expect(policyForEpoch(list, 1, 1)).toBe(1);
    expect(policyForEpoch(list, 4, 1)).toBe(2);
    expect(policyForEpoch(list, 6, 1)).toBe(3);
    expect(policyForEpoch(list, 1, 2)).toBe(2);
  });
});

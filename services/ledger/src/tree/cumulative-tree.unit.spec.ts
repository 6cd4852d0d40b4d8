import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import fc from 'fast-check';
import type { Address } from 'viem';
import { describe, expect, it } from 'vitest';

import { CumulativeTree, CumulativeTreeError, EMPTY_ROOT, leafHash, verifyProof, type CumulativeEntry } from './cumulative-tree.js';

const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => `0x${Buffer.from(b).toString('hex')}` as Address);
const amount = fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 30n }), fc.bigInt({ min: 0n, max: (1n << 256n) - 1n }));
const entriesArb = (max: number) =>
  fc.uniqueArray(fc.record({ account: address, cumulativeAmount: amount }), { minLength: 1, maxLength: max, selector: (e) => e.account });

function reference(entries: readonly CumulativeEntry[]) {
  return StandardMerkleTree.of(
    entries.map((e) => [e.account, e.cumulativeAmount.toString()]),
    ['address', 'uint256'],
  );
}

describe('CumulativeTree', () => {
  it('given any set of accounts, then root, leaves and every proof equal OpenZeppelin StandardMerkleTree', () => {
    fc.assert(
      fc.property(entriesArb(70), (entries) => {
        const tree = CumulativeTree.build(entries);
        const oz = reference(entries);
        expect(tree.root).toBe(oz.root);
        entries.forEach((e, i) => {
          expect(tree.proofAt(i)).toEqual(oz.getProof(i));
          expect(leafHash(e.account, e.cumulativeAmount)).toBe(oz.leafHash([e.account, e.cumulativeAmount.toString()]));
          expect(verifyProof(tree.root, e.account, e.cumulativeAmount, tree.proofAt(i))).toBe(true);
        });
      }),
      { numRuns: 60 },
    );
  });

  it('given 1,000 accounts, then the root equals the reference', () => {
    const entries = Array.from({ length: 1000 }, (_, i) => ({
      account: `0x${i.toString(16).padStart(40, '0')}` as Address,
      cumulativeAmount: BigInt(i) * 10n ** 18n,
    }));
    expect(CumulativeTree.build(entries).root).toBe(reference(entries).root);
  });

  it('given entries in another order, then the same root', () => {
    fc.assert(
      fc.property(entriesArb(20), (entries) => {
        expect(CumulativeTree.build([...entries].reverse()).root).toBe(CumulativeTree.build(entries).root);
      }),
      { numRuns: 30 },
    );
  });

  it('given an account, then proof() looks it up in any case and returns amount and proof', () => {
    const tree = CumulativeTree.build([
      { account: '0x00000000000000000000000000000000000000aa', cumulativeAmount: 5n },
      { account: '0x00000000000000000000000000000000000000bb', cumulativeAmount: 7n },
    ]);
    expect(tree.proof('0x00000000000000000000000000000000000000BB')).toEqual({
      account: '0x00000000000000000000000000000000000000bb',
      cumulativeAmount: 7n,
      proof: tree.proofAt(1),
    });
    expect(tree.proof('0x00000000000000000000000000000000000000cc')).toBeUndefined();
    expect(tree.cumulativeTotal).toBe(12n);
  });

  it('given a single account, then its leaf is the root and its proof is empty', () => {
    const tree = CumulativeTree.build([{ account: '0x00000000000000000000000000000000000000aa', cumulativeAmount: 5n }]);
    expect(tree.root).toBe(leafHash('0x00000000000000000000000000000000000000aa', 5n));
    expect(tree.proofAt(0)).toEqual([]);
  });

  it('given no accounts, then the empty root', () => {
    expect(CumulativeTree.build([]).root).toBe(EMPTY_ROOT);
  });

  it('given a duplicate account, a mixed-case or malformed address, or an out-of-range amount, then CumulativeTreeError', () => {
    const a = '0x00000000000000000000000000000000000000aa' as Address;
    expect(() => CumulativeTree.build([{ account: a, cumulativeAmount: 1n }, { account: a, cumulativeAmount: 1n }])).toThrow(CumulativeTreeError);
    expect(() => CumulativeTree.build([{ account: '0x00000000000000000000000000000000000000AA', cumulativeAmount: 1n }])).toThrow(/lowercase/);
    expect(() => CumulativeTree.build([{ account: '0x1234' as Address, cumulativeAmount: 1n }])).toThrow(CumulativeTreeError);
    expect(() => CumulativeTree.build([{ account: a, cumulativeAmount: -1n }])).toThrow(/uint256/);
    expect(() => CumulativeTree.build([{ account: a, cumulativeAmount: 1n << 256n }])).toThrow(/uint256/);
  });
});

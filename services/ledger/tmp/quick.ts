import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { CumulativeTree, verifyProof } from '../src/tree/cumulative-tree.ts';
import { randomBytes } from 'node:crypto';
const mk = (n: number) => Array.from({ length: n }, (_, i) => ({ account: ('0x' + randomBytes(20).toString('hex')) as `0x${string}`, cumulativeAmount: BigInt(i) * 10n ** 18n + 7n }));
for (const n of [1, 2, 3, 7, 100]) {
  const e = mk(n);
  const t = CumulativeTree.build(e);
  const oz = StandardMerkleTree.of(e.map((x) => [x.account, x.cumulativeAmount.toString()]), ['address', 'uint256']);
  const ok = e.every((x, i) => JSON.stringify(oz.getProof(i)) === JSON.stringify(t.proofAt(i)) && verifyProof(t.root, x.account, x.cumulativeAmount, t.proofAt(i)));
  console.log(n, t.root === oz.root, ok);
}
const e = mk(1_000_000);
let t0 = performance.now();
const t = CumulativeTree.build(e);
console.log('1M build ms', performance.now() - t0, t.root);

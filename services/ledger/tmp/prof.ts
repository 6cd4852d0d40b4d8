import { CumulativeTree } from '../src/tree/cumulative-tree.ts';
import { randomBytes } from 'node:crypto';
let t0 = performance.now();
const e = Array.from({ length: 1_000_000 }, (_, i) => ({ account: ('0x' + randomBytes(20).toString('hex')) as `0x${string}`, cumulativeAmount: BigInt(i) * 10n ** 18n + 7n }));
console.log('gen', performance.now() - t0);
t0 = performance.now();
const t = CumulativeTree.build(e);
console.log('1M build ms', performance.now() - t0, t.root);

/**
 * The cumulative payout tree: one leaf per account over (account, cumulativeAmount), built
 * exactly like OpenZeppelin's `StandardMerkleTree.of(values, ['address', 'uint256'])` — same
 * leaf hash, same leaf order, same node layout — so its root and proofs verify in the
 * distributor's `MerkleProof.verifyCalldata` and agree byte for byte with the reference library
 * (checked in `cumulative-tree.unit.spec.ts`). It is written for a million accounts: flat byte
 * arrays instead of hex strings, one reused encode buffer, and a numeric sort of the leaf order.
 *
 * Layout (OpenZeppelin `makeMerkleTree`): a complete binary tree in an array of 2n-1 nodes, root at
 * 0, children of i at 2i+1 and 2i+2, leaves sorted by hash placed from the end backwards
 * (leaf k at index 2n-2-k). Leaf = keccak256(keccak256(abi.encode(account, cumulativeAmount))).
 * Inner node = keccak256(min(a,b) ‖ max(a,b)).
 */
import { bytesToHex, hexToBytes, keccak256, type Address, type Hex } from 'viem';

import { hashPairWords, keccakWords } from './keccak.js';
import { CumulativeTreeError } from './errors.js';
import { sortByHash } from './leaf-order.js';

/** An account's total earnings since the first epoch, in base units. */
export interface CumulativeEntry {
  /** Lowercase `0x` + 40 hex digits. */
  readonly account: Address;
  readonly cumulativeAmount: bigint;
}

export interface CumulativeProof {
  readonly account: Address;
  readonly cumulativeAmount: bigint;
  /** Sibling hashes from the leaf up; what `claim(account, cumulativeAmount, proof)` takes. */
  readonly proof: readonly Hex[];
}

export { CumulativeTreeError };

const NODE = 32; // bytes per hash
const WORDS = 8; // int32 words per hash
const UINT256_MAX = (1n << 256n) - 1n;
/** Root of a tree without leaves: nothing can be claimed against it. */
export const EMPTY_ROOT: Hex = `0x${'00'.repeat(32)}`;

const hash = (data: Uint8Array): Uint8Array => keccak256(data, 'bytes');

/** The standard-tree leaf of one entry, as the contract computes it. */
export function leafHash(account: Address, cumulativeAmount: bigint): Hex {
  const buffer = new Uint8Array(64);
  encodeLeaf(buffer, new DataView(buffer.buffer), account, cumulativeAmount);
  return bytesToHex(hash(hash(buffer)));
}

export class CumulativeTree {
  readonly #entries: readonly CumulativeEntry[];
  /** [2n-1][32] node hashes. */
  readonly #nodes: Uint8Array;
  /** entry index → node index of its leaf. */
  readonly #leafNode: Uint32Array;
  #byAccount: Map<string, number> | undefined;
  readonly root: Hex;
  /** Sum of every cumulative amount: what the distributor must have been funded with. */
  readonly cumulativeTotal: bigint;

  private constructor(entries: readonly CumulativeEntry[], nodes: Uint8Array, leafNode: Uint32Array, total: bigint) {
    this.#entries = entries;
    this.#nodes = nodes;
    this.#leafNode = leafNode;
    this.cumulativeTotal = total;
    this.root = entries.length === 0 ? EMPTY_ROOT : bytesToHex(nodes.subarray(0, NODE));
  }

  /**
   * Builds the tree. Order of `entries` does not matter (leaves are sorted by hash); accounts must
   * be distinct lowercase addresses and amounts in 0..2^256-1.
   */
  static build(entries: readonly CumulativeEntry[]): CumulativeTree {
    const n = entries.length;
    if (n === 0) return new CumulativeTree(entries, new Uint8Array(0), new Uint32Array(0), 0n);

    // 1. Leaf hashes, in entry order: [n][32] bytes = [n][8] words.
    const leaves = new Uint8Array(n * NODE);
    const leafWords = new Int32Array(leaves.buffer);
    const encoded = new Uint8Array(64);
    const encodedWords = new Int32Array(encoded.buffer);
    const view = new DataView(encoded.buffer);
    let total = 0n;
    for (let i = 0; i < n; i++) {
      const { account, cumulativeAmount } = entries[i]!;
      encodeLeaf(encoded, view, account, cumulativeAmount);
      keccakWords(encodedWords, 0, 16, encodedWords, 0); // inner hash of abi.encode(...)
      keccakWords(encodedWords, 0, 8, leafWords, i * WORDS); // leaf = keccak256(inner)
      total += cumulativeAmount;
    }

    // 2. Leaf order: ascending by hash (OpenZeppelin's `sortLeaves: true`).
    const order = sortByHash(leaves, n);

    // 3. Nodes: sorted leaf k at 2n-2-k, then parents from the bottom up.
    const size = 2 * n - 1;
    const nodes = new Uint8Array(size * NODE);
    const nodeWords = new Int32Array(nodes.buffer);
    const leafNode = new Uint32Array(n);
    for (let k = 0; k < n; k++) {
      const entry = order[k]!;
      const at = size - 1 - k;
      nodes.set(leaves.subarray(entry * NODE, entry * NODE + NODE), at * NODE);
      leafNode[entry] = at;
    }
    for (let i = size - 1 - n; i >= 0; i--) {
      hashPairWords(nodeWords, nodes, (2 * i + 1) * WORDS, (2 * i + 2) * WORDS, i * WORDS);
    }
    return new CumulativeTree(entries, nodes, leafNode, total);
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The account's cumulative amount and proof, or undefined when it has no leaf. */
  proof(account: string): CumulativeProof | undefined {
    const index = this.#index().get(account.toLowerCase());
    if (index === undefined) return undefined;
    const entry = this.#entries[index]!;
    return { account: entry.account, cumulativeAmount: entry.cumulativeAmount, proof: this.proofAt(index) };
  }

  /** Proof of the entry at `index` (position in the input array). */
  proofAt(index: number): Hex[] {
    let node = this.#leafNode[index];
    if (node === undefined) throw new CumulativeTreeError(`no entry at index ${index}`);
    const proof: Hex[] = [];
    while (node > 0) {
      const sibling = node % 2 === 1 ? node + 1 : node - 1;
      proof.push(bytesToHex(this.#nodes.subarray(sibling * NODE, sibling * NODE + NODE)));
      node = (node - 1) >> 1;
    }
    return proof;
  }

  entries(): readonly CumulativeEntry[] {
    return this.#entries;
  }

  #index(): Map<string, number> {
    if (!this.#byAccount) {
      this.#byAccount = new Map();
      this.#entries.forEach((e, i) => this.#byAccount!.set(e.account, i));
    }
    return this.#byAccount;
  }
}

/** Verifies a proof off chain the way `MerkleProof.verify` does on chain. */
export function verifyProof(root: Hex, account: Address, cumulativeAmount: bigint, proof: readonly Hex[]): boolean {
  let node = hexToBytes(leafHash(account, cumulativeAmount));
  const pair = new Uint8Array(2 * NODE);
  for (const siblingHex of proof) {
    const sibling = hexToBytes(siblingHex);
    if (sibling.length !== NODE) return false;
    const [a, b] = compareBytes(node, sibling) <= 0 ? [node, sibling] : [sibling, node];
    pair.set(a, 0);
    pair.set(b, NODE);
    node = hash(pair);
  }
  return bytesToHex(node) === root.toLowerCase();
}

// --- internals ---------------------------------------------------------------------------------

const ADDRESS_RE = /^0x[0-9a-f]{40}$/;

/** abi.encode(address, uint256) into `out` (64 bytes): 12 zero bytes, 20 address bytes, 32 BE amount. */
function encodeLeaf(out: Uint8Array, view: DataView, account: string, amount: bigint): void {
  if (!ADDRESS_RE.test(account)) throw new CumulativeTreeError(`account must be a lowercase 0x address: ${account}`);
  if (amount < 0n || amount > UINT256_MAX) throw new CumulativeTreeError(`amount out of uint256 range for ${account}`);
  out.fill(0, 0, 12);
  for (let i = 0; i < 20; i++) {
    out[12 + i] = (hexDigit(account.charCodeAt(2 + 2 * i)) << 4) | hexDigit(account.charCodeAt(3 + 2 * i));
  }
  view.setBigUint64(32, (amount >> 192n) & 0xffffffffffffffffn);
  view.setBigUint64(40, (amount >> 128n) & 0xffffffffffffffffn);
  view.setBigUint64(48, (amount >> 64n) & 0xffffffffffffffffn);
  view.setBigUint64(56, amount & 0xffffffffffffffffn);
}

function hexDigit(code: number): number {
  return code <= 57 ? code - 48 : code - 87; // '0'..'9' | 'a'..'f' (validated by ADDRESS_RE)
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < NODE; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * keccak-256 of inputs that fit one sponge block (at most 135 bytes) — all a Merkle tree needs:
 * 64-byte leaf encodings, 32-byte leaf hashes and 64-byte node pairs. Inputs and outputs are
 * word offsets into Int32Arrays so that a million-leaf build copies and allocates nothing per hash;
 * the permutation runs in WebAssembly (`keccak-wasm.ts`) on a state that lives in its memory.
 * Lanes are little-endian, as the platform's Int32Array is on x86 and ARM;
 * `keccak.unit.spec.ts` pins the result against viem's keccak256.
 */
import { endianness } from 'node:os';

import { instantiateKeccakWasm } from './keccak-wasm.js';

if (endianness() !== 'LE') throw new Error('keccak.ts assumes a little-endian platform');

const RATE_WORDS = 34; // 136-byte rate of keccak-256, in 32-bit words
const wasm = instantiateKeccakWasm();
/** [25 lanes × 2 words]: the sponge state, at offset 0 of the module's memory. */
const state = new Int32Array(wasm.memory.buffer, 0, 50);
const PAD_LAST = -0x80000000; // 0x80 in the last byte of the rate block

/**
 * keccak256 of `words` int32 words of `src` starting at word `from` (input length 4·words bytes,
 * words ≤ 33), written as 8 words into `out` at word `to`. `out` may be `src`.
 */
export function keccakWords(src: Int32Array, from: number, words: number, out: Int32Array, to: number): void {
  const s = state;
  for (let i = 0; i < words; i++) s[i] = src[from + i]!;
  s[words] = 0x01; // keccak padding: 0x01 right after the message…
  for (let i = words + 1; i < 50; i++) s[i] = 0;
  s[RATE_WORDS - 1] = s[RATE_WORDS - 1]! | PAD_LAST; // …and 0x80 at the end of the block
  wasm.permute(0); // keccak-f[1600] on `state`
  for (let i = 0; i < 8; i++) out[to + i] = s[i]!;
}

/**
 * keccak256(min(a, b) ‖ max(a, b)) for two 32-byte nodes at word offsets `a` and `b` of `nodes`
 * (the OpenZeppelin commutative pair hash), written at word offset `to`. Byte order of the
 * comparison is lexicographic over bytes, as in `MerkleProof._hashPair`.
 */
export function hashPairWords(nodes: Int32Array, bytes: Uint8Array, a: number, b: number, to: number): void {
  const s = state;
  let first = a;
  let second = b;
  const ab = a * 4;
  const bb = b * 4;
  for (let i = 0; i < 32; i++) {
    const d = bytes[ab + i]! - bytes[bb + i]!;
    if (d !== 0) {
      if (d > 0) {
        first = b;
        second = a;
      }
      break;
    }
  }
  for (let i = 0; i < 8; i++) {
    s[i] = nodes[first + i]!;
    s[8 + i] = nodes[second + i]!;
  }
  s[16] = 0x01;
  for (let i = 17; i < 50; i++) s[i] = 0;
  s[RATE_WORDS - 1] = s[RATE_WORDS - 1]! | PAD_LAST;
  wasm.permute(0); // keccak-f[1600] on `state`
  for (let i = 0; i < 8; i++) nodes[to + i] = s[i]!;
}

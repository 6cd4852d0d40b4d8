import { keccak256, bytesToHex } from 'viem';
import { keccakWords } from '../src/tree/keccak.ts';
const buf = new Uint8Array(256); const w = new Int32Array(buf.buffer);
for (const words of [0, 1, 8, 16, 33]) {
  for (let i = 0; i < 132; i++) buf[i] = (i * 37 + words) & 255;
  const want = keccak256(buf.slice(0, words * 4));
  keccakWords(w, 0, words, w, 40);
  console.log(words, bytesToHex(buf.slice(160, 192)) === want);
}
let t0 = performance.now();
for (let i = 0; i < 1_000_000; i++) keccakWords(w, 0, 16, w, 40);
console.log('us/hash', (performance.now() - t0) / 1e6 * 1000);

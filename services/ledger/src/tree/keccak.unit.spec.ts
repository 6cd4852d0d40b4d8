import fc from 'fast-check';
import { bytesToHex, keccak256 } from 'viem';
import { describe, expect, it } from 'vitest';

import { hashPairWords, keccakWords } from './keccak.js';

describe('keccakWords', () => {
  it('given any input of 0..33 words, then it equals viem keccak256', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 132 }), (bytes) => {
        const words = Math.floor(bytes.length / 4);
        const input = bytes.slice(0, words * 4);
        const buffer = new Uint8Array(256);
        buffer.set(input);
        const view = new Int32Array(buffer.buffer);
        keccakWords(view, 0, words, view, 48);
        expect(bytesToHex(buffer.subarray(192, 224))).toBe(keccak256(input));
      }),
      { numRuns: 300 },
    );
  });

  it('given the empty input, then the well-known keccak256("") digest', () => {
    const out = new Int32Array(8);
    keccakWords(new Int32Array(0), 0, 0, out, 0);
    expect(bytesToHex(new Uint8Array(out.buffer))).toBe('0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470');
  });
});

describe('hashPairWords', () => {
  it('given two nodes in either order, then keccak256 of the sorted pair', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (a, b) => {
        const bytes = new Uint8Array(96);
        bytes.set(a, 0);
        bytes.set(b, 32);
        const words = new Int32Array(bytes.buffer);
        hashPairWords(words, bytes, 0, 8, 16);
        const [lo, hi] = bytesToHex(a) <= bytesToHex(b) ? [a, b] : [b, a];
        expect(bytesToHex(bytes.subarray(64, 96))).toBe(keccak256(new Uint8Array([...lo, ...hi])));
      }),
      { numRuns: 200 },
    );
  });
});

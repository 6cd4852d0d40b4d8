import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bf16Bits, bf16FromBits, f16Bits, f16FromBits, roundToDtype } from './dtype.ts';

describe('f16 conversion', () => {
  it.each([
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite
    [65520, 0x7c00], // rounds up to +inf (halfway between 65504 and 65536, ties to even)
    [1e6, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // halfway to the smallest subnormal: ties to even (zero)
    [1.5 * 2 ** -25, 0x0001],
    [1 + 2 ** -11, 0x3c00], // halfway between 1 and next: ties to even (down)
    [1 + 3 * 2 ** -11, 0x3c02], // halfway between 1+2^-10 and 1+2^-9: ties to even (up)
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
  ])('f16(%d) = %s', (value, bits) => {
    expect(f16Bits(value)).toBe(bits);
  });

  it('keeps NaN a NaN', () => {
    expect(Number.isNaN(f16FromBits(f16Bits(NaN)))).toBe(true);
  });

  it('matches Math.f16round for every f32 value', () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true }), (v) => {
        expect(f16FromBits(f16Bits(v))).toBe(Math.f16round(v));
      }),
      { numRuns: 20_000 },
    );
  });

  it('round-trips every f16 bit pattern exactly', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const exponent = (bits >>> 10) & 0x1f;
      if (exponent === 0x1f && (bits & 0x3ff) !== 0) continue; // NaN payloads
      expect(f16Bits(f16FromBits(bits))).toBe(bits);
    }
  });
});

describe('bf16 conversion', () => {
  it.each([
    [1, 0x3f80],
    [-1, 0xbf80],
    [0.1, 0x3dcd], // 0x3dcccccd rounds up
    [1 + 2 ** -8, 0x3f80], // halfway: ties to even (down)
    [1 + 3 * 2 ** -8, 0x3f82], // halfway: ties to even (up)
    [3.4e38, 0x7f80], // beyond bf16 max: +inf
    [Infinity, 0x7f80],
  ])('bf16(%d) = %s', (value, bits) => {
    expect(bf16Bits(value)).toBe(bits);
  });

  it('keeps NaN a NaN', () => {
    expect(Number.isNaN(bf16FromBits(bf16Bits(NaN)))).toBe(true);
  });

  it('rounds to the nearest bf16 value', () => {
    fc.assert(
      fc.property(
        fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(-1e30), max: Math.fround(1e30) }),
        (v) => {
          const r = roundToDtype(v, 'BF16');
          const bits = bf16Bits(v);
          const neighbours = [bf16FromBits(bits - 1), bf16FromBits(bits + 1)];
          for (const n of neighbours.filter((x) => !Number.isNaN(x)))
            expect(Math.abs(n - Math.fround(v))).toBeGreaterThanOrEqual(Math.abs(r - Math.fround(v)));
        },
      ),
      { numRuns: 20_000 },
    );
  });
});

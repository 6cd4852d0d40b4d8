/**
 * Floating-point storage formats used by safetensors fixtures: f32, f16 (IEEE binary16) and
 * bf16 (the top 16 bits of an f32). Conversions from f32 round to nearest, ties to even, as
 * PyTorch's `.to(torch.float16)` / `.to(torch.bfloat16)` do; NaN stays NaN, overflow becomes ±inf.
 */

export const DTYPES = ['F32', 'F16', 'BF16'] as const;
export type Dtype = (typeof DTYPES)[number];

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<Dtype, number>> = { F32: 4, F16: 2, BF16: 2 };

/** `f32|f16|bf16` (CLI spelling) or `F32|F16|BF16` (safetensors spelling) to the safetensors name. */
export function parseDtype(text: string): Dtype {
  const upper = text.toUpperCase();
  if ((DTYPES as readonly string[]).includes(upper)) return upper as Dtype;
  throw new Error(`unknown dtype "${text}" (expected f32, f16 or bf16)`);
}

/** The `torch_dtype` that config.json uses for a weight dtype. */
export function torchDtypeName(dtype: Dtype): string {
  return { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype];
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bit pattern of `Math.fround(value)`. */
export function f32Bits(value: number): number {
  f32[0] = value;
  return u32[0]!;
}

export function f32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

/** binary16 bits of `value`, first rounded to f32 and then to f16 (round to nearest even). */
export function f16Bits(value: number): number {
  const x = f32Bits(value);
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa === 0 ? 0 : 0x200);
  const e = exponent - 127 + 15; // f16 biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal in f16: count units of 2^-24. Below 2^-25 everything rounds to zero.
    const shift = 14 - e;
    if (shift > 24) return sign;
    const full = mantissa | 0x800000;
    let q = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && (q & 1) === 1)) q += 1;
    return sign | q; // q may reach 0x400: the smallest normal, which is correct
  }
  let q = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (q & 1) === 1)) q += 1; // a carry may give inf: correct
  return sign | q;
}

export function f16FromBits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** bfloat16 bits of `value`, first rounded to f32 and then to bf16 (round to nearest even). */
export function bf16Bits(value: number): number {
  const x = f32Bits(value);
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return ((x >>> 16) & 0x8000) | 0x7fc0;
  const lsb = (x >>> 16) & 1;
  return ((x + 0x7fff + lsb) >>> 16) & 0xffff;
}

export function bf16FromBits(bits: number): number {
  return f32FromBits((bits & 0xffff) << 16);
}

/** The value a weight really has once stored in `dtype` (what a reader of the file sees). */
export function roundToDtype(value: number, dtype: Dtype): number {
  switch (dtype) {
    case 'F32':
      return Math.fround(value);
    case 'F16':
      return f16FromBits(f16Bits(value));
    case 'BF16':
      return bf16FromBits(bf16Bits(value));
  }
}

/** Little-endian bytes of `values` in `dtype`. */
export function encode(values: ArrayLike<number>, dtype: Dtype): Uint8Array {
  const bytes = new Uint8Array(values.length * DTYPE_SIZE[dtype]);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (dtype === 'F32') view.setFloat32(i * 4, v, true);
    else view.setUint16(i * 2, dtype === 'F16' ? f16Bits(v) : bf16Bits(v), true);
  }
  return bytes;
}

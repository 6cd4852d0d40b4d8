/**
 * Seeded randomness for the placement simulation: a 32-bit string hash (MurmurHash3 x86_32, used
 * for ring positions), SplitMix32 to expand a seed, and xoshiro128** as the generator. No
 * `Math.random` anywhere in placement: a run is a function of its seed.
 */

/** MurmurHash3 x86_32 over the string's UTF-16 code units (two units per 32-bit block). */
export function hash32(text: string, seed = 0): number {
  let h = seed >>> 0;
  const length = text.length;
  let i = 0;
  for (; i + 1 < length; i += 2) {
    let k = (text.charCodeAt(i) & 0xffff) | ((text.charCodeAt(i + 1) & 0xffff) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < length) {
    let k = text.charCodeAt(i) & 0xffff;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= length * 2;
  return mix32(h);
}

/** MurmurHash3's finaliser: a bijection on 32-bit words with full avalanche. */
export function mix32(value: number): number {
  let h = value | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A uniform generator: `next()` is a 32-bit unsigned integer, `float()` is in [0, 1). */
export interface Random {
  next(): number;
  float(): number;
  /** An integer in [0, bound), bound ≤ 2³². */
  below(bound: number): number;
}

/** xoshiro128** (Blackman and Vigna), state seeded by SplitMix32 so that any seed, 0 included, works. */
export function xoshiro128(seed: number): Random {
  let z = seed >>> 0;
  const splitmix = (): number => {
    z = (z + 0x9e3779b9) | 0;
    let t = z ^ (z >>> 16);
    t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15;
    t = Math.imul(t, 0x735a2d97);
    return (t ^ (t >>> 15)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  const next = (): number => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return r;
  };
  return {
    next,
    float: () => next() / 4294967296,
    below: (bound) => Math.floor((next() / 4294967296) * bound),
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

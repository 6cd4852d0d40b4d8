/**
 * The safetensors header parse keeps inside the file (length, cap, offsets, overlaps, dtypes),
 * and adapter names cannot leave the store.
 */
import { describe, expect, it } from 'vitest';
import { parseAdapterName } from './adapters.controller.js';
import { MAX_HEADER_BYTES, parseAdapterConfig, parseSafetensorsHeader } from './adapter-validation.js';

function safetensors(header: unknown, dataBytes: number, headerLen?: bigint): Uint8Array {
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + dataBytes);
  out.writeBigUInt64LE(headerLen ?? BigInt(json.length), 0);
  json.copy(out, 8);
  return out;
}
const t = (begin: number, end: number, shape = [1, (end - begin) / 4], dtype = 'F32') => ({
  dtype,
  shape,
  data_offsets: [begin, end],
});
const error = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected an error');
};

describe('parseSafetensorsHeader', () => {
  it('reads a valid header', () => {
    const tensors = parseSafetensorsHeader(
      safetensors({ __metadata__: { format: 'pt' }, a: t(0, 8), b: t(8, 16) }, 16),
    );
    expect([...tensors.keys()]).toEqual(['a', 'b']);
  });

  it.each([
    ['a file shorter than the length prefix', new Uint8Array(4), /truncated/],
    ['a header length over the cap', safetensors({}, 0, BigInt(MAX_HEADER_BYTES) + 1n), /header too large/],
    ['a header length past the end of the file', safetensors({}, 0, 1000n), /truncated/],
    [
      'a header that is not JSON',
      Buffer.concat([Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{x}')]),
      /invalid JSON/,
    ],
    ['a tensor past the data', safetensors({ a: t(0, 16) }, 8), /truncated: tensor a .*out of bounds/],
    ['overlapping tensors', safetensors({ a: t(0, 8), b: t(4, 12) }, 12), /tensor b overlaps tensor a/],
    [
      'an unsupported dtype',
      safetensors({ a: t(0, 8, [2], 'I32') }, 8),
      /tensor a: dtype "I32" is not supported/,
    ],
    [
      'a shape that does not match the byte range',
      safetensors({ a: t(0, 8, [3]) }, 8),
      /tensor a: shape \[3\]/,
    ],
  ])('refuses %s', (_what, bytes, message) => {
    expect(error(() => parseSafetensorsHeader(bytes))).toMatch(message);
  });
});

describe('parseAdapterConfig', () => {
  const config = (over: Record<string, unknown>): Uint8Array =>
    Buffer.from(
      JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'], ...over }),
    );
  it.each([
    [{ peft_type: 'IA3' }, /peft_type "IA3" is not supported/],
    [{ r: 0 }, /rank/],
    [{ use_dora: true }, /use_dora is not supported/],
    [{ bias: 'all' }, /bias "all" is not supported/],
    [{ target_modules: ['lm_head'] }, /embedding LoRA/],
    [{ target_modules: ['c_attn'] }, /target module 'c_attn' is not supported/],
  ])('refuses %j', (over, message) => {
    expect(error(() => parseAdapterConfig(config(over)))).toMatch(message);
  });
  it('accepts a plain LoRA config', () => {
    expect(parseAdapterConfig(config({}))).toEqual({ rank: 4, alpha: 8, rankPattern: {} });
  });
});

describe('parseAdapterName', () => {
  it.each(['acme/legal-ur', 'a/b', 'a1/b.c_d-e'])('accepts %s', (name) => {
    expect(parseAdapterName(name)).toBeDefined();
  });
  it.each([
    '../x',
    'A/B',
    'a/b/c',
    'a/..',
    'a/b..c',
    '/a',
    'a/',
    '.a/b',
    'a',
    'a\\b/c',
    'a /b',
    `a/${'x'.repeat(65)}`,
  ])('refuses %j', (name) => {
    expect(parseAdapterName(name)).toBeUndefined();
  });
});

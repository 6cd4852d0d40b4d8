/**
 * Writes the safetensors format (https://huggingface.co/docs/safetensors): an 8-byte
 * little-endian header length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin,
 * end]}, "__metadata__": {...}}` padded with spaces to a multiple of 8, then the raw tensor bytes;
 * offsets are relative to the start of the data section.
 */
import { DTYPE_SIZE, encode, type Dtype } from './dtype.ts';

export interface TensorEntry {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  /** Row-major values, as f64 numbers; converted to `dtype` on write. */
  readonly values: ArrayLike<number>;
}

export interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** The header object and data section before serialisation, for corpora that want to corrupt them. */
export interface SafetensorsParts {
  header: Record<string, HeaderEntry | Record<string, string>>;
  data: Uint8Array;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Lays tensors out back to back, in the given order. */
export function buildSafetensorsParts(
  tensors: readonly TensorEntry[],
  metadata: Readonly<Record<string, string>> = { format: 'pt' },
): SafetensorsParts {
  const chunks: Uint8Array[] = [];
  const header: SafetensorsParts['header'] = { __metadata__: { ...metadata } };
  let offset = 0;
  for (const t of tensors) {
    const count = elementCount(t.shape);
    if (count !== t.values.length) {
      throw new Error(
        `tensor ${t.name}: shape [${t.shape.join(', ')}] holds ${count} values, got ${t.values.length}`,
      );
    }
    const bytes = encode(t.values, t.dtype);
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  const data = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  return { header, data };
}

/** Serialises a header object (any JSON-able value, or a raw string) and a data section. */
export function serializeSafetensors(header: unknown, data: Uint8Array): Uint8Array {
  let json = typeof header === 'string' ? header : JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

export function encodeSafetensors(
  tensors: readonly TensorEntry[],
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const { header, data } = buildSafetensorsParts(tensors, metadata);
  return serializeSafetensors(header, data);
}

/** Size in bytes of a tensor's data in `dtype`. */
export function tensorBytes(shape: readonly number[], dtype: Dtype): number {
  return elementCount(shape) * DTYPE_SIZE[dtype];
}

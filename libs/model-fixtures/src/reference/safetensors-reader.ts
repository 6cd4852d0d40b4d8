/**
 * A deliberately separate safetensors reader for the reference forward pass: it shares no code
 * with the fixture writer (f16 goes through V8's DataView.getFloat16, bf16 through a bit shift),
 * so a bug in one cannot hide in the other. Every value is widened to f64.
 */
import { readFile } from 'node:fs/promises';

export interface Tensor {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

type Float16View = DataView & { getFloat16(byteOffset: number, littleEndian: boolean): number };

export async function readSafetensors(path: string): Promise<Map<string, Tensor>> {
  const file = await readFile(path);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength) as Float16View;
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLength;
  const tensors = new Map<string, Tensor>();
  const scratch = new DataView(new ArrayBuffer(4));
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const count = info.shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(count);
    const start = base + info.data_offsets[0];
    for (let i = 0; i < count; i++) {
      switch (info.dtype) {
        case 'F32':
          data[i] = view.getFloat32(start + 4 * i, true);
          break;
        case 'F16':
          data[i] = view.getFloat16(start + 2 * i, true);
          break;
        case 'BF16':
          scratch.setUint32(0, view.getUint16(start + 2 * i, true) << 16, true);
          data[i] = scratch.getFloat32(0, true);
          break;
        default:
          throw new Error(
            `${path}: tensor ${name} has dtype ${info.dtype}, which the reference does not read`,
          );
      }
    }
    tensors.set(name, { shape: info.shape, data });
  }
  return tensors;
}

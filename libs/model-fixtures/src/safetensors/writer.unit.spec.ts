import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../reference/safetensors-reader.ts';
import { roundToDtype, type Dtype } from './dtype.ts';
import { encodeSafetensors } from './writer.ts';

describe('safetensors writer', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'safetensors-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lays out an 8-byte length, a space-padded JSON header and contiguous data', () => {
    const bytes = encodeSafetensors(
      [
        { name: 'a', dtype: 'F32', shape: [2, 3], values: [1, 2, 3, 4, 5, 6] },
        { name: 'b', dtype: 'BF16', shape: [3], values: [1, -1, 0.5] },
      ],
      { format: 'pt' },
    );
    const view = new DataView(bytes.buffer);
    const n = Number(view.getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const text = Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8');
    expect(text).toMatch(/} *$/);
    expect(JSON.parse(text)).toEqual({
      __metadata__: { format: 'pt' },
      a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
      b: { dtype: 'BF16', shape: [3], data_offsets: [24, 30] },
    });
    expect(bytes.length).toBe(8 + n + 30);
  });

  it.each<Dtype>(['F32', 'F16', 'BF16'])(
    'round-trips %s tensors through an independent reader',
    async (dtype) => {
      const values = Array.from({ length: 35 }, (_, i) => Math.sin(i * 1.7) * 3 + i * 1e-3);
      const path = join(dir, `${dtype}.safetensors`);
      await writeFile(
        path,
        encodeSafetensors([
          { name: 'w', dtype, shape: [5, 7], values },
          { name: 'scalar', dtype, shape: [], values: [0.25] },
        ]),
      );
      const read = await readSafetensors(path);
      expect(read.get('w')?.shape).toEqual([5, 7]);
      expect(Array.from(read.get('w')!.data)).toEqual(values.map((v) => roundToDtype(v, dtype)));
      expect(Array.from(read.get('scalar')!.data)).toEqual([0.25]);
    },
  );

  it('rejects values that do not fill the shape', () => {
    expect(() => encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [2, 2], values: [1, 2, 3] }])).toThrow(
      /shape \[2, 2\]/,
    );
  });
});

/**
 * A corpus of broken models and adapters, one folder per defect, each next to the words the
 * engine's error message must contain. Every defect is made from a valid file by one change, so
 * a loader that rejects an item has rejected it for the named reason, not for an unrelated one.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { adapterConfig, type AdapterSpec } from '../adapter/spec.ts';
import { adapterTensors, baseShapeOfSpec } from '../adapter/write.ts';
import type { ModelSpec } from '../model/spec.ts';
import { writeJson, writeModel } from '../model/write.ts';
import { modelTensors } from '../model/weights.ts';
import {
  buildSafetensorsParts,
  serializeSafetensors,
  type HeaderEntry,
  type TensorEntry,
} from '../safetensors/writer.ts';

export interface MalformedItem {
  readonly name: string;
  readonly kind: 'model' | 'adapter';
  /** Model folder to load, relative to the corpus folder. */
  readonly model: string;
  /** Adapter folder to load on top of `model` (adapter items only). */
  readonly adapter?: string;
  readonly defect: string;
  readonly expect: {
    /** The message contains at least one of these (case-insensitive). */
    readonly anyOf: readonly string[];
    /** The file the message must name (its base name). */
    readonly file?: string;
    /** The tensor the message must name. */
    readonly tensor?: string;
  };
}

export interface MalformedManifest {
  readonly version: 1;
  readonly items: readonly MalformedItem[];
}

export const MALFORMED_BASE: ModelSpec = {
  family: 'llama',
  hidden: 32,
  layers: 2,
  heads: 2,
  kvHeads: 1,
  intermediate: 64,
  vocab: 64,
  dtype: 'F32',
  seed: 9,
};

const ADAPTER: AdapterSpec = { rank: 4, alpha: 8, modules: ['q_proj', 'v_proj'], seed: 901 };

type Header = Record<string, HeaderEntry | Record<string, string>>;

/** One defect: writes its folder (given the valid base at `base/`) and says what to expect. */
interface Defect {
  readonly name: string;
  readonly kind: 'model' | 'adapter';
  readonly defect: string;
  readonly expect: MalformedItem['expect'];
  write(dir: string): Promise<void>;
}

const MODEL_FILE = 'model.safetensors';
const ADAPTER_FILE = 'adapter_model.safetensors';
const Q1 = 'model.layers.1.self_attn.q_proj.weight';
const LORA_V0_B = 'base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight';
const LORA_Q0_A = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';

function entry(header: Header, name: string): HeaderEntry {
  const e = header[name];
  if (e === undefined || !('data_offsets' in e)) throw new Error(`no tensor ${name}`);
  return e as HeaderEntry;
}

/** Writes a model folder whose weights file is `edit`ed from the valid one. */
async function corruptModel(
  dir: string,
  edit: (
    parts: { header: Header; data: Uint8Array },
    tensors: TensorEntry[],
  ) => Uint8Array | { header: unknown; data: Uint8Array },
): Promise<void> {
  await writeModel(dir, MALFORMED_BASE);
  const tensors = modelTensors(MALFORMED_BASE);
  const result = edit(buildSafetensorsParts(tensors), tensors);
  const bytes = result instanceof Uint8Array ? result : serializeSafetensors(result.header, result.data);
  await writeFile(join(dir, MODEL_FILE), bytes);
}

/** Writes an adapter folder with an edited config and/or an edited weights file. */
async function corruptAdapter(
  dir: string,
  edit: {
    config?: (config: Record<string, unknown>) => void;
    tensors?: (tensors: TensorEntry[]) => TensorEntry[];
    file?: (bytes: Uint8Array) => Uint8Array;
    spec?: Partial<AdapterSpec>;
  },
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const spec = { ...ADAPTER, ...edit.spec };
  const config = adapterConfig(spec);
  edit.config?.(config);
  await writeJson(join(dir, 'adapter_config.json'), config);
  let tensors = adapterTensors(spec, baseShapeOfSpec(MALFORMED_BASE));
  if (edit.tensors) tensors = edit.tensors(tensors);
  const { header, data } = buildSafetensorsParts(tensors);
  let bytes = serializeSafetensors(header, data);
  if (edit.file) bytes = edit.file(bytes);
  await writeFile(join(dir, ADAPTER_FILE), bytes);
}

const DEFECTS: readonly Defect[] = [
  {
    name: 'model-truncated-file',
    kind: 'model',
    defect: 'model.safetensors cut to 70% of its length: the last tensors point past the end of the file',
    expect: { anyOf: ['truncated'], file: MODEL_FILE },
    write: (dir) =>
      corruptModel(dir, ({ header, data }) => {
        const whole = serializeSafetensors(header, data);
        return whole.subarray(0, Math.floor(whole.length * 0.7));
      }),
  },
  {
    name: 'model-huge-header-length',
    kind: 'model',
    defect: 'the 8-byte header length says 2^40 bytes',
    expect: { anyOf: ['header too large'], file: MODEL_FILE },
    write: (dir) =>
      corruptModel(dir, ({ header, data }) => {
        const whole = serializeSafetensors(header, data);
        new DataView(whole.buffer, whole.byteOffset).setBigUint64(0, 2n ** 40n, true);
        return whole;
      }),
  },
  {
    name: 'model-bad-json-header',
    kind: 'model',
    defect: 'the header is not valid JSON (an object cut short)',
    expect: { anyOf: ['invalid JSON'], file: MODEL_FILE },
    write: (dir) =>
      corruptModel(dir, ({ header, data }) => {
        const json = JSON.stringify(header);
        return { header: `${json.slice(0, Math.floor(json.length / 2))}`, data };
      }),
  },
  {
    name: 'model-overlapping-offsets',
    kind: 'model',
    defect: `${Q1} starts 16 bytes before the end of the tensor stored before it`,
    expect: { anyOf: ['overlap'], file: MODEL_FILE },
    write: (dir) =>
      corruptModel(dir, ({ header, data }) => {
        const e = entry(header, Q1);
        e.data_offsets = [e.data_offsets[0] - 16, e.data_offsets[1] - 16];
        return { header, data };
      }),
  },
  {
    name: 'model-out-of-range-offsets',
    kind: 'model',
    defect: 'model.norm.weight has data_offsets beyond the end of the data section',
    expect: { anyOf: ['out of bounds'], file: MODEL_FILE, tensor: 'model.norm.weight' },
    write: (dir) =>
      corruptModel(dir, ({ header, data }) => {
        const e = entry(header, 'model.norm.weight');
        const size = e.data_offsets[1] - e.data_offsets[0];
        e.data_offsets = [data.length + 1024, data.length + 1024 + size];
        return { header, data };
      }),
  },
  {
    name: 'model-wrong-tensor-shape',
    kind: 'model',
    defect: `${Q1} is [16, 64] instead of [32, 32] (same byte size, wrong shape)`,
    expect: { anyOf: ['shape'], file: MODEL_FILE, tensor: Q1 },
    write: (dir) =>
      corruptModel(dir, ({ header, data }) => {
        entry(header, Q1).shape = [16, 64];
        return { header, data };
      }),
  },
  {
    name: 'model-unknown-dtype',
    kind: 'model',
    defect: 'model.norm.weight has dtype "F12", which no safetensors reader knows',
    expect: { anyOf: ['dtype'], file: MODEL_FILE, tensor: 'model.norm.weight' },
    write: (dir) =>
      corruptModel(dir, ({ header, data }) => {
        entry(header, 'model.norm.weight').dtype = 'F12';
        return { header, data };
      }),
  },
  {
    name: 'model-missing-tensor',
    kind: 'model',
    defect: 'model.layers.1.mlp.down_proj.weight is absent from the weights',
    expect: { anyOf: ['missing tensor'], tensor: 'model.layers.1.mlp.down_proj.weight' },
    write: (dir) =>
      corruptModel(dir, (_parts, tensors) => {
        const kept = tensors.filter((t) => t.name !== 'model.layers.1.mlp.down_proj.weight');
        return buildSafetensorsParts(kept);
      }),
  },
  {
    name: 'adapter-truncated-file',
    kind: 'adapter',
    defect: 'adapter_model.safetensors cut to 60% of its length',
    expect: { anyOf: ['truncated'], file: ADAPTER_FILE },
    write: (dir) =>
      corruptAdapter(dir, { file: (bytes) => bytes.subarray(0, Math.floor(bytes.length * 0.6)) }),
  },
  {
    name: 'adapter-layer-out-of-range',
    kind: 'adapter',
    defect: 'the adapter has tensors for layer 2 of a 2-layer base (layers are 0 and 1)',
    expect: { anyOf: ['layer'], file: ADAPTER_FILE },
    write: (dir) =>
      corruptAdapter(dir, {
        tensors: (tensors) => [
          ...tensors,
          ...tensors
            .filter((t) => t.name.includes('.layers.1.'))
            .map((t) => ({ ...t, name: t.name.replace('.layers.1.', '.layers.2.') })),
        ],
      }),
  },
  {
    name: 'adapter-rank-zero',
    kind: 'adapter',
    defect: 'r is 0 and the lora tensors have a zero-sized rank dimension',
    expect: { anyOf: ['rank'] },
    write: (dir) =>
      corruptAdapter(dir, {
        config: (c) => {
          c['r'] = 0;
        },
        tensors: (tensors) =>
          tensors.map((t) => ({
            ...t,
            shape: t.name.includes('lora_A') ? [0, t.shape[1]!] : [t.shape[0]!, 0],
            values: [],
          })),
      }),
  },
  {
    name: 'adapter-rank-mismatch',
    kind: 'adapter',
    defect: 'adapter_config.json says r = 8 but the tensors have rank 4 (and no rank_pattern)',
    expect: { anyOf: ['rank', 'shape'] },
    write: (dir) =>
      corruptAdapter(dir, {
        config: (c) => {
          c['r'] = 8;
        },
      }),
  },
  {
    name: 'adapter-wrong-shape',
    kind: 'adapter',
    defect: `${LORA_Q0_A} is [4, 33]: its input size does not match the base q_proj (32)`,
    expect: { anyOf: ['shape'], tensor: LORA_Q0_A },
    write: (dir) =>
      corruptAdapter(dir, {
        tensors: (tensors) =>
          tensors.map((t) =>
            t.name === LORA_Q0_A ? { ...t, shape: [4, 33], values: new Float64Array(4 * 33).fill(0.01) } : t,
          ),
      }),
  },
  {
    name: 'adapter-missing-lora-b',
    kind: 'adapter',
    defect: `${LORA_V0_B} is absent (its lora_A is present)`,
    expect: { anyOf: ['missing tensor'], tensor: LORA_V0_B },
    write: (dir) =>
      corruptAdapter(dir, { tensors: (tensors) => tensors.filter((t) => t.name !== LORA_V0_B) }),
  },
  {
    name: 'adapter-use-dora',
    kind: 'adapter',
    defect: 'use_dora is true (DoRA needs magnitude vectors and a different forward)',
    expect: { anyOf: ['not supported'], file: 'adapter_config.json' },
    write: (dir) =>
      corruptAdapter(dir, {
        config: (c) => {
          c['use_dora'] = true;
        },
      }),
  },
  {
    name: 'adapter-modules-to-save',
    kind: 'adapter',
    defect: 'modules_to_save lists lm_head (full replacement weights, not LoRA)',
    expect: { anyOf: ['not supported'], file: 'adapter_config.json' },
    write: (dir) =>
      corruptAdapter(dir, {
        config: (c) => {
          c['modules_to_save'] = ['lm_head'];
        },
      }),
  },
  {
    name: 'adapter-fan-in-fan-out',
    kind: 'adapter',
    defect: 'fan_in_fan_out is true (GPT-2 Conv1D layout)',
    expect: { anyOf: ['not supported'], file: 'adapter_config.json' },
    write: (dir) =>
      corruptAdapter(dir, {
        config: (c) => {
          c['fan_in_fan_out'] = true;
        },
      }),
  },
  {
    name: 'adapter-pickle-bin',
    kind: 'adapter',
    defect: 'the weights are a pickle adapter_model.bin (torch.save zip) and there is no safetensors file',
    expect: { anyOf: ['not supported'], file: 'adapter_model.bin' },
    write: async (dir) => {
      await mkdir(dir, { recursive: true });
      await writeJson(join(dir, 'adapter_config.json'), adapterConfig(ADAPTER));
      // A zip local-file header naming archive/data.pkl, then a pickle that would run os.system.
      const pickle = Buffer.from(
        '\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.',
        'latin1',
      );
      const name = Buffer.from('archive/data.pkl');
      const zipHeader = Buffer.alloc(30);
      zipHeader.writeUInt32LE(0x04034b50, 0);
      zipHeader.writeUInt32LE(pickle.length, 18);
      zipHeader.writeUInt32LE(pickle.length, 22);
      zipHeader.writeUInt16LE(name.length, 26);
      await writeFile(join(dir, 'adapter_model.bin'), Buffer.concat([zipHeader, name, pickle]));
    },
  },
];

function toItem(d: Defect): MalformedItem {
  return d.kind === 'model'
    ? { name: d.name, kind: d.kind, model: d.name, defect: d.defect, expect: d.expect }
    : { name: d.name, kind: d.kind, model: 'base', adapter: d.name, defect: d.defect, expect: d.expect };
}

/** The corpus' items, known without writing anything (for test tables). */
export const MALFORMED_ITEMS: readonly MalformedItem[] = DEFECTS.map(toItem);

/** Writes `base/` (a valid model), one folder per defect and `manifest.json` under `outDir`. */
export async function writeMalformedCorpus(outDir: string): Promise<MalformedManifest> {
  await writeModel(join(outDir, 'base'), MALFORMED_BASE);
  for (const d of DEFECTS) await d.write(join(outDir, d.name));
  const manifest: MalformedManifest = { version: 1, items: MALFORMED_ITEMS };
  await writeJson(join(outDir, 'manifest.json'), manifest);
  return manifest;
}

/**
 * What the gateway can check of a PEFT LoRA upload without the engine: the rules of
 * `adapter_config.json`, a bounded parse of the safetensors header (as native/src/safetensors.cpp
 * does: 8-byte length, a size cap, JSON, dtypes, shapes, offsets inside the file, no overlaps) and
 * every tensor's name, layer and shape against the base model's `config.json` dimensions.
 * Pure functions; each failure is an `AdapterInvalid` whose message names the file and, where it
 * applies, the tensor, with one of the engine's words (`truncated`, `shape`, `rank`, ...).
 */
import { LORA_TARGET_MODULES } from '@longtail/contracts';

export const CONFIG_FILE = 'adapter_config.json';
export const WEIGHTS_FILE = 'adapter_model.safetensors';

/** Largest safetensors JSON header accepted (the engine's cap too). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export type Projection = (typeof LORA_TARGET_MODULES)[number];

export class AdapterInvalid extends Error {
  override readonly name = 'AdapterInvalid';
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message);
  }
}

/** The dimensions of a base model that an adapter must fit. */
export interface BaseShape {
  readonly hidden: number;
  readonly intermediate: number;
  readonly layers: number;
  readonly qOut: number;
  readonly kvOut: number;
}

export interface AdapterConfig {
  readonly rank: number;
  readonly alpha: number;
  readonly rankPattern: Readonly<Record<string, number>>;
}

export interface TensorInfo {
  readonly dtype: 'F32' | 'F16' | 'BF16';
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

/** What an accepted adapter is, for its `adapters.registered` event. */
export interface ValidatedAdapter {
  readonly rank: number;
  readonly targetModules: readonly Projection[];
}

const DTYPE_BYTES = { F32: 4, F16: 2, BF16: 2 } as const;
const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

function parseJson(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new AdapterInvalid(`${file}: invalid JSON (${(err as Error).message})`, file);
  }
}

/** `adapter_config.json`: a plain LoRA (no DoRA, no bias, no modules_to_save, no fan_in_fan_out). */
export function parseAdapterConfig(bytes: Uint8Array): AdapterConfig {
  const f = CONFIG_FILE;
  const c = parseJson(bytes, f);
  if (!isRecord(c)) throw new AdapterInvalid(`${f}: invalid JSON (expected an object)`, f);
  if (c['peft_type'] !== undefined && c['peft_type'] !== 'LORA')
    throw new AdapterInvalid(`${f}: peft_type ${JSON.stringify(c['peft_type'])} is not supported (LORA)`, f);
  if (c['use_dora'] === true) throw new AdapterInvalid(`${f}: use_dora is not supported (DoRA adapters)`, f);
  if (c['fan_in_fan_out'] === true) throw new AdapterInvalid(`${f}: fan_in_fan_out is not supported`, f);
  const toSave = c['modules_to_save'];
  if (toSave !== undefined && toSave !== null && !(Array.isArray(toSave) && toSave.length === 0))
    throw new AdapterInvalid(`${f}: modules_to_save is not supported (${JSON.stringify(toSave)})`, f);
  if (c['bias'] !== undefined && c['bias'] !== 'none')
    throw new AdapterInvalid(`${f}: bias ${JSON.stringify(c['bias'])} is not supported (only "none")`, f);
  if (!isPositiveInt(c['r']))
    throw new AdapterInvalid(`${f}: rank r must be a positive integer, got ${JSON.stringify(c['r'])}`, f);
  if (c['r'] > 4096) throw new AdapterInvalid(`${f}: rank r ${c['r']} is over 4096`, f);
  if (typeof c['lora_alpha'] !== 'number' || !Number.isFinite(c['lora_alpha']))
    throw new AdapterInvalid(`${f}: lora_alpha must be a number`, f);
  const targets = c['target_modules'];
  if (Array.isArray(targets)) {
    if (targets.length === 0) throw new AdapterInvalid(`${f}: target_modules is empty`, f);
    for (const t of targets) {
      if (typeof t !== 'string') throw new AdapterInvalid(`${f}: target_modules must be strings`, f);
      const leaf = t.split('.').pop() ?? t;
      if (leaf === 'embed_tokens' || leaf === 'lm_head')
        throw new AdapterInvalid(
          `${f}: target module '${t}': embedding LoRA (embed_tokens / lm_head) is not supported`,
          f,
        );
      if (!(LORA_TARGET_MODULES as readonly string[]).includes(leaf))
        throw new AdapterInvalid(
          `${f}: target module '${t}' is not supported (${LORA_TARGET_MODULES.join(', ')})`,
          f,
        );
    }
  } else if (typeof targets !== 'string' || targets === '') {
    throw new AdapterInvalid(`${f}: target_modules must be a list of module names or a string`, f);
  }
  const rankPattern: Record<string, number> = {};
  const rp = c['rank_pattern'];
  if (rp !== undefined && rp !== null) {
    if (!isRecord(rp)) throw new AdapterInvalid(`${f}: rank_pattern must be an object`, f);
    for (const [k, v] of Object.entries(rp)) {
      if (!isPositiveInt(v) || v > 4096)
        throw new AdapterInvalid(`${f}: rank_pattern[${k}] must be a rank in 1..4096`, f);
      rankPattern[k] = v;
    }
  }
  return { rank: c['r'], alpha: c['lora_alpha'], rankPattern };
}

/** The safetensors header, bounds-checked against the file's length. */
export function parseSafetensorsHeader(bytes: Uint8Array): Map<string, TensorInfo> {
  const f = WEIGHTS_FILE;
  if (bytes.length < 8)
    throw new AdapterInvalid(`${f}: truncated (${bytes.length} bytes, no header length)`, f);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES))
    throw new AdapterInvalid(`${f}: header too large (${headerLen} bytes, limit ${MAX_HEADER_BYTES})`, f);
  const dataStart = 8 + Number(headerLen);
  if (dataStart > bytes.length)
    throw new AdapterInvalid(
      `${f}: truncated (header says ${headerLen} bytes, file has ${bytes.length - 8} after the length)`,
      f,
    );
  const header = parseJson(bytes.subarray(8, dataStart), f);
  if (!isRecord(header)) throw new AdapterInvalid(`${f}: invalid JSON header (expected an object)`, f);
  const dataLen = bytes.length - dataStart;
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const bad = (what: string): AdapterInvalid => new AdapterInvalid(`${f}: tensor ${name}: ${what}`, f);
    if (!isRecord(entry)) throw bad('invalid JSON entry');
    const dtype = entry['dtype'];
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16')
      throw bad(`dtype ${JSON.stringify(dtype)} is not supported (F32, F16, BF16)`);
    const shape = entry['shape'];
    if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0))
      throw bad('shape must be a list of non-negative integers');
    const offsets = entry['data_offsets'];
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => typeof o === 'number' && Number.isInteger(o) && o >= 0)
    )
      throw bad('data_offsets must be [begin, end]');
    const [begin, end] = offsets as [number, number];
    if (begin > end) throw bad(`data_offsets [${begin}, ${end}] out of bounds (begin after end)`);
    if (end > dataLen) {
      throw new AdapterInvalid(
        `${f}: truncated: tensor ${name} ends at ${end}, past the ${dataLen} data bytes (out of bounds)`,
        f,
      );
    }
    const elements = (shape as number[]).reduce((a, d) => a * d, 1);
    if (elements * DTYPE_BYTES[dtype] !== end - begin)
      throw bad(
        `shape [${shape.join(', ')}] of ${dtype} needs ${elements * DTYPE_BYTES[dtype]} bytes, data_offsets hold ${end - begin}`,
      );
    tensors.set(name, { dtype, shape: shape as number[], begin, end });
  }
  const spans = [...tensors.entries()]
    .filter(([, t]) => t.end > t.begin)
    .sort(([, a], [, b]) => a.begin - b.begin);
  for (let i = 1; i < spans.length; i++) {
    const [prevName, prev] = spans[i - 1]!;
    const [name, cur] = spans[i]!;
    if (cur.begin < prev.end) throw new AdapterInvalid(`${f}: tensor ${name} overlaps tensor ${prevName}`, f);
  }
  return tensors;
}

/** A base model's dimensions from its HF `config.json`. */
export function baseShapeFromConfig(config: unknown, source: string): BaseShape {
  if (!isRecord(config)) throw new Error(`${source}: expected a JSON object`);
  const int = (key: string): number => {
    const v = config[key];
    if (!isPositiveInt(v)) throw new Error(`${source}: ${key} must be a positive integer`);
    return v;
  };
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const kvHeads = config['num_key_value_heads'] === undefined ? heads : int('num_key_value_heads');
  const headDim =
    config['head_dim'] === undefined || config['head_dim'] === null ? hidden / heads : int('head_dim');
  return {
    hidden,
    intermediate: int('intermediate_size'),
    layers: int('num_hidden_layers'),
    qOut: heads * headDim,
    kvOut: kvHeads * headDim,
  };
}

const TENSOR_NAME =
  /^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.lora_(A|B)\.weight$/;

function projectionShape(base: BaseShape, p: Projection): { in: number; out: number } {
  switch (p) {
    case 'q_proj':
      return { in: base.hidden, out: base.qOut };
    case 'k_proj':
    case 'v_proj':
      return { in: base.hidden, out: base.kvOut };
    case 'o_proj':
      return { in: base.qOut, out: base.hidden };
    case 'gate_proj':
    case 'up_proj':
      return { in: base.hidden, out: base.intermediate };
    case 'down_proj':
      return { in: base.intermediate, out: base.hidden };
  }
}

/** PEFT's pattern lookup: an exact module path, else the first key that is a dotted suffix. */
function patternRank(config: AdapterConfig, modulePath: string): number {
  const p = config.rankPattern;
  if (Object.hasOwn(p, modulePath)) return p[modulePath]!;
  const key = Object.keys(p).find((k) => modulePath === k || modulePath.endsWith(`.${k}`));
  return key === undefined ? config.rank : p[key]!;
}

/** Every tensor is a LoRA A/B of a projection of an existing layer, with the base's shapes. */
export function validateAgainstBase(
  config: AdapterConfig,
  tensors: ReadonlyMap<string, TensorInfo>,
  base: BaseShape,
): ValidatedAdapter {
  const f = WEIGHTS_FILE;
  const modules = new Map<
    string,
    { A?: TensorInfo; B?: TensorInfo; layer: number; projection: Projection; block: string }
  >();
  for (const [name, t] of tensors) {
    const bad = (what: string): AdapterInvalid => new AdapterInvalid(`${f}: tensor ${name}: ${what}`, f);
    if (name.includes('lora_magnitude_vector'))
      throw bad('use_dora is not supported (DoRA magnitude vector)');
    if (name.includes('modules_to_save')) throw bad('modules_to_save is not supported');
    if (name.includes('embed_tokens') || name.includes('lm_head'))
      throw bad('embedding LoRA (embed_tokens / lm_head) is not supported');
    if (name.endsWith('.bias')) throw bad('LoRA bias is not supported');
    const m = TENSOR_NAME.exec(name);
    if (m === null) throw bad('not a LoRA tensor of a supported projection (unexpected name)');
    const layer = Number(m[1]);
    const projection = m[3] as Projection;
    if (layer >= base.layers)
      throw bad(`layer ${layer} is out of range (the base model has ${base.layers} layers)`);
    const key = `${layer}.${projection}`;
    const mod = modules.get(key) ?? { layer, projection, block: m[2]! };
    mod[m[4] as 'A' | 'B'] = t;
    modules.set(key, mod);
  }
  if (modules.size === 0) throw new AdapterInvalid(`${f}: no LoRA tensors (missing tensor)`, f);
  const targets = new Set<Projection>();
  for (const mod of modules.values()) {
    const path = `model.layers.${mod.layer}.${mod.block}.${mod.projection}`;
    const tensorName = (ab: 'A' | 'B'): string => `base_model.model.${path}.lora_${ab}.weight`;
    if (mod.A === undefined) throw new AdapterInvalid(`${f}: missing tensor ${tensorName('A')}`, f);
    if (mod.B === undefined) throw new AdapterInvalid(`${f}: missing tensor ${tensorName('B')}`, f);
    const rank = patternRank(config, path);
    const dims = projectionShape(base, mod.projection);
    const [aRank, aIn] = mod.A.shape;
    const [bOut, bRank] = mod.B.shape;
    if (mod.A.shape.length !== 2 || aIn !== dims.in)
      throw new AdapterInvalid(
        `${f}: tensor ${tensorName('A')}: shape [${mod.A.shape.join(', ')}] does not fit the base ${mod.projection} (want [${rank}, ${dims.in}])`,
        f,
      );
    if (mod.B.shape.length !== 2 || bOut !== dims.out)
      throw new AdapterInvalid(
        `${f}: tensor ${tensorName('B')}: shape [${mod.B.shape.join(', ')}] does not fit the base ${mod.projection} (want [${dims.out}, ${rank}])`,
        f,
      );
    if (aRank !== rank || bRank !== rank)
      throw new AdapterInvalid(
        `${f}: tensor ${tensorName('A')}: rank ${aRank} (shape [${mod.A.shape.join(', ')}]) does not match r = ${rank} from ${CONFIG_FILE}`,
        f,
      );
    targets.add(mod.projection);
  }
  return { rank: config.rank, targetModules: LORA_TARGET_MODULES.filter((p) => targets.has(p)) };
}

/** The whole check: config rules, weights header, shapes against the base. */
export function validateAdapter(
  configBytes: Uint8Array,
  weights: Uint8Array,
  base: BaseShape,
): ValidatedAdapter {
  const config = parseAdapterConfig(configBytes);
  const tensors = parseSafetensorsHeader(weights);
  return validateAgainstBase(config, tensors, base);
}

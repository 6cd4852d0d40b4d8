/**
 * @longtail/model-fixtures: tiny deterministic Llama-family models and PEFT LoRA adapters written
 * in the real on-disk formats, a corpus of malformed files, and a naive f64 reference forward
 * pass that the engine's batched paths are tested against.
 */
export {
  DTYPES,
  parseDtype,
  f16Bits,
  f16FromBits,
  bf16Bits,
  bf16FromBits,
  roundToDtype,
  type Dtype,
} from './safetensors/dtype.ts';
export {
  encodeSafetensors,
  buildSafetensorsParts,
  serializeSafetensors,
  type TensorEntry,
  type HeaderEntry,
} from './safetensors/writer.ts';
export { LLAMA3_VOCAB, modelConfig, type ModelSpec, type RopeScaling } from './model/spec.ts';
export { writeModel, type WrittenModel } from './model/write.ts';
export {
  PROJECTIONS,
  moduleLora,
  type AdapterSpec,
  type BaseShape,
  type Projection,
} from './adapter/spec.ts';
export { writeAdapter, readBaseShape, baseShapeOfSpec, type WrittenAdapter } from './adapter/write.ts';
export {
  writeFixtureSet,
  STANDARD_MODELS,
  STANDARD_ADAPTERS,
  TOKENIZER_MODEL,
  TOKENIZER_ADAPTERS,
  type FixtureManifest,
  type ModelFixture,
  type AdapterFixture,
} from './corpus/standard.ts';
export {
  writeMalformedCorpus,
  MALFORMED_ITEMS,
  type MalformedItem,
  type MalformedManifest,
} from './corpus/malformed.ts';
export {
  loadReferenceModel,
  loadReferenceAdapter,
  mergeAdapter,
  referenceLogits,
  ropeInverseFrequencies,
  type ReferenceModel,
  type ReferenceAdapter,
} from './reference/forward.ts';

/**
 * Comparing engine logits with the naive reference. The tolerance is one number per comparison:
 *
 *   relative error = max_i |engine_i − reference_i| / max(max_i |reference_i|, 1e-6)
 *
 * i.e. the worst absolute deviation measured against the size of the largest logit, so a logit
 * near zero cannot blow the ratio up. The engine computes in f32 (weights of any dtype are read as
 * stored); the reference computes in f64 from the same stored (rounded) weights.
 */
import {
  loadReferenceAdapter,
  loadReferenceModel,
  mergeAdapter,
  referenceLogits,
  type ReferenceModel,
} from '@longtail/model-fixtures';

/** Engine vs reference. */
export const REFERENCE_TOLERANCE = 1e-4;
/** Engine vs engine: the same sequence in different batches or chunkings. */
export const SELF_TOLERANCE = 1e-5;

export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i]! - expected[i]!);
    worst = Number.isNaN(diff) ? Infinity : Math.max(worst, diff);
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return worst / Math.max(scale, 1e-6);
}

/** Loads each model once and merges each (model, adapter) pair once. */
export class ReferenceRunner {
  readonly #models = new Map<string, Promise<ReferenceModel>>();

  model(modelDir: string, adapterDir: string | null): Promise<ReferenceModel> {
    const key = `${modelDir}\u0000${adapterDir ?? ''}`;
    let found = this.#models.get(key);
    if (found === undefined) {
      found =
        adapterDir === null
          ? loadReferenceModel(modelDir)
          : Promise.all([this.model(modelDir, null), loadReferenceAdapter(adapterDir)]).then(([m, a]) =>
              mergeAdapter(m, a),
            );
      this.#models.set(key, found);
    }
    return found;
  }

  async logits(
    modelDir: string,
    tokens: readonly number[],
    adapterDir: string | null = null,
  ): Promise<Float64Array> {
    return referenceLogits(await this.model(modelDir, adapterDir), tokens);
  }
}

/** A deterministic token sequence in [0, vocab) that includes both ends of the vocabulary. */
export function tokenSequence(vocab: number, length: number, seed: number): number[] {
  const tokens = [0, vocab - 1];
  let x = (seed * 2654435761) >>> 0;
  while (tokens.length < length) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    tokens.push(x % vocab);
  }
  return tokens.slice(0, length);
}

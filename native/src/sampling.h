// Token sampling for one sequence: penalties, temperature, top-k, top-p, min-p, seeded draw, and
// log-probabilities. Deterministic: the draw for output position i depends only on (seed, i) and
// the logits, so the same seed and inputs give the same tokens whatever else shares the batch,
// and recomputation after preemption does not change what was already sampled.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "longtail/runtime.h"

namespace longtail {

struct Sampled {
  int32_t token = -1;
  float logprob = 0.0f;           // of `token`, log-softmax of the raw logits (when requested)
  std::vector<TokenLogprob> top;  // top_logprobs alternatives of the raw distribution, best first
};

class Sampler {
 public:
  // `prompt` feeds the repetition penalty. `params` must have passed validate_sampling.
  Sampler(const SamplingParams& params, const int32_t* prompt, int n_prompt, int vocab);

  // Chooses the next token from raw logits [vocab] and records it (penalty counts, position).
  // `logits` is not modified. Its [vocab] scratch is per thread (see sampling.cpp), so a request
  // costs no vocab-sized allocation.
  Sampled next(const float* logits);

  int generated() const { return generated_; }
  const SamplingParams& params() const { return p_; }

 private:
  SamplingParams p_;
  int vocab_ = 0;
  int generated_ = 0;
  std::unordered_map<int32_t, int> output_counts_;  // token → times generated
  // Distinct prompt ∪ output tokens (repetition penalty): the first n_prompt_seen_ are the
  // prompt's, sorted; then each output token not among them, in the order first generated.
  std::vector<int32_t> seen_;
  size_t n_prompt_seen_ = 0;
};

}  // namespace longtail

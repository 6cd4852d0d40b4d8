// The batched forward against a naive reference: merged weights W + scale·B·A, one sequence at a
// time, double precision, no batching. Also: a step mixing prefill chunks and decode tokens of
// sequences with different adapters (and none) equals running each sequence alone.
#include <algorithm>

#include "model_internal.h"
#include "reference.h"
#include "test_util.h"

using namespace longtail;
using longtail_test::reference_logits;

static double max_diff(const float* a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

int main() {
  const std::string root = temp_dir("forward");
  struct Case { TinySpec spec; };
  std::vector<TinySpec> specs(4);
  specs[1].qkv_bias = true;
  specs[1].rope = "llama3";
  specs[1].kv_heads = 1;
  specs[2].tied = true;
  specs[2].rope = "linear";
  specs[2].dtype = "BF16";
  specs[3].kv_heads = 4;
  specs[3].dtype = "F16";
  for (size_t si = 0; si < specs.size(); ++si) {
    const TinySpec& spec = specs[si];
    auto model = load_model(write_tiny_model(root + "/m" + std::to_string(si), spec));
    TinyAdapterSpec a1;
    a1.r = 4;
    a1.seed = 11;
    TinyAdapterSpec a2;
    a2.r = 16;
    a2.alpha = 4;
    a2.rslora = true;
    a2.modules = {"q_proj", "v_proj", "down_proj"};
    a2.rank_pattern = {{"v_proj", 2}};
    a2.seed = 12;
    a2.dtype = "BF16";
    auto ad1 = load_adapter(write_tiny_adapter(root + "/a1_" + std::to_string(si), spec, a1), *model);
    auto ad2 = load_adapter(write_tiny_adapter(root + "/a2_" + std::to_string(si), spec, a2), *model);
    const Adapter* adapters[] = {nullptr, ad1.get(), ad2.get(), ad1.get(), nullptr};
    std::vector<std::vector<int32_t>> prompts = {
        {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {7}, {40, 41, 42, 43, 44, 45, 46}, {3, 3, 3, 9, 12, 30, 31, 32, 33, 1, 2, 3, 4}, {49, 0}};
    const int chunks[] = {4, 1, 3, 13, 1};
    const int V = spec.vocab;
    // Reference per sequence.
    std::vector<std::vector<double>> refs;
    for (size_t i = 0; i < prompts.size(); ++i) refs.push_back(reference_logits(*model, adapters[i], prompts[i]));
    // Each sequence alone, whole prompt in one step.
    for (int threads : {1, 2}) {
      EngineOptions eo;
      eo.threads = threads;
      eo.max_tokens_per_step = 64;
      eo.kv_block_tokens = threads == 1 ? 3 : 16;  // 3: block tables interleave across sequences
      Engine engine(*model, eo);
      std::vector<float> logits(size_t(V) * prompts.size());
      for (size_t i = 0; i < prompts.size(); ++i) {
        SeqId id = engine.create_sequence(int(prompts[i].size()));
        StepBatch b;
        b.seqs.push_back({id, prompts[i].data(), int(prompts[i].size()), 0, adapters[i] ? &adapters[i]->view() : nullptr});
        engine.step(b, logits.data());
        CHECK(max_diff(logits.data(), refs[i]) < 2e-4);
        CHECK(engine.sequence_length(id) == int(prompts[i].size()));
      }
      // All together, chunked: steps mix prefill chunks and decode tokens.
      std::vector<SeqId> ids;
      for (size_t i = 0; i < prompts.size(); ++i) ids.push_back(engine.create_sequence(0));  // blocks grow per step
      std::vector<int> done(prompts.size(), 0);
      std::vector<std::vector<float>> outs(prompts.size());
      int steps = 0;
      for (;;) {
        StepBatch b;
        std::vector<size_t> which;
        for (size_t i = 0; i < prompts.size(); ++i) {
          int left = int(prompts[i].size()) - done[i];
          if (left <= 0) continue;
          b.seqs.push_back({ids[i], prompts[i].data() + done[i], std::min(left, chunks[i]), done[i], adapters[i] ? &adapters[i]->view() : nullptr});
          CHECK(engine.reserve(ids[i], done[i] + b.seqs.back().n_tokens));
          which.push_back(i);
        }
        if (b.seqs.empty()) break;
        engine.step(b, logits.data());
        ++steps;
        for (size_t k = 0; k < which.size(); ++k) {
          size_t i = which[k];
          done[i] += b.seqs[k].n_tokens;
          if (done[i] == int(prompts[i].size())) outs[i].assign(logits.begin() + k * V, logits.begin() + (k + 1) * V);
        }
      }
      CHECK(steps == 3);  // longest: 11 tokens in chunks of 4
      for (size_t i = 0; i < prompts.size(); ++i) {
        double d = max_diff(outs[i].data(), refs[i]);
        if (d >= 2e-4) std::fprintf(stderr, "spec %zu seq %zu diff %g\n", si, i, d);
        CHECK(d < 2e-4);
      }
      // Blocks go back to the free list; a step past the reserved blocks is refused.
      const int free_before = engine.kv_blocks_free();
      for (SeqId id : ids) engine.release_sequence(id);
      CHECK(engine.kv_blocks_free() > free_before);
      {
        SeqId t = engine.create_sequence(0);
        StepBatch b;
        b.seqs.push_back({t, prompts[0].data(), int(prompts[0].size()), 0, nullptr});
        EXPECT_ERROR([&] { engine.step(b, logits.data()); }, "reserve first");
        engine.release_sequence(t);
      }
      // Plan errors leave the engine usable.
      StepBatch bad;
      int32_t tok = V;  // out of range
      SeqId s = engine.create_sequence(4);
      bad.seqs.push_back({s, &tok, 1, 0, nullptr});
      EXPECT_ERROR([&] { engine.step(bad, logits.data()); }, "token");
      tok = 1;
      bad.seqs[0].pos = 2;
      EXPECT_ERROR([&] { engine.step(bad, logits.data()); }, "position");
      bad.seqs[0].pos = 0;
      engine.step(bad, logits.data());
      CHECK(engine.sequence_length(s) == 1);
      EXPECT_ERROR([&] { engine.step(bad, logits.data()); }, "position");
    }
  }
  return finish("test_forward");
}

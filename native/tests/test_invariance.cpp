// Batch invariance (EngineOptions::batch_invariant, docs/decisions/0008-batch-invariant-cpu.md):
// a sequence's logits are bitwise the same whatever else is in the step.
//
// 1. Engine: one target sequence (a rank-8 adapter, 37-token prompt, then 6 decode tokens) run
//    alone (whole prompt in one step, 1 thread, KV blocks of 16) and then inside steps of 1..40
//    sequences (2 threads, KV blocks of 3) with mixed adapters of ranks 2..32 and none, some on the
//    target's own adapter next to it (one LoRA segment), the others in prefill chunks of varying
//    length or decoding, and the target's own prompt chunked differently for every batch size.
//    The model has a 32,000-token vocabulary, hidden 72 and intermediate 100 (tails in every
//    kernel). Every logit of the target's last prefill position and of each decode step must be
//    bitwise equal to the alone run. With batch_invariant off the same runs must differ somewhere
//    (the test can fail) and stay within float tolerance of the invariant logits.
// 2. Runtime: seeded sampling (temperature 0.9, top-p 1) of 24 requests on different adapters and
//    seeds: each request's tokens alone equal its tokens in one busy run with a small step budget
//    (chunked prefill, decode and prefill mixed).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "longtail/runtime.h"
#include "test_util.h"

using namespace longtail;

namespace {

std::vector<int32_t> tokens_of(int n, int salt, int vocab) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = int32_t((uint32_t(i) * 2654435761u + uint32_t(salt) * 40503u + 17u) % uint32_t(vocab));
  return p;
}

// A sequence fed step by step: its prompt in chunks of `chunk` tokens, then decode tokens.
struct Feed {
  SeqId id = -1;
  const AdapterView* adapter = nullptr;
  std::vector<int32_t> toks;  // prompt + decode tokens to feed, in order
  int prompt = 0, chunk = 1, at = 0;
  int next_len() const {
    if (at >= int(toks.size())) return 0;
    return at < prompt ? std::min(chunk, prompt - at) : 1;
  }
};

struct Capture {
  std::vector<std::vector<float>> logits;  // the target's logits after its prompt and each decode token
};

constexpr int kPrompt = 37, kDecode = 6;

// Runs the target alone or with `others`; returns the target's logits at the end of its prompt
// and after each decode token. The target sits at index `target_at` of each step (or last).
Capture run(Engine& e, int vocab, Feed target, std::vector<Feed> others, int target_at) {
  Capture cap;
  target.id = e.create_sequence(int(target.toks.size()));
  for (Feed& f : others) f.id = e.create_sequence(int(f.toks.size()));
  std::vector<float> logits(size_t(others.size() + 1) * vocab);
  while (target.next_len() > 0) {
    StepBatch b;
    std::vector<Feed*> in_step;
    for (Feed& f : others) {
      if (f.next_len() > 0) in_step.push_back(&f);
    }
    const int at = std::min(target_at, int(in_step.size()));
    in_step.insert(in_step.begin() + at, &target);
    for (Feed* f : in_step) b.seqs.push_back({f->id, f->toks.data() + f->at, f->next_len(), f->at, f->adapter});
    e.step(b, logits.data());
    for (Feed* f : in_step) f->at += f->next_len();
    if (target.at >= target.prompt) {
      const float* row = logits.data() + size_t(at) * vocab;
      cap.logits.emplace_back(row, row + vocab);
    }
  }
  e.release_sequence(target.id);
  for (Feed& f : others) e.release_sequence(f.id);
  return cap;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

int main() {
  const std::string root = temp_dir("invariance");
  TinySpec spec;
  spec.hidden = 72;
  spec.heads = 4;
  spec.kv_heads = 2;
  spec.inter = 100;
  spec.vocab = 32000;
  spec.seed = 5;
  const std::string mdir = write_tiny_model(root + "/m", spec);
  auto model = load_model(mdir);
  // Adapters: ranks 2, 8, 16, 32, and a rank-8 adapter on two modules only.
  std::vector<std::string> adirs;
  std::vector<std::unique_ptr<Adapter>> adapters;
  const int ranks[] = {2, 8, 16, 32, 8};
  for (int i = 0; i < 5; ++i) {
    TinyAdapterSpec as;
    as.r = ranks[i];
    as.alpha = 2.0 * ranks[i];
    as.seed = unsigned(300 + i);
    if (i == 4) as.modules = {"q_proj", "down_proj"};
    adirs.push_back(write_tiny_adapter(root + "/a" + std::to_string(i), spec, as));
    adapters.push_back(load_adapter(adirs.back(), *model));
  }
  const int V = spec.vocab;

  // --- 1. Engine logits: alone vs steps of 1..40 sequences. ---
  {
    Feed target;
    target.adapter = &adapters[1]->view();
    target.toks = tokens_of(kPrompt + kDecode, 1, V);
    target.prompt = kPrompt;
    // The alone runs: 1 thread, KV blocks of 16, whole prompt in one step; one per mode.
    Capture want[2];
    for (bool invariant : {true, false}) {
      EngineOptions alone_o;
      alone_o.threads = 1;
      alone_o.kv_block_tokens = 16;
      alone_o.max_tokens_per_step = 64;
      alone_o.batch_invariant = invariant;
      Engine alone_e(*model, alone_o);
      Feed whole = target;
      whole.chunk = kPrompt;
      want[invariant ? 0 : 1] = run(alone_e, V, whole, {}, 0);
      CHECK(int(want[invariant ? 0 : 1].logits.size()) == kDecode + 1);
    }

    int mismatched_on = 0, mismatched_off = 0, compared = 0;
    double max_rel_off = 0;
    for (bool invariant : {true, false}) {
      EngineOptions o;
      o.threads = 2;
      o.kv_block_tokens = 3;
      o.max_tokens_per_step = 2048;
      o.max_seqs_per_step = 48;
      o.batch_invariant = invariant;
      Engine e(*model, o);
      CHECK(e.batch_invariant() == invariant);
      for (int B = 1; B <= 40; ++B) {
        Feed t = target;
        t.chunk = 1 + (B * 7) % kPrompt;  // 8, 15, 22, ..., 1, ...: every batch size chunks the prompt its own way
        if (B == 1) t.chunk = kPrompt;
        std::vector<Feed> others;
        for (int i = 0; i + 1 < B; ++i) {
          Feed f;
          const int kind = (i + B) % 7;  // 0..4: adapters, 5: none, 6: the target's adapter
          f.adapter = kind < 5 ? &adapters[kind]->view() : kind == 6 ? target.adapter : nullptr;
          f.prompt = 1 + (i * 5 + B) % 29;
          f.toks = tokens_of(f.prompt + kDecode + kPrompt, 100 + i + 50 * B, V);
          f.chunk = 1 + (i * 3 + B) % 17;
          others.push_back(f);
        }
        const Capture got = run(e, V, t, others, B % 3 == 0 ? 0 : (B / 2));
        const Capture& w = want[invariant ? 0 : 1];
        CHECK(got.logits.size() == w.logits.size());
        for (size_t k = 0; k < std::min(got.logits.size(), w.logits.size()); ++k) {
          ++compared;
          if (invariant) {
            if (!bitwise_equal(got.logits[k], w.logits[k])) {
              ++mismatched_on;
              std::fprintf(stderr, "invariant: batch %d, output %zu differs from alone\n", B, k);
            }
          } else {
            if (!bitwise_equal(got.logits[k], w.logits[k])) ++mismatched_off;
            for (int j = 0; j < V; ++j) {  // off vs the invariant alone run: same model, float tolerance
              const double d = std::fabs(double(got.logits[k][j]) - want[0].logits[k][j]);
              max_rel_off = std::max(max_rel_off, d / (1.0 + std::fabs(double(want[0].logits[k][j]))));
            }
          }
        }
      }
    }
    std::fprintf(stderr, "engine: %d outputs compared per mode; invariant mismatches %d, off mismatches %d (max rel diff %.3g)\n",
                 compared / 2, mismatched_on, mismatched_off, max_rel_off);
    CHECK(mismatched_on == 0);
    CHECK(mismatched_off > 0);     // off vs off alone: the comparison sees the last bits the old kernels change
    CHECK(max_rel_off < 1e-4);     // and they are still correct to float tolerance
  }

  // --- 2. Runtime: seeded sampling alone = in a busy batch. ---
  {
    RuntimeOptions o;
    o.background = false;
    o.threads = 2;
    o.kv_block_tokens = 4;
    std::vector<GenerateRequest> reqs;
    for (int i = 0; i < 24; ++i) {
      GenerateRequest r;
      r.prompt = tokens_of(3 + (i * 11) % 40, 7 + i, V);
      r.adapter = i % 6;  // ids 0..4 registered below; 5 = none (-1)
      r.sampling.temperature = 0.9f;
      r.sampling.seed = uint64_t(1000 + i);
      r.sampling.max_tokens = 12;
      reqs.push_back(r);
    }
    auto run_all = [&](Runtime& rt, const std::vector<GenerateRequest>& rs) {
      std::map<RequestId, std::vector<int32_t>> got;
      std::vector<RequestId> ids;
      for (const auto& r : rs) {
        ids.push_back(rt.submit(r, [&got](const GenerationEvent& ev) {
          if (ev.token >= 0) got[ev.request].push_back(ev.token);
        }));
      }
      rt.run_until_idle();
      std::vector<std::vector<int32_t>> out;
      for (RequestId id : ids) out.push_back(got[id]);
      return out;
    };
    auto with_ids = [&](Runtime& rt) {
      std::vector<AdapterId> ids;
      for (size_t i = 0; i < adirs.size(); ++i) ids.push_back(rt.register_adapter("a" + std::to_string(i), adirs[i]));
      std::vector<GenerateRequest> rs = reqs;
      for (auto& r : rs) r.adapter = r.adapter < 5 ? ids[r.adapter] : -1;
      return rs;
    };
    Runtime alone_rt(mdir, o);
    CHECK(alone_rt.stats().running == 0);
    std::vector<GenerateRequest> alone_reqs = with_ids(alone_rt);
    std::vector<std::vector<int32_t>> alone;
    for (const auto& r : alone_reqs) alone.push_back(run_all(alone_rt, {r})[0]);
    RuntimeOptions busy_o = o;
    busy_o.max_batch_tokens = 40;  // prompts of up to 42 tokens: chunked, mixed with decode tokens
    Runtime busy_rt(mdir, busy_o);
    auto busy = run_all(busy_rt, with_ids(busy_rt));
    int same = 0;
    for (size_t i = 0; i < reqs.size(); ++i) {
      CHECK(alone[i].size() == 12);
      if (busy[i] == alone[i]) ++same;
      else std::fprintf(stderr, "runtime: request %zu differs in the busy batch\n", i);
    }
    std::fprintf(stderr, "runtime: %d of %zu seeded requests equal alone and busy (steps %llu)\n", same, reqs.size(),
                 (unsigned long long)busy_rt.stats().steps);
    CHECK(same == int(reqs.size()));
  }
  return finish("invariance");
}

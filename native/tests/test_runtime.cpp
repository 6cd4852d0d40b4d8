// The runtime: continuous batching over the paged KV cache with the tiered adapter pool.
// Greedy generation equals step-by-step argmax of the naive reference (alone and in a busy batch);
// the same tokens with and without preemption, after eviction and reload, from every tier;
// 1,000 requests over 200 adapters with a pool of 16; cancellation; seeded sampling; errors.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "longtail/runtime.h"
#include "reference.h"
#include "test_util.h"

using namespace longtail;
using longtail_test::reference_logits;

namespace {

struct Outcome {
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::kNone;
  std::string error;
  int finals = 0;  // events with a finish reason (must be exactly 1)
  int completion_tokens = -1;
};

// Submits every request, steps (manual mode) until idle, returns each request's outcome.
struct Collector {
  std::mutex mu;
  std::map<RequestId, Outcome> out;
  EventSink sink() {
    return [this](const GenerationEvent& ev) {
      std::lock_guard<std::mutex> lk(mu);
      Outcome& o = out[ev.request];
      if (ev.token >= 0) o.tokens.push_back(ev.token);
      if (ev.finish != FinishReason::kNone) {
        ++o.finals;
        o.finish = ev.finish;
        o.error = ev.error;
        o.completion_tokens = ev.completion_tokens;
      }
    };
  }
};

GenerateRequest greedy(std::vector<int32_t> prompt, AdapterId a, int max_tokens) {
  GenerateRequest r;
  r.prompt = std::move(prompt);
  r.adapter = a;
  r.sampling.max_tokens = max_tokens;
  return r;
}

std::vector<int32_t> prompt_of(int n, int salt, int vocab) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = (i * 7 + salt * 13 + 3) % vocab;
  return p;
}

// Greedy tokens by the naive reference. A runtime token may differ from the reference argmax
// only on a near-tie (within 1e-4 of the max), which `matches` accepts.
bool matches_reference(const Model& m, const Adapter* a, std::vector<int32_t> toks, const std::vector<int32_t>& got,
                       int max_tokens) {
  if (int(got.size()) != max_tokens) return false;
  for (int32_t g : got) {
    auto logits = reference_logits(m, a, toks);
    const double mx = *std::max_element(logits.begin(), logits.end());
    if (logits[g] < mx - 1e-4) return false;
    toks.push_back(g);
  }
  return true;
}

RuntimeOptions manual(int kv_blocks_of_tokens = 0) {
  RuntimeOptions o;
  o.background = false;
  o.threads = 2;
  o.kv_block_tokens = 4;
  if (kv_blocks_of_tokens) o.kv_cache_bytes = 0;
  return o;
}

size_t kv_bytes_per_token(const TinySpec& s) { return size_t(s.layers) * 2 * s.kv_heads * (s.hidden / s.heads) * 4; }

}  // namespace

int main() {
  const std::string root = temp_dir("runtime");

  // --- Greedy equals the reference, alone and in a busy batch, for every fixture shape. ---
  std::vector<TinySpec> specs(3);
  specs[1].qkv_bias = true;
  specs[1].rope = "llama3";
  specs[1].kv_heads = 1;
  specs[2].tied = true;
  specs[2].dtype = "BF16";
  specs[2].kv_heads = 4;
  for (size_t si = 0; si < specs.size(); ++si) {
    const TinySpec& spec = specs[si];
    const std::string mdir = write_tiny_model(root + "/m" + std::to_string(si), spec);
    std::vector<std::string> adirs;
    for (int i = 0; i < 6; ++i) {
      TinyAdapterSpec as;
      as.r = 2 << (i % 3);  // 2, 4, 8
      as.seed = unsigned(100 + i);
      if (i == 4) as.modules = {"q_proj", "v_proj"};
      adirs.push_back(write_tiny_adapter(root + "/m" + std::to_string(si) + "a" + std::to_string(i), spec, as));
    }
    RuntimeOptions o = manual();
    o.max_batch_tokens = 24;  // prompts of 9..13 tokens: prefill is chunked
    Runtime rt(mdir, o);
    std::vector<AdapterId> ids;
    std::vector<std::unique_ptr<Adapter>> plain;
    for (size_t i = 0; i < adirs.size(); ++i) {
      ids.push_back(rt.register_adapter("a" + std::to_string(i), adirs[i]));
      plain.push_back(load_adapter(adirs[i], rt.model()));
    }
    const int kMax = 6;
    // Alone: one request at a time (base and each adapter).
    for (int a = -1; a < 3; ++a) {
      Collector col;
      auto p = prompt_of(9 + a + 1, a + 5, spec.vocab);
      RequestId id = rt.submit(greedy(p, a < 0 ? -1 : ids[a], kMax), col.sink());
      rt.run_until_idle();
      Outcome& o1 = col.out[id];
      CHECK(o1.finals == 1 && o1.finish == FinishReason::kLength && o1.completion_tokens == kMax);
      CHECK(matches_reference(rt.model(), a < 0 ? nullptr : plain[a].get(), p, o1.tokens, kMax));
    }
    // Busy: 18 requests over 6 adapters and the base model, all at once.
    Collector col;
    std::vector<std::pair<RequestId, int>> reqs;
    for (int i = 0; i < 18; ++i) {
      const int a = i % 7 - 1;
      reqs.push_back({rt.submit(greedy(prompt_of(9 + i % 5, i, spec.vocab), a < 0 ? -1 : ids[a], kMax), col.sink()), i});
    }
    rt.run_until_idle();
    for (auto& [id, i] : reqs) {
      const int a = i % 7 - 1;
      Outcome& o2 = col.out[id];
      CHECK(o2.finals == 1);
      const bool ok = matches_reference(rt.model(), a < 0 ? nullptr : plain[a].get(), prompt_of(9 + i % 5, i, spec.vocab), o2.tokens, kMax);
      if (!ok) std::fprintf(stderr, "spec %zu request %d (adapter %d) differs from the reference\n", si, i, a);
      CHECK(ok);
    }
    RuntimeStats st = rt.stats();
    CHECK(st.running == 0 && st.waiting == 0);
    CHECK(st.kv_blocks_free == st.kv_blocks_total);
    CHECK(st.adapters_in_use == 0);
  }

  // Shared fixture for the rest: the default tiny model and 20 adapter folders.
  TinySpec spec;
  const std::string mdir = write_tiny_model(root + "/base", spec);
  std::vector<std::string> adirs;
  for (int i = 0; i < 20; ++i) {
    TinyAdapterSpec as;
    as.r = 4 << (i % 3);  // 4, 8, 16
    as.seed = unsigned(500 + i);
    adirs.push_back(write_tiny_adapter(root + "/ad" + std::to_string(i), spec, as));
  }
  auto run_all = [&](Runtime& rt, const std::vector<GenerateRequest>& reqs) {
    Collector col;
    std::vector<RequestId> ids;
    for (const auto& r : reqs) ids.push_back(rt.submit(r, col.sink()));
    rt.run_until_idle();
    std::vector<Outcome> out;
    for (RequestId id : ids) out.push_back(col.out[id]);
    return out;
  };

  // --- Preemption: the same tokens with a KV cache too small for the batch. ---
  {
    std::vector<GenerateRequest> reqs;
    for (int i = 0; i < 8; ++i) reqs.push_back(greedy(prompt_of(10, i, spec.vocab), -1, 20));
    RuntimeOptions big = manual();
    Runtime rt_big(mdir, big);
    auto want = run_all(rt_big, reqs);
    RuntimeOptions small = manual();
    small.kv_cache_bytes = kv_bytes_per_token(spec) * 4 * 20;  // 20 blocks of 4: ~2.5 requests
    Runtime rt_small(mdir, small);
    auto got = run_all(rt_small, reqs);
    RuntimeStats st = rt_small.stats();
    CHECK(st.kv_blocks_total == 20);
    CHECK(st.preemptions > 0);
    CHECK(st.kv_blocks_free == st.kv_blocks_total);
    for (size_t i = 0; i < reqs.size(); ++i) {
      CHECK(got[i].finals == 1 && got[i].finish == FinishReason::kLength);
      CHECK(got[i].tokens == want[i].tokens);
    }
    std::fprintf(stderr, "preemption: %llu preemptions, %llu steps\n", (unsigned long long)st.preemptions,
                 (unsigned long long)st.steps);
  }

  // --- Tiers: disk, host, resident, and after eviction: always the same tokens. ---
  for (bool host_tier : {true, false}) {
    RuntimeOptions o = manual();
    Runtime probe(mdir, o);
    AdapterId p0 = probe.register_adapter("p", adirs[2]);  // rank 16: the largest
    (void)p0;
    RuntimeStats ps = probe.stats();
    const uint64_t per = ps.pool_pages_total - ps.pool_pages_free;  // nothing resident yet: 0
    CHECK(per == 0);
    o.adapter_host_bytes = host_tier ? (size_t(64) << 20) : 1;  // 1 byte: nothing stays on the host tier
    Runtime sized(mdir, o);
    AdapterId s0 = sized.register_adapter("x", adirs[2]);
    auto first = run_all(sized, {greedy(prompt_of(8, 1, spec.vocab), s0, 5)});
    RuntimeStats ss = sized.stats();
    const uint64_t pages_one = ss.pool_pages_total - ss.pool_pages_free;  // resident, unpinned
    CHECK(pages_one > 0);
    // A pool with room for two rank-16 adapters.
    o.adapter_pool_bytes = size_t(pages_one * 2) * ss.pool_page_bytes;
    Runtime rt(mdir, o);
    std::vector<AdapterId> ids;
    for (int i : {2, 5, 8}) ids.push_back(rt.register_adapter("t" + std::to_string(i), adirs[i]));
    const auto p = prompt_of(8, 1, spec.vocab);
    auto a = run_all(rt, {greedy(p, ids[0], 5)});  // from the host tier (registration parsed it) or disk
    auto b = run_all(rt, {greedy(p, ids[0], 5)});  // resident
    run_all(rt, {greedy(p, ids[1], 5)});
    run_all(rt, {greedy(p, ids[2], 5)});           // evicts ids[0]
    auto c = run_all(rt, {greedy(p, ids[0], 5)});  // reloaded
    RuntimeStats st = rt.stats();
    CHECK(a[0].tokens == first[0].tokens);
    CHECK(b[0].tokens == first[0].tokens);
    CHECK(c[0].tokens == first[0].tokens);
    CHECK(st.adapter_evictions >= 1);
    CHECK(st.adapter_hits >= 1 && st.adapter_misses >= 3);
    if (host_tier) {
      CHECK(st.load_from_host.count >= 2);
    } else {
      CHECK(st.load_from_disk.count >= 4);
      CHECK(st.host_bytes_used == 0);
    }
    std::fprintf(stderr, "tiers(host=%d): disk %llu loads p50 %.3f ms, host %llu loads p50 %.3f ms\n", int(host_tier),
                 (unsigned long long)st.load_from_disk.count, st.load_from_disk.p50_ms,
                 (unsigned long long)st.load_from_host.count, st.load_from_host.p50_ms);
  }

  // --- 1,000 requests over 200 adapters, a pool that holds 16. ---
  {
    // Expected tokens per (folder, prompt) from a runtime with a pool for all 20 folders.
    const int kPrompts = 5, kMax = 4;
    RuntimeOptions big = manual();
    Runtime ref(mdir, big);
    std::vector<AdapterId> rids;
    for (int f = 0; f < 20; ++f) rids.push_back(ref.register_adapter("f" + std::to_string(f), adirs[f]));
    std::vector<GenerateRequest> combos;
    for (int f = 0; f < 20; ++f)
      for (int q = 0; q < kPrompts; ++q) combos.push_back(greedy(prompt_of(6 + q, q, spec.vocab), rids[f], kMax));
    auto expect = run_all(ref, combos);

    RuntimeOptions o = manual();
    o.max_running = 32;
    o.max_batch_tokens = 128;
    Runtime probe(mdir, o);
    AdapterId biggest = probe.register_adapter("b", adirs[2]);
    run_all(probe, {greedy({1}, biggest, 1)});
    RuntimeStats ps = probe.stats();
    o.adapter_pool_bytes = size_t(ps.pool_pages_total - ps.pool_pages_free) * 16 * ps.pool_page_bytes;
    Runtime rt(mdir, o);
    std::vector<AdapterId> ids;  // 200 adapters: each folder under 10 names
    for (int n = 0; n < 200; ++n) ids.push_back(rt.register_adapter("n" + std::to_string(n), adirs[n % 20]));
    std::mt19937 rng(42);
    std::vector<GenerateRequest> reqs;
    std::vector<int> combo;
    for (int i = 0; i < 1000; ++i) {
      const int n = int(rng() % 200), q = int(rng() % kPrompts);
      reqs.push_back(greedy(prompt_of(6 + q, q, spec.vocab), ids[n], kMax));
      combo.push_back((n % 20) * kPrompts + q);
    }
    auto got = run_all(rt, reqs);
    int wrong = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i].finals != 1 || got[i].tokens != expect[combo[i]].tokens) ++wrong;
    }
    CHECK(wrong == 0);
    RuntimeStats st = rt.stats();
    CHECK(st.running == 0 && st.waiting == 0);
    CHECK(st.kv_blocks_free == st.kv_blocks_total);
    CHECK(st.adapters_in_use == 0);
    CHECK(st.adapters_resident >= 1 && st.adapters_resident < 200);  // pages hold 16 of rank 16, more of smaller ranks
    CHECK(st.adapter_evictions > 0);
    CHECK(st.adapter_hits + st.adapter_misses == 1000);
    for (AdapterId id : ids) rt.unregister_adapter(id);
    st = rt.stats();
    CHECK(st.pool_pages_free == st.pool_pages_total);
    CHECK(st.adapters_registered == 0);
    std::fprintf(stderr, "1000 over 200: %d wrong, %llu steps, hits %llu misses %llu evictions %llu\n", wrong,
                 (unsigned long long)st.steps, (unsigned long long)st.adapter_hits,
                 (unsigned long long)st.adapter_misses, (unsigned long long)st.adapter_evictions);
  }

  // --- Cancellation: waiting and running requests, any time. ---
  {
    RuntimeOptions o = manual();
    o.max_running = 1;
    Runtime rt(mdir, o);
    Collector col;
    RequestId r1 = rt.submit(greedy(prompt_of(6, 1, spec.vocab), -1, 50), col.sink());
    RequestId r2 = rt.submit(greedy(prompt_of(6, 2, spec.vocab), -1, 50), col.sink());
    for (int i = 0; i < 5; ++i) rt.step();
    CHECK(rt.stats().running == 1 && rt.stats().waiting == 1);
    rt.cancel(r2);  // waiting
    rt.cancel(r1);  // running
    rt.cancel(12345);  // unknown: ignored
    rt.run_until_idle();
    CHECK(col.out[r1].finish == FinishReason::kCancelled && col.out[r1].finals == 1);
    CHECK(col.out[r1].tokens.size() >= 3 && col.out[r1].tokens.size() < 50);
    CHECK(col.out[r2].finish == FinishReason::kCancelled && col.out[r2].tokens.empty());
    RuntimeStats st = rt.stats();
    CHECK(st.kv_blocks_free == st.kv_blocks_total && st.running == 0 && st.waiting == 0);
  }

  // --- Seeded sampling: the same tokens alone and inside a busy batch; stop tokens. ---
  {
    Runtime rt(mdir, manual());
    AdapterId a = rt.register_adapter("s", adirs[1]);
    GenerateRequest r = greedy(prompt_of(7, 3, spec.vocab), a, 12);
    r.sampling.temperature = 0.9f;
    r.sampling.top_p = 0.95f;
    r.sampling.seed = 1234;
    auto alone = run_all(rt, {r});
    std::vector<GenerateRequest> busy;
    for (int i = 0; i < 10; ++i) {
      GenerateRequest o = greedy(prompt_of(5 + i, i, spec.vocab), i % 2 ? a : -1, 8);
      o.sampling.temperature = 1.0f;
      o.sampling.seed = uint64_t(i);
      busy.push_back(o);
    }
    busy.insert(busy.begin() + 4, r);
    auto together = run_all(rt, busy);
    CHECK(alone[0].tokens.size() == 12);
    CHECK(together[4].tokens == alone[0].tokens);
    GenerateRequest other = r;
    other.sampling.seed = 99;
    bool differs = false;
    for (uint64_t seed = 99; seed < 104 && !differs; ++seed) {
      other.sampling.seed = seed;
      differs = run_all(rt, {other})[0].tokens != alone[0].tokens;
    }
    CHECK(differs);
    // A stop token ends the request before it is emitted.
    GenerateRequest g = greedy(prompt_of(7, 3, spec.vocab), -1, 10);
    auto plain = run_all(rt, {g});
    g.sampling.stop_token_ids = {plain[0].tokens[2]};
    auto stopped = run_all(rt, {g});
    CHECK(stopped[0].finish == FinishReason::kStop);
    CHECK(stopped[0].tokens.size() <= 2);
    CHECK(stopped[0].completion_tokens == int(stopped[0].tokens.size()));
  }

  // --- Errors: clear messages, nothing queued. ---
  {
    Runtime rt(mdir, manual());
    auto noop = [](const GenerationEvent&) {};
    EXPECT_ERROR([&] { rt.submit(greedy({}, -1, 4), noop); }, "prompt must not be empty");
    EXPECT_ERROR([&] { rt.submit(greedy({1, spec.vocab}, -1, 4), noop); }, "out of range");
    EXPECT_ERROR([&] { rt.submit(greedy({1}, 77, 4), noop); }, "unknown adapter");
    EXPECT_ERROR([&] { rt.submit(greedy({1}, -1, 600), noop); }, "exceeds the model's context");
    GenerateRequest bad = greedy({1}, -1, 4);
    bad.sampling.top_p = 0;
    EXPECT_ERROR([&] { rt.submit(bad, noop); }, "top_p");
    const std::string broken = root + "/broken";
    mkdir_p(broken);
    write_file(broken + "/adapter_config.json", "{not json");
    EXPECT_ERROR([&] { rt.register_adapter("broken", broken); }, "adapter_config.json", "invalid JSON");
    AdapterId a = rt.register_adapter("ok", adirs[0]);
    EXPECT_ERROR([&] { rt.register_adapter("ok", adirs[1]); }, "ok");
    rt.submit(greedy({1, 2}, a, 3), noop);
    EXPECT_ERROR([&] { rt.unregister_adapter(a); }, "in use");
    rt.run_until_idle();
    rt.unregister_adapter(a);
    CHECK(rt.stats().waiting == 0);
    EXPECT_ERROR([] { RuntimeOptions o; o.max_running = 0; Runtime r("/nonexistent", o); }, "max_running");
    EXPECT_ERROR([] { Runtime r("/nonexistent/model"); }, "/nonexistent/model");
  }

  // --- Background thread: submit from here, tokens arrive on the runtime's thread. ---
  {
    RuntimeOptions o;
    o.threads = 2;
    o.kv_block_tokens = 4;
    Runtime rt(mdir, o);
    AdapterId a = rt.register_adapter("bg", adirs[3]);
    Runtime ref(mdir, manual());
    AdapterId ra = ref.register_adapter("bg", adirs[3]);
    std::vector<GenerateRequest> reqs;
    for (int i = 0; i < 12; ++i) reqs.push_back(greedy(prompt_of(5 + i, i, spec.vocab), i % 3 ? a : -1, 10));
    std::vector<GenerateRequest> rreqs = reqs;
    for (auto& r : rreqs) r.adapter = r.adapter == a ? ra : -1;
    auto want = run_all(ref, rreqs);
    std::mutex mu;
    std::condition_variable cv;
    std::map<RequestId, Outcome> out;
    int done = 0;
    std::vector<RequestId> ids;
    for (auto& r : reqs) {
      ids.push_back(rt.submit(r, [&](const GenerationEvent& ev) {
        std::lock_guard<std::mutex> lk(mu);
        if (ev.token >= 0) out[ev.request].tokens.push_back(ev.token);
        if (ev.finish != FinishReason::kNone) {
          out[ev.request].finish = ev.finish;
          ++done;
          cv.notify_all();
        }
      }));
    }
    std::unique_lock<std::mutex> lk(mu);
    CHECK(cv.wait_for(lk, std::chrono::seconds(60), [&] { return done == int(reqs.size()); }));
    for (size_t i = 0; i < ids.size(); ++i) CHECK(out[ids[i]].tokens == want[i].tokens);
    // Destroying the runtime with work in flight cancels it.
    lk.unlock();
    auto rt2 = std::make_unique<Runtime>(mdir, o);
    std::atomic<int> cancelled{0};
    for (int i = 0; i < 4; ++i) {
      // A slow consumer (1 ms a token) keeps the 400 tokens far from done when the runtime goes:
      // on a quiet machine the tiny model finished all four within the 20 ms otherwise.
      rt2->submit(greedy(prompt_of(5, i, spec.vocab), -1, 400), [&](const GenerationEvent& ev) {
        if (ev.token >= 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (ev.finish == FinishReason::kCancelled) ++cancelled;
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    rt2.reset();
    CHECK(cancelled == 4);
  }

  return finish("test_runtime");
}

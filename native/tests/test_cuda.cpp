// CUDA backend vs CPU backend (the reference) on random inputs: every kernel, then whole engine
// steps (prefill chunks + decode, mixed adapters) and greedy generation through the Runtime and its
// adapter pool on tiny fixture models. Without a CUDA device: prints "SKIP: no CUDA device" and
// exits 0. `test_cuda --bench FILE` instead microbenchmarks the kernels against their
// memory-bandwidth floor (bytes moved / measured device copy bandwidth) and writes JSON.
//
// Tolerances (error relative to the largest reference magnitude of the output, max over elements):
//   f32 weights and f32 math: 1e-4 (kernels), 1e-3 (engine logits: many layers, fused order);
//   bf16 weights (the default storage): 2e-2 per GEMM (x is rounded to bf16 too on the cuBLAS
//   path: two 8-bit mantissas), 6e-2 for engine logits.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend.h"
#include "longtail/runtime.h"
#include "model_internal.h"
#include "test_util.h"

using namespace longtail;

namespace longtail {
const char* cuda_backend_gemm_library(Backend* b);
}

namespace {

// Backend::weights() caches by host pointer: host tensors given to it stay alive (and distinct)
// for the whole run.
std::vector<std::unique_ptr<std::vector<float>>> g_keep;
const std::vector<float>& keep(std::vector<float> v) {
  g_keep.push_back(std::make_unique<std::vector<float>>(std::move(v)));
  return *g_keep.back();
}

double rel_err(const std::vector<float>& got, const std::vector<float>& ref) {
  double mx = 0, d = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    mx = std::max(mx, std::fabs(double(ref[i])));
    const double e = std::fabs(double(got[i]) - ref[i]);
    d = std::isnan(e) ? INFINITY : std::max(d, e);
  }
  return d / std::max(mx, 1e-12);
}

#define CHECK_REL(got, ref, tol, what)                                                           \
  do {                                                                                           \
    const double _e = rel_err(got, ref);                                                         \
    ++g_checks;                                                                                  \
    if (!(_e <= (tol))) {                                                                        \
      ++g_failures;                                                                              \
      std::fprintf(stderr, "%s:%d: %s: relative error %.3g > %.3g\n", __FILE__, __LINE__,        \
                   std::string(what).c_str(), _e, double(tol));                                   \
    }                                                                                            \
  } while (0)

float bf16_round(float f) {
  const uint16_t h = to_bf16(f);
  uint32_t u = uint32_t(h) << 16;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

// A CUDA buffer holding a copy of host data, freed with the backend.
struct Dev {
  Backend* be = nullptr;
  float* p = nullptr;
  size_t n = 0;
  Dev(Backend* b, const std::vector<float>& h) : be(b), n(h.size()) {
    p = be->alloc(std::max<size_t>(n, 1));
    if (n) be->upload(p, h.data(), n);
    be->sync();
  }
  Dev(Backend* b, size_t count) : be(b), n(count) {
    p = be->alloc(std::max<size_t>(n, 1));
    std::vector<float> z(n, 0.0f);
    if (n) be->upload(p, z.data(), n);
    be->sync();
  }
  ~Dev() { be->free(p); }
  std::vector<float> get() const {
    std::vector<float> h(n);
    be->download(h.data(), p, n);
    return h;
  }
};

struct Backends {
  CpuBackend* cpu_raw = nullptr;
  Backend* cpu = nullptr;
  std::unique_ptr<Backend> cuda;
  Backends() {
    CpuBackendOptions o;
    o.threads = 2;
    o.max_context = 4096;
    cpu_raw = make_cpu_backend(o);
    cpu = as_backend(cpu_raw);
    cuda.reset(make_cuda_backend({}));
  }
  ~Backends() {
    cuda.reset();
    destroy_cpu_backend(cpu_raw);
  }
};

void test_gemm(Backend& cu, Backend& cpu, std::mt19937& rng, const char* label) {
  struct S { int M, N, K; };
  const S shapes[] = {{1, 64, 48}, {2, 33, 40}, {3, 100, 72}, {5, 17, 13}, {8, 256, 128}, {9, 130, 70},
                      {33, 96, 256}, {64, 64, 64}, {100, 257, 129}};
  for (const S& s : shapes) {
    auto x = random_values(rng, size_t(s.M) * s.K, 1.0f);
    auto W = random_values(rng, size_t(s.N) * s.K, 0.5f);
    auto bias = random_values(rng, s.N, 0.5f);
    for (int with_bias = 0; with_bias < 2; ++with_bias) {
      std::vector<float> ref(size_t(s.M) * s.N);
      cpu.gemm(s.M, s.N, s.K, x.data(), W.data(), with_bias ? bias.data() : nullptr, ref.data());
      Dev dx(&cu, x), dW(&cu, W), db(&cu, bias), dy(&cu, ref.size());
      cu.gemm(s.M, s.N, s.K, dx.p, dW.p, with_bias ? db.p : nullptr, dy.p);
      CHECK_REL(dy.get(), ref, 1e-4, std::string(label) + " gemm f32 " + std::to_string(s.M) + "x" + std::to_string(s.N) + "x" + std::to_string(s.K));
      // bf16 weights: the backend converts at weights(); reference on the rounded weights.
      std::vector<float> Wr(W.size());
      for (size_t i = 0; i < W.size(); ++i) Wr[i] = bf16_round(W[i]);
      cpu.gemm(s.M, s.N, s.K, x.data(), Wr.data(), with_bias ? bias.data() : nullptr, ref.data());
      const float* wb = cu.weights(keep(W).data(), s.N, s.K);
      cu.gemm(s.M, s.N, s.K, dx.p, wb, with_bias ? db.p : nullptr, dy.p);
      CHECK_REL(dy.get(), ref, 2e-2, std::string(label) + " gemm bf16 " + std::to_string(s.M) + "x" + std::to_string(s.N) + "x" + std::to_string(s.K));
    }
  }
}

void test_lora(Backend& cu, Backend& cpu, std::mt19937& rng) {
  const int in = 96, out = 200;
  struct Seg { int start, len, rank; float scale; };
  // Mixed: prefill segments (SGMV, one longer than a 16-token chunk) and decode tokens (BGMV),
  // ranks 1..64 in one launch.
  const std::vector<Seg> plan = {{0, 5, 4, 2.0f}, {5, 1, 16, 0.5f}, {6, 1, 8, 1.0f}, {7, 37, 64, 0.25f}, {44, 1, 1, 3.0f}, {46, 2, 16, 1.0f}};
  const int T = 48;
  auto x = random_values(rng, size_t(T) * in, 1.0f);
  auto y0 = random_values(rng, size_t(T) * out, 1.0f);
  std::vector<std::vector<float>> rows;  // host rows
  std::vector<std::vector<const float*>> hA, hB;
  for (const Seg& s : plan) {
    hA.emplace_back();
    hB.emplace_back();
    for (int r = 0; r < s.rank; ++r) {
      rows.push_back(random_values(rng, in, 0.3f));
      rows.push_back(random_values(rng, out, 0.3f));
    }
  }
  std::vector<std::unique_ptr<Dev>> drows;
  for (auto& r : rows) drows.push_back(std::make_unique<Dev>(&cu, r));
  size_t at = 0;
  std::vector<std::vector<const float*>> dA(plan.size()), dB(plan.size());
  for (size_t i = 0; i < plan.size(); ++i) {
    for (int r = 0; r < plan[i].rank; ++r) {
      hA[i].push_back(rows[at].data());
      dA[i].push_back(drows[at]->p);
      ++at;
      hB[i].push_back(rows[at].data());
      dB[i].push_back(drows[at]->p);
      ++at;
    }
  }
  std::vector<LoraSegment> hs, ds;
  cu.plan_begin();
  for (size_t i = 0; i < plan.size(); ++i) {
    LoraSegment g;
    g.start = plan[i].start;
    g.len = plan[i].len;
    g.rank = plan[i].rank;
    g.scale = plan[i].scale;
    g.A = hA[i].data();
    g.Bt = hB[i].data();
    hs.push_back(g);
    g.A = static_cast<const float* const*>(cu.plan_put(dA[i].data(), dA[i].size() * sizeof(float*)));
    g.Bt = static_cast<const float* const*>(cu.plan_put(dB[i].data(), dB[i].size() * sizeof(float*)));
    ds.push_back(g);
  }
  const LoraSegment* dsegs = static_cast<const LoraSegment*>(cu.plan_put(ds.data(), ds.size() * sizeof(LoraSegment)));
  cu.plan_commit();
  std::vector<float> ref = y0, tmp(size_t(T) * 256);
  cpu.lora(hs.data(), int(hs.size()), in, out, x.data(), ref.data(), tmp.data());
  Dev dx(&cu, x), dy(&cu, y0), dt(&cu, size_t(T) * 256);
  cu.lora(dsegs, int(ds.size()), in, out, dx.p, dy.p, dt.p);
  CHECK_REL(dy.get(), ref, 1e-4, "lora SGMV+BGMV mixed ranks");
}

void test_small_ops(Backend& cu, Backend& cpu, std::mt19937& rng) {
  const int T = 7, H = 80, V = 30;
  // embed (f32 and bf16 tables)
  {
    auto table = random_values(rng, size_t(V) * H, 1.0f);
    std::vector<int32_t> tok = {3, 0, 29, 7, 7, 12, 1};
    std::vector<float> ref(size_t(T) * H);
    cpu.embed(tok.data(), T, table.data(), H, ref.data());
    cu.plan_begin();
    const int32_t* dtok = static_cast<const int32_t*>(cu.plan_put(tok.data(), tok.size() * 4));
    cu.plan_commit();
    Dev dt(&cu, table), dx(&cu, ref.size());
    cu.embed(dtok, T, dt.p, H, dx.p);
    CHECK_REL(dx.get(), ref, 0, "embed f32");
    const float* wb = cu.weights(keep(table).data(), V, H);
    cu.embed(dtok, T, wb, H, dx.p);
    CHECK_REL(dx.get(), ref, 1e-2, "embed bf16");
  }
  // rmsnorm, add, silu_mul
  {
    auto x = random_values(rng, size_t(T) * H, 2.0f), w = random_values(rng, H, 1.0f), y = random_values(rng, size_t(T) * H, 1.0f);
    std::vector<float> ref(x.size());
    cpu.rmsnorm(x.data(), w.data(), T, H, 1e-5f, ref.data());
    Dev dx(&cu, x), dw(&cu, w), dy(&cu, x.size()), du(&cu, y);
    cu.rmsnorm(dx.p, dw.p, T, H, 1e-5f, dy.p);
    CHECK_REL(dy.get(), ref, 1e-5, "rmsnorm");
    std::vector<float> a = x;
    cpu.add(a.data(), y.data(), a.size());
    cu.add(dx.p, du.p, a.size());
    CHECK_REL(dx.get(), a, 1e-6, "add");
    std::vector<float> g = y, u = x;
    cpu.silu_mul(g.data(), u.data(), g.size());
    Dev dg(&cu, y), du2(&cu, x);
    cu.silu_mul(dg.p, du2.p, g.size());
    CHECK_REL(dg.get(), g, 1e-4, "silu_mul");  // the CPU uses an AVX2 exp approximation
  }
}

void test_attention(Backend& cu, Backend& cpu, std::mt19937& rng) {
  for (int B : {3, 16}) {
    for (int hd : {8, 64, 128}) {
      const AttentionShape s{8, 2, hd};
      const int kv_dim = s.kv_heads * hd, nblocks = 64;
      // Two sequences: one decoding at position 40, one prefilling positions 10..18; block tables
      // interleave (B = 3) so the paging is exercised.
      std::vector<int32_t> table0, table1;
      for (int b = 0; b < nblocks / 2; ++b) {
        table0.push_back(2 * b + 1);
        table1.push_back(nblocks - 2 - 2 * b);
      }
      std::vector<int> pos = {40};
      for (int p = 10; p < 19; ++p) pos.push_back(p);
      const int T = int(pos.size());
      // Fill the caches with history through kv_store of random rows, then the step's rows.
      std::vector<float> kc(size_t(nblocks) * B * kv_dim, 0.0f), vc = kc;
      auto hk = random_values(rng, kc.size(), 1.0f), hv = random_values(rng, kc.size(), 1.0f);
      kc = hk;
      vc = hv;
      auto q = random_values(rng, size_t(T) * s.heads * hd, 1.0f);
      auto k = random_values(rng, size_t(T) * kv_dim, 1.0f), v = random_values(rng, size_t(T) * kv_dim, 1.0f);
      std::vector<KvView> hviews(T);
      for (int t = 0; t < T; ++t) hviews[t].blocks = t == 0 ? table0.data() : table1.data();
      KvLayer hl{kc.data(), vc.data(), B};
      cpu.kv_store(k.data(), v.data(), T, hl, hviews.data(), pos.data(), kv_dim);
      std::vector<float> ref(size_t(T) * s.heads * hd);
      cpu.attention(q.data(), T, hl, hviews.data(), pos.data(), s, ref.data());

      Dev dk(&cu, hk), dv(&cu, hv), dq(&cu, q), dkk(&cu, k), dvv(&cu, v), dout(&cu, ref.size());
      cu.plan_begin();
      const int32_t* t0 = static_cast<const int32_t*>(cu.plan_put(table0.data(), table0.size() * 4));
      const int32_t* t1 = static_cast<const int32_t*>(cu.plan_put(table1.data(), table1.size() * 4));
      std::vector<KvView> dviews(T);
      for (int t = 0; t < T; ++t) dviews[t].blocks = t == 0 ? t0 : t1;
      const KvView* pv = static_cast<const KvView*>(cu.plan_put(dviews.data(), T * sizeof(KvView)));
      const int* pp = static_cast<const int*>(cu.plan_put(pos.data(), T * sizeof(int)));
      cu.plan_commit();
      KvLayer dl{dk.p, dv.p, B};
      cu.kv_store(dkk.p, dvv.p, T, dl, pv, pp, kv_dim);
      cu.attention(dq.p, T, dl, pv, pp, s, dout.p);
      const std::string tag = "B=" + std::to_string(B) + " hd=" + std::to_string(hd);
      CHECK_REL(dk.get(), kc, 0, "kv_store K " + tag);
      CHECK_REL(dv.get(), vc, 0, "kv_store V " + tag);
      CHECK_REL(dout.get(), ref, 1e-4, "paged attention " + tag);
      // RoPE on the same q/k.
      const int half = hd / 2;
      auto cs = random_values(rng, size_t(T) * half, 1.0f), sn = random_values(rng, size_t(T) * half, 1.0f);
      std::vector<float> rq = q, rk = k;
      cpu.rope(rq.data(), rk.data(), T, s, cs.data(), sn.data());
      cu.plan_begin();
      const float* pc = static_cast<const float*>(cu.plan_put(cs.data(), cs.size() * 4));
      const float* ps = static_cast<const float*>(cu.plan_put(sn.data(), sn.size() * 4));
      cu.plan_commit();
      cu.rope(dq.p, dkk.p, T, s, pc, ps);
      CHECK_REL(dq.get(), rq, 1e-5, "rope q " + tag);
      CHECK_REL(dkk.get(), rk, 1e-5, "rope k " + tag);
    }
  }
}

// Whole engine steps: CPU engine vs CUDA engine on the same batches (prefill chunks interleaved
// with decode tokens, sequences on different adapters, Adapter::view() = mirrored on CUDA).
void test_engine(const std::string& root, const char* wdtype, double tol) {
  setenv("LONGTAIL_CUDA_WEIGHTS", wdtype, 1);
  std::vector<TinySpec> specs(3);
  specs[1].qkv_bias = true;
  specs[1].rope = "llama3";
  specs[1].kv_heads = 1;
  specs[2].tied = true;
  specs[2].dtype = "BF16";
  specs[2].hidden = 64;
  specs[2].heads = 2;  // head_dim 32
  for (size_t si = 0; si < specs.size(); ++si) {
    const TinySpec& spec = specs[si];
    const std::string dir = root + "/" + wdtype + std::to_string(si);
    auto model = load_model(write_tiny_model(dir + "m", spec));
    TinyAdapterSpec a1, a2;
    a1.r = 4;
    a2.r = 16;
    a2.modules = {"q_proj", "v_proj", "down_proj"};
    a2.seed = 12;
    auto ad1 = load_adapter(write_tiny_adapter(dir + "a1", spec, a1), *model);
    auto ad2 = load_adapter(write_tiny_adapter(dir + "a2", spec, a2), *model);
    const AdapterView* ads[] = {nullptr, &ad1->view(), &ad2->view(), &ad1->view()};
    std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {7}, {40, 41, 42, 43, 44, 45, 46}, {3, 3, 3, 9, 12, 30}};
    std::vector<float> lc, lg;
    std::vector<std::vector<int32_t>> toks[2];
    for (int which = 0; which < 2; ++which) {
      EngineOptions eo;
      eo.threads = 2;
      eo.max_tokens_per_step = 64;
      eo.kv_block_tokens = 3;
      eo.backend = which ? "cuda" : "cpu";
      Engine engine(*model, eo);
      CHECK(std::string(engine.backend_name()) == (which ? "cuda" : "cpu"));
      std::vector<SeqId> ids;
      for (auto& p : prompts) ids.push_back(engine.create_sequence(int(p.size()) + 8));
      std::vector<int> done(prompts.size(), 0);
      toks[which].assign(prompts.size(), {});
      std::vector<float> logits(prompts.size() * spec.vocab);
      std::vector<float>& all = which ? lg : lc;
      // Steps: prompts in chunks of 4, then 6 greedy decode tokens each.
      for (int step = 0; step < 12; ++step) {
        StepBatch b;
        std::vector<size_t> who;
        std::vector<int32_t> next(prompts.size());
        for (size_t i = 0; i < prompts.size(); ++i) {
          const int len = int(prompts[i].size());
          if (done[i] < len) {
            const int n = std::min(4, len - done[i]);
            b.seqs.push_back({ids[i], prompts[i].data() + done[i], n, done[i], ads[i]});
          } else if (int(toks[which][i].size()) < 6) {
            next[i] = toks[which][i].back();
            b.seqs.push_back({ids[i], &next[i], 1, done[i], ads[i]});
          } else {
            continue;
          }
          who.push_back(i);
        }
        if (b.seqs.empty()) break;
        engine.step(b, logits.data());
        for (size_t j = 0; j < who.size(); ++j) {
          const size_t i = who[j];
          done[i] += b.seqs[j].n_tokens;
          if (done[i] >= int(prompts[i].size())) {
            const float* l = logits.data() + j * spec.vocab;
            toks[which][i].push_back(int32_t(std::max_element(l, l + spec.vocab) - l));
          }
          all.insert(all.end(), logits.data() + j * spec.vocab, logits.data() + (j + 1) * spec.vocab);
        }
      }
    }
    CHECK(lc.size() == lg.size());
    if (lc.size() == lg.size()) CHECK_REL(lg, lc, tol, std::string("engine logits, weights ") + wdtype + ", model " + std::to_string(si));
    // Greedy tokens follow the CUDA engine's own logits, so they agree only while logits do.
    if (std::string(wdtype) == "f32") CHECK(toks[0] == toks[1]);
  }
  unsetenv("LONGTAIL_CUDA_WEIGHTS");
}

// The Runtime (scheduler + adapter pool in device memory, uploads from the loader thread):
// greedy generations on CPU and CUDA, f32 weights, must match token for token.
void test_runtime(const std::string& root) {
  setenv("LONGTAIL_CUDA_WEIGHTS", "f32", 1);
  TinySpec spec;
  const std::string mdir = write_tiny_model(root + "/rt_m", spec);
  std::vector<std::string> adirs;
  for (int i = 0; i < 5; ++i) {
    TinyAdapterSpec a;
    a.r = 2 + 4 * i;
    a.seed = 100 + i;
    adirs.push_back(write_tiny_adapter(root + "/rt_a" + std::to_string(i), spec, a));
  }
  std::vector<std::vector<int32_t>> out[2];
  for (int which = 0; which < 2; ++which) {
    setenv("LONGTAIL_BACKEND", which ? "cuda" : "cpu", 1);
    RuntimeOptions ro;
    ro.background = false;
    ro.threads = 2;
    ro.max_running = 8;
    ro.adapter_pool_bytes = 3 << 20;
    Runtime rt(mdir, ro);
    std::vector<AdapterId> ids;
    for (size_t i = 0; i < adirs.size(); ++i) ids.push_back(rt.register_adapter("a" + std::to_string(i), adirs[i]));
    out[which].assign(12, {});
    for (int r = 0; r < 12; ++r) {
      GenerateRequest req;
      for (int j = 0; j < 3 + r % 5; ++j) req.prompt.push_back(int32_t((r * 7 + j * 3) % spec.vocab));
      req.adapter = r % 6 == 5 ? -1 : ids[r % 5];
      req.sampling.max_tokens = 6;
      std::vector<int32_t>* dst = &out[which][r];
      rt.submit(req, [dst](const GenerationEvent& e) {
        if (e.token >= 0) dst->push_back(e.token);
      });
    }
    rt.run_until_idle();
  }
  unsetenv("LONGTAIL_BACKEND");
  unsetenv("LONGTAIL_CUDA_WEIGHTS");
  CHECK(out[0] == out[1]);
  for (size_t r = 0; r < out[0].size(); ++r) CHECK(out[0][r].size() == 6);
}

// --- microbenchmarks -------------------------------------------------------------------------

double time_ms(Backend& be, int iters, const std::function<void()>& fn) {
  fn();
  be.sync();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) fn();
  be.sync();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / iters;
}

int bench(const std::string& out_path) {
  Backends b;
  Backend& cu = *b.cuda;
  std::mt19937 rng(5);
  nlohmann::json j;
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  j["device"] = prop.name;
  j["gemm_library"] = cuda_backend_gemm_library(&cu);
  // Device copy bandwidth: D2D memcpy of 512 MiB, reads + writes.
  const size_t nbw = size_t(128) << 20;
  Dev s(&cu, nbw), d(&cu, nbw);
  const double ms = time_ms(cu, 10, [&] { cudaMemcpyAsync(d.p, s.p, nbw * 4, cudaMemcpyDeviceToDevice, 0); cudaDeviceSynchronize(); });
  const double bw = 2.0 * nbw * 4 / (ms * 1e-3);
  j["copy_bandwidth_GBps"] = bw / 1e9;
  nlohmann::json rows = nlohmann::json::array();
  auto row = [&](const std::string& name, double bytes, double t_ms) {
    const double floor_ms = bytes / bw * 1e3;
    rows.push_back({{"kernel", name}, {"ms", t_ms}, {"bytes", bytes}, {"floor_ms", floor_ms}, {"x_floor", t_ms / floor_ms}});
    std::printf("%-44s %9.4f ms  floor %9.4f ms  %6.2fx\n", name.c_str(), t_ms, floor_ms, t_ms / floor_ms);
  };
  // GEMM shapes of the ~1B model (hidden 2048, intermediate 8192), bf16 weights.
  for (auto nk : std::vector<std::pair<int, int>>{{2048, 2048}, {8192, 2048}, {2048, 8192}}) {
    const int N = nk.first, K = nk.second;
    const float* wb = cu.weights(keep(random_values(rng, size_t(N) * K, 0.1f)).data(), N, K);
    for (int M : {1, 8, 32, 128}) {
      Dev x(&cu, size_t(M) * K), y(&cu, size_t(M) * N);
      const double t = time_ms(cu, 20, [&] { cu.gemm(M, N, K, x.p, wb, nullptr, y.p); });
      row("gemm bf16 M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K),
          double(N) * K * 2 + double(M) * (K + N) * 4, t);
    }
  }
  // LoRA: BGMV for 64 decode tokens on 64 distinct rank-16 adapters; SGMV for one 512-token segment.
  for (int mode = 0; mode < 2; ++mode) {
    const int in = 2048, out = 8192, rank = 16, nseg = mode ? 1 : 64, len = mode ? 512 : 1, T = nseg * len;
    Dev arena(&cu, size_t(nseg) * rank * (in + out));
    std::vector<std::vector<const float*>> A(nseg), Bt(nseg);
    for (int sg = 0; sg < nseg; ++sg)
      for (int r = 0; r < rank; ++r) {
        A[sg].push_back(arena.p + (size_t(sg) * rank + r) * (in + out));
        Bt[sg].push_back(arena.p + (size_t(sg) * rank + r) * (in + out) + in);
      }
    Dev x(&cu, size_t(T) * in), y(&cu, size_t(T) * out), tmp(&cu, size_t(T) * 256);
    cu.plan_begin();
    std::vector<LoraSegment> segs(nseg);
    for (int sg = 0; sg < nseg; ++sg) {
      segs[sg] = {sg * len, len, rank, 1.0f,
                  static_cast<const float* const*>(cu.plan_put(A[sg].data(), rank * sizeof(float*))),
                  static_cast<const float* const*>(cu.plan_put(Bt[sg].data(), rank * sizeof(float*)))};
    }
    const LoraSegment* ds = static_cast<const LoraSegment*>(cu.plan_put(segs.data(), segs.size() * sizeof(LoraSegment)));
    cu.plan_commit();
    const double t = time_ms(cu, 20, [&] { cu.lora(ds, nseg, in, out, x.p, y.p, tmp.p); });
    const double bytes = double(nseg) * rank * (in + out) * 4 + double(T) * in * 4 + 2.0 * T * out * 4;
    row(mode ? "SGMV 1 segment x 512 tokens r16 2048->8192" : "BGMV 64 tokens x 64 adapters r16 2048->8192", bytes, t);
  }
  // bf16 GEMM peak (the roofline's FLOP term): 4096³ through the backend's GEMM.
  {
    const int n = 4096;
    const float* wb = cu.weights(keep(random_values(rng, size_t(n) * n, 0.1f)).data(), n, n);
    Dev x(&cu, size_t(n) * n), y(&cu, size_t(n) * n);
    const double t = time_ms(cu, 10, [&] { cu.gemm(n, n, n, x.p, wb, nullptr, y.p); });
    j["gemm_peak_TFLOPS"] = 2.0 * n * n * double(n) / (t * 1e-3) / 1e12;
    j["gemm_peak_shape"] = "bf16 weights 4096x4096x4096 through Backend::gemm";
    std::printf("GEMM peak (bf16 weights, 4096^3): %.1f TFLOPS\n", j["gemm_peak_TFLOPS"].get<double>());
  }
  // Paged decode attention: 64 sequences at context 1024, 32/8 heads, head_dim 64, blocks of 16.
  {
    const int S = 64, ctx = 1024, B = 16, hd = 64;
    const AttentionShape sh{32, 8, hd};
    const int kv_dim = sh.kv_heads * hd, nb = S * ctx / B;
    Dev kc(&cu, size_t(nb) * B * kv_dim), vc(&cu, size_t(nb) * B * kv_dim), q(&cu, size_t(S) * 32 * hd), o(&cu, size_t(S) * 32 * hd);
    std::vector<int32_t> tables(nb);
    for (int i = 0; i < nb; ++i) tables[i] = i;
    std::vector<int> pos(S, ctx - 1);
    cu.plan_begin();
    const int32_t* dt = static_cast<const int32_t*>(cu.plan_put(tables.data(), tables.size() * 4));
    std::vector<KvView> v(S);
    for (int i = 0; i < S; ++i) v[i].blocks = dt + size_t(i) * (ctx / B);
    const KvView* dv = static_cast<const KvView*>(cu.plan_put(v.data(), S * sizeof(KvView)));
    const int* dp = static_cast<const int*>(cu.plan_put(pos.data(), S * 4));
    cu.plan_commit();
    KvLayer l{kc.p, vc.p, B};
    const double t = time_ms(cu, 20, [&] { cu.attention(q.p, S, l, dv, dp, sh, o.p); });
    row("attention decode 64 seqs x ctx 1024 (32/8 heads, hd 64)", 2.0 * S * ctx * kv_dim * 4, t);
  }
  // Elementwise: 64 tokens x 8192.
  {
    const size_t n = size_t(64) * 8192;
    Dev a(&cu, n), c(&cu, n), w(&cu, size_t(8192));
    row("silu_mul 64x8192", 3.0 * n * 4, time_ms(cu, 50, [&] { cu.silu_mul(a.p, c.p, n); }));
    row("add 64x8192", 3.0 * n * 4, time_ms(cu, 50, [&] { cu.add(a.p, c.p, n); }));
    row("rmsnorm 64x8192", 2.0 * n * 4, time_ms(cu, 50, [&] { cu.rmsnorm(a.p, w.p, 64, 8192, 1e-5f, c.p); }));
  }
  j["kernels"] = rows;
  std::ofstream(out_path) << j.dump(2) << "\n";
  std::printf("wrote %s\n", out_path.c_str());
  return 0;
}

}  // namespace

// Backend choice at open, checked with or without a device.
void test_choice(bool have_device) {
  const std::string root = temp_dir("cuda_choice");
  auto model = load_model(write_tiny_model(root + "/m", TinySpec{}));
  EngineOptions eo;
  eo.max_tokens_per_step = 8;
  eo.kv_cache_bytes = size_t(1) << 20;
  eo.backend = "bogus";
  EXPECT_ERROR([&] { Engine e(*model, eo); }, "backend must be auto, cpu or cuda");
  eo.backend = "cpu";
  CHECK(std::string(Engine(*model, eo).backend_name()) == "cpu");
  const char* env = std::getenv("LONGTAIL_BACKEND");
  if (!env || !*env) {
    eo.backend = "auto";
    CHECK(std::string(Engine(*model, eo).backend_name()) == (have_device ? "cuda" : "cpu"));
  }
  eo.backend = "cuda";
  if (have_device) CHECK(std::string(Engine(*model, eo).backend_name()) == "cuda");
  else EXPECT_ERROR([&] { Engine e(*model, eo); }, "CUDA backend requested but");
}

int main(int argc, char** argv) {
  std::string why;
  if (cuda_device_count(&why) <= 0) {
    if (argc > 1) {  // --probe / --bench need a device: fail clearly
      std::printf("SKIP: no CUDA device (%s)\n", why.c_str());
      return 1;
    }
    test_choice(false);
    std::printf("SKIP: no CUDA device (%s)\n", why.c_str());
    return g_failures ? finish("test_cuda") : 0;
  }
  try {
    if (argc > 1 && std::string(argv[1]) == "--probe") {
      std::printf("CUDA devices: %d\n", cuda_device_count(nullptr));
      return 0;
    }
    if (argc > 2 && std::string(argv[1]) == "--bench") return bench(argv[2]);
    {
      Backends b;
      std::printf("cuda backend: gemm via %s\n", cuda_backend_gemm_library(b.cuda.get()));
      std::mt19937 rng(42);
      test_gemm(*b.cuda, *b.cpu, rng, "auto");
      test_lora(*b.cuda, *b.cpu, rng);
      test_small_ops(*b.cuda, *b.cpu, rng);
      test_attention(*b.cuda, *b.cpu, rng);
    }
    if (std::string(std::getenv("LONGTAIL_CUDA_GEMM") ? std::getenv("LONGTAIL_CUDA_GEMM") : "") != "own") {
      setenv("LONGTAIL_CUDA_GEMM", "own", 1);  // the fallback kernels too, when cuBLAS was in use
      Backends b;
      std::mt19937 rng(43);
      test_gemm(*b.cuda, *b.cpu, rng, "own");
      unsetenv("LONGTAIL_CUDA_GEMM");
    }
    test_choice(true);
    const std::string root = temp_dir("cuda");
    test_engine(root, "f32", 1e-3);
    test_engine(root, "bf16", 6e-2);
    test_runtime(root);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "test_cuda: %s\n", e.what());
    return 1;
  }
  return finish("test_cuda");
}

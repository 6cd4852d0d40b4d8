// longtail-engine bench: decode and prefill throughput with rooflines, measured in one run.
//
// Rows: decode step at each batch size (a) base model only, (b) every sequence on a different
// adapter, (c) the naive way: one adapter at a time, one step per adapter, sequentially.
// Roofline per row = max(bytes the step must read / copy bandwidth, FLOPs / GEMM peak), both
// measured in this run. Also: prefill tokens/s, the GEMM per-shape comparison (own kernel vs
// OpenBLAS) behind docs/decisions/0007, and f32 vs bf16-on-the-fly weight streaming.
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "backend.h"
#include "longtail/engine.h"
#include "model_internal.h"
#include "threadpool.h"

using json = nlohmann::json;
using namespace longtail;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  }
  return "unknown";
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// Bytes copied per second (memcpy of a 256 MiB buffer, far larger than the last-level cache),
// best of several repetitions with one thread and with all threads.
double copy_bandwidth(ThreadPool& pool) {
  const size_t n = size_t(256) << 20;
  std::vector<char> a(n, 1), b(n, 2);
  double best = 0;
  for (int rep = 0; rep < 8; ++rep) {
    const bool all = rep % 2 == 0;
    double t0 = now();
    if (all) {
      pool.parallel_for(64, [&](int64_t b0, int64_t b1) {
        const size_t chunk = n / 64;
        std::memcpy(b.data() + b0 * chunk, a.data() + b0 * chunk, size_t(b1 - b0) * chunk);
      });
    } else {
      std::memcpy(b.data(), a.data(), n);
    }
    double t = now() - t0;
    best = std::max(best, n / t);
    std::swap(a, b);
  }
  return best;
}

// Bytes read per second (sum of a 256 MiB buffer), all threads: what a weight stream can reach.
double read_bandwidth(ThreadPool& pool) {
  const size_t n = size_t(64) << 20;  // floats
  std::vector<float> a(n, 1.0f);
  std::vector<double> sums(64);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    double t0 = now();
    pool.parallel_for(64, [&](int64_t b0, int64_t b1) {
      for (int64_t c = b0; c < b1; ++c) {
        const float* p = a.data() + size_t(c) * (n / 64);
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = 0; i < n / 64; i += 4) {
          s0 += p[i];
          s1 += p[i + 1];
          s2 += p[i + 2];
          s3 += p[i + 3];
        }
        sums[c] = s0 + s1 + s2 + s3;
      }
    });
    best = std::max(best, n * 4.0 / (now() - t0));
  }
  return best;
}

// Kernels of the per-shape comparison: kOwn = gemm_own (dot kernel below M = 8, outer-product
// from there), kBlas = OpenBLAS, kOuter = gemm_own_outer, kWt = gemm_own_wt (same bits, lanes over
// W rows), kInvariant = gemm_invariant (the batch-invariant GEMM: kWt up to M = 4, then kOuter).
enum Kernel { kOwn, kBlas, kOuter, kWt, kInvariant };

double time_gemm(ThreadPool& pool, Kernel kernel, int M, int N, int K, int reps) {
  std::vector<float> x(size_t(M) * K, 0.01f), W(size_t(N) * K, 0.02f), y(size_t(M) * N);
  auto run = [&] {
    if (kernel == kOwn) gemm_own(pool, M, N, K, x.data(), W.data(), nullptr, y.data());
    else if (kernel == kOuter) gemm_own_outer(pool, M, N, K, x.data(), W.data(), nullptr, y.data());
    else if (kernel == kWt) gemm_own_wt(pool, M, N, K, x.data(), W.data(), nullptr, y.data());
    else if (kernel == kInvariant) gemm_invariant(pool, M, N, K, x.data(), W.data(), nullptr, y.data());
    else gemm_blas(pool.size(), M, N, K, x.data(), W.data(), nullptr, y.data());
  };
  run();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
    run();
    best = std::min(best, now() - t0);
  }
  return best;
}

#if defined(__AVX2__) && defined(__FMA__)
// bf16 weights converted on the fly (for the f32-at-load vs on-the-fly comparison only).
void gemm_bf16_own(ThreadPool& pool, int M, int N, int K, const float* x, const uint16_t* W, float* y) {
  pool.parallel_for(N, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const uint16_t* w = W + size_t(n) * K;
      for (int m = 0; m < M; m += 4) {
        const int mr = std::min(4, M - m);
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int k = 0; k + 8 <= K; k += 8) {
          __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + k)));
          __m256 wv = _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
          for (int i = 0; i < mr; ++i) acc[i] = _mm256_fmadd_ps(_mm256_loadu_ps(x + size_t(m + i) * K + k), wv, acc[i]);
        }
        for (int i = 0; i < mr; ++i) {
          float t[8];
          _mm256_storeu_ps(t, acc[i]);
          y[size_t(m + i) * N + n] = t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
        }
      }
    }
  });
}
#endif

struct StepCost {
  double bytes = 0;
  double flops = 0;
};

// What a decode step reads and computes: base weights, the distinct adapters of the step, KV.
StepCost decode_cost(const Model& m, const std::vector<const Adapter*>& distinct, int batch, double ctx) {
  const ModelConfig& c = m.config();
  double proj = 0;
  for (int p = 0; p < kNumProj; ++p) proj += double(proj_in(c, p)) * proj_out(c, p);
  proj *= c.layers;
  const double lm = double(c.vocab) * c.hidden;
  const double norms = double(c.hidden) * (2 * c.layers + 1);
  StepCost s;
  s.bytes = 4 * (proj + lm + norms + double(batch) * c.hidden /*embedding rows*/);
  s.flops = 2.0 * batch * (proj + lm);
  for (const Adapter* a : distinct) s.bytes += double(a->bytes());
  // Every sequence here runs all its adapter's modules: 2 flops per A and B element per token.
  if (!distinct.empty()) s.flops += 2.0 * batch * double(distinct[0]->parameter_count());
  const double kv_dim = double(c.kv_heads) * c.head_dim;
  s.bytes += 4.0 * batch * c.layers * 2 * ctx * kv_dim;
  s.flops += 4.0 * batch * c.layers * c.heads * ctx * c.head_dim;
  return s;
}

// The cost of batch invariance, measured in this run: the same steps on two engines, one with
// batch_invariant on and one off, alternately (each step on one, then the same step on the other),
// so both see the same load. Prefill: `prefill_chunk` tokens a step (whole `context`-token
// prompts); decode: one token for each of B sequences, base model and every sequence on its own
// adapter. Figures: median and mean ms of `iters` steps each; ratio = invariant / off of the
// medians (other jobs on the machine make single steps slow; the median ignores those). Decode
// batch >= 8 without adapters runs the same kernels in both modes (the outer-product GEMM): its
// ratio shows the noise of the run.
json invariance_cost(const Model& model, const std::vector<std::unique_ptr<Adapter>>& adapters, const EngineOptions& base,
                     const std::vector<int>& batches, int context, int prefill_chunk, int iters) {
  const ModelConfig& c = model.config();
  const int max_batch = *std::max_element(batches.begin(), batches.end());
  const int nseq = std::max(max_batch, prefill_chunk / context);
  EngineOptions on = base, off = base;
  on.batch_invariant = true;
  off.batch_invariant = false;
  on.max_seqs_per_step = off.max_seqs_per_step = std::max(base.max_seqs_per_step, nseq);
  Engine e_on(model, on), e_off(model, off);
  Engine* engines[2] = {&e_on, &e_off};
  const int capacity = context + int(batches.size()) * 2 * (iters + 1) + 8;  // one position a decode step
  std::vector<SeqId> seqs[2];
  for (int e = 0; e < 2; ++e)
    for (int i = 0; i < nseq; ++i) seqs[e].push_back(engines[e]->create_sequence(capacity));
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> tok(3, c.vocab - 1);
  std::vector<std::vector<int32_t>> prompts(nseq);
  for (auto& p : prompts)
    for (int j = 0; j < context; ++j) p.push_back(tok(rng));
  std::vector<float> logits(size_t(on.max_seqs_per_step) * c.vocab);
  json out;
  // Prefill: the prompts in steps of whole prompts up to prefill_chunk tokens.
  {
    double t[2] = {0, 0};
    int tokens = 0;
    for (int i = 0; i < nseq;) {
      const int per = std::max(1, prefill_chunk / context), n = std::min(per, nseq - i);
      for (int e = 0; e < 2; ++e) {
        StepBatch b;
        for (int j = i; j < i + n; ++j) b.seqs.push_back({seqs[e][j], prompts[j].data(), context, 0, nullptr});
        const double t0 = now();
        engines[e]->step(b, logits.data());
        t[e] += now() - t0;
      }
      tokens += n * context;
      i += n;
    }
    out["prefill"] = {{"tokens", tokens}, {"tokens_per_step", std::max(1, prefill_chunk / context) * context},
                      {"invariant_tokens_per_s", tokens / t[0]}, {"off_tokens_per_s", tokens / t[1]},
                      {"ratio_time", t[0] / t[1]}};
  }
  json rows = json::array();
  int32_t next_tok = 5;
  for (int B : batches) {
    for (bool with : {false, true}) {
      if (with && int(adapters.size()) < B) continue;
      std::vector<double> t[2];
      for (int r = 0; r <= iters; ++r) {  // r = 0: warm-up
        for (int e0 = 0; e0 < 2; ++e0) {
          const int e = (e0 + r) % 2;  // alternate which engine goes first
          StepBatch b;
          for (int i = 0; i < B; ++i)
            b.seqs.push_back({seqs[e][i], &next_tok, 1, engines[e]->sequence_length(seqs[e][i]),
                              with ? &adapters[i]->view() : nullptr});
          const double t0 = now();
          engines[e]->step(b, logits.data());
          if (r > 0) t[e].push_back(now() - t0);
        }
      }
      auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
      };
      auto mean = [](const std::vector<double>& v) {
        double s = 0;
        for (double x : v) s += x;
        return s / double(v.size());
      };
      const double m0 = median(t[0]), m1 = median(t[1]);
      rows.push_back({{"batch", B}, {"mode", with ? "adapters" : "base"}, {"invariant_ms", m0 * 1e3},
                      {"off_ms", m1 * 1e3}, {"ratio", m0 / m1}, {"invariant_mean_ms", mean(t[0]) * 1e3},
                      {"off_mean_ms", mean(t[1]) * 1e3}});
      std::fprintf(stderr, "  invariance batch %d %s: on %.2f ms, off %.2f ms (x%.2f, medians)\n", B,
                   with ? "adapters" : "base", m0 * 1e3, m1 * 1e3, m0 / m1);
    }
  }
  out["decode"] = rows;
  out["iters"] = iters;
  return out;
}

}  // namespace

int bench_main(const std::map<std::string, std::string>& o, const std::string& command_line) {
  if (!o.count("model")) throw Error("bench needs --model DIR");
  const int threads = o.count("threads") ? std::stoi(o.at("threads")) : 0;
  std::vector<int> batches;
  for (auto& b : split(o.count("batches") ? o.at("batches") : "1,8,32", ',')) batches.push_back(std::stoi(b));
  const int context = o.count("context") ? std::stoi(o.at("context")) : 128;
  const int prefill_chunk = o.count("prefill-chunk") ? std::stoi(o.at("prefill-chunk")) : 512;
  const int iters = o.count("iters") ? std::stoi(o.at("iters")) : 5;
  const bool gemm_shapes = !o.count("skip-gemm-shapes");
  const int max_batch = *std::max_element(batches.begin(), batches.end());

  std::fprintf(stderr, "bench: loading %s\n", o.at("model").c_str());
  auto model = load_model(o.at("model"));
  const ModelConfig& c = model->config();
  std::vector<std::unique_ptr<Adapter>> adapters;
  if (o.count("adapters")) {
    for (auto& d : split(o.at("adapters"), ',')) adapters.push_back(load_adapter(d, *model));
  }
  if (!adapters.empty() && int(adapters.size()) < max_batch) {
    throw Error("bench: " + std::to_string(adapters.size()) + " adapters for batch " + std::to_string(max_batch) + " (need one per sequence)");
  }
  EngineOptions eo;
  eo.threads = threads;
  eo.max_tokens_per_step = std::max(prefill_chunk, max_batch);
  eo.max_seqs_per_step = std::max(max_batch, prefill_chunk / context + 1);
  if (o.count("batch-invariant")) eo.batch_invariant = o.at("batch-invariant") == "on";
  const bool invariance = !o.count("skip-invariance");
  if (o.count("invariant-gemm")) gemm_invariant_dot = o.at("invariant-gemm") == "dot";
  std::unique_ptr<Engine> engine_holder = std::make_unique<Engine>(*model, eo);
  Engine& engine = *engine_holder;
  ThreadPool pool(engine.threads());

  json out;
  out["command"] = command_line;
  out["date"] = utc_now();
  out["machine"] = {{"cpu", cpu_model()}, {"cores", hardware_threads()}, {"threads", engine.threads()}};
  out["batch_invariant"] = engine.batch_invariant();
  out["model"] = json::parse(model->summary_json());
  out["adapters"] = {{"count", adapters.size()},
                     {"rank", adapters.empty() ? 0 : adapters[0]->weights().max_rank},
                     {"targets", adapters.empty() ? json::array() : json(adapters[0]->weights().targets)},
                     {"bytes_each", adapters.empty() ? 0 : adapters[0]->bytes()}};

  // Machine limits, measured now.
  std::fprintf(stderr, "bench: copy bandwidth\n");
  // Other processes may share the cores: both limits are measured before and after the decode
  // rows and the better figure is the roofline's (the conservative choice for "× roofline").
  double bw = copy_bandwidth(pool);
  std::fprintf(stderr, "bench: gemm peak\n");
  const int P = 1536;
  double peak = 2.0 * P * P * P / time_gemm(pool, kBlas, P, P, P, 5);
  const double bw_before = bw, peak_before = peak;

  // Prefill: max_batch sequences of `context` tokens, prefill_chunk tokens per step.
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> tok(3, c.vocab - 1);
  const int capacity = context + int(batches.size()) * (3 * iters + 6) + 8;  // every decode step adds one
  std::vector<SeqId> seqs;
  std::vector<std::vector<int32_t>> prompts(max_batch);
  for (int i = 0; i < max_batch; ++i) {
    seqs.push_back(engine.create_sequence(capacity));
    for (int j = 0; j < context; ++j) prompts[i].push_back(tok(rng));
  }
  std::vector<float> logits(size_t(std::max(max_batch, eo.max_seqs_per_step)) * c.vocab);
  std::fprintf(stderr, "bench: prefill %d x %d tokens\n", max_batch, context);
  {
    double t0 = now();
    int i = 0;
    while (i < max_batch) {
      StepBatch b;
      int tokens = 0;
      while (i < max_batch && tokens + context <= prefill_chunk) {
        b.seqs.push_back({seqs[i], prompts[i].data(), context, 0, nullptr});
        tokens += context;
        ++i;
      }
      if (b.seqs.empty()) throw Error("bench: --context exceeds --prefill-chunk");
      engine.step(b, logits.data());
    }
    double t = now() - t0;
    const double pflops = 2.0 * max_batch * context * (double(model->parameter_count()) - double(c.vocab) * c.hidden * (c.tied_embeddings ? 0 : 1));
    out["prefill"] = {{"sequences", max_batch}, {"tokens_per_sequence", context}, {"tokens_per_step", prefill_chunk},
                      {"seconds", t}, {"tokens_per_s", max_batch * context / t},
                      {"GFLOPS", pflops / t / 1e9}};
  }

  // Decode rows.
  struct Pending { int B; std::string mode; double mean, best, ctx; StepCost cost; };
  std::vector<Pending> measured;
  json rows = json::array();
  int32_t next_tok = 5;
  auto decode_step = [&](int first, int n, bool with_adapters) {
    StepBatch b;
    for (int i = first; i < first + n; ++i) {
      b.seqs.push_back({seqs[i], &next_tok, 1, engine.sequence_length(seqs[i]),
                        with_adapters ? &adapters[i]->view() : nullptr});
    }
    engine.step(b, logits.data());
  };
  for (int B : batches) {
    for (const char* mode : {"base", "adapters", "naive"}) {
      const bool with = std::string(mode) != "base";
      if (with && adapters.empty()) continue;
      if (std::string(mode) == "naive" && B == 1) {
        // With one sequence the naive way is the batched way; still measured for the table.
      }
      std::fprintf(stderr, "bench: decode batch %d %s\n", B, mode);
      // Reset lengths by using fresh positions: sequences keep growing; KV context is reported.
      const int its = std::string(mode) == "naive" ? std::max(1, iters / 2) : iters;
      double ctx_sum = 0;
      auto once = [&] {
        if (std::string(mode) == "naive") {
          for (int i = 0; i < B; ++i) decode_step(i, 1, true);
        } else {
          decode_step(0, B, with);
        }
      };
      // Keep lengths within capacity: rewind is not supported, so steps are budgeted.
      once();  // warm-up
      double best = 1e30, total = 0;
      for (int r = 0; r < its; ++r) {
        ctx_sum += engine.sequence_length(seqs[0]);
        double t0 = now();
        once();
        double t = now() - t0;
        best = std::min(best, t);
        total += t;
      }
      const double ctx = ctx_sum / its;
      std::vector<const Adapter*> distinct;
      if (with)
        for (int i = 0; i < B; ++i) distinct.push_back(adapters[i].get());
      StepCost cost = decode_cost(*model, distinct, B, ctx);
      if (std::string(mode) == "naive") {
        // B separate steps of batch 1, each reading the base weights again.
        StepCost one = decode_cost(*model, {adapters[0].get()}, 1, ctx);
        cost.bytes = one.bytes * B;
        cost.flops = one.flops * B;
      }
      measured.push_back({B, mode, total / its, best, ctx, cost});
      std::fprintf(stderr, "  %.2f ms/step, %.1f tok/s\n", total / its * 1e3, B / (total / its));
    }
  }
  std::fprintf(stderr, "bench: copy bandwidth and gemm peak again\n");
  const double bw_after = copy_bandwidth(pool);
  const double peak_after = 2.0 * P * P * P / time_gemm(pool, kBlas, P, P, P, 5);
  bw = std::max(bw_before, bw_after);
  peak = std::max(peak_before, peak_after);
  const double rbw = read_bandwidth(pool);
  out["read_bandwidth_GBps"] = rbw / 1e9;
  out["copy_bandwidth_GBps"] = bw / 1e9;
  out["copy_bandwidth_GBps_before_after"] = {bw_before / 1e9, bw_after / 1e9};
  out["gemm_peak_GFLOPS"] = peak / 1e9;
  out["gemm_peak_GFLOPS_before_after"] = {peak_before / 1e9, peak_after / 1e9};
  out["gemm_peak_shape"] = "OpenBLAS sgemm 1536x1536x1536, all threads, best of 5";
  std::map<int, double> adapter_ms, naive_ms;
  for (const Pending& p : measured) {
    const double t_mem = p.cost.bytes / bw, t_flop = p.cost.flops / peak;
    const double roof = std::max(t_mem, t_flop);
    rows.push_back({{"batch", p.B},
                    {"mode", p.mode},
                    {"step_ms", p.mean * 1e3},
                    {"best_step_ms", p.best * 1e3},
                    {"tokens_per_s", p.B / p.mean},
                    {"context", p.ctx},
                    {"bytes_read_MB", p.cost.bytes / 1e6},
                    {"GFLOP", p.cost.flops / 1e9},
                    {"roofline_ms", roof * 1e3},
                    {"roofline_bound", t_mem >= t_flop ? "memory" : "compute"},
                    {"x_roofline", p.mean / roof},
                    // Same with the read bandwidth (a weight stream only reads): a tighter bound.
                    {"x_read_roofline", p.mean / std::max(p.cost.bytes / rbw, t_flop)}});
    if (p.mode == "adapters") adapter_ms[p.B] = p.mean;
    if (p.mode == "naive") naive_ms[p.B] = p.mean;
    std::fprintf(stderr, "  batch %d %s: %.2f ms, roofline %.2f ms (%s), x%.2f\n", p.B, p.mode.c_str(), p.mean * 1e3,
                 roof * 1e3, t_mem >= t_flop ? "memory" : "compute", p.mean / roof);
  }
  out["decode"] = rows;
  json speedup = json::object();
  for (auto& kv : adapter_ms)
    if (naive_ms.count(kv.first)) speedup[std::to_string(kv.first)] = naive_ms[kv.first] / kv.second;
  out["batched_vs_naive_speedup"] = speedup;

  if (invariance) {
    std::fprintf(stderr, "bench: batch invariance on vs off\n");
    engine_holder.reset();  // its KV cache and scratch go before two more engines
    out["batch_invariance_cost"] = invariance_cost(*model, adapters, eo, batches, context, prefill_chunk, iters);
  }

  if (gemm_shapes) {
    std::fprintf(stderr, "bench: gemm shapes\n");
    json g = json::array();
    const int shapes[][2] = {{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}};
    for (int M : {1, 2, 4, 8, 32, 64, 128, 512}) {
      for (auto& s : shapes) {
        const int N = s[0], K = s[1];
        if (M >= 128 && N == 32000) continue;
        const int reps = M <= 32 ? 5 : 3;
        const double to = time_gemm(pool, kOwn, M, N, K, reps), tb = time_gemm(pool, kBlas, M, N, K, reps);
        const double tu = time_gemm(pool, kOuter, M, N, K, reps), tw = time_gemm(pool, kWt, M, N, K, reps);
        const double ti = time_gemm(pool, kInvariant, M, N, K, reps);
        const double fl = 2.0 * M * N * K;
        g.push_back({{"M", M}, {"N", N}, {"K", K}, {"own_GFLOPS", fl / to / 1e9}, {"blas_GFLOPS", fl / tb / 1e9},
                     {"outer_GFLOPS", fl / tu / 1e9}, {"wt_GFLOPS", fl / tw / 1e9}, {"invariant_GFLOPS", fl / ti / 1e9},
                     {"own_GBps", 4.0 * N * K / to / 1e9}, {"blas_GBps", 4.0 * N * K / tb / 1e9}});
      }
    }
    out["gemm_shapes"] = g;
#if defined(__AVX2__) && defined(__FMA__)
    // Weight streaming: f32 (converted at load) vs bf16 converted on the fly, for decode shapes.
    json w = json::array();
    const int N = 32000, K = 768;
    std::vector<uint16_t> wb(size_t(N) * K, 0x3c00);
    for (int M : {1, 8, 32}) {
      std::vector<float> x(size_t(M) * K, 0.01f), y(size_t(M) * N);
      gemm_bf16_own(pool, M, N, K, x.data(), wb.data(), y.data());
      double best = 1e30;
      for (int r = 0; r < 5; ++r) {
        double t0 = now();
        gemm_bf16_own(pool, M, N, K, x.data(), wb.data(), y.data());
        best = std::min(best, now() - t0);
      }
      const double tf = time_gemm(pool, kOwn, M, N, K, 5);
      w.push_back({{"M", M}, {"N", N}, {"K", K}, {"f32_ms", tf * 1e3}, {"bf16_on_the_fly_ms", best * 1e3}});
    }
    out["weight_dtype_streaming"] = w;
#endif
  }

  const std::string text = out.dump(2);
  if (o.count("out")) {
    std::ofstream f(o.at("out"));
    if (!f) throw Error(o.at("out") + ": cannot write");
    f << text << "\n";
  }
  std::printf("%s\n", text.c_str());
  return 0;
}

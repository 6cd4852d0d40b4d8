// Kernels against plain references: GEMM (own AVX2 kernel and OpenBLAS) over awkward shapes, and
// the LoRA SGMV/BGMV path over mixed segment layouts and ranks.
#include <cstring>

#include "backend.h"
#include "test_util.h"
#include "threadpool.h"

using namespace longtail;

static double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0, scale = 1e-6;
  for (size_t i = 0; i < a.size(); ++i) scale = std::max(scale, std::fabs(double(b[i])));
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]) / scale);
  return m;
}

int main() {
  std::mt19937 rng(3);
  ThreadPool pool(3);
  const int Ms[] = {1, 2, 3, 4, 5, 7, 9, 33};
  const int Ns[] = {1, 2, 3, 5, 8, 13, 64};
  const int Ks[] = {1, 7, 8, 9, 16, 37, 100};
  for (int M : Ms)
    for (int N : Ns)
      for (int K : Ks) {
        auto x = random_values(rng, size_t(M) * K, 1.0f), W = random_values(rng, size_t(N) * K, 1.0f),
             b = random_values(rng, N, 1.0f);
        std::vector<float> ref(size_t(M) * N), own(ref.size()), blas(ref.size());
        const float* bias = (K % 2) ? b.data() : nullptr;
        gemm_reference(M, N, K, x.data(), W.data(), bias, ref.data());
        gemm_own(pool, M, N, K, x.data(), W.data(), bias, own.data());
        gemm_blas(1, M, N, K, x.data(), W.data(), bias, blas.data());
        CHECK(max_rel(own, ref) < 1e-5);
        CHECK(max_rel(blas, ref) < 1e-5);
      }

  // Both own kernels (and the dispatcher) for every M in 1..40 plus multi-block M, odd N/K tails,
  // with and without K-blocking of the outer-product kernel.
  {
    const int saved_kc = gemm_outer_kc;
    const int Ns2[] = {1, 5, 6, 7, 13, 50};
    const int Ks2[] = {0, 1, 3, 17, 33, 70};
    std::vector<int> Ms2;
    for (int m = 1; m <= 40; ++m) Ms2.push_back(m);
    Ms2.push_back(64);
    Ms2.push_back(65);
    Ms2.push_back(130);
    for (int kc : {0, 16, 5}) {
      gemm_outer_kc = kc;
      for (int M : Ms2)
        for (int N : Ns2)
          for (int K : Ks2) {
            if (kc != 0 && (M % 7 != 0 && M < 40)) continue;  // K-blocking: a subset of M
            auto x = random_values(rng, size_t(M) * K, 1.0f), W = random_values(rng, size_t(N) * K, 1.0f),
                 b = random_values(rng, N, 1.0f);
            std::vector<float> ref(size_t(M) * N), outer(ref.size(), -7.0f), dot(ref.size(), -7.0f), own(ref.size());
            const float* bias = ((M + N + K) % 2) ? b.data() : nullptr;
            gemm_reference(M, N, K, x.data(), W.data(), bias, ref.data());
            gemm_own_outer(pool, M, N, K, x.data(), W.data(), bias, outer.data());
            gemm_own_dot(pool, M, N, K, x.data(), W.data(), bias, dot.data());
            gemm_own(pool, M, N, K, x.data(), W.data(), bias, own.data());
            // The batch-invariant GEMM's two kernels give the same bits for every element.
            std::vector<float> wt(ref.size(), -7.0f);
            if (M <= 8 || M % 13 == 0) {
              gemm_own_wt(pool, M, N, K, x.data(), W.data(), bias, wt.data());
              CHECK(std::memcmp(wt.data(), outer.data(), wt.size() * sizeof(float)) == 0);
            }
            CHECK(max_rel(outer, ref) < 1e-5);
            CHECK(max_rel(dot, ref) < 1e-5);
            CHECK(max_rel(own, ref) < 1e-5);
          }
    }
    gemm_outer_kc = saved_kc;
  }

  // LoRA: segments of different lengths (prefill chunks and decode tokens) and ranks.
  for (int threads : {1, 2, 3}) {  // 1-2: one item per decode token; 3: tokens split across threads
  CpuBackendOptions o;
  o.threads = threads;
  CpuBackend* cpu = make_cpu_backend(o);
  Backend& be = *as_backend(cpu);
  for (int mode = 0; mode < 3; ++mode) {  // own kernels, OpenBLAS, batch-invariant (per-token LoRA)
    set_gemm_impl(cpu, mode == 1 ? GemmImpl::kBlas : GemmImpl::kOwn, 32);
    set_batch_invariant(cpu, mode == 2);
    const int in = 40, out = 24;
    struct S { int len, rank; };
    const S layout[] = {{5, 4}, {1, 1}, {1, 16}, {20, 8}, {1, 3}, {3, 256}, {1, 7}};
    std::vector<LoraSegment> segs;
    std::vector<std::vector<float>> As, Bts;
    std::vector<std::vector<const float*>> Arows, Btrows;  // rows stored in reverse order: the
    As.reserve(16), Bts.reserve(16), Arows.reserve(16), Btrows.reserve(16);  // kernel must follow pointers
    int T = 0;
    for (const S& s : layout) {
      As.push_back(random_values(rng, size_t(s.rank) * in, 0.5f));
      Bts.push_back(random_values(rng, size_t(s.rank) * out, 0.5f));
      LoraSegment g;
      g.start = T;
      g.len = s.len;
      g.rank = s.rank;
      g.scale = 0.5f + 0.1f * float(segs.size());
      Arows.emplace_back(s.rank), Btrows.emplace_back(s.rank);
      for (int k = 0; k < s.rank; ++k) {
        Arows.back()[k] = As.back().data() + size_t(s.rank - 1 - k) * in;
        Btrows.back()[k] = Bts.back().data() + size_t(s.rank - 1 - k) * out;
      }
      g.A = Arows.back().data();
      g.Bt = Btrows.back().data();
      segs.push_back(g);
      T += s.len + 1;  // leave one token without LoRA between segments
    }
    auto x = random_values(rng, size_t(T) * in, 1.0f);
    auto y0 = random_values(rng, size_t(T) * out, 1.0f);
    std::vector<float> y = y0, ref = y0, tmp(size_t(T) * 256);
    for (const auto& g : segs) {
      for (int t = g.start; t < g.start + g.len; ++t) {
        std::vector<double> sh(g.rank);
        for (int k = 0; k < g.rank; ++k)
          for (int i = 0; i < in; ++i) sh[k] += double(g.A[k][i]) * x[size_t(t) * in + i];
        for (int o2 = 0; o2 < out; ++o2) {
          double s = 0;
          for (int k = 0; k < g.rank; ++k) s += sh[k] * g.Bt[k][o2];
          ref[size_t(t) * out + o2] += float(g.scale * s);
        }
      }
    }
    be.lora(segs.data(), int(segs.size()), in, out, x.data(), y.data(), tmp.data());
    CHECK(max_rel(y, ref) < 1e-5);
  }
  destroy_cpu_backend(cpu);
  }
  return finish("test_kernels");
}

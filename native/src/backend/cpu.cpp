// CPU backend: the reference implementation of backend.h, and fast enough to serve small models.
//
// GEMM: chosen per shape (docs/decisions/0007-engine-cpu-gemm.md):
//  - gemm_own (decode, M <= 32): M >= gemm_outer_min_m (8): gemm_own_outer, an AVX2/FMA
//    outer-product kernel (xᵀ packed per call into blocks of 16 tokens, micro-tile 6 rows of W ×
//    16 tokens, 12 accumulators, no horizontal sums, W read in its [N, K] layout, once per 16
//    tokens); smaller M: gemm_own_dot, a dot-product kernel (3 rows of x × 4 rows of W), bound by
//    reading the weights there. Threads split the output columns N.
//  - gemm_blas: OpenBLAS sgemm, for large M (prefill), which is bound by FLOPs.
// LoRA: SGMV (shrink GEMM + expand GEMM per segment) for prefill segments, BGMV (per-token gathered
// matvecs, all decode tokens in one parallel pass) for decode tokens.
//
// Batch-invariant mode (CpuBackendOptions::batch_invariant, docs/decisions/0008-batch-invariant-cpu.md):
// every output element is computed in one fixed order whatever the step holds, so a sequence's
// logits are bitwise the same alone, in a batch of any size, with any adapters beside it and with
// any prefill chunking. GEMM: gemm_invariant for every M (each y[m][n] is one FMA chain over
// k = 0..K-1 from +0: gemm_own_outer, lanes over tokens, for M >= 5; gemm_own_wt, lanes over W
// rows, for M <= 4; the same bits, so tile width, padding, threads and M change nothing);
// LoRA: lora_per_token for every segment (t[k] = scale·dot(A[k], x_m), then y_m += t[k]·Bt[k] for
// k ascending, one FMA per element). The other ops already work per token or per (token, head)
// in an order set by the token's own position.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LT_AVX2 1
#endif

#include "../backend.h"
#include "../threadpool.h"
#include "longtail/engine.h"

extern "C" void openblas_set_num_threads(int num_threads);

namespace longtail {

template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t n) {
    void* p = std::aligned_alloc(64, (n * sizeof(T) + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const AlignedAllocator<U>&) const { return false; }
};

// ---------------------------------------------------------------------------------------------
// GEMM kernels

void gemm_reference(int M, int N, int K, const float* x, const float* W, const float* bias, float* y) {
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) {
      double s = bias ? bias[n] : 0.0;
      for (int k = 0; k < K; ++k) s += double(x[size_t(m) * K + k]) * W[size_t(n) * K + k];
      y[size_t(m) * N + n] = static_cast<float>(s);
    }
  }
}

#ifdef LT_AVX2
static inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 sh = _mm_movehdup_ps(lo);
  __m128 s = _mm_add_ps(lo, sh);
  sh = _mm_movehl_ps(sh, s);
  s = _mm_add_ss(s, sh);
  return _mm_cvtss_f32(s);
}
#endif

#ifndef LT_MR
#define LT_MR 3
#define LT_NR 4
#endif
constexpr int kMR = LT_MR, kNR = LT_NR;

// y[MR rows, NR cols] for x rows m0.., W rows n0.. (dot products over K).
// `next` (may be null): the next W block, prefetched while this one computes, so the weight
// stream from memory overlaps the FMAs (decode is bound by reading W).
template <int MR, int NR>
static inline void micro_tile(int K, const float* x, const float* W, const float* bias, float* y, int ldy,
                              const float* next = nullptr) {
#ifdef LT_AVX2
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    if (next && (k & 15) == 0) {
      for (int j = 0; j < NR; ++j) _mm_prefetch(reinterpret_cast<const char*>(next + size_t(j) * K + k), _MM_HINT_T0);
    }
    __m256 w[NR];
    for (int j = 0; j < NR; ++j) w[j] = _mm256_loadu_ps(W + size_t(j) * K + k);
    for (int i = 0; i < MR; ++i) {
      __m256 xv = _mm256_loadu_ps(x + size_t(i) * K + k);
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_fmadd_ps(xv, w[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      float s = hsum(acc[i][j]);
      for (int kk = k; kk < K; ++kk) s += x[size_t(i) * K + kk] * W[size_t(j) * K + kk];
      y[size_t(i) * ldy + j] = s + (bias ? bias[j] : 0.0f);
    }
  }
#else
  float acc[MR][NR] = {};
  for (int k = 0; k < K; ++k)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += x[size_t(i) * K + k] * W[size_t(j) * K + k];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) y[size_t(i) * ldy + j] = acc[i][j] + (bias ? bias[j] : 0.0f);
#endif
}

template <int NR>
static void column_block(int M, int K, int N, const float* x, const float* W, const float* bias, float* y, int n0) {
  const float* w = W + size_t(n0) * K;
  const float* b = bias ? bias + n0 : nullptr;
  const float* next = n0 + 2 * NR <= N ? w + size_t(NR) * K : nullptr;
  int m = 0;
  for (; m + kMR <= M; m += kMR) {
    micro_tile<kMR, NR>(K, x + size_t(m) * K, w, b, y + size_t(m) * N + n0, N, next);
    next = nullptr;  // later m-blocks find the next block in cache already
  }
  switch (M - m) {
    case 3: micro_tile<3, NR>(K, x + size_t(m) * K, w, b, y + size_t(m) * N + n0, N, next); break;
    case 2: micro_tile<2, NR>(K, x + size_t(m) * K, w, b, y + size_t(m) * N + n0, N, next); break;
    case 1: micro_tile<1, NR>(K, x + size_t(m) * K, w, b, y + size_t(m) * N + n0, N, next); break;
    default: break;
  }
}

void gemm_own_dot(ThreadPool& pool, int M, int N, int K, const float* x, const float* W, const float* bias, float* y) {
  constexpr int NR = kNR;
  const int blocks = (N + NR - 1) / NR;
  pool.parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int n0 = int(b) * NR;
      const int nr = std::min(NR, N - n0);
      if (nr == NR) { column_block<NR>(M, K, N, x, W, bias, y, n0); continue; }
      for (int j = 0; j < nr; ++j) column_block<1>(M, K, N, x, W, bias, y, n0 + j);
    }
  });
}

// Outer-product kernel (gemm_own uses it for M >= gemm_outer_min_m). x is packed once per call as xᵀ in blocks of 16 tokens,
// xp[block][k][16] (zero-padded); a micro-tile is 6 rows of W × 16 tokens: for each k, 2 ymm of xp
// (L1/L2) and 6 broadcasts of W[n][k] (streamed from memory once per 16 tokens) into 12 accumulators.
// No horizontal sums, W stays in its [N, K] layout (no repacking of the weights), any K works.
constexpr int kOR = 6;  // W rows per micro-tile
constexpr int kOB = 16;  // tokens per packed x block

#ifdef LT_AVX2
// c[NR][16] (+)= W[0..NR)[0..kc) · xp[0..kc)[16]; W rows have stride ldw. `next` (may be null): rows
// of the next W block at the same k, prefetched so the weight stream overlaps the FMAs.
template <int NR, int MW>
static inline void outer_tile(int kc, int ldw, const float* xp, const float* W, float* c, bool accumulate,
                              const float* next) {
  __m256 acc[NR][MW];
  for (int i = 0; i < NR; ++i)
    for (int j = 0; j < MW; ++j) acc[i][j] = accumulate ? _mm256_load_ps(c + i * kOB + 8 * j) : _mm256_setzero_ps();
  int k = 0;
  for (; k + 16 <= kc; k += 16) {
    if (next) {
      for (int i = 0; i < kOR; ++i) _mm_prefetch(reinterpret_cast<const char*>(next + size_t(i) * ldw + k), _MM_HINT_T0);
    }
#pragma GCC unroll 16
    for (int kk = 0; kk < 16; ++kk) {
      const float* xk = xp + size_t(k + kk) * kOB;
      __m256 xv[MW];
      for (int j = 0; j < MW; ++j) xv[j] = _mm256_load_ps(xk + 8 * j);
      for (int i = 0; i < NR; ++i) {
        const __m256 w = _mm256_broadcast_ss(W + size_t(i) * ldw + k + kk);
        for (int j = 0; j < MW; ++j) acc[i][j] = _mm256_fmadd_ps(w, xv[j], acc[i][j]);
      }
    }
  }
  for (; k < kc; ++k) {
    const float* xk = xp + size_t(k) * kOB;
    __m256 xv[MW];
    for (int j = 0; j < MW; ++j) xv[j] = _mm256_load_ps(xk + 8 * j);
    for (int i = 0; i < NR; ++i) {
      const __m256 w = _mm256_broadcast_ss(W + size_t(i) * ldw + k);
      for (int j = 0; j < MW; ++j) acc[i][j] = _mm256_fmadd_ps(w, xv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < NR; ++i)
    for (int j = 0; j < MW; ++j) _mm256_store_ps(c + i * kOB + 8 * j, acc[i][j]);
}

constexpr int kOSuper = 64;  // tokens whose accumulators are kept per W block (4 packed blocks)

template <int NR>
static void outer_block(int M, int N, int K, int kc, const float* xp, const float* W, const float* bias, float* y,
                        int n0, const float* next) {
  alignas(32) float c[kOSuper / kOB][kOR * kOB];
  const float* w = W + size_t(n0) * K;
  for (int s0 = 0; s0 < M; s0 += kOSuper) {
    const int sm = std::min(kOSuper, M - s0);
    for (int k0 = 0; k0 < K; k0 += kc) {
      const int kl = std::min(kc, K - k0);
      const float* pf = next ? next + k0 : nullptr;
      for (int m0 = 0; m0 < sm; m0 += kOB) {
        const int mr = std::min(kOB, sm - m0);
        const float* xb = xp + size_t(s0 + m0) * K + size_t(k0) * kOB;  // packed block (s0 + m0) / kOB
        float* cb = c[m0 / kOB];
        if (mr > 8) outer_tile<NR, 2>(kl, K, xb, w + k0, cb, k0 > 0, pf);
        else outer_tile<NR, 1>(kl, K, xb, w + k0, cb, k0 > 0, pf);
        pf = nullptr;  // later blocks of tokens find W's rows in cache
      }
    }
    next = nullptr;
    for (int m0 = 0; m0 < sm; m0 += kOB) {
      const int mr = std::min(kOB, sm - m0);
      const float* cb = c[m0 / kOB];
      for (int j = 0; j < mr; ++j) {
        float* yr = y + size_t(s0 + m0 + j) * N + n0;
        for (int i = 0; i < NR; ++i) yr[i] = cb[i * kOB + j] + (bias ? bias[n0 + i] : 0.0f);
      }
    }
  }
}
#endif

// Tuning knobs, measured on the 2-core Zen 3 build machine with weights streamed from memory
// (docs/decisions/0007-engine-cpu-gemm.md): K-blocking (kc = 128..512) gave nothing over the
// whole K (x's packed block comes from L2 at 64 B per 12 FMAs, which L2 sustains); prefetching
// 1 or 2 W blocks ahead measured the same; the outer kernel wins from M = 8 on.
int gemm_outer_kc = 0;     // <= 0: whole K
int gemm_outer_pf = 1;     // W blocks ahead to prefetch

void gemm_own_outer(ThreadPool& pool, int M, int N, int K, const float* x, const float* W, const float* bias, float* y) {
#ifdef LT_AVX2
  if (M <= 0 || K <= 0) return gemm_own_dot(pool, M, N, K, x, W, bias, y);  // y = bias (K = 0)
  const int nb = (M + kOB - 1) / kOB;
  static thread_local std::vector<float, AlignedAllocator<float>> xpack;
  const size_t need = size_t(nb) * kOB * K;
  if (xpack.size() < need) xpack.resize(need);  // grows once to the largest step; then allocation-free
  float* xp = xpack.data();
  // Pack xᵀ: k ranges of 64 in parallel when the copy is big enough to pay for a pool job.
  auto pack = [&](int64_t c0, int64_t c1) {
    const int k0 = int(c0) * 64, k1 = std::min(K, int(c1) * 64);
    for (int b = 0; b < nb; ++b) {
      float* dst = xp + size_t(b) * kOB * K;
      const int mr = std::min(kOB, M - b * kOB);
      for (int j = 0; j < kOB; ++j) {
        if (j < mr) {
          const float* src = x + size_t(b * kOB + j) * K;
          for (int k = k0; k < k1; ++k) dst[size_t(k) * kOB + j] = src[k];
        } else {
          for (int k = k0; k < k1; ++k) dst[size_t(k) * kOB + j] = 0.0f;
        }
      }
    }
  };
  const int64_t kchunks = (K + 63) / 64;
  if (size_t(M) * K >= 16384) pool.parallel_for(kchunks, pack);
  else pack(0, kchunks);
  const int kc = gemm_outer_kc > 0 ? gemm_outer_kc : K;
  const int blocks = (N + kOR - 1) / kOR;
  pool.parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int n0 = int(b) * kOR;
      const int nr = std::min(kOR, N - n0);
      const int pn = n0 + gemm_outer_pf * kOR;  // first row of the W block prefetched now
      const float* next = pn + kOR <= N ? W + size_t(pn) * K : nullptr;
      switch (nr) {
        case 6: outer_block<6>(M, N, K, kc, xp, W, bias, y, n0, next); break;
        case 5: outer_block<5>(M, N, K, kc, xp, W, bias, y, n0, next); break;
        case 4: outer_block<4>(M, N, K, kc, xp, W, bias, y, n0, next); break;
        case 3: outer_block<3>(M, N, K, kc, xp, W, bias, y, n0, next); break;
        case 2: outer_block<2>(M, N, K, kc, xp, W, bias, y, n0, next); break;
        default: outer_block<1>(M, N, K, kc, xp, W, bias, y, n0, next); break;
      }
    }
  });
#else
  gemm_own_dot(pool, M, N, K, x, W, bias, y);
#endif
}

// Small-M kernel of the batch-invariant GEMM: the outer-product kernel's arithmetic (each y[m][n]
// one FMA chain over k = 0..K-1 from +0, then + bias), with the vector lanes over 8 rows of W
// instead of 16 tokens, so M = 1..4 does not compute 16 token lanes. W is read in its [N, K]
// layout 8 rows × 8 k at a time (16-byte loads of 8 rows) and transposed in registers; then per
// k one broadcast of x[m][k] and one FMA per token. Same bits
// as gemm_own_outer for every element (tests/test_kernels.cpp checks it), so the batch-invariant
// GEMM may pick either by M.
#ifdef LT_AVX2
// c[0..4) = W[n0..n0+8)[k..k+4) as columns: c[i] lane j = W[n0 + j][k + i]. Rows j and j + 4 are
// loaded into the two 128-bit halves of one register, so a 4 × 4 transpose within each half
// (4 unpacks, 4 shuffles, no lane crossing) finishes the job.
static inline void columns4(const float* w, int K, int k, __m256* c) {
  __m256 r[4];
  for (int j = 0; j < 4; ++j)
    r[j] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(w + size_t(j) * K + k)),
                                _mm_loadu_ps(w + size_t(j + 4) * K + k), 1);
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  c[0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  c[1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  c[2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  c[3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
}

// y[0..MT)[n0..n0+8·NB) for W rows n0..n0+8·NB (all < N). NB blocks of 8 rows side by side give
// MT·NB independent FMA chains (one token alone would otherwise wait on one chain's latency).
template <int MT, int NB>
static inline void wt_block(int N, int K, const float* x, const float* W, const float* bias, float* y, int n0) {
  __m256 acc[NB][MT];
  for (int b = 0; b < NB; ++b)
    for (int m = 0; m < MT; ++m) acc[b][m] = _mm256_setzero_ps();
  const float* w = W + size_t(n0) * K;
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    for (int b = 0; b < NB; ++b) {
      const float* wb = w + size_t(8 * b) * K;
      for (int h = 0; h < 8; h += 4) {  // 4 columns at a time: few registers live beside acc
        __m256 c[4];  // c[i] = W[n0 + 8b..+8)[k + h + i]
        columns4(wb, K, k + h, c);
        for (int i = 0; i < 4; ++i)
          for (int m = 0; m < MT; ++m)
            acc[b][m] = _mm256_fmadd_ps(c[i], _mm256_broadcast_ss(x + size_t(m) * K + k + h + i), acc[b][m]);
      }
    }
  }
  for (; k < K; ++k) {
    for (int b = 0; b < NB; ++b) {
      const float* wb = w + size_t(8 * b) * K + k;
      const size_t s = size_t(K);
      const __m256 c = _mm256_setr_ps(wb[0], wb[s], wb[2 * s], wb[3 * s], wb[4 * s], wb[5 * s], wb[6 * s], wb[7 * s]);
      for (int m = 0; m < MT; ++m) acc[b][m] = _mm256_fmadd_ps(c, _mm256_broadcast_ss(x + size_t(m) * K + k), acc[b][m]);
    }
  }
  for (int b = 0; b < NB; ++b) {
    const int nb = n0 + 8 * b;
    const __m256 bv = bias ? _mm256_loadu_ps(bias + nb) : _mm256_setzero_ps();  // + 0.0f like the outer kernel
    for (int m = 0; m < MT; ++m) _mm256_storeu_ps(y + size_t(m) * N + nb, _mm256_add_ps(acc[b][m], bv));
  }
}
#endif

void gemm_own_wt(ThreadPool& pool, int M, int N, int K, const float* x, const float* W, const float* bias, float* y) {
#ifdef LT_AVX2
  // Work item: a group of 32 rows (4 blocks of 8), all M tokens, 4 tokens at a time (the rows stay
  // in L1/L2 for the next 4). Fewer tokens take more blocks side by side: 1 token × 4 blocks,
  // 2 × 2, 3 or 4 × 1 (at most 4 accumulators beside 4 column registers and the transpose's).
  const int blocks = N / 8, groups = (blocks + 3) / 4;
  pool.parallel_for(groups, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      const int b0 = int(g) * 4, b1 = std::min(blocks, b0 + 4);
      for (int m = 0; m < M; m += 4) {
        const float* xm = x + size_t(m) * K;
        float* ym = y + size_t(m) * N;
        const int mt = std::min(4, M - m);
        int b = b0;
        if (mt == 1) {
          for (; b + 4 <= b1; b += 4) wt_block<1, 4>(N, K, xm, W, bias, ym, 8 * b);
          for (; b + 2 <= b1; b += 2) wt_block<1, 2>(N, K, xm, W, bias, ym, 8 * b);
          for (; b < b1; ++b) wt_block<1, 1>(N, K, xm, W, bias, ym, 8 * b);
        } else if (mt == 2) {
          for (; b + 2 <= b1; b += 2) wt_block<2, 2>(N, K, xm, W, bias, ym, 8 * b);
          for (; b < b1; ++b) wt_block<2, 1>(N, K, xm, W, bias, ym, 8 * b);
        } else if (mt == 3) {
          for (; b < b1; ++b) wt_block<3, 1>(N, K, xm, W, bias, ym, 8 * b);
        } else {
          for (; b < b1; ++b) wt_block<4, 1>(N, K, xm, W, bias, ym, 8 * b);
        }
      }
    }
  });
  // Rows past the last full block of 8: the same chain, one scalar FMA at a time.
  for (int n = blocks * 8; n < N; ++n) {
    for (int m = 0; m < M; ++m) {
      float a = 0.0f;
      for (int k = 0; k < K; ++k) a = std::fma(W[size_t(n) * K + k], x[size_t(m) * K + k], a);
      y[size_t(m) * N + n] = a + (bias ? bias[n] : 0.0f);
    }
  }
#else
  gemm_own_dot(pool, M, N, K, x, W, bias, y);  // portable micro-tile: one sequential chain per element too
#endif
}

int gemm_invariant_wt_max_m = 4;  // the batch-invariant GEMM: gemm_own_wt up to this M, then gemm_own_outer

bool gemm_invariant_dot = false;  // measurement knob (bench --invariant-gemm dot): the dot kernel's order instead

void gemm_invariant(ThreadPool& pool, int M, int N, int K, const float* x, const float* W, const float* bias, float* y) {
  if (gemm_invariant_dot) return gemm_own_dot(pool, M, N, K, x, W, bias, y);
  if (M <= gemm_invariant_wt_max_m && K > 0) gemm_own_wt(pool, M, N, K, x, W, bias, y);
  else gemm_own_outer(pool, M, N, K, x, W, bias, y);
}

int gemm_outer_min_m = 8;  // M below this: the dot-product kernel (bound by bandwidth there)

void gemm_own(ThreadPool& pool, int M, int N, int K, const float* x, const float* W, const float* bias, float* y) {
  if (M >= gemm_outer_min_m) gemm_own_outer(pool, M, N, K, x, W, bias, y);
  else gemm_own_dot(pool, M, N, K, x, W, bias, y);
}

void gemm_blas(int threads, int M, int N, int K, const float* x, const float* W, const float* bias, float* y) {
  static int configured = -1;
  if (configured != threads) {
    openblas_set_num_threads(threads);
    configured = threads;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x, K, W, K, 0.0f, y, N);
  if (bias) {
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) y[size_t(m) * N + n] += bias[n];
  }
}

// ---------------------------------------------------------------------------------------------

static inline float dot(const float* a, const float* b, int n) {
#ifdef LT_AVX2
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
#else
  float s = 0;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
#endif
}

#ifdef LT_AVX2
// exp for 8 floats (Cephes expf polynomial, ~1 ulp in range); inputs are clamped to [-87.3, 88.3].
static inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
}
#endif

// sc[j] = exp(sc[j] - mx) for j < n; returns the sum.
static inline float exp_shift_sum(float* sc, int n, float mx) {
  int j = 0;
  float sum = 0;
#ifdef LT_AVX2
  __m256 acc = _mm256_setzero_ps();
  const __m256 m = _mm256_set1_ps(mx);
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(sc + j), m));
    _mm256_storeu_ps(sc + j, e);
    acc = _mm256_add_ps(acc, e);
  }
  sum = hsum(acc);
#endif
  for (; j < n; ++j) {
    sc[j] = std::exp(sc[j] - mx);
    sum += sc[j];
  }
  return sum;
}

// y[0, n) += a · x[0, n), one rounding per element (an FMA where the build has them), written out
// so that the body and the tail round alike whatever the compiler contracts: the batch-invariant
// paths call it on slices that start at different offsets.
static inline void axpy(float a, const float* x, float* y, int n) {
  int i = 0;
#ifdef LT_AVX2
  const __m256 av = _mm256_set1_ps(a);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] = std::fma(a, x[i], y[i]);
#else
  for (; i < n; ++i) y[i] += a * x[i];
#endif
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const CpuBackendOptions& o) : pool_(o.threads), impl_(o.gemm), invariant_(o.batch_invariant) {
    ensure_context(std::max(o.max_context, 16));
    bgmv_items_.reserve(4096);
  }
  const char* name() const override { return "cpu"; }

  ThreadPool& pool() { return pool_; }
  void ensure_context(int ctx) {
    if (ctx > context_) {
      context_ = ctx;
      scores_.assign(size_t(pool_.size()) * context_, 0.0f);
    }
  }
  void set_batch_invariant(bool on) { invariant_ = on; }
  void set_impl(GemmImpl impl, int own_max_m) {
    impl_ = impl;
    own_max_m_ = own_max_m;
  }

  float* alloc(size_t count) override {
    size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
    return static_cast<float*>(std::aligned_alloc(64, bytes ? bytes : 64));
  }
  void free(float* p) override { std::free(p); }
  void upload(float* dst, const float* src, size_t count) override { std::memcpy(dst, src, count * sizeof(float)); }
  void sync() override {}

  void gemm(int M, int N, int K, const float* x, const float* W, const float* bias, float* y) override {
    if (M <= 0) return;
    if (invariant_) return gemm_invariant(pool_, M, N, K, x, W, bias, y);  // one order for every M
    const bool own = impl_ == GemmImpl::kOwn || (impl_ == GemmImpl::kAuto && M <= own_max_m_);
    if (own) gemm_own(pool_, M, N, K, x, W, bias, y);
    else gemm_blas(pool_.size(), M, N, K, x, W, bias, y);
  }

  static constexpr int kTmpStride = 256;  // max rank: tmp row t holds token t's shrunk activations

  // LoRA in one order for every token, whatever its segment's length (the batch-invariant path):
  // shrink tmp[t][k] = scale · dot(A[k], x[t]) (dot's fixed order over `in`), then expand
  // y[t] += tmp[t][k] · Bt[k] for k = 0..rank-1 (axpy: one FMA per element per k, so a row done
  // whole or in 256-wide chunks has the same bits). Work items: a token each when there are
  // many; else (token, rank row) for the shrink and (token, chunk) for the expand. An element is
  // always one thread's, so threads never change its order.
  void lora_per_token(const LoraSegment* segs, int nsegs, int in, int out, const float* x, float* y, float* tmp) {
    int64_t shrink_items = 0, tokens = 0;
    for (int s = 0; s < nsegs; ++s) {
      shrink_items += int64_t(segs[s].len) * segs[s].rank;
      tokens += segs[s].len;
    }
    if (tokens >= 2 * pool_.size()) {
      // Many tokens: one item per token (its A and Bt streamed front to back once, y row in L1).
      // The same operations per element as the split passes below.
      pool_.parallel_for(tokens, [&](int64_t b, int64_t e) {
        int64_t base = 0;
        for (int s = 0; s < nsegs && base < e; ++s) {
          const LoraSegment& g = segs[s];
          for (int64_t i = std::max(b, base), hi = std::min(e, base + g.len); i < hi; ++i) {
            const int t = g.start + int(i - base);
            float* tt = tmp + size_t(t) * kTmpStride;
            const float* xx = x + size_t(t) * in;
            for (int k = 0; k < g.rank; ++k) tt[k] = g.scale * dot(g.A[k], xx, in);
            float* yy = y + size_t(t) * out;
            for (int k = 0; k < g.rank; ++k) axpy(tt[k], g.Bt[k], yy, out);
          }
          base += g.len;
        }
      });
      return;
    }
    // Few tokens: split each token's work across threads.
    pool_.parallel_for(shrink_items, [&](int64_t b, int64_t e) {
      int64_t base = 0;
      for (int s = 0; s < nsegs && base < e; ++s) {
        const LoraSegment& g = segs[s];
        const int64_t n = int64_t(g.len) * g.rank;
        for (int64_t i = std::max(b, base), hi = std::min(e, base + n); i < hi; ++i) {
          const int t = g.start + int((i - base) / g.rank), k = int((i - base) % g.rank);
          tmp[size_t(t) * kTmpStride + k] = g.scale * dot(g.A[k], x + size_t(t) * in, in);
        }
        base += n;
      }
    });
    constexpr int kChunk = 256;
    const int chunks = (out + kChunk - 1) / kChunk;
    pool_.parallel_for(tokens * chunks, [&](int64_t b, int64_t e) {
      int64_t base = 0;
      for (int s = 0; s < nsegs && base < e; ++s) {
        const LoraSegment& g = segs[s];
        const int64_t n = int64_t(g.len) * chunks;
        for (int64_t i = std::max(b, base), hi = std::min(e, base + n); i < hi; ++i) {
          const int t = g.start + int((i - base) / chunks), c = int((i - base) % chunks);
          const int o0 = c * kChunk, o1 = std::min(out, o0 + kChunk);
          const float* tt = tmp + size_t(t) * kTmpStride;
          float* yy = y + size_t(t) * out;
          for (int k = 0; k < g.rank; ++k) axpy(tt[k], g.Bt[k] + o0, yy + o0, o1 - o0);
        }
        base += n;
      }
    });
  }

  void lora(const LoraSegment* segs, int nsegs, int in, int out, const float* x, float* y, float* tmp) override {
    if (invariant_) return lora_per_token(segs, nsegs, in, out, x, y, tmp);
    bgmv_items_.clear();
    for (int s = 0; s < nsegs; ++s) {
      const LoraSegment& g = segs[s];
      if (g.len == 1) {
        bgmv_items_.push_back(s);
        continue;
      }
      // SGMV: tmp[len, rank] = x[seg] · Aᵀ ; y[seg] += scale · tmp · Bt. The rows are packed into
      // contiguous matrices first (rank·(in+out) floats, small next to the len·rank·(in+out) FLOPs).
      float* t = tmp + size_t(g.start) * kTmpStride;
      const size_t need = size_t(g.rank) * (in + out);
      if (pack_.size() < need) pack_.resize(need);  // grows to the largest module once
      float* A = pack_.data();
      float* Bt = A + size_t(g.rank) * in;
      for (int k = 0; k < g.rank; ++k) {
        std::memcpy(A + size_t(k) * in, g.A[k], size_t(in) * sizeof(float));
        std::memcpy(Bt + size_t(k) * out, g.Bt[k], size_t(out) * sizeof(float));
      }
      gemm(g.len, g.rank, in, x + size_t(g.start) * in, A, nullptr, t);
      float* yy = y + size_t(g.start) * out;
      if (g.len >= 16) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.len, out, g.rank, g.scale, t, g.rank, Bt, out,
                    1.0f, yy, out);
      } else {
        pool_.parallel_for(g.len, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i)
            for (int k = 0; k < g.rank; ++k) axpy(g.scale * t[i * g.rank + k], Bt + size_t(k) * out, yy + i * out, out);
        });
      }
    }
    if (bgmv_items_.empty()) return;
    const int nb = int(bgmv_items_.size());
    if (nb >= 2 * pool_.size()) {
      // BGMV, many decode tokens: one item per token. Each token streams its own A [rank, in] and
      // Bt [rank, out] front to back (long sequential reads the prefetcher follows), y row in L1.
      pool_.parallel_for(nb, [&](int64_t b0, int64_t b1) {
        for (int64_t i = b0; i < b1; ++i) {
          const LoraSegment& g = segs[bgmv_items_[i]];
          float* t = tmp + size_t(g.start) * kTmpStride;
          const float* xx = x + size_t(g.start) * in;
          for (int k = 0; k < g.rank; ++k) t[k] = g.scale * dot(g.A[k], xx, in);
          float* yy = y + size_t(g.start) * out;
          for (int k = 0; k < g.rank; ++k) axpy(t[k], g.Bt[k], yy, out);
        }
      });
      return;
    }
    // BGMV, few decode tokens: split each token's work across threads.
    // Shrink: one item per (decode token, rank row).
    int total = 0;
    for (int s : bgmv_items_) total += segs[s].rank;
    pool_.parallel_for(total, [&](int64_t b, int64_t e) {
      int64_t base = 0;
      for (int s : bgmv_items_) {
        const LoraSegment& g = segs[s];
        const int64_t lo = std::max<int64_t>(b, base), hi = std::min<int64_t>(e, base + g.rank);
        for (int64_t i = lo; i < hi; ++i) {
          const int k = int(i - base);
          tmp[size_t(g.start) * kTmpStride + k] = g.scale * dot(g.A[k], x + size_t(g.start) * in, in);
        }
        base += g.rank;
        if (base >= e) break;
      }
    });
    // Expand: one item per (decode token, 256-wide output chunk).
    constexpr int kChunk = 256;
    const int chunks = (out + kChunk - 1) / kChunk;
    pool_.parallel_for(int64_t(nb) * chunks, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const LoraSegment& g = segs[bgmv_items_[i / chunks]];
        const int o0 = int(i % chunks) * kChunk, o1 = std::min(out, o0 + kChunk);
        const float* t = tmp + size_t(g.start) * kTmpStride;
        float* yy = y + size_t(g.start) * out;
        for (int k = 0; k < g.rank; ++k) axpy(t[k], g.Bt[k] + o0, yy + o0, o1 - o0);
      }
    });
  }

  void embed(const int32_t* tokens, int T, const float* table, int H, float* x) override {
    for (int t = 0; t < T; ++t) std::memcpy(x + size_t(t) * H, table + size_t(tokens[t]) * H, size_t(H) * sizeof(float));
  }

  void rmsnorm(const float* x, const float* w, int T, int H, float eps, float* y) override {
    for (int t = 0; t < T; ++t) {
      const float* r = x + size_t(t) * H;
      float* o = y + size_t(t) * H;
      const float ss = dot(r, r, H);
      const float inv = 1.0f / std::sqrt(ss / H + eps);
      for (int i = 0; i < H; ++i) o[i] = w[i] * (r[i] * inv);
    }
  }

  void rope(float* q, float* k, int T, const AttentionShape& s, const float* cos, const float* sin) override {
    const int half = s.head_dim / 2;
    auto rot = [&](float* v, const float* c, const float* sn) {
      for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * sn[i];
        v[i + half] = b * c[i] + a * sn[i];
      }
    };
    for (int t = 0; t < T; ++t) {
      const float* c = cos + size_t(t) * half;
      const float* sn = sin + size_t(t) * half;
      for (int h = 0; h < s.heads; ++h) rot(q + (size_t(t) * s.heads + h) * s.head_dim, c, sn);
      for (int h = 0; h < s.kv_heads; ++h) rot(k + (size_t(t) * s.kv_heads + h) * s.head_dim, c, sn);
    }
  }

  void kv_store(const float* k, const float* v, int T, const KvLayer& cache, const KvView* views, const int* pos,
                int kv_dim) override {
    const int B = cache.block_tokens;
    for (int t = 0; t < T; ++t) {
      const size_t row = size_t(views[t].blocks[pos[t] / B]) * B + pos[t] % B;
      std::memcpy(cache.k + row * kv_dim, k + size_t(t) * kv_dim, size_t(kv_dim) * sizeof(float));
      std::memcpy(cache.v + row * kv_dim, v + size_t(t) * kv_dim, size_t(kv_dim) * sizeof(float));
    }
  }

  // Paged attention: keys 0..pos[t] are read block by block through the token's block table
  // (rows within a block are contiguous).
  void attention(const float* q, int T, const KvLayer& cache, const KvView* views, const int* pos,
                 const AttentionShape& s, float* out) override {
    const int hd = s.head_dim, group = s.heads / s.kv_heads, kv_dim = s.kv_heads * hd, B = cache.block_tokens;
    const float scale = 1.0f / std::sqrt(float(hd));
    const int64_t items = int64_t(T) * s.heads;
    pool_.parallel_for_tid(items, [&](int64_t b, int64_t e, int tid) {
      float* sc = scores_.data() + size_t(tid) * context_;
      for (int64_t i = b; i < e; ++i) {
        const int t = int(i / s.heads), h = int(i % s.heads), kvh = h / group;
        const float* qv = q + (size_t(t) * s.heads + h) * hd;
        const int32_t* table = views[t].blocks;
        const int n = pos[t] + 1;  // causal: keys 0..pos
        float mx = -INFINITY;
        for (int j0 = 0; j0 < n; j0 += B) {
          const float* K = cache.k + size_t(table[j0 / B]) * B * kv_dim + size_t(kvh) * hd;
          const int m = std::min(B, n - j0);
          for (int j = 0; j < m; ++j) {
            sc[j0 + j] = dot(qv, K + size_t(j) * kv_dim, hd) * scale;
            mx = std::max(mx, sc[j0 + j]);
          }
        }
        const float sum = exp_shift_sum(sc, n, mx);
        float* o = out + (size_t(t) * s.heads + h) * hd;
        std::memset(o, 0, size_t(hd) * sizeof(float));
        const float inv = 1.0f / sum;
        for (int j0 = 0; j0 < n; j0 += B) {
          const float* V = cache.v + size_t(table[j0 / B]) * B * kv_dim + size_t(kvh) * hd;
          const int m = std::min(B, n - j0);
          for (int j = 0; j < m; ++j) axpy(sc[j0 + j] * inv, V + size_t(j) * kv_dim, o, hd);
        }
      }
    });
  }

  void add(float* x, const float* y, size_t n) override {
    for (size_t i = 0; i < n; ++i) x[i] += y[i];
  }

  void silu_mul(float* g, const float* u, size_t n) override {
    pool_.parallel_for(int64_t((n + 1023) / 1024), [&](int64_t b, int64_t e) {
      const size_t lo = size_t(b) * 1024, hi = std::min(n, size_t(e) * 1024);
      size_t i = lo;
#ifdef LT_AVX2
      const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
      auto silu8 = [&](float* gp, const float* up) {
        const __m256 gv = _mm256_loadu_ps(gp);
        const __m256 den = _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, gv)));
        _mm256_storeu_ps(gp, _mm256_mul_ps(_mm256_div_ps(gv, den), _mm256_loadu_ps(up)));
      };
      for (; i + 8 <= hi; i += 8) silu8(g + i, u + i);
      if (i < hi) {
        // The tail through the same vector code (padded): an element's value must not depend on
        // whether the step's T·I elements put it in the last partial group of 8.
        alignas(32) float gt[8] = {}, ut[8] = {};
        std::memcpy(gt, g + i, (hi - i) * sizeof(float));
        std::memcpy(ut, u + i, (hi - i) * sizeof(float));
        silu8(gt, ut);
        std::memcpy(g + i, gt, (hi - i) * sizeof(float));
        i = hi;
      }
#endif
      for (; i < hi; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    });
  }

 private:
  ThreadPool pool_;
  GemmImpl impl_;
  bool invariant_;
  int own_max_m_ = 32;
  int context_ = 0;
  std::vector<float> scores_;   // [threads, context]: attention scores per thread
  std::vector<int> bgmv_items_;  // reserved once; clear()/push_back do not reallocate below 4096
  std::vector<float> pack_;      // SGMV: A and Bt rows of one module, packed contiguous
};

CpuBackend* make_cpu_backend(const CpuBackendOptions& opt) { return new CpuBackend(opt); }
Backend* as_backend(CpuBackend* b) { return b; }
void cpu_backend_ensure_context(CpuBackend* b, int ctx) { b->ensure_context(ctx); }
ThreadPool& cpu_backend_pool(CpuBackend* b) { return b->pool(); }
void destroy_cpu_backend(CpuBackend* b) { delete b; }
void set_gemm_impl(CpuBackend* b, GemmImpl impl, int own_max_m) { b->set_impl(impl, own_max_m); }
void set_batch_invariant(CpuBackend* b, bool on) { b->set_batch_invariant(on); }

}  // namespace longtail

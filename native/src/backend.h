// Internal compute backend interface. The forward pass (forward.cpp) is written once against this
// table; the CPU backend (backend/cpu.cpp) is the reference, a CUDA backend implements the same
// entries later. Pointers are device pointers of the backend (host memory for the CPU backend).
// Kernels validate nothing: forward.cpp checks the step plan before calling them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace longtail {

class ThreadPool;

// One run of consecutive tokens [start, start + len) that share one LoRA module.
struct LoraSegment {
  int start = 0;
  int len = 0;
  int rank = 0;
  float scale = 0.0f;
  const float* A = nullptr;   // [rank, in]
  const float* Bt = nullptr;  // [rank, out]
};

// Where a token's keys/values live. Contiguous per sequence here; the paged cache replaces
// k/v with a block table and keeps the rest.
struct KvView {
  float* k = nullptr;  // [capacity, kv_heads * head_dim] for this layer
  float* v = nullptr;
};

struct AttentionShape {
  int heads = 0, kv_heads = 0, head_dim = 0;
};

enum class GemmImpl { kAuto, kBlas, kOwn };

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Memory. upload() may be asynchronous on a device backend; sync() waits for all of them.
  virtual float* alloc(size_t count) = 0;
  virtual void free(float* p) = 0;
  virtual void upload(float* dst, const float* src, size_t count) = 0;
  virtual void sync() = 0;

  // y[M, N] = x[M, K] · W[N, K]ᵀ (+ bias[N] when non-null). The hot spot of every step.
  virtual void gemm(int M, int N, int K, const float* x, const float* W, const float* bias, float* y) = 0;

  // y[seg] += scale · (x[seg] · Aᵀ) · Bt for every segment: SGMV for segments with len > 1,
  // BGMV (one gathered matvec per token) for len == 1. `tmp` holds [tokens, max rank] floats.
  virtual void lora(const LoraSegment* segs, int nsegs, int in, int out, const float* x, float* y,
                    float* tmp) = 0;

  // Elementwise and small ops.
  virtual void embed(const int32_t* tokens, int T, const float* table, int H, float* x) = 0;
  virtual void rmsnorm(const float* x, const float* w, int T, int H, float eps, float* y) = 0;
  // Rotates q [T, heads*hd] and k [T, kv_heads*hd] in place; cos/sin are [T, hd/2].
  virtual void rope(float* q, float* k, int T, const AttentionShape& s, const float* cos,
                    const float* sin) = 0;
  // Writes k/v rows of the step into each token's cache slot.
  virtual void kv_store(const float* k, const float* v, int T, const KvView* views,
                        const int* pos, int kv_dim) = 0;
  // out[t] = softmax(q[t] · K[0..pos[t]]ᵀ / sqrt(hd)) · V, causal, grouped-query.
  virtual void attention(const float* q, int T, const KvView* views, const int* pos,
                         const AttentionShape& s, float* out) = 0;
  virtual void add(float* x, const float* y, size_t n) = 0;                 // x += y
  virtual void silu_mul(float* g, const float* u, size_t n) = 0;           // g = silu(g) * u
};

struct CpuBackendOptions {
  int threads = 0;
  int max_context = 0;  // attention scratch per thread (grown with ensure_context)
  GemmImpl gemm = GemmImpl::kAuto;
};

class CpuBackend;
CpuBackend* make_cpu_backend(const CpuBackendOptions& opt);
Backend* as_backend(CpuBackend* b);
void cpu_backend_ensure_context(CpuBackend* b, int max_context);  // outside step: may allocate
ThreadPool& cpu_backend_pool(CpuBackend* b);
void destroy_cpu_backend(CpuBackend* b);

// Kernels exposed for tests and the GEMM decision benchmark.
void gemm_reference(int M, int N, int K, const float* x, const float* W, const float* bias, float* y);
void gemm_own(ThreadPool& pool, int M, int N, int K, const float* x, const float* W, const float* bias, float* y);
void gemm_own_dot(ThreadPool& pool, int M, int N, int K, const float* x, const float* W, const float* bias, float* y);
void gemm_own_outer(ThreadPool& pool, int M, int N, int K, const float* x, const float* W, const float* bias, float* y);
extern int gemm_outer_kc;     // K block of the outer-product kernel (<= 0: all of K)
extern int gemm_outer_pf;     // W blocks of 6 rows ahead that the outer kernel prefetches
extern int gemm_outer_min_m;  // gemm_own uses the outer-product kernel from this M on
void gemm_blas(int threads, int M, int N, int K, const float* x, const float* W, const float* bias, float* y);
void set_gemm_impl(CpuBackend* b, GemmImpl impl, int own_max_m);

}  // namespace longtail

// Internal compute backend interface. The forward pass (forward.cpp) is written once against this
// table; the CPU backend (backend/cpu.cpp) is the reference, the CUDA backend (backend/cuda/)
// implements the same entries. Pointers are device pointers of the backend (host memory for the
// CPU backend). Kernels validate nothing: forward.cpp checks the step plan before calling them.
//
// Device backends (host_memory() == false) need three things the CPU backend does not, added as
// virtual entries whose defaults are the CPU's zero-copy behaviour (so cpu.cpp overrides none):
//  - weights(): the Engine maps every model tensor through it once, at construction;
//  - the step plan (token ids, positions, RoPE cos/sin, block tables, LoRA segments and their
//    row-pointer arrays) is staged with plan_begin / plan_put / plan_commit once per step;
//  - download() brings the logits back to the host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace longtail {

class ThreadPool;

// One run of consecutive tokens [start, start + len) that share one LoRA module.
struct LoraSegment {
  int start = 0;
  int len = 0;
  int rank = 0;
  float scale = 0.0f;
  const float* const* A = nullptr;   // [rank] rows of `in` floats (anywhere: adapter or pool pages)
  const float* const* Bt = nullptr;  // [rank] rows of `out` floats
};

// The paged KV cache of one layer: `blocks` blocks of `block_tokens` positions, each block
// [block_tokens, kv_heads * head_dim] floats of K (and the same of V). Position p of a sequence
// lives in block table[p / block_tokens], row p % block_tokens.
struct KvLayer {
  float* k = nullptr;
  float* v = nullptr;
  int block_tokens = 0;
};

// A token's sequence, as attention sees it: its block table.
struct KvView {
  const int32_t* blocks = nullptr;
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
  // upload() is called from the adapter pool's loader thread while steps run on the engine
  // thread: a device backend must make it thread-safe (the CUDA backend: a mutex, its own copy
  // stream and pinned staging). sync() waits for every upload and for queued kernels.
  virtual void upload(float* dst, const float* src, size_t count) = 0;
  virtual void sync() = 0;

  // --- Device backends (defaults: the CPU backend's host-memory, zero-copy behaviour) ---
  // True when backend pointers are host pointers (CPU). Otherwise the Engine stages plan data and
  // downloads logits.
  virtual bool host_memory() const { return true; }
  // Copies dst_host[0, count) from backend memory src, waiting for the kernels that write it.
  virtual void download(float* dst_host, const float* src, size_t count) {
    sync();
    std::memcpy(dst_host, src, count * sizeof(float));
  }
  // A model tensor [rows, cols] (rows == 1: a vector, e.g. a norm weight or bias). Returns what
  // the kernels get for it; the pointer is opaque (a device backend may store a matrix in bf16 and
  // recognise it in gemm/embed). Called once per tensor at Engine construction; the same host
  // pointer twice (tied embeddings) gives the same result. CPU: `host` itself.
  virtual const float* weights(const float* host, size_t rows, size_t cols) {
    (void)rows;
    (void)cols;
    return host;
  }
  // Step plan. plan_begin() starts a step's plan (the previous one is dead); plan_put() copies
  // `bytes` of host data into it and returns the address the kernels read it at (valid until the
  // next plan_begin; the host data may change right after the call); plan_commit() makes the plan
  // visible to the kernels queued after it. CPU: plan_put returns `host` (zero-copy), so the
  // caller keeps host data unchanged until the step ends.
  virtual void plan_begin() {}
  virtual const void* plan_put(const void* host, size_t bytes) {
    (void)bytes;
    return host;
  }
  virtual void plan_commit() {}
  // Whether the kernels can read memory at p (CPU: any host pointer; CUDA: device or managed
  // memory). The Engine mirrors adapters whose rows are not reachable (Adapter::view() on CUDA).
  virtual bool reachable(const void* p) const {
    (void)p;
    return true;
  }

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
  virtual void kv_store(const float* k, const float* v, int T, const KvLayer& cache, const KvView* views,
                        const int* pos, int kv_dim) = 0;
  // out[t] = softmax(q[t] · K[0..pos[t]]ᵀ / sqrt(hd)) · V, causal, grouped-query.
  virtual void attention(const float* q, int T, const KvLayer& cache, const KvView* views, const int* pos,
                         const AttentionShape& s, float* out) = 0;
  virtual void add(float* x, const float* y, size_t n) = 0;                 // x += y
  virtual void silu_mul(float* g, const float* u, size_t n) = 0;           // g = silu(g) * u
};

struct CpuBackendOptions {
  int threads = 0;
  int max_context = 0;  // attention scratch per thread (grown with ensure_context)
  GemmImpl gemm = GemmImpl::kAuto;
  // One reduction order per output element for every step shape (cpu.cpp, decision 0008):
  // bitwise batch-invariant logits. Overrides `gemm`.
  bool batch_invariant = false;
};

class CpuBackend;
CpuBackend* make_cpu_backend(const CpuBackendOptions& opt);
Backend* as_backend(CpuBackend* b);
void cpu_backend_ensure_context(CpuBackend* b, int max_context);  // outside step: may allocate
ThreadPool& cpu_backend_pool(CpuBackend* b);
void destroy_cpu_backend(CpuBackend* b);

// CUDA backend (backend/cuda/cuda_backend.cu), present when the library was built with CUDA
// (LONGTAIL_HAVE_CUDA). Environment overrides, read at creation: LONGTAIL_CUDA_WEIGHTS =
// bf16 (default) | f16 | f32 (matrix storage), LONGTAIL_CUDA_GEMM = auto (cuBLAS when
// libcublas.so.13 loads, else own kernels) | own | cublas.
struct CudaBackendOptions {
  int device = 0;
  size_t max_gemm_elems = 0;  // largest M*K of a GEMM input (bf16 staging of activations)
};
bool cuda_backend_compiled();
// Number of usable CUDA devices; 0 with the reason in *why when there is none (no driver, no
// device, or a build without CUDA).
int cuda_device_count(std::string* why);
Backend* make_cuda_backend(const CudaBackendOptions& opt);  // throws Error

class Engine;
Backend& engine_backend(Engine& e);

// Kernels exposed for tests and the GEMM decision benchmark.
void gemm_reference(int M, int N, int K, const float* x, const float* W, const float* bias, float* y);
void gemm_own(ThreadPool& pool, int M, int N, int K, const float* x, const float* W, const float* bias, float* y);
void gemm_own_dot(ThreadPool& pool, int M, int N, int K, const float* x, const float* W, const float* bias, float* y);
void gemm_own_outer(ThreadPool& pool, int M, int N, int K, const float* x, const float* W, const float* bias, float* y);
// Same bits as gemm_own_outer for every element, lanes over W rows (fast for small M).
void gemm_own_wt(ThreadPool& pool, int M, int N, int K, const float* x, const float* W, const float* bias, float* y);
// The batch-invariant GEMM: gemm_own_wt for M <= gemm_invariant_wt_max_m, else gemm_own_outer.
void gemm_invariant(ThreadPool& pool, int M, int N, int K, const float* x, const float* W, const float* bias, float* y);
extern int gemm_invariant_wt_max_m;
extern bool gemm_invariant_dot;
extern int gemm_outer_kc;     // K block of the outer-product kernel (<= 0: all of K)
extern int gemm_outer_pf;     // W blocks of 6 rows ahead that the outer kernel prefetches
extern int gemm_outer_min_m;  // gemm_own uses the outer-product kernel from this M on
void gemm_blas(int threads, int M, int N, int K, const float* x, const float* W, const float* bias, float* y);
void set_gemm_impl(CpuBackend* b, GemmImpl impl, int own_max_m);
void set_batch_invariant(CpuBackend* b, bool on);

}  // namespace longtail

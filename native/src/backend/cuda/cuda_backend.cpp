// CUDA backend: implements backend.h on one device. Host code only (compiled by the host C++
// compiler against the CUDA runtime headers); the kernels are in kernels.cu.
//
// Streams: one compute stream for every kernel, plan copy and download; one copy stream for
// upload(), which the adapter pool calls from its loader thread (a mutex serialises uploads; two
// pinned staging buffers alternate so the host copy of one chunk overlaps the DMA of the other).
// Weights: matrices are converted to bf16 (default) or f16 on the device at Engine construction,
// or kept f32 (LONGTAIL_CUDA_WEIGHTS=f32); vectors stay f32. GEMM: cuBLAS (dlopen) cublasGemmEx
// with f32 accumulation (CUBLAS_COMPUTE_32F) when libcublas loads, else own kernels.
// Step plan: plan_put() copies into pinned host chunks; plan_commit() copies them to their device
// twins in one cudaMemcpyAsync per chunk on the compute stream. Chunks are never moved (a new one
// is added when a step needs more), so addresses handed out stay valid for the step.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../../backend.h"
#include "cublas_shim.h"
#include "kernels.cuh"
#include "longtail/engine.h"

namespace longtail {
namespace cuda {

[[noreturn]] static void cuda_fail(cudaError_t e, const char* what, const char* file, int line) {
  throw Error(std::string("CUDA error ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ") in " + what +
              " at " + file + ":" + std::to_string(line));
}
static inline void cuda_check(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess) cuda_fail(e, what, file, line);
}
// Every CUDA runtime call goes through this: throws longtail::Error naming the error, the call and
// the call site.
#define LT_CUDA(call) ::longtail::cuda::cuda_check((call), #call, __FILE__, __LINE__)
// In destructors and free(): report, never throw.
#define LT_CUDA_WARN(call)                                                                          \
  do {                                                                                              \
    cudaError_t _e = (call);                                                                        \
    if (_e != cudaSuccess)                                                                          \
      std::fprintf(stderr, "longtail: CUDA error %s in %s at %s:%d\n", cudaGetErrorString(_e), #call, \
                   __FILE__, __LINE__);                                                             \
  } while (0)

bool Cublas::load(cudaStream_t stream) {
  for (const char* name : {"libcublas.so.13", "libcublas.so"}) {
    lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (lib) {
      library = name;
      break;
    }
  }
  if (!lib) {
    why = "libcublas.so.13 not found";
    return false;
  }
  // The _v2 names are what cublas_v2.h maps cublasCreate & co. to; the plain names are a fallback.
  auto sym = [&](const char* v2, const char* plain) {
    void* f = dlsym(lib, v2);
    return f ? f : dlsym(lib, plain);
  };
  create = reinterpret_cast<decltype(create)>(sym("cublasCreate_v2", "cublasCreate"));
  destroy = reinterpret_cast<decltype(destroy)>(sym("cublasDestroy_v2", "cublasDestroy"));
  set_stream = reinterpret_cast<decltype(set_stream)>(sym("cublasSetStream_v2", "cublasSetStream"));
  gemm_ex = reinterpret_cast<decltype(gemm_ex)>(dlsym(lib, "cublasGemmEx"));
  if (!create || !destroy || !set_stream || !gemm_ex) {
    why = library + " lacks cublasCreate_v2/cublasSetStream_v2/cublasGemmEx";
    unload();
    return false;
  }
  if (create(&handle) != 0) {
    why = "cublasCreate_v2 failed";
    handle = nullptr;
    unload();
    return false;
  }
  if (set_stream(handle, stream) != 0) {
    why = "cublasSetStream_v2 failed";
    unload();
    return false;
  }
  return true;
}

void Cublas::unload() {
  if (handle && destroy) destroy(handle);
  handle = nullptr;
  if (lib) dlclose(lib);
  lib = nullptr;
}

namespace {

constexpr size_t kAlign = 256;
constexpr size_t kStageBytes = size_t(4) << 20;  // per upload staging buffer (two of them)
constexpr size_t kPlanChunk = size_t(4) << 20;   // first plan chunk; later ones fit the overflow
constexpr size_t kConvertFloats = size_t(4) << 20;

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

struct PlanChunk {
  char* host = nullptr;  // pinned
  char* dev = nullptr;
  size_t cap = 0, used = 0;
};

WType parse_wtype(const char* env) {
  if (!env || !*env || !std::strcmp(env, "bf16")) return WType::kBF16;
  if (!std::strcmp(env, "f16")) return WType::kF16;
  if (!std::strcmp(env, "f32")) return WType::kF32;
  throw Error(std::string("LONGTAIL_CUDA_WEIGHTS must be bf16, f16 or f32, got '") + env + "'");
}

}  // namespace

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& o) : device_(o.device) {
    wtype_ = parse_wtype(std::getenv("LONGTAIL_CUDA_WEIGHTS"));
    const char* g = std::getenv("LONGTAIL_CUDA_GEMM");
    const std::string gemm = g && *g ? g : "auto";
    if (gemm != "auto" && gemm != "own" && gemm != "cublas") {
      throw Error("LONGTAIL_CUDA_GEMM must be auto, own or cublas, got '" + gemm + "'");
    }
    LT_CUDA(cudaSetDevice(device_));
    LT_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    LT_CUDA(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
    for (int i = 0; i < 2; ++i) {
      LT_CUDA(cudaMallocHost(reinterpret_cast<void**>(&stage_[i]), kStageBytes));
      LT_CUDA(cudaEventCreateWithFlags(&stage_done_[i], cudaEventDisableTiming));
    }
    LT_CUDA(cudaEventCreateWithFlags(&plan_done_, cudaEventDisableTiming));
    if (gemm != "own") {
      if (!cublas_.load(stream_)) {
        if (gemm == "cublas") throw Error("LONGTAIL_CUDA_GEMM=cublas but cuBLAS is unavailable: " + cublas_.why);
      }
    }
    if (o.max_gemm_elems) grow_act(o.max_gemm_elems);
  }

  ~CudaBackend() override {
    LT_CUDA_WARN(cudaSetDevice(device_));
    LT_CUDA_WARN(cudaStreamSynchronize(stream_));
    LT_CUDA_WARN(cudaStreamSynchronize(copy_stream_));
    cublas_.unload();
    for (auto& w : weights_) LT_CUDA_WARN(cudaFree(w.second));
    for (PlanChunk& c : plan_) {
      LT_CUDA_WARN(cudaFreeHost(c.host));
      LT_CUDA_WARN(cudaFree(c.dev));
    }
    if (act_) LT_CUDA_WARN(cudaFree(act_));
    if (convert_) LT_CUDA_WARN(cudaFree(convert_));
    for (int i = 0; i < 2; ++i) {
      LT_CUDA_WARN(cudaFreeHost(stage_[i]));
      LT_CUDA_WARN(cudaEventDestroy(stage_done_[i]));
    }
    LT_CUDA_WARN(cudaEventDestroy(plan_done_));
    LT_CUDA_WARN(cudaStreamDestroy(stream_));
    LT_CUDA_WARN(cudaStreamDestroy(copy_stream_));
  }

  const char* name() const override { return "cuda"; }
  const char* gemm_library() const { return cublas_.ok() ? "cublas" : "own"; }

  // --- memory ---
  float* alloc(size_t count) override {
    LT_CUDA(cudaSetDevice(device_));
    void* p = nullptr;
    const size_t bytes = std::max(round_up(count * sizeof(float), kAlign), kAlign);
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      throw Error("CUDA out of memory: cannot allocate " + std::to_string(bytes) + " bytes (" + cudaGetErrorString(e) + ")");
    }
    return static_cast<float*>(p);
  }
  void free(float* p) override {
    if (p) LT_CUDA_WARN(cudaFree(p));  // cudaFree synchronises the device
  }
  // Thread-safe (the adapter pool's loader thread): staged through pinned memory on the copy stream.
  void upload(float* dst, const float* src, size_t count) override {
    std::lock_guard<std::mutex> lock(upload_mu_);
    LT_CUDA(cudaSetDevice(device_));
    const char* s = reinterpret_cast<const char*>(src);
    char* d = reinterpret_cast<char*>(dst);
    size_t left = count * sizeof(float);
    while (left) {
      const size_t n = std::min(left, kStageBytes);
      const int i = next_stage_;
      next_stage_ ^= 1;
      LT_CUDA(cudaEventSynchronize(stage_done_[i]));  // the DMA that last read this buffer is done
      std::memcpy(stage_[i], s, n);
      LT_CUDA(cudaMemcpyAsync(d, stage_[i], n, cudaMemcpyHostToDevice, copy_stream_));
      LT_CUDA(cudaEventRecord(stage_done_[i], copy_stream_));
      s += n;
      d += n;
      left -= n;
    }
  }
  void sync() override {
    LT_CUDA(cudaSetDevice(device_));
    LT_CUDA(cudaStreamSynchronize(copy_stream_));
    LT_CUDA(cudaStreamSynchronize(stream_));
  }

  // --- device-backend entries ---
  bool host_memory() const override { return false; }
  void download(float* dst_host, const float* src, size_t count) override {
    LT_CUDA(cudaMemcpyAsync(dst_host, src, count * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    LT_CUDA(cudaStreamSynchronize(stream_));
  }
  const float* weights(const float* host, size_t rows, size_t cols) override {
    if (!host) return nullptr;
    auto it = by_host_.find(host);
    if (it != by_host_.end()) return it->second;
    const size_t n = rows * cols;
    const WType wt = rows > 1 ? wtype_ : WType::kF32;
    const size_t esize = wt == WType::kF32 ? 4 : 2;
    void* dev = nullptr;
    LT_CUDA(cudaMalloc(&dev, std::max(round_up(n * esize, kAlign), kAlign)));
    weights_.emplace_back(host, dev);
    if (wt == WType::kF32) {
      LT_CUDA(cudaMemcpy(dev, host, n * sizeof(float), cudaMemcpyHostToDevice));
    } else {
      if (!convert_) LT_CUDA(cudaMalloc(reinterpret_cast<void**>(&convert_), kConvertFloats * sizeof(float)));
      for (size_t at = 0; at < n; at += kConvertFloats) {
        const size_t m = std::min(kConvertFloats, n - at);
        LT_CUDA(cudaMemcpyAsync(convert_, host + at, m * sizeof(float), cudaMemcpyHostToDevice, stream_));
        LT_CUDA(launch_convert(convert_, static_cast<char*>(dev) + at * esize, wt, m, stream_));
        LT_CUDA(cudaStreamSynchronize(stream_));  // convert_ is reused by the next chunk
      }
    }
    const float* out = static_cast<const float*>(dev);
    by_host_[host] = out;
    wtype_of_[out] = wt;
    return out;
  }
  void plan_begin() override {
    LT_CUDA(cudaEventSynchronize(plan_done_));  // the previous plan's copies have left the host chunks
    for (PlanChunk& c : plan_) c.used = 0;
    plan_cur_ = 0;
  }
  const void* plan_put(const void* host, size_t bytes) override {
    const size_t need = round_up(std::max<size_t>(bytes, 1), kAlign);
    while (plan_cur_ < plan_.size() && plan_[plan_cur_].used + need > plan_[plan_cur_].cap) ++plan_cur_;
    if (plan_cur_ == plan_.size()) {
      PlanChunk c;
      c.cap = std::max(kPlanChunk, need);
      LT_CUDA(cudaMallocHost(reinterpret_cast<void**>(&c.host), c.cap));
      LT_CUDA(cudaMalloc(reinterpret_cast<void**>(&c.dev), c.cap));
      plan_.push_back(c);
    }
    PlanChunk& c = plan_[plan_cur_];
    if (bytes) std::memcpy(c.host + c.used, host, bytes);
    const void* dev = c.dev + c.used;
    c.used += need;
    return dev;
  }
  void plan_commit() override {
    for (PlanChunk& c : plan_)
      if (c.used) LT_CUDA(cudaMemcpyAsync(c.dev, c.host, c.used, cudaMemcpyHostToDevice, stream_));
    LT_CUDA(cudaEventRecord(plan_done_, stream_));
  }
  bool reachable(const void* p) const override {
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
  }

  // --- kernels ---
  void gemm(int M, int N, int K, const float* x, const float* W, const float* bias, float* y) override {
    if (M <= 0 || N <= 0) return;
    const WType wt = wtype_of(W);
    if (cublas_.ok() && M > kGemvMaxM) {
      // Row-major y[M,N] = x[M,K]·W[N,K]ᵀ is column-major yᵀ[N,M] = op(W)ᵀ... : C = Wᵀ(op T) · xᵀ.
      const void* B = x;
      int btype = Cublas::kR32F, atype = Cublas::kR32F;
      if (wt != WType::kF32) {
        const size_t need = size_t(M) * K;
        grow_act(need);
        LT_CUDA(launch_convert(x, act_, wt, need, stream_));
        B = act_;
        atype = btype = wt == WType::kBF16 ? Cublas::kR16BF : Cublas::kR16F;
      }
      float beta = 0.0f;
      if (bias) {
        LT_CUDA(launch_bias_rows(M, N, bias, y, stream_));
        beta = 1.0f;
      }
      const float alpha = 1.0f;
      const int st = cublas_.gemm_ex(cublas_.handle, Cublas::kOpT, Cublas::kOpN, N, M, K, &alpha, W, atype, K, B, btype,
                                     K, &beta, y, Cublas::kR32F, N, Cublas::kCompute32F, Cublas::kGemmDefault);
      if (st == 0) return;
      std::fprintf(stderr, "longtail: cublasGemmEx failed (status %d); using the own GEMM kernels from now on\n", st);
      cublas_.unload();
    }
    LT_CUDA(launch_gemm_own(M, N, K, x, W, wt, bias, y, stream_));
  }

  void lora(const LoraSegment* segs, int nsegs, int in, int out, const float* x, float* y, float* tmp) override {
    if (nsegs <= 0) return;
    const LoraSegment* hs = static_cast<const LoraSegment*>(host_of(segs, size_t(nsegs) * sizeof(LoraSegment)));
    int max_rank = 0, max_len = 0;
    for (int i = 0; i < nsegs; ++i) {
      max_rank = std::max(max_rank, hs[i].rank);
      max_len = std::max(max_len, hs[i].len);
    }
    if (max_rank > kLoraTmpStride) {
      throw Error("CUDA backend: LoRA rank " + std::to_string(max_rank) + " exceeds " + std::to_string(kLoraTmpStride));
    }
    LT_CUDA(launch_lora(segs, nsegs, max_rank, max_len, in, out, x, y, tmp, stream_));
  }

  void embed(const int32_t* tokens, int T, const float* table, int H, float* x) override {
    LT_CUDA(launch_embed(tokens, T, table, wtype_of(table), H, x, stream_));
  }
  void rmsnorm(const float* x, const float* w, int T, int H, float eps, float* y) override {
    LT_CUDA(launch_rmsnorm(x, w, T, H, eps, y, stream_));
  }
  void rope(float* q, float* k, int T, const AttentionShape& s, const float* cos, const float* sin) override {
    LT_CUDA(launch_rope(q, k, T, s.heads, s.kv_heads, s.head_dim, cos, sin, stream_));
  }
  void kv_store(const float* k, const float* v, int T, const KvLayer& cache, const KvView* views, const int* pos,
                int kv_dim) override {
    LT_CUDA(launch_kv_store(k, v, T, cache, views, pos, kv_dim, stream_));
  }
  void attention(const float* q, int T, const KvLayer& cache, const KvView* views, const int* pos,
                 const AttentionShape& s, float* out) override {
    if (s.head_dim > kMaxHeadDim) {
      throw Error("CUDA backend: head_dim " + std::to_string(s.head_dim) + " exceeds " + std::to_string(kMaxHeadDim));
    }
    LT_CUDA(launch_attention(q, T, cache, views, pos, s, out, stream_));
  }
  void add(float* x, const float* y, size_t n) override { LT_CUDA(launch_add(x, y, n, stream_)); }
  void silu_mul(float* g, const float* u, size_t n) override { LT_CUDA(launch_silu_mul(g, u, n, stream_)); }

  cudaStream_t stream() const { return stream_; }

 private:
  WType wtype_of(const void* p) const {
    auto it = wtype_of_.find(p);
    return it == wtype_of_.end() ? WType::kF32 : it->second;
  }
  // The pinned host copy of plan data at device address p (kernels' launch configuration needs it).
  const void* host_of(const void* p, size_t bytes) const {
    const char* c = static_cast<const char*>(p);
    for (const PlanChunk& k : plan_) {
      if (c >= k.dev && c + bytes <= k.dev + k.used) return k.host + (c - k.dev);
    }
    throw Error("CUDA backend: lora() segments are not in this step's plan (use Backend::plan_put)");
  }
  void grow_act(size_t elems) {
    if (elems <= act_elems_) return;
    if (act_) {
      LT_CUDA(cudaStreamSynchronize(stream_));
      LT_CUDA(cudaFree(act_));
      act_ = nullptr;
    }
    LT_CUDA(cudaMalloc(&act_, std::max(round_up(elems * 2, kAlign), kAlign)));
    act_elems_ = elems;
  }

  int device_ = 0;
  WType wtype_ = WType::kBF16;
  cudaStream_t stream_ = nullptr, copy_stream_ = nullptr;
  std::mutex upload_mu_;
  char* stage_[2] = {nullptr, nullptr};
  cudaEvent_t stage_done_[2] = {nullptr, nullptr};
  int next_stage_ = 0;
  std::vector<PlanChunk> plan_;
  size_t plan_cur_ = 0;
  cudaEvent_t plan_done_ = nullptr;
  std::vector<std::pair<const float*, void*>> weights_;          // host tensor → device copy (owned)
  std::unordered_map<const float*, const float*> by_host_;
  std::unordered_map<const void*, WType> wtype_of_;              // device copy → storage type
  float* convert_ = nullptr;                                     // f32 staging of weight conversion
  void* act_ = nullptr;                                          // bf16/f16 activations for cuBLAS
  size_t act_elems_ = 0;
  Cublas cublas_;
};

}  // namespace cuda

bool cuda_backend_compiled() { return true; }

int cuda_device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    if (why) *why = std::string("no CUDA device is usable (") + cudaGetErrorString(e) + ")";
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device is present";
  return n;
}

Backend* make_cuda_backend(const CudaBackendOptions& opt) {
  std::string why;
  if (cuda_device_count(&why) <= opt.device) {
    throw Error("CUDA backend requested but " + (why.empty() ? "no CUDA device " + std::to_string(opt.device) : why));
  }
  return new cuda::CudaBackend(opt);
}

// For test_cuda and the GPU check: which GEMM the backend uses ("cublas" or "own").
const char* cuda_backend_gemm_library(Backend* b) {
  auto* c = dynamic_cast<cuda::CudaBackend*>(b);
  return c ? c->gemm_library() : "";
}

}  // namespace longtail

// CUDA kernels of the longtail engine: launch wrappers callable from host C++ (cuda_backend.cpp is
// compiled by the host compiler; only kernels.cu goes through nvcc). Every wrapper queues work on
// `stream` and returns cudaGetLastError() of the launch; the caller checks it (LT_CUDA).
//
// Layouts are the ones of backend.h (row-major, Hugging Face [out, in] weights). Matrices may be
// stored as f32, bf16 or f16 (WType); activations, KV cache, norms and LoRA rows are f32.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "../../backend.h"

namespace longtail {
namespace cuda {

enum class WType : int { kF32 = 0, kBF16 = 1, kF16 = 2 };

constexpr int kLoraTmpStride = 256;  // as the CPU backend: tmp row t holds token t's shrunk activations
constexpr int kMaxHeadDim = 256;     // attention kernel limit (head_dim of every Llama-family model)
constexpr int kGemvMaxM = 8;         // own GEMM: the warp-per-output kernel up to this M, tiled above

// dst[i] = src[i] converted to `to` (kBF16 / kF16 round to nearest even; kF32 copies).
cudaError_t launch_convert(const float* src, void* dst, WType to, size_t n, cudaStream_t stream);
// y[M, N] = x[M, K] · W[N, K]ᵀ (+ bias), f32 accumulation, W in `wt`.
cudaError_t launch_gemm_own(int M, int N, int K, const float* x, const void* W, WType wt, const float* bias, float* y,
                            cudaStream_t stream);
// y[m, :] = bias for every row (cuBLAS path with beta = 1).
cudaError_t launch_bias_rows(int M, int N, const float* bias, float* y, cudaStream_t stream);
// SGMV/BGMV in two launches over every segment (mixed ranks, scale fused into the shrink):
// tmp[t, r] = scale · x[t] · A[r]  ;  y[t] += Σ_r tmp[t, r] · Bt[r]. segs is device memory;
// nsegs, max_rank and max_len come from the host copy of the plan.
cudaError_t launch_lora(const LoraSegment* segs, int nsegs, int max_rank, int max_len, int in, int out, const float* x,
                        float* y, float* tmp, cudaStream_t stream);
cudaError_t launch_embed(const int32_t* tokens, int T, const void* table, WType wt, int H, float* x,
                         cudaStream_t stream);
cudaError_t launch_rmsnorm(const float* x, const float* w, int T, int H, float eps, float* y, cudaStream_t stream);
cudaError_t launch_rope(float* q, float* k, int T, int heads, int kv_heads, int head_dim, const float* cos,
                        const float* sin, cudaStream_t stream);
cudaError_t launch_kv_store(const float* k, const float* v, int T, const KvLayer& cache, const KvView* views,
                            const int* pos, int kv_dim, cudaStream_t stream);
cudaError_t launch_attention(const float* q, int T, const KvLayer& cache, const KvView* views, const int* pos,
                             const AttentionShape& s, float* out, cudaStream_t stream);
cudaError_t launch_add(float* x, const float* y, size_t n, cudaStream_t stream);
cudaError_t launch_silu_mul(float* g, const float* u, size_t n, cudaStream_t stream);

}  // namespace cuda
}  // namespace longtail

// CUDA kernels of the longtail engine (see kernels.cuh). Written for correctness first and
// bandwidth second; none of them has run on a GPU yet (native/README.md, "CUDA").
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "kernels.cuh"

namespace longtail {
namespace cuda {

namespace {

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }

template <class T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// sh: 33 floats of shared memory.
__device__ __forceinline__ float block_sum(float v, float* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float w = lane < nw ? sh[lane] : 0.0f;
    w = warp_sum(w);
    if (lane == 0) sh[32] = w;
  }
  __syncthreads();
  const float r = sh[32];
  __syncthreads();  // sh may be reused right after
  return r;
}

// 8 consecutive weights as floats (p 16-byte aligned).
__device__ __forceinline__ void load8(const float* p, float* o) {
  const float4 a = *reinterpret_cast<const float4*>(p), b = *reinterpret_cast<const float4*>(p + 4);
  o[0] = a.x; o[1] = a.y; o[2] = a.z; o[3] = a.w; o[4] = b.x; o[5] = b.y; o[6] = b.z; o[7] = b.w;
}
__device__ __forceinline__ void load8(const __nv_bfloat16* p, float* o) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    o[2 * i] = f.x;
    o[2 * i + 1] = f.y;
  }
}
__device__ __forceinline__ void load8(const __half* p, float* o) {
  const uint4 u = *reinterpret_cast<const uint4*>(p);
  const __half2* h = reinterpret_cast<const __half2*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(h[i]);
    o[2 * i] = f.x;
    o[2 * i + 1] = f.y;
  }
}

unsigned grid1d(size_t n, int block) {
  const size_t g = (n + block - 1) / block;
  return unsigned(std::max<size_t>(1, std::min<size_t>(g, size_t(1) << 20)));  // grid-stride beyond
}

// ---------------------------------------------------------------------------------------------

template <class T>
__global__ void convert_kernel(const float* __restrict__ src, T* __restrict__ dst, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = from_f<T>(src[i]);
}

// GEMV-like GEMM for small M (decode): one warp per output column n, all M rows of x at once, so
// W (the bytes that matter) is read exactly once. VEC: 8 weights per lane per load (K % 8 == 0 and
// 16-byte aligned rows), else one weight per lane.
template <class WT, int MT, bool VEC>
__global__ void __launch_bounds__(256) gemv_kernel(int M, int N, int K, const float* __restrict__ x,
                                                   const WT* __restrict__ W, const float* __restrict__ bias,
                                                   float* __restrict__ y) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n = blockIdx.x * (blockDim.x >> 5) + warp;
  if (n >= N) return;  // whole warp leaves together
  const WT* w = W + size_t(n) * K;
  float acc[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = 0.0f;
  if (VEC) {
    for (int k = lane * 8; k < K; k += 32 * 8) {
      float wv[8];
      load8(w + k, wv);
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        if (m < M) {
          float xv[8];
          load8(x + size_t(m) * K + k, xv);
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[m] = fmaf(wv[i], xv[i], acc[m]);
        }
      }
    }
  } else {
    for (int k = lane; k < K; k += 32) {
      const float wv = to_f(w[k]);
#pragma unroll
      for (int m = 0; m < MT; ++m)
        if (m < M) acc[m] = fmaf(wv, x[size_t(m) * K + k], acc[m]);
    }
  }
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = warp_sum(acc[m]);
  if (lane == 0) {
    const float b = bias ? bias[n] : 0.0f;
#pragma unroll
    for (int m = 0; m < MT; ++m)
      if (m < M) y[size_t(m) * N + n] = acc[m] + b;
  }
}

// Tiled GEMM for larger M: 64×64 output tile per block of 256 threads, 4×4 outputs per thread,
// K in steps of 16 through shared memory (W converted to f32 on load). The fallback when cuBLAS is
// absent; bound by FLOPs on CUDA cores, not tensor cores.
constexpr int kTile = 64, kTileK = 16;
template <class WT>
__global__ void __launch_bounds__(256) gemm_tiled_kernel(int M, int N, int K, const float* __restrict__ x,
                                                         const WT* __restrict__ W, const float* __restrict__ bias,
                                                         float* __restrict__ y) {
  __shared__ float xs[kTileK][kTile + 4];
  __shared__ float ws[kTileK][kTile + 4];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int m0 = blockIdx.y * kTile, n0 = blockIdx.x * kTile;
  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
  for (int k0 = 0; k0 < K; k0 += kTileK) {
    for (int i = threadIdx.x; i < kTile * kTileK; i += blockDim.x) {
      const int r = i / kTileK, kk = i % kTileK;
      const int gk = k0 + kk, gm = m0 + r, gn = n0 + r;
      xs[kk][r] = (gm < M && gk < K) ? x[size_t(gm) * K + gk] : 0.0f;
      ws[kk][r] = (gn < N && gk < K) ? to_f(W[size_t(gn) * K + gk]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = xs[kk][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = ws[kk][tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int m = m0 + ty * 4 + i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int n = n0 + tx * 4 + j;
      if (n < N) y[size_t(m) * N + n] = acc[i][j] + (bias ? bias[n] : 0.0f);
    }
  }
}

__global__ void bias_rows_kernel(int M, int N, const float* __restrict__ bias, float* __restrict__ y) {
  const size_t n = size_t(M) * N;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    y[i] = bias[i % N];
}

// LoRA shrink: block (segment, rank row r, chunk of kShrinkTok tokens). The A row is read once
// per chunk (later tokens hit L1/L2); each token's dot product is a block reduction.
constexpr int kShrinkTok = 16;
__global__ void __launch_bounds__(128) lora_shrink_kernel(const LoraSegment* __restrict__ segs, int in,
                                                          const float* __restrict__ x, float* __restrict__ tmp) {
  __shared__ float sh[33];
  const LoraSegment g = segs[blockIdx.x];
  const int r = blockIdx.y, t0 = blockIdx.z * kShrinkTok;
  if (r >= g.rank || t0 >= g.len) return;  // uniform over the block
  const float* __restrict__ a = g.A[r];
  const int tend = min(g.len, t0 + kShrinkTok);
  for (int t = t0; t < tend; ++t) {
    const float* __restrict__ xx = x + size_t(g.start + t) * in;
    float s = 0.0f;
    for (int k = threadIdx.x; k < in; k += blockDim.x) s = fmaf(a[k], xx[k], s);
    s = block_sum(s, sh);
    if (threadIdx.x == 0) tmp[size_t(g.start + t) * kLoraTmpStride + r] = g.scale * s;
  }
}

// LoRA expand: block (256 outputs, segment, chunk of kExpandTok tokens); each thread owns one
// output column for up to kExpandTok tokens, so every Bt element is read once per chunk.
constexpr int kExpandTok = 16;
__global__ void __launch_bounds__(256) lora_expand_kernel(const LoraSegment* __restrict__ segs, int out,
                                                          const float* __restrict__ tmp, float* __restrict__ y) {
  __shared__ float ts[kExpandTok][kLoraTmpStride];
  const LoraSegment g = segs[blockIdx.y];
  const int t0 = blockIdx.z * kExpandTok;
  if (t0 >= g.len) return;  // uniform
  const int nt = min(kExpandTok, g.len - t0);
  for (int i = threadIdx.x; i < kExpandTok * g.rank; i += blockDim.x) {
    const int t = i / g.rank, r = i % g.rank;
    ts[t][r] = t < nt ? tmp[size_t(g.start + t0 + t) * kLoraTmpStride + r] : 0.0f;
  }
  __syncthreads();
  const int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= out) return;
  float acc[kExpandTok];
#pragma unroll
  for (int t = 0; t < kExpandTok; ++t) acc[t] = 0.0f;
  for (int r = 0; r < g.rank; ++r) {
    const float b = g.Bt[r][o];
#pragma unroll
    for (int t = 0; t < kExpandTok; ++t) acc[t] = fmaf(ts[t][r], b, acc[t]);
  }
  for (int t = 0; t < nt; ++t) y[size_t(g.start + t0 + t) * out + o] += acc[t];
}

template <class WT>
__global__ void embed_kernel(const int32_t* __restrict__ tokens, const WT* __restrict__ table, int H,
                             float* __restrict__ x) {
  const int t = blockIdx.x;
  const WT* row = table + size_t(tokens[t]) * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) x[size_t(t) * H + i] = to_f(row[i]);
}

__global__ void __launch_bounds__(256) rmsnorm_kernel(const float* __restrict__ x, const float* __restrict__ w, int H,
                                                      float eps, float* __restrict__ y) {
  __shared__ float sh[33];
  const float* r = x + size_t(blockIdx.x) * H;
  float* o = y + size_t(blockIdx.x) * H;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < H; i += blockDim.x) ss = fmaf(r[i], r[i], ss);
  ss = block_sum(ss, sh);
  const float inv = 1.0f / sqrtf(ss / H + eps);
  for (int i = threadIdx.x; i < H; i += blockDim.x) o[i] = w[i] * (r[i] * inv);
}

__global__ void rope_kernel(float* __restrict__ q, float* __restrict__ k, int heads, int kv_heads, int hd,
                            const float* __restrict__ cos, const float* __restrict__ sin) {
  const int t = blockIdx.x, half = hd / 2;
  const int pairs = (heads + kv_heads) * half;
  const float* c = cos + size_t(t) * half;
  const float* sn = sin + size_t(t) * half;
  for (int idx = threadIdx.x; idx < pairs; idx += blockDim.x) {
    const int h = idx / half, i = idx % half;
    float* v = h < heads ? q + (size_t(t) * heads + h) * hd : k + (size_t(t) * kv_heads + (h - heads)) * hd;
    const float a = v[i], b = v[i + half];
    v[i] = a * c[i] - b * sn[i];
    v[i + half] = b * c[i] + a * sn[i];
  }
}

__global__ void kv_store_kernel(const float* __restrict__ k, const float* __restrict__ v, float* __restrict__ kc,
                                float* __restrict__ vc, int B, const KvView* __restrict__ views,
                                const int* __restrict__ pos, int kv_dim) {
  const int t = blockIdx.x, p = pos[t];
  const size_t row = size_t(views[t].blocks[p / B]) * B + p % B;
  for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
    kc[row * kv_dim + i] = k[size_t(t) * kv_dim + i];
    vc[row * kv_dim + i] = v[size_t(t) * kv_dim + i];
  }
}

// Paged attention, decode and prefill alike: block (token t, query head h), keys 0..pos[t] read
// through the token's block table. Each warp takes every kAttnWarps-th key with an online softmax
// (lane i holds dims i, i+32, ...); the warps' partial results are merged at the end.
constexpr int kAttnWarps = 4;
constexpr int kAttnPer = kMaxHeadDim / 32;
__global__ void __launch_bounds__(kAttnWarps * 32) attention_kernel(const float* __restrict__ q,
                                                                    const float* __restrict__ kc,
                                                                    const float* __restrict__ vc, int B,
                                                                    const KvView* __restrict__ views,
                                                                    const int* __restrict__ pos, int heads,
                                                                    int kv_heads, int hd, float scale,
                                                                    float* __restrict__ out) {
  __shared__ float sm[kAttnWarps], sl[kAttnWarps];
  __shared__ float sacc[kAttnWarps][kMaxHeadDim];
  const int t = blockIdx.x, h = blockIdx.y;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int kvh = h / (heads / kv_heads), kv_dim = kv_heads * hd;
  const float* qv = q + (size_t(t) * heads + h) * hd;
  float qr[kAttnPer], acc[kAttnPer];
#pragma unroll
  for (int i = 0; i < kAttnPer; ++i) {
    const int d = lane + 32 * i;
    qr[i] = d < hd ? qv[d] * scale : 0.0f;
    acc[i] = 0.0f;
  }
  const int32_t* table = views[t].blocks;
  const int n = pos[t] + 1;  // causal: keys 0..pos
  float m = -INFINITY, l = 0.0f;
  for (int j = warp; j < n; j += kAttnWarps) {
    const size_t row = size_t(table[j / B]) * B + j % B;
    const float* kr = kc + row * kv_dim + size_t(kvh) * hd;
    const float* vr = vc + row * kv_dim + size_t(kvh) * hd;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kAttnPer; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) s = fmaf(qr[i], kr[d], s);
    }
    s = warp_sum(s);
    const float mn = fmaxf(m, s);
    const float corr = expf(m - mn), p = expf(s - mn);
    l = l * corr + p;
#pragma unroll
    for (int i = 0; i < kAttnPer; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) acc[i] = fmaf(p, vr[d], acc[i] * corr);
    }
    m = mn;
  }
  if (lane == 0) {
    sm[warp] = m;
    sl[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kAttnPer; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) sacc[warp][d] = acc[i];
  }
  __syncthreads();
  float M = -INFINITY;
#pragma unroll
  for (int w = 0; w < kAttnWarps; ++w) M = fmaxf(M, sm[w]);
  float L = 0.0f, f[kAttnWarps];
#pragma unroll
  for (int w = 0; w < kAttnWarps; ++w) {
    f[w] = sl[w] > 0.0f ? expf(sm[w] - M) : 0.0f;  // a warp that saw no key has m = -inf, l = 0
    L += sl[w] * f[w];
  }
  float* o = out + (size_t(t) * heads + h) * hd;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float acc_d = 0.0f;
#pragma unroll
    for (int w = 0; w < kAttnWarps; ++w) acc_d += sacc[w][d] * f[w];
    o[d] = acc_d / L;
  }
}

__global__ void add_kernel(float* __restrict__ x, const float* __restrict__ y, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    x[i] += y[i];
}

__global__ void silu_mul_kernel(float* __restrict__ g, const float* __restrict__ u, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float v = g[i];
    g[i] = v / (1.0f + expf(-v)) * u[i];
  }
}

template <class WT, int MT>
cudaError_t gemv_dispatch_vec(int M, int N, int K, const float* x, const WT* W, const float* bias, float* y,
                              cudaStream_t st) {
  const int warps = 8;
  const dim3 grid((N + warps - 1) / warps);
  const bool vec = K % 8 == 0 && (reinterpret_cast<uintptr_t>(W) % 16 == 0) &&
                   (reinterpret_cast<uintptr_t>(x) % 16 == 0);
  if (vec) gemv_kernel<WT, MT, true><<<grid, warps * 32, 0, st>>>(M, N, K, x, W, bias, y);
  else gemv_kernel<WT, MT, false><<<grid, warps * 32, 0, st>>>(M, N, K, x, W, bias, y);
  return cudaGetLastError();
}

template <class WT>
cudaError_t gemm_typed(int M, int N, int K, const float* x, const WT* W, const float* bias, float* y, cudaStream_t st) {
  if (M <= 1) return gemv_dispatch_vec<WT, 1>(M, N, K, x, W, bias, y, st);
  if (M <= 2) return gemv_dispatch_vec<WT, 2>(M, N, K, x, W, bias, y, st);
  if (M <= 4) return gemv_dispatch_vec<WT, 4>(M, N, K, x, W, bias, y, st);
  if (M <= kGemvMaxM) return gemv_dispatch_vec<WT, kGemvMaxM>(M, N, K, x, W, bias, y, st);
  const dim3 grid((N + kTile - 1) / kTile, (M + kTile - 1) / kTile);
  gemm_tiled_kernel<WT><<<grid, 256, 0, st>>>(M, N, K, x, W, bias, y);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_convert(const float* src, void* dst, WType to, size_t n, cudaStream_t st) {
  if (n == 0) return cudaSuccess;
  switch (to) {
    case WType::kBF16: convert_kernel<__nv_bfloat16><<<grid1d(n, 256), 256, 0, st>>>(src, static_cast<__nv_bfloat16*>(dst), n); break;
    case WType::kF16: convert_kernel<__half><<<grid1d(n, 256), 256, 0, st>>>(src, static_cast<__half*>(dst), n); break;
    case WType::kF32: convert_kernel<float><<<grid1d(n, 256), 256, 0, st>>>(src, static_cast<float*>(dst), n); break;
  }
  return cudaGetLastError();
}

cudaError_t launch_gemm_own(int M, int N, int K, const float* x, const void* W, WType wt, const float* bias, float* y,
                            cudaStream_t st) {
  if (M <= 0 || N <= 0) return cudaSuccess;
  switch (wt) {
    case WType::kBF16: return gemm_typed(M, N, K, x, static_cast<const __nv_bfloat16*>(W), bias, y, st);
    case WType::kF16: return gemm_typed(M, N, K, x, static_cast<const __half*>(W), bias, y, st);
    case WType::kF32: break;
  }
  return gemm_typed(M, N, K, x, static_cast<const float*>(W), bias, y, st);
}

cudaError_t launch_bias_rows(int M, int N, const float* bias, float* y, cudaStream_t st) {
  const size_t n = size_t(M) * N;
  if (n == 0) return cudaSuccess;
  bias_rows_kernel<<<grid1d(n, 256), 256, 0, st>>>(M, N, bias, y);
  return cudaGetLastError();
}

cudaError_t launch_lora(const LoraSegment* segs, int nsegs, int max_rank, int max_len, int in, int out, const float* x,
                        float* y, float* tmp, cudaStream_t st) {
  if (nsegs <= 0 || max_rank <= 0 || max_len <= 0) return cudaSuccess;
  const dim3 gs(nsegs, max_rank, (max_len + kShrinkTok - 1) / kShrinkTok);
  lora_shrink_kernel<<<gs, 128, 0, st>>>(segs, in, x, tmp);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  const dim3 ge((out + 255) / 256, nsegs, (max_len + kExpandTok - 1) / kExpandTok);
  lora_expand_kernel<<<ge, 256, 0, st>>>(segs, out, tmp, y);
  return cudaGetLastError();
}

cudaError_t launch_embed(const int32_t* tokens, int T, const void* table, WType wt, int H, float* x, cudaStream_t st) {
  if (T <= 0) return cudaSuccess;
  switch (wt) {
    case WType::kBF16: embed_kernel<<<T, 256, 0, st>>>(tokens, static_cast<const __nv_bfloat16*>(table), H, x); break;
    case WType::kF16: embed_kernel<<<T, 256, 0, st>>>(tokens, static_cast<const __half*>(table), H, x); break;
    case WType::kF32: embed_kernel<<<T, 256, 0, st>>>(tokens, static_cast<const float*>(table), H, x); break;
  }
  return cudaGetLastError();
}

cudaError_t launch_rmsnorm(const float* x, const float* w, int T, int H, float eps, float* y, cudaStream_t st) {
  if (T <= 0) return cudaSuccess;
  rmsnorm_kernel<<<T, 256, 0, st>>>(x, w, H, eps, y);
  return cudaGetLastError();
}

cudaError_t launch_rope(float* q, float* k, int T, int heads, int kv_heads, int head_dim, const float* cos,
                        const float* sin, cudaStream_t st) {
  if (T <= 0 || head_dim < 2) return cudaSuccess;
  rope_kernel<<<T, 128, 0, st>>>(q, k, heads, kv_heads, head_dim, cos, sin);
  return cudaGetLastError();
}

cudaError_t launch_kv_store(const float* k, const float* v, int T, const KvLayer& cache, const KvView* views,
                            const int* pos, int kv_dim, cudaStream_t st) {
  if (T <= 0) return cudaSuccess;
  kv_store_kernel<<<T, 256, 0, st>>>(k, v, cache.k, cache.v, cache.block_tokens, views, pos, kv_dim);
  return cudaGetLastError();
}

cudaError_t launch_attention(const float* q, int T, const KvLayer& cache, const KvView* views, const int* pos,
                             const AttentionShape& s, float* out, cudaStream_t st) {
  if (T <= 0) return cudaSuccess;
  const dim3 grid(T, s.heads);  // T on x: up to 2^31 - 1 tokens
  attention_kernel<<<grid, kAttnWarps * 32, 0, st>>>(q, cache.k, cache.v, cache.block_tokens, views, pos, s.heads,
                                                     s.kv_heads, s.head_dim, 1.0f / sqrtf(float(s.head_dim)), out);
  return cudaGetLastError();
}

cudaError_t launch_add(float* x, const float* y, size_t n, cudaStream_t st) {
  if (n == 0) return cudaSuccess;
  add_kernel<<<grid1d(n, 256), 256, 0, st>>>(x, y, n);
  return cudaGetLastError();
}

cudaError_t launch_silu_mul(float* g, const float* u, size_t n, cudaStream_t st) {
  if (n == 0) return cudaSuccess;
  silu_mul_kernel<<<grid1d(n, 256), 256, 0, st>>>(g, u, n);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace longtail

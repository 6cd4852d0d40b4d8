// cuBLAS loaded at run time with dlopen (this build machine has no cuBLAS headers or libraries):
// the few prototypes and enum values the backend needs are declared here, from the cuBLAS API
// (cublas_api.h / library_types.h of CUDA 12–13). When libcublas cannot be loaded, the backend
// uses its own GEMM kernels (kernels.cu).
#pragma once

#include <cuda_runtime.h>

#include <string>

namespace longtail {
namespace cuda {

struct Cublas {
  using Handle = void*;
  using Status = int;  // cublasStatus_t: 0 = CUBLAS_STATUS_SUCCESS
  static constexpr int kOpN = 0, kOpT = 1;                      // cublasOperation_t
  static constexpr int kR32F = 0, kR16F = 2, kR16BF = 14;      // cudaDataType_t
  static constexpr int kCompute32F = 68;                        // CUBLAS_COMPUTE_32F
  static constexpr int kGemmDefault = -1;                       // CUBLAS_GEMM_DEFAULT

  Status (*create)(Handle*) = nullptr;                          // cublasCreate_v2
  Status (*destroy)(Handle) = nullptr;                          // cublasDestroy_v2
  Status (*set_stream)(Handle, cudaStream_t) = nullptr;         // cublasSetStream_v2
  Status (*gemm_ex)(Handle, int transa, int transb, int m, int n, int k, const void* alpha, const void* A, int Atype,
                    int lda, const void* B, int Btype, int ldb, const void* beta, void* C, int Ctype, int ldc,
                    int computeType, int algo) = nullptr;        // cublasGemmEx

  void* lib = nullptr;
  Handle handle = nullptr;
  std::string library;  // the file that loaded
  std::string why;      // why it is not available

  // Loads libcublas (libcublas.so.13, then libcublas.so), creates a handle bound to `stream`.
  // False (and `why`) when anything is missing; never throws.
  bool load(cudaStream_t stream);
  void unload();
  bool ok() const { return handle != nullptr; }
};

}  // namespace cuda
}  // namespace longtail

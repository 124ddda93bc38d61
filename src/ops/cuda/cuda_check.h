// ops/cuda/cuda_check.h — the checking macros for CUDA runtime calls (AR_CUDA_CHECK) and cuBLAS calls
// (AR_CUBLAS_CHECK): a failure throws autoround::Error with the call, the error and file:line.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/error.h"

#define AR_CUDA_CHECK(call)                                                                          \
    do {                                                                                             \
        const cudaError_t ar_err_ = (call);                                                          \
        if (ar_err_ != cudaSuccess)                                                                  \
            ::autoround::fail("CUDA error ", cudaGetErrorName(ar_err_), " (", cudaGetErrorString(ar_err_), \
                              ") in ", #call, " at ", __FILE__, ":", __LINE__);                      \
    } while (0)

#define AR_CUBLAS_CHECK(call)                                                                      \
    do {                                                                                           \
        const cublasStatus_t ar_st_ = (call);                                                      \
        if (ar_st_ != CUBLAS_STATUS_SUCCESS)                                                       \
            ::autoround::fail("cuBLAS error ", static_cast<int>(ar_st_), " (", cublasGetStatusName(ar_st_), \
                              ") in ", #call, " at ", __FILE__, ":", __LINE__);                   \
    } while (0)

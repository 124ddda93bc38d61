// ops/cuda/cuda_check.h — the one checking macro for CUDA runtime calls: a failure throws
// autoround::Error with the call, the CUDA error string and file:line.
#pragma once

#include <cuda_runtime.h>

#include "core/error.h"

#define AR_CUDA_CHECK(call)                                                                          \
    do {                                                                                             \
        const cudaError_t ar_err_ = (call);                                                          \
        if (ar_err_ != cudaSuccess)                                                                  \
            ::autoround::fail("CUDA error ", cudaGetErrorName(ar_err_), " (", cudaGetErrorString(ar_err_), \
                              ") in ", #call, " at ", __FILE__, ":", __LINE__);                      \
    } while (0)

// ops/cuda/flash_attention_sm90.h — the Hopper (sm_90a, wgmma) kernels behind flash_attention_forward and
// flash_attention_backward (ops/cuda/flash_attention.h), which pick them where flash_attention_sm90_available(). Same arguments, layouts, math
// and outputs as the mma.sync kernels; arguments are checked by the caller.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

struct __nv_bfloat16;

namespace autoround {

// True when the kernel code that runs on the current device was built for sm_90a (a Hopper GPU and a build that
// includes the 90a architecture). Safe during stream capture; cached.
bool flash_attention_sm90_available();

void flash_attention_sm90_forward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int64_t b,
                                  int64_t L, int nq, int nkv, int D, float scale, __nv_bfloat16* o, float* lse,
                                  cudaStream_t stream);

// The backward's main pass: dq (zeroed by the caller) accumulated with atomics, dk and dv written; delta = Δ of
// flash_attention.cu's pre-pass.
void flash_attention_sm90_backward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                                   const __nv_bfloat16* dO, const float* lse, const float* delta, int64_t b, int64_t L,
                                   int nq, int nkv, int D, float scale, float* dq, float* dk, float* dv,
                                   cudaStream_t stream);

}  // namespace autoround

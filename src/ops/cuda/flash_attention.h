// ops/cuda/flash_attention.h — fused causal GQA softmax attention (forward and backward) on bf16 tensor cores,
// in the FlashAttention-2 style: the score matrices are never written to device memory.
//
// Why: the bf16 block engine (ops/cuda/block_engine.cu) computes attention with cuBLAS and materialises the scores,
// the probabilities and their gradients as [b, nq, L, L] arrays (FP32 scores + bf16 P + bf16 dS: 8.6 GB + 2 × 4.3 GB
// at b 8, L 2048, nq 32). These kernels keep each score tile in registers instead; what survives the forward for the
// backward is O and one FP32 log-sum-exp per query row.
//
// Layouts (exactly the engine's bf16 path; row-major, token-major):
//   q  [b, L, nq·D]  bf16, query head h at columns h·D .. h·D+D-1
//   k, v [b, L, nkv·D] bf16; query head h reads kv head h / (nq / nkv) (grouped-query attention)
//   o  [b, L, nq·D]  bf16 (forward output), lse [b, nq, L] FP32
//   dO [b, L, nq·D]  bf16 (gradient of o); dq [b, L, nq·D], dk, dv [b, L, nkv·D] FP32
// q, k, v, dO and the forward's o must be 16-byte aligned (cudaMalloc memory is), dq, dk, dv 8-byte, lse 4-byte;
// D ∈ {64, 128} (flash_attention_supports_head_dim), nq a multiple of nkv, any L ≥ 1 (the tile tails are masked).
//
// Math (causal: query i sees keys 0..i; s = softmax scale, normally 1/sqrt(D)):
//   S_ij = s · q_i·k_j,  lse_i = log Σ_{j≤i} exp(S_ij) (natural log),  P_ij = exp(S_ij − lse_i),  o_i = Σ_j P_ij v_j
//   backward (FlashAttention-2): Δ_i = Σ_d dO_id · o_id (from the bf16 o), then per key tile P is recomputed from lse,
//   dv_j = Σ_i P_ij dO_i,  dP_ij = dO_i·v_j,  dS_ij = P_ij (dP_ij − Δ_i),
//   dq_i = s Σ_j dS_ij k_j,  dk_j = s Σ_i dS_ij q_i;
//   dk and dv of kv head g are the sums over the nq/nkv query heads of its group.
//
// Numerics: the products QKᵀ, PV, dO·Vᵀ, Pᵀ·dO, dSᵀ·Q, dS·K run on bf16 tensor cores (mma.sync m16n8k16, or wgmma on
// Hopper: FlashAttentionKernel below) with FP32 accumulation; the scores, the running max / sum of the online softmax, lse, Δ and dP − Δ stay FP32 — as the engine's
// cuBLAS path, P and dS are rounded to bf16 as operands of the second products (the engine rounds them when it stores
// them), and o is rounded to bf16 once at the end. dq is accumulated over key tiles with FP32 atomic adds into the
// zeroed dq (so its low bits can vary from run to run); o, lse, dk and dv are deterministic. Worst errors seen against
// a float64 reference (tests/cuda/test_cuda_flash_attention.cpp, N(0, 1.5²) q, k): max|err| / max|ref| 3e-3 for o,
// 6e-3 for dq and dk, 3e-3 for dv; lse within 3e-6.
// Shared memory per CTA (D 128): forward 104,448 bytes; backward 177,152 where the device allows it (H100),
// else 123,904 (64-key tiles).
// All calls are asynchronous on `stream`; launch errors throw autoround::Error (AR_CUDA_CHECK), as do bad arguments.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

struct __nv_bfloat16;  // <cuda_bf16.h>; only pointers to it here

namespace autoround {

// True for the head dims these kernels are compiled for (64 and 128); callers fall back to another path otherwise.
bool flash_attention_supports_head_dim(int D);

// Which kernels run: Auto takes the Hopper wgmma kernels (ops/cuda/flash_attention_sm90.cu) where the running code was
// built for sm_90a, else the mma.sync kernels; AUTOROUND_FA_MMA_SYNC=1 makes Auto take mma.sync everywhere (A/B
// measurements). Wgmma where it is not available throws.
enum class FlashAttentionKernel { Auto, MmaSync, Wgmma };

// o = softmax(scale · q kᵀ, causal) v and lse (see above). b or L = 0: nothing to do.
void flash_attention_forward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int64_t b,
                             int64_t L, int nq, int nkv, int D, float scale, __nv_bfloat16* o, float* lse,
                             cudaStream_t stream, FlashAttentionKernel kernel = FlashAttentionKernel::Auto);

// Bytes of the optional workspace of flash_attention_backward (Δ: b·nq·L floats).
size_t flash_attention_backward_workspace_bytes(int64_t b, int64_t L, int nq);

// dq, dk, dv from q, k, v, the forward's o and lse, and dO. dq, dk, dv are overwritten (not accumulated into).
// workspace: flash_attention_backward_workspace_bytes() bytes of device memory, or null to have it allocated and freed
// on `stream` (cudaMallocAsync) in this call.
void flash_attention_backward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                              const __nv_bfloat16* o, const __nv_bfloat16* dO, const float* lse, int64_t b, int64_t L,
                              int nq, int nkv, int D, float scale, float* dq, float* dk, float* dv, float* workspace,
                              cudaStream_t stream, FlashAttentionKernel kernel = FlashAttentionKernel::Auto);

}  // namespace autoround

// ops/cuda/quant_gemv.h — W4A16-style weight-only-quantized matrix–vector products for GPU decode, the same for
// dense bf16 weights (the LM head, unquantized layers), and the dequantization of a packed weight to bf16 for the
// prefill GEMM.
//
// Why: decode at batch 1 reads every weight once per token, so its speed is the memory bandwidth; the packed
// 2/3/4/8-bit weights are read as they are stored (never widened in device memory) and unpacked in registers.
//
// The packed layout is GPTQ's qweight (export/pack_layout.h, the one definition shared with the exporters and the
// CPU loaders): for each output column n the codes q[n][0..k) form one little-endian bit stream of `bits`-bit codes,
// consecutive 32-bit words of that stream are consecutive rows of qweight [k·bits/32, n] (so one qweight row is
// n words, adjacent columns adjacent in memory). Every 32 codes of a column fill exactly `bits` words.
// Scales and zero points are stored per group of group_len consecutive inputs, transposed like GPTQ's:
//   scales [ng, n] fp16 bit patterns, zeros [ng, n] uint8 integer zero points (true zeros, not GPTQ v1's z−1),
//   ng = k / group_len.
// The weight value is exactly what the CPU model runs with (model/qwen3_model.cpp: the float32 dequantization
// rounded to bf16):   w[n][k] = bf16( float(scale[g][n]) · float(q[n][k] − zero[g][n]) ),  g = k / group_len.
// The products are y[n] = Σ_k w[n][k] · x[k] in FP32 (the summation order differs from the CPU's).
//
// Plain C++ header (no CUDA types besides cudaStream_t); defined only in CUDA builds.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace autoround {

// A packed weight [n, k] in device memory (see above). Requirements (checked; a violation throws autoround::Error
// naming the shape): bits ∈ {2, 3, 4, 8}; k % 32 == 0; group_len % 32 == 0 and k % group_len == 0; n ≥ 1.
// The fast path (16-byte loads of 4 columns) needs n % 4 == 0 and qweight 16-, scales 8-, zeros 4-byte aligned
// (cudaMalloc memory is); otherwise a one-column-per-thread path runs (same results, slower).
// Values (not checked: they live in device memory): finite scales; zero points ≤ 2^bits (what GPTQ/AWQ/auto-round
// zero fields hold; 8-bit GPTQ v1's z = 256 does not fit a uint8); the exact bf16 rounding of w relies on it.
struct DeviceQuantWeight {
    const uint32_t* qweight = nullptr;  // [k·bits/32, n]
    const uint16_t* scales = nullptr;   // [k/group_len, n] fp16
    const uint8_t* zeros = nullptr;     // [k/group_len, n]
    int64_t n = 0;                      // output features (columns of qweight)
    int64_t k = 0;                      // input features
    int bits = 4;
    int64_t group_len = 128;
};

// y[n] = Σ_k w[n][k] · x[k]   (accumulate: y[n] += …, e.g. the residual stream). x [k] FP32, y [n] FP32, both
// device pointers; x and y must not overlap. Asynchronous on `stream`; no allocation (graph-capturable; with
// accumulate == false and the k range split across CTAs, the call zeroes y with cudaMemsetAsync first). The k splits
// add into y with atomics, so the last bits of y may differ from run to run.
void quant_gemv(const DeviceQuantWeight& w, const float* x, float* y, bool accumulate, cudaStream_t stream);

// ---- the fast decode path (quant_gemv_fast.cu) ----------------------------------------------------------------
//
// Which packed GEMV a caller runs: Exact reproduces the CPU model's bf16 weights bit for bit (quant_gemv above; what
// the prefill dequantization and the CPU define), Fast skips the per-weight bf16 rounding (quant_gemv_fast below:
// about half the instructions per weight, so it can run at the memory bandwidth).
enum class QuantGemvMode { Exact, Fast };

// How quant_gemv_fast forms its input x [k] while staging it into shared memory (the fused prologues of decode, which
// spare the separate RMSNorm / SwiGLU kernels of a step):
//   None:    x[i] = src[i],                      src [k]
//   RmsNorm: x[i] = norm_w[i] · (src[i] · inv),  src [k], norm_w [k]: ops/cuda/decode_ops.h rms_norm_rows' math
//            exactly (inv = 1 / sqrt(float(Σ double(src)² / k) + eps)); every CTA recomputes the sum of squares over
//            the whole row (k ≤ a few thousand floats, read from L2).
//   SwiGlu:  x[i] = silu(src[i]) · src[k + i],   src [2k] (gate | up): decode_ops.h swiglu_rows' math exactly.
enum class GemvPrologue { None, RmsNorm, SwiGlu };
struct GemvInput {
    GemvPrologue op = GemvPrologue::None;
    const float* src = nullptr;     // device, 4-byte aligned; [k] or [2k] (see above)
    const float* norm_w = nullptr;  // RmsNorm: [k] device
    float eps = 1e-6f;              // RmsNorm
};

// y[n] (+)= Σ_k s·(q − z)·x[k] without rounding the weight to bf16: per 32-input block and column the sum of
// (q − z)·x, scaled by the group's fp16 scale in FP32. Bits 2, 4, 8: x is held per block as a 21-bit fixed-point
// value (each x to 2^−21 of the block's largest |x|; FP32 holds it to 2^−24 of itself) and Σ (q − z)·X is exact in
// int32; bits 3: (q − z) exact in FP32, times x rounded once. A power-of-two one-hot x gives single weights exactly.
// That is the CPU model's float32 dequantization s·(q − z) before its bf16 rounding, so the result is at least as
// close to an FP32 reference as quant_gemv's (which rounds every weight to bf16, ~2^-9 relative).
// Same requirements, layout, alignment fallback and atomics as quant_gemv (x [k] / src and y must not overlap; zero
// points ≤ 2^bits as above). A non-finite x makes every y non-finite.
// Launched with programmatic dependent launch on sm_90 (ops/cuda/pdl.cuh): its weight loads may overlap the kernel
// before it on the stream; it waits for that kernel before reading x or writing anything.
// zero / zero_count (optional): the kernel also sets zero[0 .. zero_count) to 0.0f, a buffer the caller needs zeroed
// for a later y += (decode uses it to avoid memset nodes in its graph); it must not overlap y or the inputs.
// Asynchronous, no allocation, graph-capturable.
void quant_gemv_fast(const DeviceQuantWeight& w, const GemvInput& in, float* y, bool accumulate, cudaStream_t stream,
                     float* zero = nullptr, int64_t zero_count = 0);
// quant_gemv_fast with GemvPrologue::None.
void quant_gemv_fast(const DeviceQuantWeight& w, const float* x, float* y, bool accumulate, cudaStream_t stream);

// The same for a dense bf16 weight w [n, k] row-major (k % 8 == 0, w 16-byte aligned): the LM head and the layers
// a checkpoint keeps unquantized.
void bf16_gemv(const uint16_t* w, int64_t n, int64_t k, const float* x, float* y, bool accumulate,
               cudaStream_t stream);

// out [n, k] bf16 row-major = w (the values above, bit for bit; out 16-byte aligned): the prefill path dequantizes
// one layer's weight into a scratch buffer and runs a tensor-core GEMM on it.
void quant_dequantize_bf16(const DeviceQuantWeight& w, uint16_t* out, cudaStream_t stream);

}  // namespace autoround

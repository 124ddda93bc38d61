// ops/cuda/block_engine.h — one Qwen3 decoder block on an NVIDIA GPU for the SignRound tuner: the cached
// block inputs and FP targets resident on the device, mini-batch forward + masked MSE + backward to the
// 7 weight gradients, and the no-grad forward over all samples (FP targets, quantized chain).
//
// Why this split: the block math (GEMMs, attention, norms: > 95 % of a tuning step) runs on the GPU; the
// per-iteration fake quantization of the weights and the SignSGD update stay on the host in the exact code
// the CPU path uses (ops/cpu/fake_quant.h), so both devices tune with identical quantizer semantics. Per
// iteration the host uploads the 7 QDQ weights and downloads their gradients (2 × 4 bytes per parameter).
//
// Math: the same as model/qwen3_block_grad.h (float32 everywhere; cuBLAS SGEMM in pedantic FP32, no TF32),
// with attention computed per (sample, head) from the materialised L×L probabilities (B·nq·L² floats).
// Plain C++ header (no CUDA types) so CPU code can hold an engine; without a CUDA build every entry point
// throws autoround::Error (ops/cpu/no_cuda_block_engine.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "model/qwen3_block_grad.h"

namespace autoround {

class CudaBlockEngine {
public:
    // Uploads the block constants; `train_in` and `ref_out` [n, L, H] (host) are copied to the device
    // (ref_out may be null when only forward_all is used). Throws Error without a usable GPU, for q/k/v bias
    // (not supported here) or when device memory runs out (naming the sizes).
    CudaBlockEngine(const Qwen3BlockConsts<float>& consts, int64_t n, int64_t L, int64_t batch, const float* train_in,
                    const float* ref_out);
    ~CudaBlockEngine();
    CudaBlockEngine(const CudaBlockEngine&) = delete;
    CudaBlockEngine& operator=(const CudaBlockEngine&) = delete;

    // Uploads weight `which` [out, in] (host float32).
    void set_weight(int which, const float* W);

    // Samples idx[0..b) of the resident inputs: forward, loss = masked MSE vs the resident targets (last token of
    // every sample masked when mask_last_token), backward of grad_scale·loss into the device dW (written, or
    // added when accumulate). Returns the loss (unscaled, like masked_mse_loss).
    double forward_backward(const int64_t* idx, int64_t b, bool mask_last_token, double grad_scale, bool accumulate);

    // Downloads dW of weight `which` into host memory [out, in].
    void get_weight_grad(int which, float* dW) const;

    // No-grad forward of all n resident training inputs with the current weights, in chunks of `batch`:
    // out [n, L, H] on the host (may alias nothing on the device; host `out` may be the caller's train_in).
    void forward_all(float* out);

    // Loads new resident training inputs (e.g. after a chain update) [n, L, H].
    void set_train_inputs(const float* train_in);

private:
    struct Impl;
    std::unique_ptr<Impl> p_;
};

}  // namespace autoround

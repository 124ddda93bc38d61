// ops/cuda/fake_quant_device.h — the SignRound fake quantization of ops/cpu/fake_quant.h on the GPU, fused with
// the SignSGD step, so that the GPU tuner keeps every layer's V, α, β on the device and no longer moves the
// block's weights up and its gradients down each iteration (≈ 100 ms per step for a Qwen3-4B block).
//
// Math: exactly ops/cpu/fake_quant.h (read its header). The forward is bit-identical to
// fake_quant_forward_ref<float>: the same IEEE float ops in the same order (no FMA contraction: __f*_rn
// intrinsics), rint with ties to even, the fp16 scale cast and the bf16 output rounding to nearest even. The
// backward differs from the CPU only in the summation order of ds, dz within a group. The SignSGD step is
// signsgd_step's (p ∓ lr, sign(0) = 0, NaN: no step); a group's gradients depend only on its own V, α, β, so the
// step is fused into the backward kernel (one thread block per group) with the CPU's results.
// Plain C++ header: the engine and the tests call it; without a CUDA build every entry point throws
// (ops/cpu/no_cuda_fake_quant_device.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "ops/cpu/fake_quant.h"

struct CUstream_st;  // cudaStream_t without the CUDA headers

namespace autoround {

// One layer's device arrays (shapes of ops/cpu/fake_quant.h).
struct FakeQuantDeviceLayer {
    FakeQuantShape sh;
    FakeQuantConfig cfg;
    bool minmax = true;           // α, β tuned; false: constants 1 (alpha/beta are then never read)
    const float* W = nullptr;     // [out, in] original weight
    float* V = nullptr;           // [out, G·gs]
    float* alpha = nullptr;       // [out·G]
    float* beta = nullptr;        // [out·G]
    const float* wmin = nullptr;  // [out·G]
    const float* wmax = nullptr;  // [out·G]
};

// Clamps α, β to [0, 1] in place, then writes W_q [out, in] as float32 (Wq_f32) or as bf16 bit patterns
// (Wq_bf16), whichever is not null. Asynchronous on `stream` (null: the default stream).
void fake_quant_device_forward(const FakeQuantDeviceLayer& l, float* Wq_f32, uint16_t* Wq_bf16,
                               CUstream_st* stream = nullptr);

// From dWq [out, in] (the gradient wrt W_q): dV, dα, dβ as fake_quant_backward computes them (also written to
// gV [out, G·gs] / gA / gB [out·G] when not null), then V -= lr_v·sign(dV) and, when minmax, α -= lr_m·sign(dα),
// β -= lr_m·sign(dβ). Asynchronous on `stream` (null: the default stream). lr_device (optional): the two rates
// {lr_v, lr_m} read from device memory when the kernel runs instead of lr_v / lr_m (a step captured once in a
// CUDA graph and replayed with a new learning rate each iteration). next_Wq_f32 / next_Wq_bf16 (optional): in the
// same pass, what fake_quant_device_forward would write next for the stepped parameters (α, β then stored clamped,
// as that forward stores them), so the next iteration needs no separate forward. one_warp_per_group (tests, A/B;
// also AUTOROUND_FQ_WARP_PER_GROUP=1): the one-warp-per-group kernel even where the register-resident one applies
// (the two give the same bits).
void fake_quant_device_backward_step(const FakeQuantDeviceLayer& l, const float* dWq, float lr_v, float lr_m, float* gV,
                                     float* gA, float* gB, CUstream_st* stream = nullptr,
                                     const float* lr_device = nullptr, float* next_Wq_f32 = nullptr,
                                     uint16_t* next_Wq_bf16 = nullptr, bool one_warp_per_group = false);

// The host-array form, for tests: uploads W, V, α, β, wmin, wmax (V/α/β of `t`; α, β ignored unless minmax),
// runs fake_quant_device_forward, then fake_quant_device_backward_step with dWq, and returns W_q (float32
// output), the gradients and the parameters after the step (one_warp_per_group: as in
// fake_quant_device_backward_step).
struct FakeQuantDeviceResult {
    std::vector<float> Wq, gV, gA, gB, V, alpha, beta;
};
FakeQuantDeviceResult fake_quant_device_run(const FakeQuantTensors<float>& t, const FakeQuantShape& sh,
                                            const FakeQuantConfig& cfg, bool minmax, const std::vector<float>& dWq,
                                            float lr_v, float lr_m, bool one_warp_per_group = false);

// For tests of the fused step: forward, then a backward step that also writes the next W_q (FP32 and bf16), then a
// separate forward of the stepped parameters; the two next W_q must be equal bit for bit (and differ from the first).
struct FakeQuantDeviceFusedCheck {
    std::vector<float> first, fused, separate;
    std::vector<uint16_t> fused_bf16, separate_bf16;
};
FakeQuantDeviceFusedCheck fake_quant_device_fused_check(const FakeQuantTensors<float>& t, const FakeQuantShape& sh,
                                                        const FakeQuantConfig& cfg, bool minmax,
                                                        const std::vector<float>& dWq, float lr_v, float lr_m);

}  // namespace autoround

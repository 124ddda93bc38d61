// ops/cuda/block_engine.h — one Qwen3 decoder block on an NVIDIA GPU for the SignRound tuner: the cached
// block inputs and FP targets resident on the device, mini-batch forward + masked MSE + backward to the
// 7 weight gradients, and the no-grad forward over all samples (FP targets, quantized chain).
//
// Why this split: the block math (GEMMs, attention, norms: > 95 % of a tuning step) runs here. The
// per-iteration fake quantization and SignSGD update run on the device too (add_tuned_layer and the calls after
// it; ops/cuda/fake_quant_device.h, bit-identical forward to ops/cpu/fake_quant.h), so a step moves no weights or
// gradients over PCIe. The earlier split is still available: the host computes the QDQ weights (set_weight)
// and reads the gradients back (get_weight_grad), 2 × 4 bytes per parameter per iteration.
//
// Math: the same as model/qwen3_block_grad.h, in one of two precisions (CudaBlockEngineOptions::precision):
//  * GpuPrecision::Fp32 (default): float32 everywhere; cuBLAS SGEMM in pedantic FP32, no TF32 — matches the
//    CPU reference to ~1e-5 (the tests rely on it).
//  * GpuPrecision::Bf16: the reference AutoRound's bf16 autocast (autoround-algorithm.md §1.3/§1.6): every GEMM
//    (q/k/v/o/gate/up/down forward, their dX and dW, and the attention GEMMs) runs on tensor cores with bf16
//    A/B and FP32 accumulation (cublasGemmEx, CUBLAS_COMPUTE_32F); the tensors that feed GEMMs are kept in
//    bf16 (normed inputs h1/h2, post-RoPE q/k, v, attention probabilities P and dS, attention output, the
//    SwiGLU gate/up/act and their gradients, dY, dX2, dA, dq/dk/dv, the weights). Row-wise math (RMSNorm, QK
//    norm, RoPE, softmax, the MSE) reads bf16/fp32 and computes in FP32; the residual stream X, X2, Y, the
//    pre-softmax scores and the weight gradients dW stay FP32 (dW accumulates in FP32 across sub-batches).
// Attention is computed per (sample, head) from the materialised L×L scores (B·nq·L² floats, plus B·nq·L²
// bf16 probabilities in Bf16 mode).
// Memory: the inputs and targets of all n samples live on the device (2 · n · L · H floats) unless
// host_resident_inputs, plus the activations of one sub-batch (dominated by the B · nq · L² attention scores).
// Plain C++ header (no CUDA types) so CPU code can hold an engine; without a CUDA build every entry point
// throws autoround::Error (ops/cpu/no_cuda_block_engine.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "model/qwen3_block_grad.h"
#include "ops/cpu/fake_quant.h"

namespace autoround {

enum class GpuPrecision {
    Fp32,  // pedantic FP32 GEMMs (cuBLAS SGEMM, no TF32): the CPU reference's numbers
    Bf16,  // bf16 tensor-core GEMMs with FP32 accumulation, like AutoRound's bf16 autocast
};

struct CudaBlockEngineOptions {
    GpuPrecision precision = GpuPrecision::Fp32;
    // Qwen3-VL image+text calibration (quant/multimodal_calibration.h): M-RoPE positions [3, L] shared by all
    // samples and the config's section (the tables come from rope_table_mrope, as Qwen3BlockGrad's); empty:
    // positions 0..L-1.
    std::vector<int32_t> mrope_positions;
    std::vector<int> mrope_section;
    // Per-sample loss mask [n, L] (1 = in the loss; host memory, copied at construction). When set it replaces
    // forward_backward's last-token rule. Null: that rule.
    const uint8_t* loss_mask = nullptr;
    // --low_gpu_mem_usage: the cached inputs and targets stay in host memory (pinned in place with
    // cudaHostRegister when possible) and each sub-batch's rows are copied to the GPU when used, instead of
    // holding 2 · n · L · H floats on the device. The host arrays must then stay alive and unchanged for the
    // engine's lifetime (set_train_inputs switches to another array).
    bool host_resident_inputs = false;
    // Bf16 mode: causal GQA attention through ops/cuda/flash_attention.h (no [b, nq, L, L] score matrices; head
    // dims 64 and 128). false, or another head dim: the cuBLAS + softmax path that materialises them.
    bool flash_attention = true;
    // Bf16 mode: the backward GEMMs (dX and dW of the 7 linears) on FP8 tensor cores (ops/cuda/fp8_gemm.h: per-tensor
    // scaled e5m2 gradients × e4m3 activations / weights, FP32 accumulation); the forward stays bf16. SignSGD uses
    // only the sign of dW. Needs compute capability 8.9+ (throws otherwise); shapes that are not multiples of 16
    // fall back to the bf16 GEMM.
    bool fp8_backward = false;
    // --enable_torch_compile: quantize_forward_backward and step_tuned_layers are captured into CUDA graphs (on their
    // second and first call) and replayed: one tuning iteration is two graph launches instead of ~100 kernel
    // launches. Bf16 mode with device-resident inputs only; otherwise ignored (the same work runs eagerly).
    bool cuda_graphs = false;
};

// The activations of all n calibration samples, [n, L, H], resident on the GPU. The tuner keeps its FP chain and
// its quantized chain in two of these from block to block (quant/signround_tuner.cpp), so that a block costs no
// host round trip of its inputs, targets and outputs (2–3 × n·L·H·4 bytes over PCIe each, ~9 s per Qwen3-4B block
// at 354 × 2048 samples). Stored as float32, or as bf16 for the Bf16 engine, whose forward_all rounds its outputs
// to bf16 anyway (half the memory: 2 × 3.7 GB instead of 2 × 7.4 GB for those samples). Throws Error (naming the
// size) when device memory runs out.
enum class ActivationStorage { Fp32, Bf16 };

class CudaActivations {
public:
    CudaActivations(int64_t n, int64_t L, int64_t H, ActivationStorage storage = ActivationStorage::Fp32);  // uninitialised
    // host [n, L, H] uploaded (rounded to bf16 with Bf16 storage)
    CudaActivations(int64_t n, int64_t L, int64_t H, const float* host,
                    ActivationStorage storage = ActivationStorage::Fp32);
    ~CudaActivations();
    CudaActivations(const CudaActivations&) = delete;
    CudaActivations& operator=(const CudaActivations&) = delete;

    int64_t n() const { return n_; }
    int64_t L() const { return L_; }
    int64_t H() const { return H_; }
    size_t count() const { return static_cast<size_t>(n_ * L_ * H_); }
    ActivationStorage storage() const { return storage_; }
    void* data() { return p_; }  // device pointer: float [n, L, H], or bf16 bit patterns with Bf16 storage
    const void* data() const { return p_; }
    void copy_from(const CudaActivations& src);  // device-to-device, same shape and storage
    void download(float* host) const;            // -> host [n, L, H]
    void upload(const float* host);              // host [n, L, H] ->

private:
    int64_t n_ = 0, L_ = 0, H_ = 0;
    ActivationStorage storage_ = ActivationStorage::Fp32;
    void* p_ = nullptr;
};

// The best V, α, β of an engine's tuned layers, moved out of it at the end of tuning (device memory of their own,
// freed with this object), so that another thread can download them while the GPU goes on with other work.
class CudaTunedParams {
public:
    struct Impl;
    explicit CudaTunedParams(std::unique_ptr<Impl> p);
    ~CudaTunedParams();
    int layers() const;
    // V [out, padded_in], α and β [out·G] (all 1 without min-max tuning) of tuned layer `slot`, as
    // CudaBlockEngine::get_tuned_params(slot, true) gave them. Waits only for the engine work that wrote them (its own
    // stream; any thread).
    void download(int slot, std::vector<float>& V, std::vector<float>& alpha, std::vector<float>& beta) const;

private:
    std::unique_ptr<Impl> p_;
};

class CudaBlockEngine {
public:
    // Uploads the block constants; `train_in` and `ref_out` [n, L, H] (host) are copied to the device
    // (ref_out may be null when only forward_all is used). Throws Error without a usable GPU, for q/k/v bias
    // (not supported here) or when device memory runs out (naming the sizes).
    CudaBlockEngine(const Qwen3BlockConsts<float>& consts, int64_t n, int64_t L, int64_t batch, const float* train_in,
                    const float* ref_out);
    // The same with options (precision).
    CudaBlockEngine(const Qwen3BlockConsts<float>& consts, int64_t n, int64_t L, int64_t batch, const float* train_in,
                    const float* ref_out, const CudaBlockEngineOptions& options);
    // The same with the inputs and targets already on the device (borrowed: they must outlive the engine and stay
    // unchanged while it tunes; `ref_out` may be null when only forward_all is used). Not with
    // host_resident_inputs.
    CudaBlockEngine(const Qwen3BlockConsts<float>& consts, int64_t batch, const CudaActivations& train_in,
                    const CudaActivations* ref_out, const CudaBlockEngineOptions& options);
    ~CudaBlockEngine();
    CudaBlockEngine(const CudaBlockEngine&) = delete;
    CudaBlockEngine& operator=(const CudaBlockEngine&) = delete;

    GpuPrecision precision() const { return precision_; }

    // Uploads weight `which` [out, in] (host float32; rounded to bf16 on the device in Bf16 mode).
    void set_weight(int which, const float* W);

    // Samples idx[0..b) of the resident inputs: forward, loss = masked MSE vs the resident targets (the options'
    // loss_mask rows of those samples, else the last token of every sample masked when mask_last_token), backward of grad_scale·loss into the device dW (written, or
    // added when accumulate). Returns the loss (unscaled, like masked_mse_loss).
    double forward_backward(const int64_t* idx, int64_t b, bool mask_last_token, double grad_scale, bool accumulate);

    // One tuning iteration's device work: quantize_tuned_layers(), then forward_backward(idx, b, mask_last_token,
    // grad_scale, accumulate = false). With options.cuda_graphs the second call captures that work (the gather of
    // the samples reads indices uploaded to the device before each launch) and later calls replay it; a different
    // b, mask_last_token or grad_scale captures anew. Returns the loss.
    double quantize_forward_backward(const int64_t* idx, int64_t b, bool mask_last_token, double grad_scale);

    // Downloads dW of weight `which` into host memory [out, in].
    void get_weight_grad(int which, float* dW) const;

    // No-grad forward of all n resident training inputs with the current weights, in chunks of `batch`:
    // out [n, L, H] on the host (may alias nothing on the device; host `out` may be the caller's train_in).
    // The Bf16 engine rounds the outputs to bf16 values (the block outputs a bf16 model passes on, as in the
    // reference AutoRound), so host- and device-resident chains hold the same numbers.
    void forward_all(float* out);
    // The same into device activations [n, L, H] (may be the engine's own training inputs: each chunk is read
    // before it is overwritten).
    void forward_all(CudaActivations& out);
    // masked_mse_loss (model/qwen3_block_grad.h) of pred against ref over all n samples, on the device: the
    // options' loss mask when given, else the last token of every sample masked when mask_last_token.
    double masked_mse_all(const CudaActivations& pred, const CudaActivations& ref, bool mask_last_token);

    // ---- on-device SignRound parameters (ops/cuda/fake_quant_device.h): the tuner's per-iteration fake
    // quantization and SignSGD step without moving weights and gradients between host and device ----
    // Registers quantized linear `which` for on-device tuning: uploads its original weight W [out, in] and
    // wmin/wmax [out·G] (fake_quant_minmax), starts from V = 0, α = β = 1. Returns the layer's slot (0, 1, ...).
    int add_tuned_layer(int which, const FakeQuantShape& sh, const FakeQuantConfig& cfg, bool minmax, const float* W,
                        const float* wmin, const float* wmax);
    // For every tuned layer: clamp α, β and set block weight `which` = fake_quant(W, V, α, β) (as set_weight would).
    void quantize_tuned_layers();
    // For every tuned layer: dV, dα, dβ from the device dW of the last forward_backward, then SignSGD with
    // lr[slot] = {lr_v, lr_m} (options.cuda_graphs: the rates are uploaded, the steps replayed from a graph).
    void step_tuned_layers(const std::vector<std::array<float, 2>>& lr);
    // best ← the current V, α, β of every tuned layer (device-side copies).
    void snapshot_tuned_layers();
    // The end of tuning (§2.8): current ← best V, α, β of every tuned layer, and the block weights = their fake
    // quantization (clamped α, β), the QDQ weights the quantized chain runs with — bit for bit what set_weight of the
    // host's QDQ weights would give, without the host computing them first. Needs snapshot_tuned_layers to have run.
    void quantize_best_tuned_layers();
    // The best parameters leave the engine (after the last snapshot and quantize_best_tuned_layers; the snapshot and
    // get_tuned_params(best) must not be used afterwards).
    std::unique_ptr<CudaTunedParams> take_best_params();
    // Downloads a tuned layer's current (best = false) or snapshot (best = true) parameters.
    void get_tuned_params(int slot, bool best, std::vector<float>& V, std::vector<float>& alpha,
                          std::vector<float>& beta) const;

    // Loads new resident training inputs (e.g. after a chain update) [n, L, H] (host-resident mode: uses
    // this array from now on).
    void set_train_inputs(const float* train_in);

private:
    GpuPrecision precision_ = GpuPrecision::Fp32;
    struct Impl;
    std::unique_ptr<Impl> p_;
};

}  // namespace autoround

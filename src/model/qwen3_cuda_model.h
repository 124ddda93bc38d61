// model/qwen3_cuda_model.h — a Qwen3 checkpoint loaded onto the GPU inference runtime (ops/cuda/decoder_runtime.h)
// for `generate --device cuda` and `eval ppl --device cuda`.
//
// What reaches the device, per linear weight:
//   * bf16 tensors: as they are (used in place from the mmap'd checkpoint while copying); F16/F32 tensors are
//     rounded to bf16;
//   * packed GPTQ / AWQ / auto-round layers (2, 3, 4, 8 bits, groups of a multiple of 32): read through
//     quant/quantized_loader.h (the loaders the CPU model and the exporters share) and re-packed into the GPTQ
//     layout (export/pack_layout.h) with true zero points and fp16 scales, which ops/cuda/quant_gemv.h multiplies
//     without unpacking; the values are exactly the CPU model's (bf16 of the float dequantization);
//   * anything else (GGUF blocks, double-quantized or float-zero tensors, odd group sizes): the dequantized values
//     as a dense bf16 matrix (noted in summary()).
// Text only: Qwen3-VL checkpoints run their language model (text prompts); images need --device cpu.
// Qwen2-style attention biases are not supported on the GPU (refused with a message).
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "ops/cuda/decoder_runtime.h"

namespace autoround {

class Qwen3Model;

// Why the GPU runtime cannot run a model with this config (empty: it can): q/k/v biases (Qwen2), head_dim > 256,
// widths that are not multiples of 8. `--device auto` falls back to the CPU on it.
std::string gpu_runtime_obstacle(const ModelConfig& c);

// The runtime's dimensions for a config (RoPE inverse frequencies from ops/cpu/rope.h, as the CPU model uses).
DecoderDims decoder_dims(const ModelConfig& c);

class Qwen3CudaModel {
public:
    // Loads config, tokenizer-independent weights and uploads them (a progress bar when show_progress).
    static std::unique_ptr<Qwen3CudaModel> load(const std::filesystem::path& model, const CudaDecoderOptions& opt = {},
                                                bool show_progress = false);
    // The same from a model already loaded on the host (best with PackedLayers::Skip: packed layers then stay packed;
    // a model loaded with dequantized layers goes up as bf16).
    static std::unique_ptr<Qwen3CudaModel> load(const Qwen3Model& host, const CudaDecoderOptions& opt = {},
                                                bool show_progress = false);

    const ModelConfig& config() const { return cfg_; }
    CudaDecoder& decoder() { return *dec_; }
    // e.g. "252 linears packed (4-bit), 0 dense bf16; LM head = embedding (bf16); weights 2.50 GiB on the GPU"
    const std::string& summary() const { return summary_; }

    // The CPU model's forward contract (model/qwen3_model.h) with the cache held on the device.
    void forward(std::span<const int32_t> tokens, float* logits, bool all_logits) {
        dec_->forward(tokens.data(), int64_t(tokens.size()), logits, all_logits);
    }

private:
    ModelConfig cfg_;
    std::unique_ptr<CudaDecoder> dec_;
    std::string summary_;
};

}  // namespace autoround

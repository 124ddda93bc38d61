// model/model_presets.h — the exact shapes of the Qwen3 and Qwen3-VL families (qwen3-architecture.md
// §1, §2.1–2.2) and a generator of random-weight bf16 checkpoints with those shapes, so benchmarks can
// run at real sizes without downloads (`autoround init-model --like qwen3-4b`, `--like qwen3-vl-8b`).
//
// The writer streams: tensors are generated in bounded pieces straight into the shard files, so peak
// memory is a few tens of MiB whatever the model size (an 8B checkpoint is ~17 GB of bf16).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace autoround {

// config.json of a text preset: qwen3-0.6b, qwen3-1.7b, qwen3-4b, qwen3-8b, qwen3-nano-like.
nlohmann::json qwen3_preset_config(const std::string& like);
std::vector<std::string> qwen3_preset_names();

// config.json (Qwen3VLForConditionalGeneration layout: text_config + vision_config, as transformers 5.x
// writes it) of a Qwen3-VL preset: qwen3-vl-8b, qwen3-vl-4b, qwen3-vl-nano-shape (the shapes and token
// ids of the test model qwen3-vl-nano, whose tokenizer it can borrow).
nlohmann::json qwen3_vl_preset_config(const std::string& like);
std::vector<std::string> qwen3_vl_preset_names();
bool is_qwen3_vl_preset(const std::string& like);
// Every preset name, text ones first.
std::vector<std::string> all_preset_names();

// The preprocessor_config.json written next to a Qwen3-VL preset (Qwen3-VL processor defaults: patch 16,
// merge 2, temporal 2, mean/std 0.5, shortest_edge 65536, longest_edge 16777216); patch/merge/temporal
// sizes are taken from `config`'s vision_config.
nlohmann::json qwen3_vl_preprocessor_config(const nlohmann::json& config);
// A Qwen3-VL chat template (user content may hold {"type": "image"} parts -> <|vision_start|><|image_pad|>
// <|vision_end|>), written as chat_template.jinja next to VL presets.
const std::string& qwen3_vl_chat_template();

// One tensor of a preset checkpoint and how it is initialised.
struct PresetTensor {
    enum class Init { Normal, Ones, Zeros };
    std::string name;
    std::vector<int64_t> shape;
    Init init = Init::Normal;
    int64_t numel() const;
};

// The tensors of a checkpoint for `config` (a text preset config, or any Qwen3-VL config with the
// layout above), in file order. Normal: matrices, embeddings, conv and position tables; Ones: RMSNorm
// and LayerNorm weights; Zeros: biases.
std::vector<PresetTensor> qwen3_preset_tensors(const nlohmann::json& config);
std::vector<PresetTensor> qwen3_vl_preset_tensors(const nlohmann::json& config);
// Σ numel × 2 (bf16).
uint64_t preset_bytes(const std::vector<PresetTensor>& tensors);

// Writes config.json, generation_config.json and random bf16 safetensors (normal(0, std) for
// matrices, ones for norms) into `dir` (which must exist). Deterministic for a given seed.
void write_random_qwen3(const nlohmann::json& config, const std::filesystem::path& dir, uint64_t seed,
                        double std = 0.02, size_t max_shard_bytes = size_t(4) << 30);

// The same for a Qwen3-VL config: config.json, generation_config.json, preprocessor_config.json,
// chat_template.jinja and every model.language_model.* / model.visual.* (and lm_head.* unless tied)
// tensor. Loads with Qwen3VLModel::load.
void write_random_qwen3_vl(const nlohmann::json& config, const std::filesystem::path& dir, uint64_t seed,
                           double std = 0.02, size_t max_shard_bytes = size_t(4) << 30);

// Streams `tensors` into safetensors files in `dir` (one model.safetensors, or model-0000k-of-0000n
// shards of at most max_shard_bytes plus model.safetensors.index.json), the same layout
// SafetensorsWriter::write_sharded produces. Normal tensors take seeds seed+1, seed+2, ... in order.
void write_random_tensors(const std::vector<PresetTensor>& tensors, const std::filesystem::path& dir, uint64_t seed,
                          double std, size_t max_shard_bytes);

}  // namespace autoround

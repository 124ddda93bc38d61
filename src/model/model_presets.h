// model/model_presets.h — the exact shapes of the Qwen3 family (qwen3-architecture.md) and a
// generator of random-weight bf16 checkpoints with those shapes, so benchmarks can run at real
// sizes without downloads (`autoround init-model --like qwen3-4b`).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace autoround {

// config.json of a preset: qwen3-0.6b, qwen3-1.7b, qwen3-4b, qwen3-8b, qwen3-nano-like.
nlohmann::json qwen3_preset_config(const std::string& like);
std::vector<std::string> qwen3_preset_names();

// Writes config.json, generation_config.json and random bf16 safetensors (normal(0, std) for
// matrices, ones for norms) into `dir` (which must exist). Deterministic for a given seed.
void write_random_qwen3(const nlohmann::json& config, const std::filesystem::path& dir, uint64_t seed,
                        double std = 0.02, size_t max_shard_bytes = size_t(4) << 30);

}  // namespace autoround

// cli/model_source.h — what a --model argument points at, for the subcommands that run a model: a Hugging
// Face folder (config.json + *.safetensors + tokenizer files) or a llama.cpp GGUF (a .gguf file, or a
// folder whose only model file is one; model/gguf_checkpoint.h). The model itself loads through
// Qwen3Model::load(path) either way; this adds the side information the folder files would give:
// tokenizer, generation defaults and chat template, taken from the GGUF metadata for GGUF models.
// A model flag that names no local path but has the shape of a Hub id (org/name[@rev]) is resolved
// through the Hugging Face cache here, so every subcommand accepts Hub ids the same way.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "io/gguf.h"
#include "io/model_config.h"
#include "text/bpe_tokenizer.h"

namespace autoround::cli {

struct ModelSource {
    std::filesystem::path path;              // the model folder, or the .gguf file
    std::shared_ptr<const GgufFile> gguf;    // set for GGUF models

    // --tokenizer (a tokenizer.json or its folder) wins; else the GGUF's tokenizer.ggml.* metadata, or the
    // folder's tokenizer.json.
    BpeTokenizer tokenizer(const std::string& tokenizer_flag) const;
    GenerationConfig generation_config() const;
    // config.json, or the GGUF metadata's model config (no weights are read).
    ModelConfig model_config() const;
    TokenizerConfig tokenizer_config() const;
};

// The device one model runs on: `resolved` (from resolve_device), except that `--device auto` (`flag`) falls back to
// the CPU, with a note on stderr, for a model the GPU runtime cannot run (model/qwen3_cuda_model.h
// gpu_runtime_obstacle).
std::string device_for_model(const std::string& resolved, const std::string& flag, const ModelSource& src);

// A GGUF file / GGUF folder, else what model_dir_flag accepts (a model folder or a Hub id).
ModelSource model_source_arg(const std::string& arg, const std::string& flag = "--model");

// The one way a subcommand turns a model flag (--model, --base, ...) into a model folder: a local folder
// with config.json, else a Hub id `org/name[@revision]` resolved through the Hugging Face cache
// (common.h: model_dir_arg / resolve_model_arg; HF_ENDPOINT, HF_HUB_CACHE, HF_HUB_OFFLINE, --token).
// Errors name `flag`.
std::filesystem::path model_dir_flag(const std::string& arg, const std::string& flag = "--model");

// A tokenizer.json for a flag that only needs the tokenizer (`tokenize --model`): the file itself, a
// folder holding one, or a Hub id, for which only config.json and the tokenizer files are downloaded
// (hub::is_tokenizer_file), not the weights.
std::filesystem::path tokenizer_json_arg(const std::string& arg, const std::string& flag = "--model");

}  // namespace autoround::cli

// cli/model_source.h — what a --model argument points at, for the subcommands that run a model: a Hugging
// Face folder (config.json + *.safetensors + tokenizer files) or a llama.cpp GGUF (a .gguf file, or a
// folder whose only model file is one; model/gguf_checkpoint.h). The model itself loads through
// Qwen3Model::load(path) either way; this adds the side information the folder files would give:
// tokenizer, generation defaults and chat template, taken from the GGUF metadata for GGUF models.
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
    TokenizerConfig tokenizer_config() const;
};

// A GGUF file / GGUF folder, else what model_dir_arg accepts (a model folder or a Hub id).
ModelSource model_source_arg(const std::string& arg);

}  // namespace autoround::cli

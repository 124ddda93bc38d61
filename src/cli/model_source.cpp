// cli/model_source.cpp — see model_source.h.
#include "cli/model_source.h"

#include "cli/common.h"
#include "model/gguf_checkpoint.h"
#include "text/gguf_tokenizer.h"

namespace autoround::cli {

ModelSource model_source_arg(const std::string& arg) {
    ModelSource s;
    std::error_code ec;
    if (std::filesystem::exists(arg, ec)) {
        if (auto g = find_gguf_model(arg)) {
            s.path = *g;
            s.gguf = GgufFile::open(*g);
            return s;
        }
    }
    s.path = model_dir_arg(arg);
    return s;
}

BpeTokenizer ModelSource::tokenizer(const std::string& flag) const {
    if (!flag.empty()) return BpeTokenizer::load(flag);
    if (gguf) return load_gguf_tokenizer(*gguf);
    return BpeTokenizer::load(path / "tokenizer.json");
}

GenerationConfig ModelSource::generation_config() const {
    return gguf ? gguf_generation_config(*gguf) : load_generation_config(path);
}

TokenizerConfig ModelSource::tokenizer_config() const {
    return gguf ? gguf_tokenizer_config(*gguf) : load_tokenizer_config(path);
}

}  // namespace autoround::cli

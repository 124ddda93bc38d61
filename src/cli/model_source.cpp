// cli/model_source.cpp — see model_source.h.
#include "cli/model_source.h"

#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "hub/hub_download.h"
#include "hub/hub_settings.h"
#include "hub/repo_id.h"
#include "model/gguf_checkpoint.h"
#include "model/qwen3_cuda_model.h"
#include "text/gguf_tokenizer.h"

namespace autoround::cli {

ModelSource model_source_arg(const std::string& arg, const std::string& flag) {
    ModelSource s;
    std::error_code ec;
    if (std::filesystem::exists(arg, ec)) {
        if (auto g = find_gguf_model(arg)) {
            s.path = *g;
            s.gguf = GgufFile::open(*g);
            return s;
        }
    }
    s.path = model_dir_flag(arg, flag);
    return s;
}

std::filesystem::path model_dir_flag(const std::string& arg, const std::string& flag) {
    if (flag == "--model") return model_dir_arg(arg);
    // model_dir_arg / resolve_model_arg word their errors for --model; name the flag actually given.
    try {
        return model_dir_arg(arg);
    } catch (const Error& e) {
        const std::string m = e.what(), prefix = "--model " + arg;
        if (m.rfind(prefix, 0) == 0) throw Error(flag + " " + arg + m.substr(prefix.size()));
        throw;
    }
}

std::filesystem::path tokenizer_json_arg(const std::string& arg, const std::string& flag) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::exists(arg, ec) || !hub::looks_like_repo_id(arg)) {
        const fs::path p = fs::is_directory(arg, ec) ? fs::path(arg) / "tokenizer.json" : fs::path(arg);
        check(fs::is_regular_file(p, ec), flag, " ", arg, ": ", p.string(),
              " does not exist; pass a model folder, a tokenizer.json or a Hugging Face model id (org/name[@rev])");
        return p;
    }
    fs::path dir;
    try {
        dir = hub::resolve_model_repo(arg, hub::hub_settings_from_env(), hub::is_tokenizer_file, flag);
    } catch (const Error& e) {
        fail(flag, " ", arg, " is not a local folder, so it was taken as a Hugging Face model id: ", e.what());
    }
    check(fs::exists(dir / "tokenizer.json"), flag, " ", arg, ": the Hub repo has no tokenizer.json (", dir.string(),
          ")");
    return dir / "tokenizer.json";
}

BpeTokenizer ModelSource::tokenizer(const std::string& flag) const {
    if (!flag.empty()) return BpeTokenizer::load(flag);
    if (gguf) return load_gguf_tokenizer(*gguf);
    return BpeTokenizer::load(path / "tokenizer.json");
}

std::string device_for_model(const std::string& resolved, const std::string& flag, const ModelSource& src) {
    if (resolved != "cuda" || flag != "auto") return resolved;
    const std::string why = gpu_runtime_obstacle(src.model_config());
    if (why.empty()) return resolved;
    std::fprintf(stderr, "note: --device auto: the GPU runtime does not support %s; running %s on the CPU\n",
                 why.c_str(), src.path.string().c_str());
    return "cpu";
}

ModelConfig ModelSource::model_config() const { return gguf ? gguf_model_config(*gguf) : load_model_config(path); }

GenerationConfig ModelSource::generation_config() const {
    return gguf ? gguf_generation_config(*gguf) : load_generation_config(path);
}

TokenizerConfig ModelSource::tokenizer_config() const {
    return gguf ? gguf_tokenizer_config(*gguf) : load_tokenizer_config(path);
}

}  // namespace autoround::cli

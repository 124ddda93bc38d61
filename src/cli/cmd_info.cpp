// cli/cmd_info.cpp — `autoround info`: architecture, parameter count, dtypes and tensors of a
// model folder. Opening the TensorStore validates every safetensors header; loading the model
// checks every tensor's shape against config.json. A GGUF file (or a folder holding one) is described from
// its metadata: version, file type, tensor types (parsing validates every count, type and offset).
#include <cstdio>
#include <map>

#include "cli/common.h"
#include "cli/model_source.h"
#include "io/gguf.h"
#include "core/error.h"
#include "io/model_config.h"
#include "model/qwen3_model.h"

namespace autoround::cli {

void add_info_command(CLI::App& root) {
    struct Args { std::string model; bool tensors = false; };
    auto a = std::make_shared<Args>();
    CLI::App* c = root.add_subcommand("info", "Describe a model folder and validate its files");
    c->add_option("--model", a->model, "Model folder, a GGUF file, or a Hugging Face id org/name[@rev]")->required();
    c->add_flag("--tensors", a->tensors, "List every tensor (name, dtype, shape, file)");
    c->callback([a] {
        const ModelSource src = model_source_arg(a->model);
        const auto& dir = src.path;
        const Qwen3Model model = Qwen3Model::load(dir);
        const ModelConfig& cfg = model.config();
        const TensorStore& st = model.tensors();
        std::map<std::string, int64_t> by_dtype;
        int64_t bytes = 0;
        for (const auto& [name, t] : st.tensors()) {
            by_dtype[std::string(dtype_name(t.dtype))] += t.numel();
            bytes += static_cast<int64_t>(t.nbytes);
        }
        std::printf("model         %s\n", dir.string().c_str());
        std::printf("architecture  %s (%s)\n", cfg.architecture.c_str(), cfg.model_type.c_str());
        std::printf("parameters    %lld (%.3f B)\n", (long long)model.parameter_count(), model.parameter_count() / 1e9);
        std::printf("dtype         %s\n", cfg.dtype.c_str());
        std::printf("layers        %d, hidden %d, intermediate %d, heads %d/%d, head_dim %d, vocab %d\n",
                    cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads,
                    cfg.num_key_value_heads, cfg.head_dim, cfg.vocab_size);
        std::printf("rope          %s, theta %g\n", cfg.rope.type.c_str(), cfg.rope.theta);
        std::printf("tied embed    %s, qk_norm %s, qkv bias %s\n", cfg.tie_word_embeddings ? "yes" : "no",
                    cfg.qk_norm ? "yes" : "no", cfg.attention_bias ? "yes" : "no");
        if (src.gguf) {
            const GgufFile& g = *src.gguf;
            std::map<std::string, int64_t> by_type;
            int64_t gbytes = 0;
            for (const auto& t : g.tensors()) {
                by_type[ggml_type_name(t.type)] += t.numel();
                gbytes += static_cast<int64_t>(t.nbytes);
            }
            std::printf("file          GGUF v%u, %zu metadata keys, general.file_type %s, %.1f MB, %zu tensors "
                        "(header valid)\n", g.contents().version, g.metadata().size(),
                        g.has("general.file_type") ? std::to_string(g.get_u32("general.file_type")).c_str() : "-",
                        gbytes / 1e6, g.tensors().size());
            for (const auto& [ty, n] : by_type) std::printf("  %-5s       %lld elements\n", ty.c_str(), (long long)n);
            if (a->tensors)
                for (const auto& t : g.tensors())
                    std::printf("%-40s %-5s %-16s offset %llu\n", t.name.c_str(), ggml_type_name(t.type).c_str(),
                                t.ne_str().c_str(), (unsigned long long)t.offset);
            return;
        }
        std::printf("files         %zu safetensors, %.1f MB, %zu tensors (headers valid)\n", st.files().size(),
                    bytes / 1e6, st.tensors().size());
        for (const auto& [dt, n] : by_dtype) std::printf("  %-5s       %lld elements\n", dt.c_str(), (long long)n);
        if (a->tensors)
            for (const auto& [name, t] : st.tensors())
                std::printf("%-60s %-5s %-16s %s\n", name.c_str(), std::string(dtype_name(t.dtype)).c_str(),
                            t.shape_str().c_str(), t.file.filename().string().c_str());
    });
}

}  // namespace autoround::cli

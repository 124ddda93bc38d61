// cli/cmd_init_model.cpp — `autoround init-model --like qwen3-4b --output DIR`: a random-weight
// bf16 checkpoint with the exact shapes of a Qwen3 model (for benchmarks at real sizes).
#include <cstdio>

#include "cli/common.h"
#include "core/atomic_dir.h"
#include "core/error.h"
#include "model/model_presets.h"

namespace autoround::cli {

void add_init_model_command(CLI::App& root) {
    struct Args { std::string like, output, tokenizer_from; uint64_t seed = 0; bool overwrite = false; };
    auto a = std::make_shared<Args>();
    CLI::App* c = root.add_subcommand("init-model", "Write a random-weight bf16 Qwen3 checkpoint with real shapes");
    std::string names;
    for (const auto& n : qwen3_preset_names()) names += (names.empty() ? "" : "|") + n;
    c->add_option("--like", a->like, "Shape preset: " + names)->required();
    c->add_option("--output", a->output, "Output folder")->required();
    c->add_option("--seed", a->seed, "Random seed (default 0)");
    c->add_option("--tokenizer_from", a->tokenizer_from, "Copy tokenizer files from this folder")
        ->check(CLI::ExistingDirectory);
    c->add_flag("--overwrite", a->overwrite, "Replace an existing output folder");
    c->callback([a] {
        const nlohmann::json cfg = qwen3_preset_config(a->like);
        AtomicDir out(a->output, a->overwrite);
        write_random_qwen3(cfg, out.path(), a->seed);
        if (!a->tokenizer_from.empty()) {
            for (const char* f : {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"}) {
                const auto src = std::filesystem::path(a->tokenizer_from) / f;
                if (std::filesystem::exists(src)) std::filesystem::copy_file(src, out.path() / f);
            }
        }
        out.commit();
        std::printf("wrote %s (%s shapes, random bf16 weights, seed %llu)\n", a->output.c_str(), a->like.c_str(),
                    (unsigned long long)a->seed);
    });
}

}  // namespace autoround::cli

// cli/cmd_init_model.cpp — `autoround init-model --like qwen3-4b --output DIR`: a random-weight
// bf16 checkpoint with the exact shapes of a Qwen3 or Qwen3-VL model (for benchmarks at real sizes).
// Qwen3-VL presets (--like qwen3-vl-8b | qwen3-vl-4b | qwen3-vl-nano-shape) also get a
// preprocessor_config.json and a VL chat_template.jinja, so `generate --image` runs on them.
// --tokenizer_from copies the tokenizer files of a folder; a tokenizer.json.gz there (as in
// ../shared/tokenizers/qwen3) is unpacked to tokenizer.json.
#include <zlib.h>

#include <cstdio>
#include <fstream>

#include "cli/common.h"
#include "core/atomic_dir.h"
#include "core/error.h"
#include "model/model_presets.h"

namespace autoround::cli {
namespace {

void gunzip_file(const std::filesystem::path& src, const std::filesystem::path& dst) {
    gzFile in = gzopen(src.c_str(), "rb");
    check(in != nullptr, "cannot open ", src.string());
    std::ofstream out(dst, std::ios::binary);
    std::vector<char> buf(1 << 20);
    int n = 0;
    while ((n = gzread(in, buf.data(), static_cast<unsigned>(buf.size()))) > 0) out.write(buf.data(), n);
    int err = 0;
    const char* msg = n < 0 ? gzerror(in, &err) : nullptr;
    gzclose(in);
    check(n == 0, "cannot decompress ", src.string(), ": ", msg ? msg : "read error");
    check(static_cast<bool>(out), "cannot write ", dst.string());
}

}  // namespace

void add_init_model_command(CLI::App& root) {
    struct Args { std::string like, output, tokenizer_from; uint64_t seed = 0; bool overwrite = false; };
    auto a = std::make_shared<Args>();
    CLI::App* c = root.add_subcommand("init-model",
                                      "Write a random-weight bf16 Qwen3 or Qwen3-VL checkpoint with real shapes");
    std::string names;
    for (const auto& n : all_preset_names()) names += (names.empty() ? "" : "|") + n;
    c->add_option("--like", a->like, "Shape preset: " + names)->required();
    c->add_option("--output", a->output, "Output folder")->required();
    c->add_option("--seed", a->seed, "Random seed (default 0)");
    c->add_option("--tokenizer_from", a->tokenizer_from,
                  "Copy tokenizer files from this folder (tokenizer.json or tokenizer.json.gz, tokenizer_config.json, "
                  "vocab.json, merges.txt; chat_template.jinja for text presets)")
        ->check(CLI::ExistingDirectory);
    c->add_flag("--overwrite", a->overwrite, "Replace an existing output folder");
    c->callback([a] {
        namespace fs = std::filesystem;
        const bool vl = is_qwen3_vl_preset(a->like);
        const nlohmann::json cfg = vl ? qwen3_vl_preset_config(a->like) : qwen3_preset_config(a->like);
        AtomicDir out(a->output, a->overwrite);
        if (vl) write_random_qwen3_vl(cfg, out.path(), a->seed);
        else write_random_qwen3(cfg, out.path(), a->seed);
        if (!a->tokenizer_from.empty()) {
            const fs::path from(a->tokenizer_from);
            for (const char* f : {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                                  "chat_template.jinja"}) {
                const auto src = from / f;
                if (vl && std::string(f) == "chat_template.jinja") continue;  // keep the VL template
                if (!fs::exists(src)) continue;
                fs::copy_file(src, out.path() / f, fs::copy_options::overwrite_existing);
                fs::permissions(out.path() / f, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add);
            }
            if (!fs::exists(out.path() / "tokenizer.json") && fs::exists(from / "tokenizer.json.gz"))
                gunzip_file(from / "tokenizer.json.gz", out.path() / "tokenizer.json");
        }
        out.commit();
        std::printf("wrote %s (%s shapes, random bf16 weights, seed %llu)\n", a->output.c_str(), a->like.c_str(),
                    (unsigned long long)a->seed);
    });
}

}  // namespace autoround::cli

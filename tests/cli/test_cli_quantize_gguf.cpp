// tests/cli/test_cli_quantize_gguf.cpp — `quantize --format gguf:*` picks the data type the GGUF type stores
// (autoround-algorithm.md §2.10–2.11) layer by layer: gguf:q4_0 tunes W4 sym group 32, gguf:q4_1 W4 asym group 32,
// gguf:q8_0 W8 sym group 32, gguf:q4_k_m the double-quantized Q4_K type with Q6_K for the promoted attn_v /
// ffn_down, gguf:q6_k Q6_K, so the file carries the tuned integers; explicit scheme flags win (with a note that the tuned
// weights are re-quantized at export), and a mix with non-GGUF formats keeps the default scheme.
#include <gtest/gtest.h>

#include "cli/cli_test_util.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

const fs::path kShared = fs::path(AR_SHARED_DIR);
const std::string kNano = (kShared / "models/qwen3-nano").string();
const std::string kC4 = (kShared / "data/text/c4-sample.jsonl").string();

nlohmann::json settings_of(const fs::path& folder) {
    std::ifstream f(folder / "quantize_report.json");
    return nlohmann::json::parse(f).at("settings");
}

}  // namespace

TEST(CliGguf, TheGgufTypeChoosesTheTunedDataType) {
    const fs::path out = fs::temp_directory_path() / ("ar_cli_gguf_" + std::to_string(::getpid()));
    fs::remove_all(out);
    const std::string base = "quantize --model " + kNano + " --output_dir " + out.string() +
                             " --iters 1 --nsamples 2 --seqlen 32 --batch_size 2 --threads 2 --dataset " + kC4;
    struct Case {
        const char* flags;
        const char* folder;
        int bits, group;
        bool sym;
        const char* note;
    };
    const Case cases[] = {
        {"--format gguf:q4_0", "qwen3-nano-w4g32", 4, 32, true,
         "tuning each layer in its GGUF block type's data type (42 x Q4_0 (int W4G32 sym))"},
        {"--format gguf:q4_1", "qwen3-nano-w4g32", 4, 32, false, "(42 x Q4_1 (int W4G32 asym))"},
        {"--format gguf:q8_0", "qwen3-nano-w8g32", 8, 32, true, "(42 x Q8_0 (int W8G32 sym))"},
        // q4_k_m: Q4_K everywhere except attn_v / ffn_down of layers 2 and 5 of 6 (llama-quantize's use_more_bits)
        {"--format gguf:q4_k_m", "qwen3-nano-w4g32", 4, 32, false,
         "(38 x Q4_K (int_asym_dq W4G32 asym), 4 x Q6_K (int_sym_dq W6G16 sym))"},
        {"--format gguf:q6_k", "qwen3-nano-w6g16", 6, 16, true, "(42 x Q6_K (int_sym_dq W6G16 sym))"},
        {"--format gguf:q4_0 --group_size 128", "qwen3-nano-w4g128", 4, 128, true, "re-quantized to it at export"},
        {"--format gguf:q4_0,auto_round", "qwen3-nano-w4g128", 4, 128, true, nullptr},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.flags);
        fs::remove_all(out);
        const cli_test::Result r = cli_test::run(base + " " + c.flags);
        ASSERT_EQ(r.status, 0) << r.out;
        if (c.note) EXPECT_NE(r.out.find(c.note), std::string::npos) << r.out;
        else EXPECT_EQ(r.out.find("GGUF type"), std::string::npos) << r.out;
        fs::path folder = out / c.folder;
        if (!fs::exists(folder / "quantize_report.json")) folder = folder / "gguf-q4-0";  // several formats
        ASSERT_TRUE(fs::exists(folder / "quantize_report.json")) << folder;
        const nlohmann::json s = settings_of(folder);
        EXPECT_EQ(s.at("bits").get<int>(), c.bits);
        EXPECT_EQ(s.at("group_size").get<int>(), c.group);
        EXPECT_EQ(s.at("sym").get<bool>(), c.sym);
    }
    fs::remove_all(out);
}

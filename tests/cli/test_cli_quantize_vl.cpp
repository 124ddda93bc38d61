// tests/cli/test_cli_quantize_vl.cpp — `autoround quantize` on a Qwen3-VL checkpoint (qwen3-vl-nano): only the
// language-model blocks are quantized (text calibration), the vision tower, mergers, embeddings and lm_head are
// copied byte for byte into every format, the quantization configs tell vLLM / transformers / AWQ loaders to
// leave the tower alone, the processor files travel with the weights, and every export reloads with identical
// text-only and image+text logits.
#include <gtest/gtest.h>

#include "cli/cli_test_util.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "image/image.h"
#include "io/gguf.h"
#include "image/qwen3_vl_image_processor.h"
#include "io/safetensors.h"
#include "model/qwen3_vl_model.h"
#include "model/reference_ids.h"

namespace fs = std::filesystem;
using namespace autoround;

namespace {

const fs::path kShared = fs::path(AR_SHARED_DIR);
const std::string kVl = (kShared / "models/qwen3-vl-nano").string();
const std::string kC4 = (kShared / "data/text/c4-sample.jsonl").string();

nlohmann::json read_json(const fs::path& p) {
    std::ifstream f(p);
    return nlohmann::json::parse(f);
}

struct Logits {
    std::vector<float> text, image;
};

Logits run_both(const fs::path& dir) {
    const Qwen3VLModel m = Qwen3VLModel::load(dir);
    const int64_t V = m.text().config().vocab_size;
    Logits r;
    const std::vector<int32_t> text_ids{8166, 100, 200, 300, 400, 500, 600, 700};
    KvCache c1 = m.text().make_cache();
    r.text.resize(text_ids.size() * V);
    m.text().forward(text_ids, c1, r.text.data(), true);

    const RgbImage img = decode_image(kShared / "reference/qwen3-vl-nano-input-384x288.png");
    const ProcessedImage im = preprocess_image(img, load_model_image_processor_config(dir));
    const std::vector<int32_t> prompt{8166, 8175, 8178, 8176, 100, 200};
    const std::vector<int32_t> ids = m.expand_image_pads(prompt, std::span<const ProcessedImage>(&im, 1));
    KvCache c2 = m.text().make_cache();
    r.image.resize(ids.size() * V);
    m.prefill(ids, std::span<const ProcessedImage>(&im, 1), c2, r.image.data(), true);
    return r;
}

// AWQ's modules_to_not_convert lists visual.blocks exactly when the vision blocks stayed unquantized.
void expect_awq_vision_exclusion(const nlohmann::json& qc, bool excluded) {
    const auto& m2c = qc.at("modules_to_not_convert");
    EXPECT_EQ(std::find(m2c.begin(), m2c.end(), "visual.blocks") != m2c.end(), excluded) << m2c.dump();
}

// The text-only and image+text logits of every reloaded format equal the first format's.
void expect_identical_across_formats(const std::vector<Logits>& logits, const std::vector<std::string>& subs) {
    for (size_t i = 1; i < logits.size(); ++i) {
        EXPECT_EQ(logits[i].text, logits[0].text) << subs[i] << " vs " << subs[0];
        EXPECT_EQ(logits[i].image, logits[0].image) << subs[i] << " vs " << subs[0];
    }
}

}  // namespace

TEST(CliVl, QuantizeKeepsTheVisionTowerAndReloadsIdentically) {
    const fs::path out = fs::temp_directory_path() / ("ar_cli_vl_" + std::to_string(::getpid()));
    fs::remove_all(out);
    const cli_test::Result r = cli_test::run("quantize --model " + kVl + " --output_dir " + out.string() +
                                             " --iters 2 --nsamples 4 --seqlen 64 --batch_size 4 --dataset " + kC4 +
                                             ":shuffle=false --threads 2 --quiet --format auto_round,auto_gptq,auto_awq");
    ASSERT_EQ(r.status, 0) << r.out;
    const fs::path m = out / "qwen3-vl-nano-w4g128";
    const std::vector<std::string> subs{"auto-round-auto-gptq", "auto-gptq", "auto-awq"};
    const TensorStore src = TensorStore::open(kVl);

    std::vector<Logits> logits;
    for (const std::string& sub : subs) {
        const fs::path d = m / sub;
        SCOPED_TRACE(sub);
        for (const char* f : {"preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json",
                              "chat_template.jinja", "tokenizer.json", "README.md"})
            EXPECT_TRUE(fs::exists(d / f)) << f;
        // every tensor outside the language-model blocks is the source's, byte for byte
        const TensorStore st = TensorStore::open(d);
        int copied = 0;
        for (const auto& [name, t] : src.tensors()) {
            if (name.rfind("model.language_model.layers.", 0) == 0) continue;
            ASSERT_TRUE(st.has(name)) << name;
            const TensorInfo& q = st.get(name);
            ASSERT_EQ(q.dtype, t.dtype) << name;
            ASSERT_EQ(q.shape, t.shape) << name;
            ASSERT_EQ(0, std::memcmp(q.data, t.data, t.nbytes)) << name;
            ++copied;
        }
        EXPECT_GT(copied, 40);
        EXPECT_TRUE(st.has("model.language_model.layers.0.self_attn.q_proj.qweight"));
        EXPECT_FALSE(st.has("model.visual.blocks.0.attn.qkv.qweight"));

        const nlohmann::json qc = read_json(d / "config.json").at("quantization_config");
        // auto_awq keeps auto-round's in-memory key (to_quant_block_names), as the reference exporter does
        const char* key = sub == "auto-awq" ? "to_quant_block_names" : "block_name_to_quantize";
        ASSERT_TRUE(qc.contains(key)) << qc.dump();
        const std::string blocks = qc.at(key).is_array() ? qc.at(key)[0].get<std::string>() : qc.at(key).get<std::string>();
        EXPECT_EQ(blocks, "model.language_model.layers");
        if (sub == "auto-gptq") {
            ASSERT_TRUE(qc.contains("dynamic")) << qc.dump();
            EXPECT_TRUE(qc.at("dynamic").contains("-:.*visual\\.blocks")) << qc.at("dynamic").dump();
        }
        if (sub == "auto-awq") expect_awq_vision_exclusion(qc, true);
        logits.push_back(run_both(d));
    }
    expect_identical_across_formats(logits, subs);
    // and the quantized model differs from the source (the language model really was quantized)
    const Logits orig = run_both(kVl);
    EXPECT_NE(orig.text, logits[0].text);
    fs::remove_all(out);
}

TEST(CliVl, RefusesWhatItCannotDoBeforeAnyWork) {
    const fs::path out = fs::temp_directory_path() / ("ar_cli_vl_refuse_" + std::to_string(::getpid()));
    const std::string base = "quantize --model " + kVl + " --output_dir " + out.string() +
                             " --iters 1 --nsamples 2 --seqlen 32 --dataset " + kC4;
    cli_test::Result r = cli_test::run(base + " --quant_nontext_module");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("--quant_nontext_module needs --image_dataset"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("block "), std::string::npos) << r.out;
    r = cli_test::run(base + " --quant_nontext_module --image_dataset " + kC4);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("not a folder"), std::string::npos) << r.out;
    r = cli_test::run(base + " --quant_nontext_module --image_dataset " + (kShared / "data/images").string() +
                      " --image_size 100");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("--image_size 100"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("block "), std::string::npos) << r.out;  // no tuning table: nothing ran
    r = cli_test::run(base + " --format gguf:q4_0 --quant_nontext_module");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("with --quant_nontext_module: a GGUF export writes the vision tower unquantized"),
              std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(out));
}

TEST(CliVl, GgufExportWritesTheLanguageModelAndAnMmprojFile) {
    // qwen3vl language model (M-RoPE sections, DeepStack count, no vision tensors) + mmproj-*-F16.gguf next to it;
    // the bf16 file runs text exactly like the checkpoint (text-only M-RoPE is plain RoPE), the q4_k_m one runs.
    const fs::path out = fs::temp_directory_path() / ("ar_cli_vl_gguf_" + std::to_string(::getpid()));
    fs::remove_all(out);
    const cli_test::Result r = cli_test::run("quantize --model " + kVl + " --output_dir " + out.string() +
                                             " --iters 0 --disable_opt_rtn --format gguf:bf16,gguf:q4_k_m --threads 2");
    ASSERT_EQ(r.status, 0) << r.out;
    fs::path bf16_file, q4_file, mmproj;
    for (const auto& e : fs::recursive_directory_iterator(out)) {
        const std::string n = e.path().filename().string();
        if (n == "qwen3-vl-nano-BF16.gguf") bf16_file = e.path();
        if (n == "qwen3-vl-nano-Q4_K_M.gguf") q4_file = e.path();
        if (n == "mmproj-qwen3-vl-nano-F16.gguf") mmproj = e.path();
    }
    ASSERT_FALSE(bf16_file.empty()) << r.out;
    ASSERT_FALSE(q4_file.empty()) << r.out;
    ASSERT_FALSE(mmproj.empty()) << r.out;
    EXPECT_TRUE(fs::exists(q4_file.parent_path() / ("mmproj-qwen3-vl-nano-F16.gguf")));
    {
        const std::shared_ptr<const GgufFile> fp = GgufFile::open(bf16_file);
        const GgufFile& f = *fp;
        EXPECT_EQ(f.get_string("general.architecture"), "qwen3vl");
        EXPECT_EQ(f.get_i32_array("qwen3vl.rope.dimension_sections"), (std::vector<int32_t>{24, 20, 20, 0}));
        EXPECT_EQ(f.get_u32("qwen3vl.n_deepstack_layers"), 2u);
        EXPECT_TRUE(f.has_tensor("blk.0.attn_q.weight"));
        EXPECT_TRUE(f.has_tensor("output.weight"));  // nano-VL is untied
        for (const auto& t : f.tensors()) EXPECT_NE(t.name.rfind("v.", 0), 0u) << t.name;
        const std::shared_ptr<const GgufFile> m = GgufFile::open(mmproj);
        EXPECT_EQ(m->get_string("general.architecture"), "clip");
        EXPECT_EQ(m->get_string("clip.projector_type"), "qwen3vl_merger");
    }
    const std::string gen = " --prompt 'The history of the city' --temperature 0 --max_new_tokens 12 --ignore_eos --ids "
                            "--no_stats --threads 2";
    const cli_test::Result ref = cli_test::run("generate --model " + kVl + gen);
    ASSERT_EQ(ref.status, 0) << ref.out;
    const cli_test::Result g = cli_test::run("generate --model " + bf16_file.string() + gen);
    ASSERT_EQ(g.status, 0) << g.out;
    EXPECT_EQ(g.out, ref.out);
    const cli_test::Result q = cli_test::run("generate --model " + q4_file.parent_path().string() + gen);
    EXPECT_EQ(q.status, 0) << q.out;
    fs::remove_all(out);
}

TEST(CliVl, GenerateWithAnImageGivesTheReferenceGreedyTokens) {
    // The chat template + one image + "Describe this image." is the reference prompt; greedy ids must match
    // transformers' 16 greedy tokens (whose smallest margin is far above float32 noise).
    const std::string img = (kShared / "reference/qwen3-vl-nano-input-384x288.png").string();
    const cli_test::Result r = cli_test::run("generate --model " + kVl + " --image " + img +
                                             " --prompt 'Describe this image.' --temperature 0 --max_new_tokens 16 "
                                             "--ignore_eos --ids --no_stats --threads 2");
    ASSERT_EQ(r.status, 0) << r.out;
    const TensorStore ref = TensorStore::open(kShared / "reference/qwen3-vl-nano.safetensors");
    std::string want;
    for (int32_t id : test::reference_ids(ref, "greedy_ids")) want += std::to_string(id) + " ";
    EXPECT_EQ(r.out.substr(0, want.size()), want) << r.out;

    // bad inputs: not an image, a text-only model, two images for one prompt is fine (two placeholders)
    cli_test::Result bad = cli_test::run("generate --model " + kVl + " --image " + kC4 + " --prompt x --no_stats");
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.out.find("unknown image format"), std::string::npos) << bad.out;
    bad = cli_test::run("generate --model " + (kShared / "models/qwen3-nano").string() + " --image " + img +
                        " --prompt x --no_stats");
    EXPECT_EQ(bad.status, 1);
    EXPECT_NE(bad.out.find("takes no images"), std::string::npos) << bad.out;
    const cli_test::Result two = cli_test::run("generate --model " + kVl + " --image " + img + " --image " + img +
                                               " --prompt 'Compare.' --temperature 0 --max_new_tokens 2 --no_stats --threads 2");
    EXPECT_EQ(two.status, 0) << two.out;
}

TEST(CliVl, QuantNontextModuleTunesTheVisionBlocksToo) {
    // --quant_nontext_module: the vision blocks are tuned on the images of ../shared/data/images (4 images, one
    // with a caption), and the language blocks on those images as image+text chats (the --dataset is then
    // unused, as the reference swaps its text dataset for an image one); every format stores the vision blocks
    // packed, the mergers / patch embedding stay byte-identical, the configs no longer exclude visual.blocks,
    // and all exports reload with identical logits.
    const fs::path out = fs::temp_directory_path() / ("ar_cli_vl_nontext_" + std::to_string(::getpid()));
    fs::remove_all(out);
    const cli_test::Result r = cli_test::run(
        "quantize --model " + kVl + " --output_dir " + out.string() + " --iters 4 --nsamples 4 --seqlen 96 --batch_size 2 "
        "--dataset " + kC4 + ":shuffle=false --threads 2 --quant_nontext_module --image_dataset " +
        (kShared / "data/images").string() + " --image_size 256 --format auto_round,auto_gptq,auto_awq");
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("model.visual.blocks.3"), std::string::npos) << r.out;  // in the summary table
    const fs::path m = out / "qwen3-vl-nano-w4g128";
    const nlohmann::json rep = read_json(m / "auto-round-auto-gptq" / "quantize_report.json");
    const auto& vcal = rep.at("calibration").at("vision");
    EXPECT_EQ(vcal.at("images").size(), 4u) << vcal.dump();
    EXPECT_EQ(vcal.at("rows_per_image").get<int>(), 256);
    // the language blocks: 4 chats of 64 image tokens, the OCR caption of phototest cut at --seqlen 96
    EXPECT_NE(r.out.find("--dataset is not used"), std::string::npos) << r.out;
    EXPECT_EQ(rep.at("settings").at("dataset"), "image+text chats from --image_dataset");
    EXPECT_EQ(rep.at("calibration").at("samples").get<int>(), 4);
    EXPECT_NE(rep.at("calibration").at("description").get<std::string>().find("4 image+text chats (1 with captions), "
                                                                              "96 tokens each"),
              std::string::npos) << rep.at("calibration").dump();
    int text_blocks = 0;
    for (const auto& b : rep.at("blocks"))
        if (b.at("name").get<std::string>().rfind("model.language_model.layers.", 0) == 0) {
            ++text_blocks;
            EXPECT_EQ(b.at("method"), "signround");
            EXPECT_LE(b.at("best_loss").get<double>(), b.at("initial_loss").get<double>()) << b.dump();
        }
    EXPECT_EQ(text_blocks, 6);
    int vision_blocks = 0;
    for (const auto& b : rep.at("blocks")) {
        if (b.at("name").get<std::string>().rfind("model.visual.blocks.", 0) != 0) continue;
        ++vision_blocks;
        EXPECT_EQ(b.at("method"), "signround");
        EXPECT_EQ(b.at("layers").get<int>(), 4);
        EXPECT_LE(b.at("best_loss").get<double>(), b.at("initial_loss").get<double>()) << b.dump();
    }
    EXPECT_EQ(vision_blocks, 4);

    const std::vector<std::string> subs{"auto-round-auto-gptq", "auto-gptq", "auto-awq"};
    const TensorStore src = TensorStore::open(kVl);
    std::vector<Logits> logits;
    for (const std::string& sub : subs) {
        const fs::path d = m / sub;
        SCOPED_TRACE(sub);
        const TensorStore st = TensorStore::open(d);
        for (const char* l : {"attn.qkv", "attn.proj", "mlp.linear_fc1", "mlp.linear_fc2"}) {
            EXPECT_TRUE(st.has("model.visual.blocks.2." + std::string(l) + ".qweight")) << l;
            EXPECT_FALSE(st.has("model.visual.blocks.2." + std::string(l) + ".weight")) << l;
        }
        // the tower outside its blocks (patch embedding, position table, mergers) is the source's, byte for byte
        int copied = 0;
        for (const auto& [name, t] : src.tensors()) {
            if (name.rfind("model.visual.", 0) != 0 || name.rfind("model.visual.blocks.", 0) == 0) continue;
            ASSERT_TRUE(st.has(name)) << name;
            ASSERT_EQ(0, std::memcmp(st.get(name).data, t.data, t.nbytes)) << name;
            ++copied;
        }
        EXPECT_GT(copied, 10);
        const nlohmann::json qc = read_json(d / "config.json").at("quantization_config");
        const std::string dump = qc.dump();
        EXPECT_NE(dump.find("model.visual.blocks"), std::string::npos) << dump;  // in the block list
        if (sub == "auto-gptq") EXPECT_FALSE(qc.at("dynamic").contains("-:.*visual\\.blocks")) << dump;
        if (sub == "auto-awq") expect_awq_vision_exclusion(qc, false);
        logits.push_back(run_both(d));
    }
    expect_identical_across_formats(logits, subs);
    fs::remove_all(out);
}

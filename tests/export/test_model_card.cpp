// tests/export/test_model_card.cpp — export/model_card.h: the front matter is "key: value" / "- item" lines a
// YAML reader takes (and the Hub keys are there), each format names the runtimes that load it (and not the
// ones that cannot), the AWQ zero_point note appears for symmetric AWQ only, the license is copied from the
// source README.md front matter (omitted when absent), no evaluation section without evaluations, the
// VL image example, and the card that export_model writes into every folder.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "export/exporter.h"
#include "export/model_card.h"
#include "io/io_test_util.h"
#include "quant/rtn.h"

using namespace autoround;
using autoround::testio::read_file;
using autoround::testio::TempDir;
using autoround::testio::write_file;
namespace fs = std::filesystem;

namespace {

const fs::path kShared = AR_SHARED_DIR;
const fs::path kModel = kShared / "models/qwen3-nano";

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The front matter as key -> value ("" for a key whose value is the following "- item" list) and
// key -> list items. Fails the test on any line that is not "key: value", "key:" or "- item".
struct FrontMatter {
    std::map<std::string, std::string> scalars;
    std::map<std::string, std::vector<std::string>> lists;
};
FrontMatter parse_front_matter(const std::string& card) {
    FrontMatter fm;
    std::istringstream in(card);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "---") << "the card must start with front matter";
    std::string list_key;
    bool closed = false;
    while (std::getline(in, line)) {
        if (line == "---") {
            closed = true;
            break;
        }
        if (line.rfind("- ", 0) == 0) {
            EXPECT_FALSE(list_key.empty()) << "list item without a key: " << line;
            fm.lists[list_key].push_back(line.substr(2));
            continue;
        }
        const size_t colon = line.find(": ");
        if (colon == std::string::npos) {
            EXPECT_TRUE(!line.empty() && line.back() == ':') << "not a YAML key line: '" << line << "'";
            list_key = line.substr(0, line.size() - 1);
            fm.lists[list_key];
            continue;
        }
        const std::string key = line.substr(0, colon);
        EXPECT_EQ(key.find_first_not_of("abcdefghijklmnopqrstuvwxyz_"), std::string::npos) << line;
        EXPECT_EQ(fm.scalars.count(key), 0u) << "duplicate key " << key;
        fm.scalars[key] = line.substr(colon + 2);
        list_key.clear();
    }
    EXPECT_TRUE(closed) << "front matter not closed";
    return fm;
}

ModelCardInfo info_for(const std::string& format, const std::string& backend, bool sym = true, int bits = 4) {
    ModelCardInfo c;
    c.title = "Qwen3-4B-Instruct-2507-w4g128";
    c.base_model = "Qwen/Qwen3-4B-Instruct-2507";
    c.model_ref = expand_format_placeholder("me/Qwen3-4B-Instruct-2507-{format}", format);
    c.model_ref_is_hub = true;
    c.model_type = "qwen3";
    c.architecture = "Qwen3ForCausalLM";
    c.chat_template = true;
    c.format = format;
    c.backend = backend;
    c.bits = bits;
    c.sym = sym;
    c.method = "signround";
    c.iters = 200;
    c.nsamples = 128;
    c.seqlen = 2048;
    c.batch_size = 8;
    c.lr = 0.005;
    c.dataset = "NeelNanda/pile-10k";
    c.datasets = {"NeelNanda/pile-10k"};
    c.quantized_blocks = {"model.layers"};
    c.kept_layers = {{"lm_head", "auto-round keeps lm_head 16-bit by default"}};
    c.command_line = "autoround quantize --model Qwen/Qwen3-4B-Instruct-2507 --format " + format;
    return c;
}

// The text of the runtime table row that starts with "| <name> |", "" if absent.
std::string runtime_row(const std::string& card, const std::string& name) {
    const size_t p = card.find("\n| " + name + " | ");
    if (p == std::string::npos) return "";
    return card.substr(p + 1, card.find('\n', p + 1) - p - 1);
}

}  // namespace

TEST(ModelCard, FrontMatterIsYamlKeyLinesWithTheHubKeys) {
    ModelCardInfo c = info_for("auto_gptq", "auto_gptq");
    c.license = "apache-2.0";
    const std::string card = render_model_card(c);
    const FrontMatter fm = parse_front_matter(card);
    EXPECT_EQ(fm.scalars.at("base_model"), "Qwen/Qwen3-4B-Instruct-2507");
    EXPECT_EQ(fm.scalars.at("base_model_relation"), "quantized");
    EXPECT_EQ(fm.scalars.at("library_name"), "transformers");
    EXPECT_EQ(fm.scalars.at("pipeline_tag"), "text-generation");
    EXPECT_EQ(fm.scalars.at("license"), "apache-2.0");
    EXPECT_EQ(fm.lists.at("datasets"), std::vector<std::string>{"NeelNanda/pile-10k"});
    const auto& tags = fm.lists.at("tags");
    for (const char* t : {"autoround", "intel", "gptq", "4-bit", "qwen3"})
        EXPECT_NE(std::find(tags.begin(), tags.end(), t), tags.end()) << t;
    // the settings, the usage and the provenance are in the body
    for (const char* part : {"| bits | 4 |", "| group size | 128 |", "| iters | 200 |", "| nsamples | 128 |",
                             "| seqlen | 2048 |", "| batch size | 8 |", "| lr | 0.005 |", "`NeelNanda/pile-10k`",
                             "`lm_head`: auto-round keeps", "model_id = \"me/Qwen3-4B-Instruct-2507-auto_gptq\"",
                             "vllm serve me/Qwen3-4B-Instruct-2507-auto_gptq",
                             "autoround generate --model me/Qwen3-4B-Instruct-2507-auto_gptq --chat",
                             "autoround eval ppl --model Qwen/Qwen3-4B-Instruct-2507 --model me/",
                             "Made with autoround.cpp", "autoround quantize --model Qwen/Qwen3-4B-Instruct-2507"})
        EXPECT_TRUE(has(card, part)) << part << "\n" << card;
}

TEST(ModelCard, OddNamesAreQuotedInTheFrontMatter) {
    ModelCardInfo c = info_for("auto_awq", "auto_awq");
    c.base_model = "my: model";
    c.license = "other";
    c.license_name = "yes";
    const FrontMatter fm = parse_front_matter(render_model_card(c));
    EXPECT_EQ(fm.scalars.at("base_model"), "\"my: model\"");
    EXPECT_EQ(fm.scalars.at("license_name"), "\"yes\"");  // not the YAML boolean
}

TEST(ModelCard, EachFormatNamesTheRuntimesThatLoadIt) {
    struct Case {
        std::string format, backend;
        bool sym;
        int bits;
        std::vector<std::string> yes, no;
        std::string kernel;  // expected in the vLLM row
    };
    const std::vector<Case> cases = {
        {"auto_gptq", "auto_gptq", true, 4, {"vLLM", "SGLang", "transformers", "autoround.cpp"}, {"llama.cpp"}, "GPTQ-Marlin"},
        {"auto_gptq", "auto_gptq", false, 4, {"vLLM", "SGLang", "transformers", "autoround.cpp"}, {}, "`gptq` (exllama)"},
        {"auto_awq", "auto_awq", false, 4, {"vLLM", "SGLang", "transformers", "autoround.cpp"}, {"llama.cpp"}, "AWQ-Marlin"},
        {"auto_round", "auto_round:auto_gptq", true, 4, {"vLLM", "SGLang", "transformers", "autoround.cpp"}, {}, "GPTQ-Marlin"},
        {"auto_round", "auto_round:auto_awq", false, 4, {"vLLM", "SGLang", "transformers", "autoround.cpp"}, {}, "AWQ-Marlin"},
        {"auto_round", "auto_round", false, 2, {"transformers", "autoround.cpp"}, {"vLLM", "SGLang"}, ""},
        {"fake", "fake", true, 4, {"vLLM", "SGLang", "transformers", "autoround.cpp"}, {}, "16-bit"},
        {"gguf:q4_k_m", "gguf:q4_k_m", true, 4, {"llama.cpp", "autoround.cpp"}, {"vLLM", "SGLang"}, ""},
    };
    for (const auto& k : cases) {
        const std::string card = render_model_card(info_for(k.format, k.backend, k.sym, k.bits));
        const std::string label = k.backend + (k.sym ? " sym" : " asym");
        for (const auto& r : k.yes) {
            const std::string row = runtime_row(card, r);
            EXPECT_TRUE(has(row, "| yes") || (r == "transformers" && has(row, "reads it"))) << label << ": " << r << "\n" << card;
        }
        for (const auto& r : k.no) {
            const std::string row = runtime_row(card, r);
            EXPECT_TRUE(row.empty() || has(row, "| no")) << label << ": " << r << " row: " << row;
        }
        if (!k.kernel.empty()) {
            EXPECT_TRUE(has(runtime_row(card, "vLLM"), k.kernel)) << label << "\n" << card;
        }
        // usage snippets only for runtimes that load it
        EXPECT_EQ(has(card, "### vLLM"), std::find(k.yes.begin(), k.yes.end(), "vLLM") != k.yes.end()) << label;
        EXPECT_EQ(has(card, "### llama.cpp"), k.format.rfind("gguf", 0) == 0) << label;
        EXPECT_EQ(has(card, "library_name: transformers"), k.format.rfind("gguf", 0) != 0) << label;
        EXPECT_TRUE(has(card, "### autoround (autoround.cpp CLI)")) << label;
    }
    const std::string gguf = render_model_card(info_for("gguf:q4_k_m", "gguf:q4_k_m"));
    EXPECT_TRUE(has(gguf, "- gguf\n")) << gguf;
    EXPECT_TRUE(has(gguf, "llama-cli -hf me/Qwen3-4B-Instruct-2507-gguf-q4_k_m")) << gguf;
}

TEST(ModelCard, AwqZeroPointNoteOnlyForSymmetricAwq) {
    const std::string sym = render_model_card(info_for("auto_awq", "auto_awq", true));
    const std::string asym = render_model_card(info_for("auto_awq", "auto_awq", false));
    const std::string gptq = render_model_card(info_for("auto_gptq", "auto_gptq", true));
    EXPECT_TRUE(has(sym, "zero_point: true")) << sym;
    EXPECT_TRUE(has(sym, "`zero_point: false`")) << "must say what Intel's tool writes and why we differ";
    EXPECT_TRUE(has(sym, "0x88888888"));
    EXPECT_FALSE(has(asym, "Symmetric weights in AWQ"));
    EXPECT_FALSE(has(gptq, "Symmetric weights in AWQ"));
    for (const auto* c : {&sym, &asym}) EXPECT_TRUE(has(parse_front_matter(*c).lists.at("tags").front(), "autoround"));
}

TEST(ModelCard, EvaluationSectionOnlyWhenGiven) {
    ModelCardInfo c = info_for("auto_round", "auto_round:auto_gptq");
    EXPECT_FALSE(has(render_model_card(c), "## Evaluation"));
    EXPECT_FALSE(has(render_model_card(c), "| metric |"));
    c.evals = {{"perplexity", "WikiText-2 test", 10.0, 10.5, true}, {"acc_norm", "HellaSwag", 0.5, 0.49, false}};
    const std::string card = render_model_card(c);
    EXPECT_TRUE(has(card, "## Evaluation")) << card;
    EXPECT_TRUE(has(card, "| perplexity | WikiText-2 test | 10 | 10.5 | +5.00 % (lower is better) |")) << card;
    EXPECT_TRUE(has(card, "| acc_norm | HellaSwag | 0.5 | 0.49 | -2.00 % (higher is better) |")) << card;
}

TEST(ModelCard, VisionLanguageConfigGetsTheImageExample) {
    ModelCardInfo c = info_for("auto_round", "auto_round:auto_gptq");
    c.vision = true;
    c.model_type = "qwen3_vl";
    c.kept_layers.push_back({"model.visual", "vision tower"});
    const std::string card = render_model_card(c);
    EXPECT_EQ(parse_front_matter(card).scalars.at("pipeline_tag"), "image-text-to-text");
    EXPECT_TRUE(has(card, "AutoModelForImageTextToText")) << card;
    EXPECT_TRUE(has(card, "\"type\": \"image\"")) << card;
    EXPECT_TRUE(has(card, "\"image_url\"")) << "vLLM image example";
    EXPECT_FALSE(has(render_model_card(info_for("auto_round", "auto_round:auto_gptq")), "AutoModelForImageTextToText"));
}

TEST(ModelCard, FrontMatterValueAndFormatPlaceholder) {
    const std::string readme = "---\nlicense: apache-2.0\nlicense_link: \"https://x/y\" \ntags:\n- a\n---\n# Title\nlicense: mit\n";
    EXPECT_EQ(front_matter_value(readme, "license"), "apache-2.0");
    EXPECT_EQ(front_matter_value(readme, "license_link"), "https://x/y");
    EXPECT_EQ(front_matter_value(readme, "tags"), "");
    EXPECT_EQ(front_matter_value("# no front matter\nlicense: mit\n", "license"), "");
    EXPECT_EQ(front_matter_value("", "license"), "");
    EXPECT_EQ(expand_format_placeholder("me/Qwen3-4B-{format}", "auto_round"), "me/Qwen3-4B-auto_round");
    EXPECT_EQ(expand_format_placeholder("me/{format}-{format}", "gguf:q4_k_m"), "me/gguf-q4_k_m-gguf-q4_k_m");
    EXPECT_EQ(expand_format_placeholder("me/plain", "auto_awq"), "me/plain");
}

// A source folder: qwen3-nano's files linked, plus (optionally) a README.md.
struct SourceWithReadme {
    TempDir dir;
    explicit SourceWithReadme(const std::string& readme) {
        for (const auto& e : fs::directory_iterator(kModel)) fs::create_symlink(e.path(), dir / e.path().filename().string());
        if (!readme.empty()) write_file(dir / "README.md", readme);
    }
};

TEST(ModelCard, LicenseCopiedFromTheSourceReadme) {
    const TensorStore st = TensorStore::open(kModel);
    QuantizationConfig qc;
    qc.block_name_to_quantize = {"model.layers"};
    auto info = [&](const fs::path& src, const ModelCardOptions& o) {
        return model_card_info(src, st, "", qc, {}, {}, "auto_gptq", "auto_gptq", "/out/qwen3-nano-w4g128",
                               {"model.safetensors"}, o);
    };
    {
        SourceWithReadme s("---\nlicense: apache-2.0\npipeline_tag: text-generation\n---\n# nano\n");
        const std::string card = render_model_card(info(s.dir.path(), {}));
        EXPECT_EQ(parse_front_matter(card).scalars.at("license"), "apache-2.0") << card;
        ModelCardOptions o;
        o.license = "mit";  // the option wins
        EXPECT_EQ(parse_front_matter(render_model_card(info(s.dir.path(), o))).scalars.at("license"), "mit");
    }
    {
        SourceWithReadme s("---\nlicense: other\nlicense_name: qwen-research\nlicense_link: https://h/LICENSE\n---\n");
        const FrontMatter fm = parse_front_matter(render_model_card(info(s.dir.path(), {})));
        EXPECT_EQ(fm.scalars.at("license"), "other");
        EXPECT_EQ(fm.scalars.at("license_name"), "qwen-research");
        EXPECT_EQ(fm.scalars.at("license_link"), "https://h/LICENSE");
    }
    {
        SourceWithReadme s("");  // no README.md: no license key
        const FrontMatter fm = parse_front_matter(render_model_card(info(s.dir.path(), {})));
        EXPECT_EQ(fm.scalars.count("license"), 0u);
    }
}

TEST(ModelCard, InfoFromTheSourceAndTheReportSettings) {
    const TensorStore st = TensorStore::open(kModel);
    QuantizationConfig qc;
    qc.iters = 0;
    qc.block_name_to_quantize = {"model.layers"};
    ModelCardOptions o;
    // base model: the folder name of a local path; a Hub id as given (revision dropped)
    ModelCardInfo c = model_card_info(kModel, st, kModel.string() + "/", qc, {}, {}, "auto_gptq", "auto_gptq",
                                      "qwen3-nano-w4g128/auto-gptq", {}, o);
    EXPECT_EQ(c.base_model, "qwen3-nano");
    EXPECT_EQ(c.model_ref, "./qwen3-nano-w4g128/auto-gptq");
    EXPECT_FALSE(c.model_ref_is_hub);
    EXPECT_EQ(c.title, "qwen3-nano-w4g128");
    EXPECT_EQ(model_card_info(kModel, st, "", qc, {}, {}, "fake", "fake", "/out/qwen3-nano-w4g128", {}, o).model_ref,
              "/out/qwen3-nano-w4g128");
    EXPECT_TRUE(c.chat_template);
    EXPECT_TRUE(c.tie_word_embeddings);
    EXPECT_FALSE(c.vision);
    EXPECT_EQ(c.model_type, "qwen3");
    EXPECT_EQ(c.iters, 0);
    ASSERT_GE(c.kept_layers.size(), 2u);
    EXPECT_EQ(c.kept_layers[0].name, "model.embed_tokens");
    EXPECT_EQ(c.kept_layers[1].name, "lm_head");
    EXPECT_TRUE(has(c.kept_layers[1].reason, "tied")) << c.kept_layers[1].reason;
    c = model_card_info(kModel, st, "Qwen/Qwen3-4B-Instruct-2507@main", qc, {}, {}, "auto_gptq", "auto_gptq",
                        "/out/x", {}, o);
    EXPECT_EQ(c.base_model, "Qwen/Qwen3-4B-Instruct-2507");
    // a folder in the Hugging Face cache names its repo
    {
        TempDir cache;
        const fs::path snap = cache / "models--Qwen--Qwen3-0.6B/snapshots/0123456789abcdef0123456789abcdef01234567";
        fs::create_directories(snap);
        for (const auto& e : fs::directory_iterator(kModel)) fs::create_symlink(e.path(), snap / e.path().filename());
        EXPECT_EQ(model_card_info(snap, st, "", qc, {}, {}, "fake", "fake", "/out/x", {}, o).base_model, "Qwen/Qwen3-0.6B");
    }
    // the quantize report's settings and the caller's reasons
    o.settings = {{"bits", 4},       {"group_size", 128},    {"sym", true},   {"iters", 200},
                  {"lr", 0.005},     {"minmax_lr", 0.005},   {"nsamples", 128}, {"nsamples_used", 100},
                  {"seqlen", 512},   {"batch_size", 8},      {"dataset", "NeelNanda/pile-10k:num=1000,./local.jsonl"},
                  {"seed", 42},      {"disable_opt_rtn", false}};
    o.kept_layers = {{"model.layers.0.mlp.down_proj", "ignore_layers"}};
    o.repo_id = "me/nano-{format}";
    o.command_line = "autoround quantize --model x";
    c = model_card_info(kModel, st, "", qc, {"model.layers.0.mlp.down_proj"}, {}, "auto_round", "auto_round:auto_gptq",
                        "/out/x", {}, o);
    EXPECT_EQ(c.method, "signround");
    EXPECT_EQ(c.iters, 200);
    EXPECT_EQ(c.nsamples, 100);
    EXPECT_EQ(c.seqlen, 512);
    EXPECT_EQ(c.batch_size, 8);
    EXPECT_EQ(c.seed, 42u);
    EXPECT_EQ(c.datasets, std::vector<std::string>{"NeelNanda/pile-10k"});
    EXPECT_EQ(c.model_ref, "me/nano-auto_round");
    EXPECT_TRUE(c.model_ref_is_hub);
    EXPECT_EQ(c.command_line, "autoround quantize --model x");
    bool found = false;
    for (const auto& k : c.kept_layers)
        if (k.name == "model.layers.0.mlp.down_proj") {
            found = true;
            EXPECT_TRUE(has(k.reason, "--ignore_layers")) << k.reason;
        }
    EXPECT_TRUE(found);
    // plain RTN: no calibration settings claimed
    o.settings = {{"iters", 0}, {"dataset", nullptr}, {"disable_opt_rtn", true}, {"nsamples", 128}};
    c = model_card_info(kModel, st, "", qc, {}, {}, "auto_gptq", "auto_gptq", "/out/x", {}, o);
    EXPECT_EQ(c.method, "rtn");
    EXPECT_FALSE(c.nsamples.has_value());
    EXPECT_TRUE(c.dataset.empty());
}

TEST(ModelCard, ExportWritesACardIntoEveryFolder) {
    const TensorStore st = TensorStore::open(kModel);
    QuantizedLayers layers;
    for (const auto& [name, t] : st.tensors()) {
        if (name.rfind("model.layers.0.", 0) != 0 || t.shape.size() != 2) continue;
        const std::string layer = name.substr(0, name.size() - 7);
        layers.emplace(layer, quantize_rtn(st.load_f32(name), t.shape[0], t.shape[1], QdqOptions{}, layer));
    }
    TempDir out;
    ExportOptions o;
    o.output_dir = out.path();
    o.card.command_line = "autoround quantize --model qwen3-nano";
    o.card.evals = {{"perplexity", "WikiText-2", 122.7, 123.3, true}};
    bool seen_in_tmp = false;
    o.before_commit = [&](const fs::path& tmp) { seen_in_tmp = fs::exists(tmp / "README.md"); };
    const auto res = export_model(kModel, st, QuantizationConfig{}, layers,
                                  parse_export_formats("auto_round,auto_gptq,auto_awq,fake"), o);
    EXPECT_TRUE(seen_in_tmp) << "the card is written before the folder is committed";
    ASSERT_EQ(res.size(), 4u);
    for (const auto& r : res) {
        EXPECT_EQ(r.files.back(), "README.md");
        const std::string card = read_file(r.folder / "README.md");
        const FrontMatter fm = parse_front_matter(card);
        EXPECT_EQ(fm.scalars.at("base_model"), "qwen3-nano");
        EXPECT_EQ(fm.scalars.count("license"), 0u);
        EXPECT_TRUE(has(card, "--format " + std::string(export_format_name(r.format)))) << card;
        EXPECT_TRUE(has(card, "autoround quantize --model qwen3-nano")) << card;
        EXPECT_TRUE(has(card, "| perplexity | WikiText-2 | 122.7 | 123.3 |")) << card;
        const std::string rel = "./" + fs::relative(r.folder, out.path()).generic_string();
        EXPECT_TRUE(has(card, "from_pretrained(model_id") && has(card, "model_id = \"" + rel + "\"")) << rel << card;
        EXPECT_FALSE(has(card, out.path().string())) << "the card must not depend on --output_dir";
        EXPECT_TRUE(has(card, "`model.layers.1.mlp.down_proj`") || has(card, "model.layers.1")) << card;
    }
    // card.write = false: no README.md
    TempDir out2;
    o.output_dir = out2.path();
    o.card.write = false;
    o.before_commit = nullptr;
    const auto res2 = export_model(kModel, st, QuantizationConfig{}, layers, {ExportFormat::AutoGptq}, o);
    EXPECT_FALSE(fs::exists(res2[0].folder / "README.md"));
}

// tests/export/test_gguf_export.cpp — export/gguf_export.h and the GGUF load path end to end on qwen3-nano:
// bf16 / f16 exports reload to the safetensors model's logits (bf16 bit-identical; f16 within a stated
// tolerance); metadata keys, value types, token list / types / merges / special ids / chat template per
// checkpoint-formats.md §5.2; tensor names and innermost-first dims per §5.3; the q4_k_m / q4_k_s / q4_0 /
// q8_0 type mixes of §5.6; every quantized tensor in the file is byte-identical to the reference quantizer
// of its source rows, and the loader's dequantized weights are the writer's own dequantizer's; tuned W4 sym
// gs32 codes land in q4_0 blocks exactly; the GGUF tokenizer and config equal the folder's; the
// --format gguf:* driver path; and folder resolution of find_gguf_model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/bf16.h"
#include "export/exporter.h"
#include "export/gguf_blocks.h"
#include "export/gguf_export.h"
#include "io/gguf.h"
#include "io/io_test_util.h"
#include "io/model_config.h"
#include "model/gguf_checkpoint.h"
#include "model/qwen3_model.h"
#include "quant/quant_test_util.h"
#include "quant/rtn.h"
#include "text/bpe_tokenizer.h"
#include "text/gguf_tokenizer.h"

using namespace autoround;
using autoround::testio::TempDir;
using autoround::testquant::expect_error;
namespace fs = std::filesystem;
using gguf::BlockType;

namespace {

const fs::path kModel = fs::path(AR_SHARED_DIR) / "models/qwen3-nano";

const std::vector<int32_t> kPrompt = {785, 6722, 315, 9625, 374, 12095, 13, 576, 6722, 315, 9856, 374};

std::vector<float> logits_of(const Qwen3Model& m, std::vector<int32_t> tokens) {
    for (auto& t : tokens) t %= m.config().vocab_size;
    KvCache cache = m.make_cache();
    std::vector<float> out(tokens.size() * static_cast<size_t>(m.config().vocab_size));
    m.forward(tokens, cache, out.data(), true);
    return out;
}

class GgufNano : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = std::make_unique<TempDir>();
        store_ = std::make_unique<TensorStore>(TensorStore::open(kModel));
        for (GgufFileType t : {GgufFileType::BF16, GgufFileType::F16, GgufFileType::Q8_0, GgufFileType::Q4_0,
                               GgufFileType::Q4_K_M, GgufFileType::Q4_K_S}) {
            GgufExportOptions o;
            o.file_type = t;
            const fs::path p = dir_->path() / gguf_file_name("qwen3-nano", t);
            records_[t] = write_gguf_model(kModel, *store_, {}, o, p).tensors;
            files_[t] = p;
        }
    }
    static void TearDownTestSuite() {
        store_.reset();
        dir_.reset();
    }
    static std::unique_ptr<TempDir> dir_;
    static std::unique_ptr<TensorStore> store_;
    static std::map<GgufFileType, fs::path> files_;
    static std::map<GgufFileType, std::vector<GgufTensorRecord>> records_;
};
std::unique_ptr<TempDir> GgufNano::dir_;
std::unique_ptr<TensorStore> GgufNano::store_;
std::map<GgufFileType, fs::path> GgufNano::files_;
std::map<GgufFileType, std::vector<GgufTensorRecord>> GgufNano::records_;

}  // namespace

TEST_F(GgufNano, Bf16AndF16ReloadGiveTheSafetensorsLogits) {
    const Qwen3Model ref = Qwen3Model::load(kModel);
    const std::vector<float> want = logits_of(ref, kPrompt);
    const Qwen3Model bf = Qwen3Model::load(files_[GgufFileType::BF16]);
    EXPECT_EQ(logits_of(bf, kPrompt), want);  // same bf16 bytes, same kernels: bit-identical

    // f16 holds every bf16 weight of this model exactly unless it is below fp16's normal range; count them.
    int64_t inexact = 0, total = 0;
    for (const auto& [name, t] : store_->tensors()) {
        const std::vector<float> w = store_->load_f32(name);
        for (float v : w) {
            inexact += fp16_to_float(float_to_fp16(v)) != v;
            ++total;
        }
    }
    const Qwen3Model f16 = Qwen3Model::load(files_[GgufFileType::F16]);
    const std::vector<float> got = logits_of(f16, kPrompt);
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        max_diff = std::max(max_diff, std::fabs(double(got[i]) - want[i]));
        max_ref = std::max(max_ref, std::fabs(double(want[i])));
    }
    std::printf("[ f16 GGUF ] %lld of %lld weights not exact in fp16; max |logit diff| %.3g (max |logit| %.3g)\n",
                (long long)inexact, (long long)total, max_diff, max_ref);
    if (inexact == 0) {
        EXPECT_EQ(got, want);
    }
    EXPECT_LE(max_diff, 1e-3 * std::max(1.0, max_ref));
}

TEST_F(GgufNano, MetadataFollowsTheSpec) {
    const auto f = GgufFile::open(files_[GgufFileType::BF16]);
    const ModelConfig cfg = load_model_config(kModel);
    auto type_of = [&](const char* k) { return f->get(k).type; };
    EXPECT_EQ(f->get_string("general.architecture"), "qwen3");
    EXPECT_EQ(f->get_string("general.type"), "model");
    EXPECT_EQ(f->get_string("general.name"), "qwen3-nano");
    EXPECT_EQ(f->get_u32("general.file_type"), 32u);
    EXPECT_EQ(f->get_u32("general.quantization_version"), 2u);
    EXPECT_FALSE(f->has("general.alignment"));
    for (const char* k : {"qwen3.block_count", "qwen3.context_length", "qwen3.embedding_length",
                          "qwen3.feed_forward_length", "qwen3.attention.head_count", "qwen3.attention.head_count_kv",
                          "qwen3.attention.key_length", "qwen3.attention.value_length", "general.file_type",
                          "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id", "tokenizer.ggml.bos_token_id"})
        EXPECT_EQ(type_of(k), GgufValueType::UINT32) << k;
    EXPECT_EQ(type_of("qwen3.rope.freq_base"), GgufValueType::FLOAT32);
    EXPECT_EQ(type_of("qwen3.attention.layer_norm_rms_epsilon"), GgufValueType::FLOAT32);
    EXPECT_EQ(type_of("tokenizer.ggml.add_bos_token"), GgufValueType::BOOL);
    EXPECT_EQ(f->get_u32("qwen3.block_count"), 6u);
    EXPECT_EQ(f->get_u32("qwen3.context_length"), 4096u);
    EXPECT_EQ(f->get_u32("qwen3.embedding_length"), 512u);
    EXPECT_EQ(f->get_u32("qwen3.feed_forward_length"), 1280u);
    EXPECT_EQ(f->get_u32("qwen3.attention.head_count"), 4u);
    EXPECT_EQ(f->get_u32("qwen3.attention.head_count_kv"), 2u);
    EXPECT_EQ(f->get_u32("qwen3.attention.key_length"), 128u);
    EXPECT_EQ(f->get_f32("qwen3.rope.freq_base"), 1000000.0f);
    EXPECT_EQ(f->get_f32("qwen3.attention.layer_norm_rms_epsilon"), 1e-6f);

    EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(f->get_string("tokenizer.ggml.pre"), "qwen2");
    const auto& toks = f->get_string_array("tokenizer.ggml.tokens");
    const std::vector<int32_t> types = f->get_i32_array("tokenizer.ggml.token_type");
    EXPECT_EQ(f->get("tokenizer.ggml.token_type").elem, GgufValueType::INT32);
    ASSERT_EQ(toks.size(), 8192u);
    ASSERT_EQ(types.size(), 8192u);
    EXPECT_EQ(toks[8166], "<|endoftext|>");
    EXPECT_EQ(types[0], 1);
    EXPECT_EQ(types[8165], 1);
    EXPECT_EQ(types[8166], 3);  // special
    EXPECT_EQ(types[8180], 4);  // <tool_call>: added, not special, does not look special
    EXPECT_EQ(types[8182], 3);  // <|fim_prefix|>: not special but looks like <|...|>
    EXPECT_EQ(types[8190], 4);  // <think>
    const auto& merges = f->get_string_array("tokenizer.ggml.merges");
    ASSERT_EQ(merges.size(), 7910u);
    EXPECT_EQ(merges[0], "\xC4\xA0 \xC4\xA0");
    EXPECT_EQ(f->get_u32("tokenizer.ggml.eos_token_id"), 8168u);
    EXPECT_EQ(f->get_u32("tokenizer.ggml.padding_token_id"), 8166u);
    EXPECT_EQ(f->get_u32("tokenizer.ggml.bos_token_id"), 8166u);  // config.json bos_token_id (tokenizer's is null)
    EXPECT_FALSE(f->get_bool("tokenizer.ggml.add_bos_token"));
    EXPECT_EQ(f->get_string("tokenizer.chat_template"), load_tokenizer_config(kModel).chat_template.value());

    // Tensors: 2 + 11 L (tied: no output.weight), ne reversed from HF, 1-D F32.
    ASSERT_EQ(f->tensors().size(), 2u + 11u * 6u);
    EXPECT_FALSE(f->has_tensor("output.weight"));
    EXPECT_EQ(f->tensor("token_embd.weight").ne, (std::vector<int64_t>{512, 8192}));
    EXPECT_EQ(f->tensor("blk.0.attn_q.weight").ne, (std::vector<int64_t>{512, 512}));
    EXPECT_EQ(f->tensor("blk.0.attn_k.weight").ne, (std::vector<int64_t>{512, 256}));
    EXPECT_EQ(f->tensor("blk.3.attn_output.weight").ne, (std::vector<int64_t>{512, 512}));
    EXPECT_EQ(f->tensor("blk.5.ffn_down.weight").ne, (std::vector<int64_t>{1280, 512}));
    EXPECT_EQ(f->tensor("blk.5.ffn_gate.weight").ne, (std::vector<int64_t>{512, 1280}));
    EXPECT_EQ(f->tensor("blk.2.attn_q_norm.weight").ne, (std::vector<int64_t>{128}));
    for (const auto& t : f->tensors()) {
        EXPECT_EQ(t.offset % 32, 0u) << t.name;
        const uint32_t want_type = t.ne.size() == 1 ? 0u : 30u;  // F32 norms; BF16 raw copies
        EXPECT_EQ(t.type, want_type) << t.name;
    }
    // bf16 payloads are the checkpoint's bytes.
    const TensorInfo& src = store_->get("model.layers.4.mlp.up_proj.weight");
    const GgufTensorInfo& dst = f->tensor("blk.4.ffn_up.weight");
    ASSERT_EQ(src.nbytes, dst.nbytes);
    EXPECT_EQ(std::memcmp(src.data, dst.data, src.nbytes), 0);
    (void)cfg;
}

TEST_F(GgufNano, TypeMixes) {
    auto types = [&](GgufFileType ft) {
        std::map<std::string, uint32_t> m;
        const auto f = GgufFile::open(files_[ft]);
        for (const auto& t : f->tensors()) m[t.name] = t.type;
        return m;
    };
    const auto km = types(GgufFileType::Q4_K_M);
    EXPECT_EQ(km.at("token_embd.weight"), 14u);  // tied -> the output's Q6_K
    EXPECT_EQ(km.at("output_norm.weight"), 0u);
    for (int l = 0; l < 6; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        const bool more = l == 2 || l == 5;  // use_more_bits(i, 6): i >= 5 or (i - 0) % 3 == 2
        EXPECT_EQ(km.at(p + "attn_v.weight"), more ? 14u : 12u) << l;
        EXPECT_EQ(km.at(p + "ffn_down.weight"), more ? 14u : 12u) << l;
        EXPECT_EQ(km.at(p + "attn_q.weight"), 12u);
        EXPECT_EQ(km.at(p + "ffn_up.weight"), 12u);
        EXPECT_EQ(km.at(p + "attn_norm.weight"), 0u);
    }
    const auto ks = types(GgufFileType::Q4_K_S);
    for (int l = 0; l < 6; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        EXPECT_EQ(ks.at(p + "attn_v.weight"), l < 4 ? 13u : 12u) << l;  // Q5_K for the first 4
        EXPECT_EQ(ks.at(p + "ffn_down.weight"), 12u) << l;              // n/8 = 0 layers promoted
    }
    EXPECT_EQ(ks.at("token_embd.weight"), 14u);
    const auto q40 = types(GgufFileType::Q4_0);
    EXPECT_EQ(q40.at("token_embd.weight"), 14u);
    EXPECT_EQ(q40.at("blk.1.ffn_down.weight"), 2u);
    const auto q80 = types(GgufFileType::Q8_0);
    EXPECT_EQ(q80.at("token_embd.weight"), 8u);  // output of a Q8_0 file stays Q8_0
    EXPECT_EQ(q80.at("blk.1.attn_k.weight"), 8u);
    EXPECT_EQ(GgufFile::open(files_[GgufFileType::Q4_K_M])->get_u32("general.file_type"), 15u);
    EXPECT_EQ(GgufFile::open(files_[GgufFileType::Q4_K_S])->get_u32("general.file_type"), 14u);
    // Untied models: output Q6_K, token_embd the base type.
    EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, "output.weight", -1, 36, true, 4096), BlockType::Q6_K);
    EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, "token_embd.weight", -1, 36, true, 4096), BlockType::Q4_K);
    // n = 36: layers 0-3, 6, 9, ..., 30, 31-35 get Q6_K
    std::string got;
    for (int i = 0; i < 36; ++i)
        if (gguf_tensor_type(GgufFileType::Q4_K_M, "blk." + std::to_string(i) + ".ffn_down.weight", i, 36, true, 12288) ==
            BlockType::Q6_K)
            got += std::to_string(i) + " ";
    EXPECT_EQ(got, "0 1 2 3 6 9 12 15 18 21 24 27 30 31 32 33 34 35 ");
    EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, "blk.0.ffn_down.weight", 0, 36, true, 100), BlockType::F16);
    EXPECT_EQ(gguf_tensor_type(GgufFileType::Q4_K_M, "blk.1.ffn_up.weight", 1, 36, true, 96), BlockType::Q8_0);
}

TEST_F(GgufNano, QuantizedTensorsAreTheReferenceQuantizersAndReloadExactly) {
    for (GgufFileType ft : {GgufFileType::Q8_0, GgufFileType::Q4_0, GgufFileType::Q4_K_M, GgufFileType::Q4_K_S}) {
        const auto f = GgufFile::open(files_[ft]);
        for (const GgufTensorRecord& r : records_[ft]) {
            const GgufTensorInfo& t = f->tensor(r.gguf_name);
            ASSERT_EQ(t.type, static_cast<uint32_t>(r.type)) << r.gguf_name;
            if (t.ne.size() == 1) continue;
            EXPECT_EQ(r.source, "rtn");
            const std::vector<float> src = store_->load_f32(r.hf_name);
            const int64_t ne0 = t.ne[0], rows = t.ne[1];
            const int64_t rb = gguf::row_bytes(r.type, ne0);
            std::vector<uint8_t> want(static_cast<size_t>(rb * rows));
            for (int64_t i = 0; i < rows; ++i) gguf::quantize_row(r.type, src.data() + i * ne0, ne0, want.data() + i * rb);
            ASSERT_EQ(t.nbytes, want.size());
            EXPECT_EQ(std::memcmp(t.data, want.data(), want.size()), 0) << gguf_file_type_name(ft) << " " << r.gguf_name;
            std::vector<float> deq(src.size());
            for (int64_t i = 0; i < rows; ++i) gguf::dequantize_row(r.type, want.data() + i * rb, ne0, deq.data() + i * ne0);
            EXPECT_EQ(gguf_dequantize(*f, t), deq) << r.gguf_name;
        }
        // The model loads and predicts: greedy next tokens agree with the bf16 model on most positions.
        const Qwen3Model ref = Qwen3Model::load(kModel);
        const Qwen3Model q = Qwen3Model::load(files_[ft]);
        const std::vector<float> a = logits_of(ref, kPrompt), b = logits_of(q, kPrompt);
        const size_t V = 8192;
        int agree = 0;
        for (size_t p = 0; p < kPrompt.size(); ++p) {
            auto am = std::max_element(a.begin() + p * V, a.begin() + (p + 1) * V) - (a.begin() + p * V);
            auto bm = std::max_element(b.begin() + p * V, b.begin() + (p + 1) * V) - (b.begin() + p * V);
            agree += am == bm;
            for (size_t i = 0; i < V; ++i) ASSERT_TRUE(std::isfinite(b[p * V + i]));
        }
        std::printf("[ %s ] greedy top-1 agreement with bf16 on %zu positions: %d\n",
                    std::string(gguf_file_type_name(ft)).c_str(), kPrompt.size(), agree);
        EXPECT_GE(agree, static_cast<int>(kPrompt.size()) / 2) << gguf_file_type_name(ft);
    }
}

TEST_F(GgufNano, TunedW4Gs32SymCodesLandInQ4_0Exactly) {
    QdqOptions opt;
    opt.scheme = {4, 32, true};
    std::map<std::string, QuantizedTensor> layers;
    for (const char* n : {"model.layers.0.self_attn.q_proj", "model.layers.3.mlp.down_proj"}) {
        const TensorInfo& t = store_->get(std::string(n) + ".weight");
        // perturb the weights so that the "tuned" codes differ from the reference Q4_0 quantizer's
        std::vector<float> w = store_->load_f32(t.name);
        for (size_t i = 0; i < w.size(); i += 7) w[i] *= 0.8f;
        layers.emplace(n, quantize_rtn(w, t.shape[0], t.shape[1], opt, n));
    }
    TempDir dir;
    GgufExportOptions o;
    o.file_type = GgufFileType::Q4_0;
    const auto res = write_gguf_model(kModel, *store_, layers, o, dir / "t.gguf");
    const auto f = GgufFile::open(dir / "t.gguf");
    int tuned = 0;
    for (const auto& r : res.tensors) {
        if (r.source != "tuned") continue;
        ++tuned;
        const QuantizedTensor& q = layers.at(r.hf_name.substr(0, r.hf_name.size() - 7));
        EXPECT_EQ(gguf_dequantize(*f, f->tensor(r.gguf_name)), q.dequantize()) << r.gguf_name;
    }
    EXPECT_EQ(tuned, 2);
    // A scheme that does not map (gs 128) falls back to the reference quantizer of the source.
    QdqOptions g128;
    g128.scheme = {4, 128, true};
    const TensorInfo& t = store_->get("model.layers.1.mlp.up_proj.weight");
    std::map<std::string, QuantizedTensor> other;
    other.emplace("model.layers.1.mlp.up_proj",
                  quantize_rtn(store_->load_f32(t.name), t.shape[0], t.shape[1], g128, "model.layers.1.mlp.up_proj"));
    for (const auto& r : write_gguf_model(kModel, *store_, other, o, dir / "u.gguf").tensors)
        if (r.hf_name == t.name) {
            EXPECT_EQ(r.source, "rtn");
        }
    // Q8_0 from W8 sym gs32 and Q4_1 from W4 asym gs32 map too.
    QdqOptions w8;
    w8.scheme = {8, 32, true};
    const QuantizedTensor q8 = quantize_rtn(store_->load_f32(t.name), t.shape[0], t.shape[1], w8, "x");
    const auto b8 = gguf_blocks_from_quantized(q8, BlockType::Q8_0);
    ASSERT_TRUE(b8.has_value());
    std::vector<float> y(static_cast<size_t>(t.numel()));
    for (int64_t r = 0; r < t.shape[0]; ++r)
        gguf::dequantize_row(BlockType::Q8_0, b8->data() + r * gguf::row_bytes(BlockType::Q8_0, t.shape[1]), t.shape[1],
                             y.data() + r * t.shape[1]);
    EXPECT_EQ(y, q8.dequantize());
    QdqOptions a4;
    a4.scheme = {4, 32, false};
    const QuantizedTensor q41 = quantize_rtn(store_->load_f32(t.name), t.shape[0], t.shape[1], a4, "x");
    EXPECT_TRUE(gguf_blocks_from_quantized(q41, BlockType::Q4_1).has_value());
    EXPECT_FALSE(gguf_blocks_from_quantized(q41, BlockType::Q4_0).has_value());
    EXPECT_FALSE(gguf_blocks_from_quantized(q8, BlockType::Q4_K).has_value());
}

TEST_F(GgufNano, TokenizerAndConfigFromTheGgufEqualTheFolders) {
    const auto f = GgufFile::open(files_[GgufFileType::Q4_0]);
    const BpeTokenizer a = BpeTokenizer::load(kModel);
    const BpeTokenizer b = load_gguf_tokenizer(*f);
    EXPECT_EQ(a.vocab_size(), b.vocab_size());
    for (const char* s : {"Hello, world!", "  The quick brown fox\n\njumps 1234 times.",
                          "<|im_start|>user\nhi<|im_end|>\n<think>\n</think>", "Ünïcödé, 日本語, emoji \xF0\x9F\x98\x80",
                          "e\xCC\x81 (NFC)", "don't STOP'S 'll"}) {
        const auto ia = a.encode(s), ib = b.encode(s);
        EXPECT_EQ(ia, ib) << s;
        EXPECT_EQ(a.decode(ia), b.decode(ib));
    }
    EXPECT_EQ(a.is_special(8168), b.is_special(8168));

    const ModelConfig want = load_model_config(kModel);
    const ModelConfig got = gguf_model_config(*f);
    EXPECT_EQ(got.architecture, want.architecture);
    EXPECT_EQ(got.vocab_size, want.vocab_size);
    EXPECT_EQ(got.hidden_size, want.hidden_size);
    EXPECT_EQ(got.intermediate_size, want.intermediate_size);
    EXPECT_EQ(got.num_hidden_layers, want.num_hidden_layers);
    EXPECT_EQ(got.num_attention_heads, want.num_attention_heads);
    EXPECT_EQ(got.num_key_value_heads, want.num_key_value_heads);
    EXPECT_EQ(got.head_dim, want.head_dim);
    EXPECT_EQ(got.rms_norm_eps, want.rms_norm_eps);
    EXPECT_EQ(got.rope.theta, want.rope.theta);
    EXPECT_EQ(got.max_position_embeddings, want.max_position_embeddings);
    EXPECT_EQ(got.tie_word_embeddings, want.tie_word_embeddings);
    EXPECT_EQ(got.qk_norm, want.qk_norm);
    const GenerationConfig g = gguf_generation_config(*f);
    EXPECT_EQ(g.eos_token_ids, (std::vector<int>{8166, 8168}));  // <|endoftext|>, <|im_end|> as generation_config
    const TokenizerConfig tc = gguf_tokenizer_config(*f);
    EXPECT_EQ(tc.eos_token, "<|im_end|>");
    EXPECT_EQ(tc.pad_token, "<|endoftext|>");
    EXPECT_EQ(tc.chat_template, load_tokenizer_config(kModel).chat_template);
}

TEST_F(GgufNano, ExportDriverWritesOneFilePerFormat) {
    EXPECT_EQ(parse_export_formats("gguf:q4_0, gguf:Q4_K_M,gguf:q4_0"),
              (std::vector<ExportFormat>{ExportFormat::GgufQ4_0, ExportFormat::GgufQ4_K_M}));
    expect_error([] { parse_export_format("gguf:q3_k_l"); }, {"gguf:q3_k_l", "q4_k_m"});
    expect_error([] { parse_export_format("gguf"); }, {"gguf:q4_0"});
    TempDir out;
    QdqOptions opt;
    opt.scheme = {4, 32, true};
    QuantizedLayers layers;
    const std::string n = "model.layers.0.mlp.gate_proj";
    const TensorInfo& t = store_->get(n + ".weight");
    layers.emplace(n, quantize_rtn(store_->load_f32(t.name), t.shape[0], t.shape[1], opt, n));
    QuantizationConfig qc;
    qc.bits = 4;
    qc.group_size = 32;
    qc.sym = true;
    ExportOptions eo;
    eo.output_dir = out.path();
    eo.model_name = "Qwen/qwen3-nano";
    const auto res = export_model(kModel, *store_, qc, layers, {ExportFormat::GgufQ4_0, ExportFormat::GgufQ8_0}, eo);
    ASSERT_EQ(res.size(), 2u);
    EXPECT_EQ(res[0].backend, "gguf:q4_0");
    EXPECT_EQ(res[0].folder, out.path() / "qwen3-nano-w4g32" / "gguf-q4-0");
    EXPECT_EQ(res[0].files, (std::vector<std::string>{"qwen3-nano-Q4_0.gguf", "README.md"}));  // + the model card
    EXPECT_EQ(res[1].files, (std::vector<std::string>{"qwen3-nano-Q8_0.gguf", "README.md"}));
    // The folder loads as a model (find_gguf_model picks its only .gguf) and q4_0 holds the tuned codes.
    const Qwen3Model m = Qwen3Model::load(res[0].folder);
    EXPECT_EQ(m.config().num_hidden_layers, 6);
    const auto f = GgufFile::open(res[0].folder / res[0].files[0]);
    EXPECT_EQ(gguf_dequantize(*f, f->tensor("blk.0.ffn_gate.weight")), layers.at(n).dequantize());
    EXPECT_EQ(f->get_string("general.name"), "qwen3-nano");
}

TEST(GgufModelPath, FindsTheGgufOfAFolder) {
    TempDir d;
    EXPECT_FALSE(find_gguf_model(d.path()).has_value());
    EXPECT_FALSE(find_gguf_model(kModel).has_value());  // safetensors checkpoint
    GgufWriter w;
    w.set("general.architecture", GgufValue::string("llama"));
    w.write(d / "a.gguf");
    w.write(d / "mmproj-a.gguf");
    EXPECT_EQ(find_gguf_model(d.path()).value(), d / "a.gguf");
    EXPECT_EQ(find_gguf_model(d / "a.gguf").value(), d / "a.gguf");
    EXPECT_FALSE(find_gguf_model(kModel / "config.json").has_value());
    w.write(d / "b.gguf");
    expect_error([&] { find_gguf_model(d.path()); }, {"several GGUF models", "a.gguf, b.gguf"});
    // A GGUF of another architecture is refused by name.
    expect_error([&] { Qwen3Model::load(d / "a.gguf"); }, {"a.gguf", "general.architecture is 'llama'"});
}

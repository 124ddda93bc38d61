// model/gguf_checkpoint.cpp — see gguf_checkpoint.h.
#include "model/gguf_checkpoint.h"

#include <algorithm>
#include <fstream>

#include "core/error.h"
#include "export/gguf_blocks.h"

namespace fs = std::filesystem;

namespace autoround {

namespace {

bool starts_with_gguf_magic(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    char m[4] = {};
    in.read(m, 4);
    return in.gcount() == 4 && m[0] == 'G' && m[1] == 'G' && m[2] == 'U' && m[3] == 'F';
}

uint32_t u32_or(const GgufFile& f, const std::string& key, uint32_t def) { return f.opt_u32(key).value_or(def); }

int to_int(uint32_t v, const GgufFile& f, const char* key) {
    check(v <= 1u << 30, f.path().string(), ": GGUF metadata '", key, "' = ", v, " is implausibly large");
    return static_cast<int>(v);
}

// The text of token `id` from tokenizer.ggml.tokens, "" when absent.
std::string token_text(const GgufFile& f, std::optional<uint32_t> id) {
    if (!id || !f.has("tokenizer.ggml.tokens")) return "";
    const auto& toks = f.get_string_array("tokenizer.ggml.tokens");
    return *id < toks.size() ? toks[*id] : "";
}

}  // namespace

std::optional<fs::path> find_gguf_model(const fs::path& path) {
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) {
        // A .gguf name is taken at its word (a bad header then fails with the reader's message).
        if (path.extension() == ".gguf" || starts_with_gguf_magic(path)) return path;
        return std::nullopt;
    }
    if (!fs::is_directory(path, ec)) return std::nullopt;
    std::vector<fs::path> ggufs;
    for (const auto& e : fs::directory_iterator(path, ec)) {
        if (!e.is_regular_file(ec)) continue;
        const std::string name = e.path().filename().string();
        if (e.path().extension() == ".safetensors") return std::nullopt;  // a safetensors checkpoint wins
        if (e.path().extension() == ".gguf" && name.rfind("mmproj", 0) != 0) ggufs.push_back(e.path());
    }
    if (ggufs.empty()) return std::nullopt;
    if (ggufs.size() > 1) {
        std::sort(ggufs.begin(), ggufs.end());
        std::string list;
        for (const auto& g : ggufs) list += (list.empty() ? "" : ", ") + g.filename().string();
        fail(path.string(), " holds several GGUF models (", list, "); pass the .gguf file itself");
    }
    return ggufs[0];
}

ModelConfig gguf_model_config(const GgufFile& f) {
    const std::string arch = f.get_string("general.architecture");
    // qwen3vl: Qwen3-VL's language model. Run as text: with text-only positions (t = h = w) its interleaved
    // M-RoPE is the plain RoPE, so the qwen3 graph computes it exactly (images need the mmproj file: not here).
    check(arch == "qwen3" || arch == "qwen3vl", f.path().string(), ": general.architecture is '", arch,
          "'; this runtime runs qwen3 GGUF files (Qwen3ForCausalLM) and the language model of qwen3vl ones");
    const std::string p = arch + ".";
    ModelConfig c;
    c.architecture = "Qwen3ForCausalLM";
    c.family = ArchFamily::Qwen3;
    c.model_type = "qwen3";
    c.qk_norm = true;
    c.hidden_size = to_int(f.get_u32(p + "embedding_length"), f, "embedding_length");
    c.intermediate_size = to_int(f.get_u32(p + "feed_forward_length"), f, "feed_forward_length");
    c.num_hidden_layers = to_int(f.get_u32(p + "block_count"), f, "block_count");
    c.num_attention_heads = to_int(f.get_u32(p + "attention.head_count"), f, "attention.head_count");
    c.num_key_value_heads =
        to_int(u32_or(f, p + "attention.head_count_kv", static_cast<uint32_t>(c.num_attention_heads)), f, "head_count_kv");
    check(c.hidden_size > 0 && c.num_attention_heads > 0 && c.num_key_value_heads > 0 && c.num_hidden_layers > 0 &&
              c.intermediate_size > 0 && c.num_attention_heads % c.num_key_value_heads == 0,
          f.path().string(), ": inconsistent qwen3.* shape metadata (heads ", c.num_attention_heads, ", kv heads ",
          c.num_key_value_heads, ", hidden ", c.hidden_size, ")");
    c.head_dim = to_int(u32_or(f, p + "attention.key_length", static_cast<uint32_t>(c.hidden_size / c.num_attention_heads)),
                        f, "attention.key_length");
    const uint32_t vlen = u32_or(f, p + "attention.value_length", static_cast<uint32_t>(c.head_dim));
    check(static_cast<int>(vlen) == c.head_dim, f.path().string(), ": attention.value_length ", vlen,
          " differs from key_length ", c.head_dim, "; not a Qwen3 model");
    c.rms_norm_eps = f.has(p + "attention.layer_norm_rms_epsilon") ? f.get_f32(p + "attention.layer_norm_rms_epsilon") : 1e-6f;
    c.rope.theta = f.has(p + "rope.freq_base") ? f.get_f32(p + "rope.freq_base") : 10000.0;
    if (auto st = f.opt_string(p + "rope.scaling.type"); st && *st != "none") {
        check(*st == "linear", f.path().string(), ": RoPE scaling '", *st, "' is not supported (only linear)");
        c.rope.type = "linear";
        c.rope.factor = f.get_f32(p + "rope.scaling.factor");
    }
    c.max_position_embeddings = to_int(u32_or(f, p + "context_length", 32768), f, "context_length");
    const GgufTensorInfo& emb = f.tensor("token_embd.weight");
    check(emb.ne.size() == 2 && emb.ne[0] == c.hidden_size && emb.ne[1] > 0 && emb.ne[1] <= (1 << 24),
          f.path().string(), ": token_embd.weight has ne ", emb.ne_str(), ", expected [", c.hidden_size, ", vocab]");
    c.vocab_size = static_cast<int>(emb.ne[1]);
    c.tie_word_embeddings = !f.has_tensor("output.weight");
    c.dtype = "gguf";
    if (auto b = f.opt_u32("tokenizer.ggml.bos_token_id")) c.bos_token_id = static_cast<int>(*b);
    if (auto e = f.opt_u32("tokenizer.ggml.eos_token_id")) c.eos_token_ids.push_back(static_cast<int>(*e));
    return c;
}

GenerationConfig gguf_generation_config(const GgufFile& f) {
    GenerationConfig g;
    g.do_sample = false;
    if (auto e = f.opt_u32("tokenizer.ggml.eos_token_id")) g.eos_token_ids.push_back(static_cast<int>(*e));
    if (auto e = f.opt_u32("tokenizer.ggml.eot_token_id")) g.eos_token_ids.push_back(static_cast<int>(*e));
    // llama.cpp's vocab load marks these CONTROL tokens as end-of-generation by their text.
    if (f.has("tokenizer.ggml.tokens") && f.has("tokenizer.ggml.token_type")) {
        const auto& toks = f.get_string_array("tokenizer.ggml.tokens");
        const std::vector<int32_t> types = f.get_i32_array("tokenizer.ggml.token_type");
        static const char* const kEog[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                           "<EOT>", "<|end_of_text|>", "<end_of_utterance>"};
        for (size_t i = 0; i < toks.size() && i < types.size(); ++i) {
            if (types[i] != 3) continue;
            for (const char* e : kEog)
                if (toks[i] == e) g.eos_token_ids.push_back(static_cast<int>(i));
        }
    }
    std::sort(g.eos_token_ids.begin(), g.eos_token_ids.end());
    g.eos_token_ids.erase(std::unique(g.eos_token_ids.begin(), g.eos_token_ids.end()), g.eos_token_ids.end());
    if (auto b = f.opt_u32("tokenizer.ggml.bos_token_id")) g.bos_token_id = static_cast<int>(*b);
    if (auto p = f.opt_u32("tokenizer.ggml.padding_token_id")) g.pad_token_id = static_cast<int>(*p);
    return g;
}

TokenizerConfig gguf_tokenizer_config(const GgufFile& f) {
    TokenizerConfig t;
    t.chat_template = f.opt_string("tokenizer.chat_template");
    t.eos_token = token_text(f, f.opt_u32("tokenizer.ggml.eos_token_id"));
    t.pad_token = token_text(f, f.opt_u32("tokenizer.ggml.padding_token_id"));
    // Qwen's tokenizer_config has bos_token null; GGUF always has an id. Report it only when BOS is added.
    if (f.has("tokenizer.ggml.add_bos_token") && f.get_bool("tokenizer.ggml.add_bos_token")) {
        t.add_bos_token = true;
        t.bos_token = token_text(f, f.opt_u32("tokenizer.ggml.bos_token_id"));
    }
    t.tokenizer_class = "gguf:" + f.opt_string("tokenizer.ggml.model").value_or("");
    return t;
}

std::vector<float> gguf_dequantize(const GgufFile& f, const GgufTensorInfo& t) {
    check(gguf::is_supported(t.type), f.path().string(), ": tensor '", t.name, "' has type ", ggml_type_name(t.type),
          "; this runtime reads F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K and Q6_K GGUF tensors");
    const auto type = static_cast<gguf::BlockType>(t.type);
    const int64_t ne0 = t.ne[0], rows = t.rows();
    std::vector<float> out(static_cast<size_t>(ne0 * rows));
    const int64_t rb = gguf::row_bytes(type, ne0);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) gguf::dequantize_row(type, t.data + r * rb, ne0, out.data() + r * ne0);
    return out;
}

WeightView gguf_weight_view(const GgufFile& f, const GgufTensorInfo& t, int64_t out, int64_t in) {
    check(t.ne.size() == 2 && t.ne[0] == in && t.ne[1] == out, f.path().string(), ": tensor '", t.name, "' has ne ",
          t.ne_str(), ", expected [", in, ", ", out, "] from the qwen3.* metadata");
    check(gguf::is_supported(t.type), f.path().string(), ": tensor '", t.name, "' has type ", ggml_type_name(t.type),
          "; this runtime reads F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K and Q6_K GGUF tensors");
    const auto type = static_cast<gguf::BlockType>(t.type);
    switch (type) {
        case gguf::BlockType::F32: return WeightView{DType::F32, t.data, out, in};
        case gguf::BlockType::F16: return WeightView{DType::F16, t.data, out, in};
        case gguf::BlockType::BF16: return WeightView{DType::BF16, t.data, out, in};
        default: return packed_weight_view(f.path().string() + ": tensor '" + t.name + "'", type, t.data, out, in);
    }
}

}  // namespace autoround

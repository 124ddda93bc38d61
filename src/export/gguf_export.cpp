// export/gguf_export.cpp — see gguf_export.h. Metadata follows convert_hf_to_gguf.py for Qwen3 (§5.2:
// gguf-py's get_vocab_base token list / types, SpecialVocab's special ids, merges, chat template), tensor
// names §5.3, the type mix of llama-quantize's llama_tensor_get_type §5.6; payloads are quantized row by
// row (OpenMP over rows) with export/gguf_blocks.h, one tensor in memory at a time.
#include "export/gguf_export.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/bf16.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/model_config.h"
#include "quant/gguf_double_quant.h"

namespace fs = std::filesystem;

namespace autoround {

using gguf::BlockType;

namespace {

using json = nlohmann::json;

struct FileTypeInfo {
    GgufFileType t;
    const char* name;   // lower case
    const char* label;  // llama.cpp's spelling
    uint32_t id;        // general.file_type
    BlockType base;
};
const FileTypeInfo kFileTypes[] = {
    {GgufFileType::F32, "f32", "F32", 0, BlockType::F32},
    {GgufFileType::F16, "f16", "F16", 1, BlockType::F16},
    {GgufFileType::BF16, "bf16", "BF16", 32, BlockType::BF16},
    {GgufFileType::Q4_0, "q4_0", "Q4_0", 2, BlockType::Q4_0},
    {GgufFileType::Q4_1, "q4_1", "Q4_1", 3, BlockType::Q4_1},
    {GgufFileType::Q8_0, "q8_0", "Q8_0", 7, BlockType::Q8_0},
    {GgufFileType::Q4_K_S, "q4_k_s", "Q4_K_S", 14, BlockType::Q4_K},
    {GgufFileType::Q4_K_M, "q4_k_m", "Q4_K_M", 15, BlockType::Q4_K},
    {GgufFileType::Q6_K, "q6_k", "Q6_K", 18, BlockType::Q6_K},
};

const FileTypeInfo& info(GgufFileType t) {
    for (const auto& i : kFileTypes)
        if (i.t == t) return i;
    fail("gguf: unknown file type");
}

bool is_float_type(BlockType t) { return t == BlockType::F32 || t == BlockType::F16 || t == BlockType::BF16; }

// llama-quantize's use_more_bits (§5.6).
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

bool ends_with(const std::string& s, std::string_view suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// Block index of a GGUF name "blk.N.xxx", -1 otherwise.
int layer_of(const std::string& gguf_name) {
    if (gguf_name.rfind("blk.", 0) != 0) return -1;
    return std::atoi(gguf_name.c_str() + 4);
}

// gguf-py's does_token_look_special.
bool looks_special(const std::string& t) {
    auto wrapped = [&](std::string_view a, std::string_view b) {
        return t.size() >= a.size() + b.size() && t.compare(0, a.size(), a) == 0 &&
               t.compare(t.size() - b.size(), b.size(), b) == 0;
    };
    return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || wrapped("<|", "|>") ||
           wrapped("<\xEF\xBD\x9C", "\xEF\xBD\x9C>") || wrapped("<start_of_", ">");
}

// The tokenizer side of the metadata, from tokenizer.json + tokenizer_config.json + config.json.
struct VocabMeta {
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    std::vector<std::string> merges;
    std::map<std::string, uint32_t> special_ids;   // "bos" / "eos" / "pad" / "unk" -> id
    std::optional<bool> add_bos;
    std::optional<std::string> chat_template;
};

json read_json(const fs::path& p) { return read_json_file(p); }

VocabMeta read_vocab(const fs::path& dir, const ModelConfig& cfg) {
    const fs::path tj = dir / "tokenizer.json";
    std::error_code ec;
    check(fs::exists(tj, ec), "GGUF export: ", dir.string(), " has no tokenizer.json; the GGUF needs the tokenizer "
          "(tokenizer.ggml.tokens / merges); copy it from the original model");
    const json t = read_json(tj);
    const std::string label = tj.string();
    check(t.is_object() && t.contains("model") && t["model"].is_object(), label, ": no \"model\" object");
    const json& m = t["model"];
    check(!m.contains("type") || (m["type"].is_string() && m["type"] == "BPE"), label,
          ": only BPE (byte-level) tokenizers can be written to GGUF (tokenizer.ggml.model gpt2)");
    check(m.contains("vocab") && m["vocab"].is_object(), label, ": model.vocab is missing");
    check(m.contains("merges") && m["merges"].is_array(), label, ": model.merges is missing (llama.cpp needs merges)");

    const int64_t V = cfg.vocab_size;
    std::vector<std::string> by_id(static_cast<size_t>(V));
    std::vector<uint8_t> have(static_cast<size_t>(V), 0);
    for (const auto& [tok, idj] : m["vocab"].items()) {
        check(idj.is_number_integer(), label, ": model.vocab[\"", tok, "\"] is not an integer id");
        const int64_t id = idj.get<int64_t>();
        check(id >= 0 && id < V, label, ": token \"", tok, "\" has id ", id, ", outside config.json vocab_size ", V,
              "; the tokenizer does not belong to this model");
        by_id[static_cast<size_t>(id)] = tok;
        have[static_cast<size_t>(id)] = 1;
    }
    struct Added {
        bool special;
    };
    std::map<int64_t, Added> added;
    std::map<std::string, int64_t> added_by_content;
    if (t.contains("added_tokens") && t["added_tokens"].is_array()) {
        for (const json& a : t["added_tokens"]) {
            check(a.is_object() && a.contains("id") && a["id"].is_number_integer() && a.contains("content") &&
                      a["content"].is_string(),
                  label, ": added_tokens entries need an integer id and a string content");
            const int64_t id = a["id"].get<int64_t>();
            check(id >= 0 && id < V, label, ": added token ", a["content"].get<std::string>(), " has id ", id,
                  ", outside config.json vocab_size ", V);
            by_id[static_cast<size_t>(id)] = a["content"].get<std::string>();
            have[static_cast<size_t>(id)] = 1;
            added[id] = {a.value("special", false)};
            added_by_content[a["content"].get<std::string>()] = id;
        }
    }

    VocabMeta v;
    v.tokens.resize(static_cast<size_t>(V));
    v.types.resize(static_cast<size_t>(V));
    for (int64_t i = 0; i < V; ++i) {
        const size_t k = static_cast<size_t>(i);
        if (!have[k]) {
            v.tokens[k] = "[PAD" + std::to_string(i) + "]";
            v.types[k] = 5;  // UNUSED
            continue;
        }
        v.tokens[k] = by_id[k];
        auto it = added.find(i);
        if (it == added.end()) v.types[k] = 1;                                           // NORMAL
        else if (it->second.special || looks_special(by_id[k])) v.types[k] = 3;          // CONTROL
        else v.types[k] = 4;                                                             // USER_DEFINED
    }
    for (const json& mj : m["merges"]) {
        if (mj.is_string()) {
            v.merges.push_back(mj.get<std::string>());
        } else {
            check(mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string(), label,
                  ": model.merges entries must be \"a b\" strings or [a, b] pairs");
            auto part = [](std::string s) {  // literal spaces -> U+0120, as gguf-py does
                std::string o;
                for (char c : s) o += c == ' ' ? std::string("\xC4\xA0") : std::string(1, c);
                return o;
            };
            v.merges.push_back(part(mj[0].get<std::string>()) + " " + part(mj[1].get<std::string>()));
        }
    }

    // Special ids (gguf-py SpecialVocab): tokenizer_config.json <kind>_token first, then config.json <kind>_token_id.
    const TokenizerConfig tc = load_tokenizer_config(dir);
    auto id_of = [&](const std::string& text) -> std::optional<uint32_t> {
        if (text.empty()) return std::nullopt;
        if (auto it = added_by_content.find(text); it != added_by_content.end()) return static_cast<uint32_t>(it->second);
        for (int64_t i = 0; i < V; ++i)
            if (have[static_cast<size_t>(i)] && by_id[static_cast<size_t>(i)] == text) return static_cast<uint32_t>(i);
        return std::nullopt;
    };
    if (auto id = id_of(tc.bos_token)) v.special_ids["bos"] = *id;
    if (auto id = id_of(tc.eos_token)) v.special_ids["eos"] = *id;
    if (auto id = id_of(tc.pad_token)) v.special_ids["pad"] = *id;
    if (!v.special_ids.count("bos") && cfg.bos_token_id && *cfg.bos_token_id >= 0)
        v.special_ids["bos"] = static_cast<uint32_t>(*cfg.bos_token_id);
    if (!v.special_ids.count("eos") && !cfg.eos_token_ids.empty() && cfg.eos_token_ids[0] >= 0)
        v.special_ids["eos"] = static_cast<uint32_t>(cfg.eos_token_ids[0]);
    const fs::path tcp = dir / "tokenizer_config.json";
    if (fs::exists(tcp, ec)) {
        const json tcj = read_json(tcp);
        if (tcj.is_object() && tcj.contains("add_bos_token") && tcj["add_bos_token"].is_boolean())
            v.add_bos = tcj["add_bos_token"].get<bool>();
    }
    v.chat_template = tc.chat_template;
    return v;
}

struct Source {
    ModelConfig cfg;
    bool has_output = false;
    std::string arch = "qwen3";      // general.architecture: qwen3, or qwen3vl for Qwen3-VL's language model
    int n_deepstack = 0;             // qwen3vl: vision_config.deepstack_visual_indexes count
};

bool is_vision_tensor(const std::string& name) { return name.rfind("model.visual.", 0) == 0; }

Source inspect(const fs::path& dir, const TensorStore& st) {
    Source s;
    s.cfg = load_model_config(dir);
    const ModelConfig& c = s.cfg;
    check(c.architecture == "Qwen3ForCausalLM" || c.architecture == "Qwen3VLForConditionalGeneration", "GGUF export: ",
          (dir / "config.json").string(), " is ", c.architecture, "; the GGUF writer supports Qwen3ForCausalLM "
          "(general.architecture qwen3) and Qwen3VLForConditionalGeneration (qwen3vl + an mmproj file)");
    if (c.vision_language) {
        s.arch = "qwen3vl";
        check(c.mrope_section.size() == 3, "GGUF export: ", (dir / "config.json").string(),
              " has no 3-entry mrope_section in text_config.rope_parameters; qwen3vl GGUF needs it");
        const json j = read_json(dir / "config.json");
        if (j.contains("vision_config") && j["vision_config"].contains("deepstack_visual_indexes") &&
            j["vision_config"]["deepstack_visual_indexes"].is_array())
            s.n_deepstack = static_cast<int>(j["vision_config"]["deepstack_visual_indexes"].size());
    }
    check(c.rope.type == "default" || c.rope.type == "linear", "GGUF export: rope type '", c.rope.type,
          "' has no qwen3 GGUF encoding here; only default and linear RoPE");
    s.has_output = st.has("lm_head.weight");
    for (const auto& [name, t] : st.tensors()) {
        if (c.vision_language && is_vision_tensor(name)) continue;  // the vision tower goes to the mmproj file
        const auto g = gguf_tensor_name(name);
        check(g.has_value(), "GGUF export: tensor ", name, " has no Qwen3 GGUF name (checkpoint-formats.md §5.3); "
              "the checkpoint is not a plain Qwen3 model");
        check(t.dtype == DType::BF16 || t.dtype == DType::F16 || t.dtype == DType::F32, "GGUF export: tensor ", name,
              " is ", dtype_name(t.dtype), "; only BF16, F16 and F32 source tensors can be written (export from the "
              "original 16-bit model)");
        check(t.shape.size() == 1 || t.shape.size() == 2, "GGUF export: tensor ", name, " has ", t.shape.size(),
              " dimensions; expected 1 or 2");
    }
    const std::string emb = c.text_prefix + "embed_tokens.weight";
    check(st.has(emb), "GGUF export: the checkpoint has no ", emb);
    const TensorInfo& e = st.get(emb);
    check(e.shape.size() == 2 && e.shape[0] == c.vocab_size && e.shape[1] == c.hidden_size, "GGUF export: ",
          emb, " is ", e.shape_str(), ", config.json says [", c.vocab_size, ", ", c.hidden_size, "]");
    return s;
}

// Row r of a 2-D (or the whole 1-D) source tensor as float32.
void source_row(const TensorInfo& t, int64_t r, int64_t n, float* out) {
    const uint8_t* p = t.data + static_cast<size_t>(r * n) * dtype_size(t.dtype);
    switch (t.dtype) {
        case DType::F32: std::memcpy(out, p, static_cast<size_t>(n) * 4); return;
        case DType::BF16:
            for (int64_t i = 0; i < n; ++i) {
                uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                out[i] = bf16_to_float(h);
            }
            return;
        case DType::F16:
            for (int64_t i = 0; i < n; ++i) {
                uint16_t h;
                std::memcpy(&h, p + 2 * i, 2);
                out[i] = fp16_to_float(h);
            }
            return;
        default: fail("GGUF export: tensor ", t.name, " has unsupported dtype ", dtype_name(t.dtype));
    }
}

// HF tensor names in GGUF writing order: token_embd, blocks (§5.3 order), output_norm, output.
std::vector<std::string> ordered_names(const TensorStore& st, int n_layers, const std::string& pre, bool skip_vision) {
    std::vector<std::string> out;
    std::set<std::string> used;
    auto add = [&](const std::string& n) {
        if (st.has(n) && used.insert(n).second) out.push_back(n);
    };
    add(pre + "embed_tokens.weight");
    static const char* const kBlock[] = {
        "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight",
        "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias", "self_attn.o_proj.weight",
        "self_attn.q_norm.weight", "self_attn.k_norm.weight", "post_attention_layernorm.weight", "mlp.gate_proj.weight",
        "mlp.up_proj.weight", "mlp.down_proj.weight"};
    for (int l = 0; l < n_layers; ++l)
        for (const char* s : kBlock) add(pre + "layers." + std::to_string(l) + "." + s);
    add(pre + "norm.weight");
    add("lm_head.weight");
    for (const std::string& n : st.names())  // anything else (validated to have a GGUF name)
        if (!(skip_vision && is_vision_tensor(n))) add(n);
    return out;
}

}  // namespace

// ---- names and types ------------------------------------------------------------------------------------

GgufFileType parse_gguf_file_type(std::string_view name) {
    std::string s(name);
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    if (s == "fp16" || s == "float16") s = "f16";
    if (s == "bfloat16") s = "bf16";
    if (s == "fp32" || s == "float32") s = "f32";
    for (const auto& i : kFileTypes)
        if (s == i.name) return i.t;
    fail("--format gguf:", std::string(name), " is not supported; choose gguf: followed by one of ",
         gguf_supported_file_types());
}

std::string_view gguf_file_type_name(GgufFileType t) { return info(t).name; }
std::string_view gguf_file_type_label(GgufFileType t) { return info(t).label; }
uint32_t gguf_file_type_id(GgufFileType t) { return info(t).id; }
const char* gguf_supported_file_types() { return "f32, f16, bf16, q4_0, q4_1, q8_0, q4_k_s, q4_k_m, q6_k"; }

std::optional<std::string> gguf_tensor_name(const std::string& hf_name) {
    // Qwen3-VL's language model lives under model.language_model.; its GGUF names are the qwen3 ones
    const std::string vl = "model.language_model.";
    const std::string hf = hf_name.rfind(vl, 0) == 0 ? "model." + hf_name.substr(vl.size()) : hf_name;
    if (hf == "model.embed_tokens.weight") return "token_embd.weight";
    if (hf == "model.norm.weight") return "output_norm.weight";
    if (hf == "lm_head.weight") return "output.weight";
    const std::string pre = "model.layers.";
    if (hf.rfind(pre, 0) != 0) return std::nullopt;
    size_t p = pre.size(), e = p;
    while (e < hf.size() && std::isdigit(static_cast<unsigned char>(hf[e]))) ++e;
    if (e == p || e >= hf.size() || hf[e] != '.') return std::nullopt;
    const std::string idx = hf.substr(p, e - p), rest = hf.substr(e + 1);
    static const std::pair<const char*, const char*> kMap[] = {
        {"input_layernorm.weight", "attn_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.o_proj.weight", "attn_output.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.bias", "attn_v.bias"},
        {"self_attn.q_norm.weight", "attn_q_norm.weight"},
        {"self_attn.k_norm.weight", "attn_k_norm.weight"},
        {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"},
    };
    for (const auto& [h, g] : kMap)
        if (rest == h) return "blk." + idx + "." + g;
    return std::nullopt;
}

BlockType gguf_tensor_type(GgufFileType ft, const std::string& name, int layer, int n_layers, bool has_output,
                           int64_t ne0) {
    const BlockType base = info(ft).base;
    BlockType t = base;
    if (!is_float_type(base)) {
        const bool is_output = name == "output.weight" || (!has_output && name == "token_embd.weight");
        if (is_output) {
            // llama_tensor_get_type: Q8_0 when the row does not fit 256-blocks, else Q6_K unless the base is Q8_0.
            if (ne0 % gguf::kQKK != 0) t = BlockType::Q8_0;
            else if (base != BlockType::Q8_0) t = BlockType::Q6_K;
        } else if (ft == GgufFileType::Q4_K_M && (ends_with(name, ".attn_v.weight") || ends_with(name, ".ffn_down.weight"))) {
            if (layer >= 0 && use_more_bits(layer, n_layers)) t = BlockType::Q6_K;
        } else if (ft == GgufFileType::Q4_K_S && layer >= 0) {
            // attn_v of the first 4 layers, ffn_down of the first n/8 layers -> Q5_K.
            if (ends_with(name, ".attn_v.weight") && layer < 4) t = BlockType::Q5_K;
            if (ends_with(name, ".ffn_down.weight") && layer < n_layers / 8) t = BlockType::Q5_K;
        }
    }
    // Rows that are not whole blocks: llama-quantize falls back to a 32-block type (Q5_0 for Q4_K, Q8_0 for
    // Q6_K); Q5_0 is not implemented here, so both fall back to Q8_0, and 32-block types to F16.
    if (ne0 % gguf::block_elems(t) != 0) t = (ne0 % gguf::kQK == 0) ? BlockType::Q8_0 : BlockType::F16;
    return t;
}

namespace {
// Whether q's scheme is exactly one of the GGUF 32-blocks (see gguf_blocks_from_quantized).
bool maps_onto(const QuantizedTensor& q, BlockType t) {
    if (q.double_quant()) {  // k-quant super-blocks (quant/gguf_double_quant.h)
        const std::optional<LayerScheme> s = gguf_block_scheme(t);
        return s && is_double_quant(*s) && q.bits == s->bits && q.group_len() == s->group_size && q.sym == s->sym &&
               q.dq_super_group == s->super_group_size && q.in_features % gguf::kQKK == 0;
    }
    if (q.group_len() != gguf::kQK || q.in_features % gguf::kQK != 0) return false;
    if (t == BlockType::Q4_0 || t == BlockType::Q8_0) {
        const int bits = t == BlockType::Q4_0 ? 4 : 8;
        if (q.bits != bits || !q.sym || !q.float_zeros.empty()) return false;
        for (int32_t z : q.zeros)
            if (z != (1 << (bits - 1))) return false;
        return true;
    }
    return t == BlockType::Q4_1 && q.bits == 4 && !q.sym;
}
}  // namespace

std::optional<std::vector<uint8_t>> gguf_blocks_from_quantized(const QuantizedTensor& q, BlockType t) {
    if (q.double_quant()) return dq_blocks_from_tensor(q, t);  // k-quants: quant/gguf_double_quant.h
    if (!maps_onto(q, t)) return std::nullopt;
    const int64_t N = q.out_features, K = q.in_features, ng = K / gguf::kQK;
    const int64_t rb = gguf::row_bytes(t, K);
    std::vector<uint8_t> out;
    if (t == BlockType::Q4_0) {
        out.resize(static_cast<size_t>(N * rb));
        for (int64_t r = 0; r < N; ++r)
            for (int64_t g = 0; g < ng; ++g) {
                gguf::BlockQ4_0 b{};
                b.d = float_to_fp16(q.scales[static_cast<size_t>(r * ng + g)]);
                const uint8_t* c = q.codes.data() + r * K + g * gguf::kQK;
                for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>((c[j] & 0xF) | ((c[j + 16] & 0xF) << 4));
                std::memcpy(out.data() + r * rb + g * 18, &b, 18);
            }
        return out;
    }
    if (t == BlockType::Q8_0) {
        out.resize(static_cast<size_t>(N * rb));
        for (int64_t r = 0; r < N; ++r)
            for (int64_t g = 0; g < ng; ++g) {
                gguf::BlockQ8_0 b{};
                b.d = float_to_fp16(q.scales[static_cast<size_t>(r * ng + g)]);
                const uint8_t* c = q.codes.data() + r * K + g * gguf::kQK;
                for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(static_cast<int>(c[j]) - 128);
                std::memcpy(out.data() + r * rb + g * 34, &b, 34);
            }
        return out;
    }
    {  // Q4_1
        out.resize(static_cast<size_t>(N * rb));
        for (int64_t r = 0; r < N; ++r)
            for (int64_t g = 0; g < ng; ++g) {
                const size_t gi = static_cast<size_t>(r * ng + g);
                const float s = q.scales[gi];
                const float z = q.float_zeros.empty() ? static_cast<float>(q.zeros[gi]) : q.float_zeros[gi];
                gguf::BlockQ4_1 b{};
                b.d = float_to_fp16(s);
                b.m = float_to_fp16(-s * z);  // w = s*(q - z) = s*q + m
                const uint8_t* c = q.codes.data() + r * K + g * gguf::kQK;
                for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>((c[j] & 0xF) | ((c[j + 16] & 0xF) << 4));
                std::memcpy(out.data() + r * rb + g * 20, &b, 20);
            }
        return out;
    }
}

std::string gguf_model_basename(const std::string& model_name_or_path) {
    std::string name = model_name_or_path;
    while (!name.empty() && name.back() == '/') name.pop_back();
    const size_t slash = name.find_last_of('/');
    std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
    if (base.find_first_not_of('.') == std::string::npos) base = "model";
    return base;
}

std::string gguf_file_name(const std::string& model_name_or_path, GgufFileType t) {
    return gguf_model_basename(model_name_or_path) + "-" + std::string(gguf_file_type_label(t)) + ".gguf";
}

// ---- export ----------------------------------------------------------------------------------------------

namespace {

struct PlannedTensor {
    std::string hf, gguf;
    const TensorInfo* t = nullptr;
    std::vector<int64_t> ne;
    BlockType type = BlockType::F32;
    const GgufPackedTensor* packed = nullptr;
    const QuantizedTensor* tuned = nullptr;  // maps exactly onto `type`
};

std::vector<PlannedTensor> plan_tensors(const Source& s, const TensorStore& st,
                                        const std::map<std::string, QuantizedTensor>& layers, const GgufExportOptions& o) {
    std::vector<PlannedTensor> out;
    std::set<std::string> packed_used;
    for (const std::string& hf : ordered_names(st, s.cfg.num_hidden_layers, s.cfg.text_prefix, s.cfg.vision_language)) {
        const TensorInfo& t = st.get(hf);
        PlannedTensor p;
        p.hf = hf;
        p.gguf = *gguf_tensor_name(hf);
        p.t = &t;
        p.ne.assign(t.shape.rbegin(), t.shape.rend());
        if (t.shape.size() == 1) {
            p.type = BlockType::F32;
        } else {
            p.type = gguf_tensor_type(o.file_type, p.gguf, layer_of(p.gguf), s.cfg.num_hidden_layers, s.has_output, p.ne[0]);
            const std::string layer = ends_with(hf, ".weight") ? hf.substr(0, hf.size() - 7) : hf;
            if (auto it = o.packed.find(layer); it != o.packed.end()) {
                const int64_t want = gguf::row_bytes(it->second.type, p.ne[0]) * p.ne[1];
                check(static_cast<int64_t>(it->second.bytes.size()) == want, "GGUF export: packed blocks for ", layer,
                      " hold ", it->second.bytes.size(), " bytes; ", gguf::block_type_name(it->second.type), " ",
                      t.shape_str(), " needs ", want);
                p.packed = &it->second;
                p.type = it->second.type;
                packed_used.insert(layer);
            } else if (auto lt = layers.find(layer); lt != layers.end()) {
                const QuantizedTensor& q = lt->second;
                check(q.out_features == t.shape[0] && q.in_features == t.shape[1], "GGUF export: tuned layer ", layer,
                      " is [", q.out_features, ", ", q.in_features, "] but the source tensor is ", t.shape_str());
                if (!is_float_type(p.type)) {
                    // The blocks themselves are built when the tensor is written.
                    if (maps_onto(q, p.type)) p.tuned = &q;
                }
            }
        }
        out.push_back(std::move(p));
    }
    for (const auto& [name, pk] : o.packed)
        check(packed_used.count(name), "GGUF export: packed blocks were given for ", name,
              ", which is not a 2-D tensor of the checkpoint");
    return out;
}

void add_metadata(GgufWriter& w, const Source& s, const VocabMeta& v, const GgufExportOptions& o, const fs::path& dir) {
    const ModelConfig& c = s.cfg;
    const std::string a = s.arch, p = a + ".";
    w.set("general.architecture", GgufValue::string(a));
    w.set("general.type", GgufValue::string("model"));
    w.set("general.name", GgufValue::string(o.model_name.empty() ? gguf_model_basename(fs::absolute(dir).lexically_normal().string())
                                                                  : gguf_model_basename(o.model_name)));
    w.set("general.quantization_version", GgufValue::u32(2));
    w.set("general.file_type", GgufValue::u32(gguf_file_type_id(o.file_type)));
    w.set(p + "block_count", GgufValue::u32(static_cast<uint32_t>(c.num_hidden_layers)));
    w.set(p + "context_length", GgufValue::u32(static_cast<uint32_t>(c.max_position_embeddings)));
    w.set(p + "embedding_length", GgufValue::u32(static_cast<uint32_t>(c.hidden_size)));
    w.set(p + "feed_forward_length", GgufValue::u32(static_cast<uint32_t>(c.intermediate_size)));
    w.set(p + "attention.head_count", GgufValue::u32(static_cast<uint32_t>(c.num_attention_heads)));
    w.set(p + "attention.head_count_kv", GgufValue::u32(static_cast<uint32_t>(c.num_key_value_heads)));
    w.set(p + "attention.key_length", GgufValue::u32(static_cast<uint32_t>(c.head_dim)));
    w.set(p + "attention.value_length", GgufValue::u32(static_cast<uint32_t>(c.head_dim)));
    w.set(p + "rope.freq_base", GgufValue::f32(static_cast<float>(c.rope.theta)));
    w.set(p + "attention.layer_norm_rms_epsilon", GgufValue::f32(c.rms_norm_eps));
    if (c.rope.type == "linear") {
        w.set(p + "rope.scaling.type", GgufValue::string("linear"));
        w.set(p + "rope.scaling.factor", GgufValue::f32(static_cast<float>(c.rope.factor)));
    }
    if (a == "qwen3vl") {
        // interleaved M-RoPE sections [t, h, w] padded to 4 (llama.cpp requires the key for qwen3vl), and the
        // DeepStack count: the model's input rows are n_embd x (1 + n_deepstack) wide, matching the mmproj output
        std::vector<int32_t> sec(c.mrope_section.begin(), c.mrope_section.end());
        sec.resize(4, 0);
        w.set(p + "rope.dimension_sections", GgufValue::i32_array(sec));
        w.set(p + "n_deepstack_layers", GgufValue::u32(static_cast<uint32_t>(s.n_deepstack)));
    }
    w.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
    w.set("tokenizer.ggml.pre", GgufValue::string("qwen2"));
    w.set("tokenizer.ggml.tokens", GgufValue::string_array(v.tokens));
    w.set("tokenizer.ggml.token_type", GgufValue::i32_array(v.types));
    w.set("tokenizer.ggml.merges", GgufValue::string_array(v.merges));
    for (const char* kind : {"eos", "pad", "bos", "unk"}) {
        auto it = v.special_ids.find(kind);
        if (it == v.special_ids.end()) continue;
        const std::string key = std::string("tokenizer.ggml.") + (std::string(kind) == "pad" ? "padding" : kind) + "_token_id";
        w.set(key, GgufValue::u32(it->second));
    }
    if (v.add_bos) w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(*v.add_bos));
    if (v.chat_template) w.set("tokenizer.chat_template", GgufValue::string(*v.chat_template));
}

}  // namespace

void validate_gguf_export(const fs::path& source_dir, const TensorStore& source,
                          const std::map<std::string, QuantizedTensor>& layers, const GgufExportOptions& o) {
    const Source s = inspect(source_dir, source);
    (void)plan_tensors(s, source, layers, o);
    const fs::path tj = source_dir / "tokenizer.json";
    std::error_code ec;
    check(fs::exists(tj, ec), "GGUF export: ", source_dir.string(), " has no tokenizer.json; the GGUF needs the ",
          "tokenizer (tokenizer.ggml.tokens / merges); copy it from the original model");
}

GgufExportResult write_gguf_model(const fs::path& source_dir, const TensorStore& source,
                                  const std::map<std::string, QuantizedTensor>& layers, const GgufExportOptions& o,
                                  const fs::path& out_file) {
    const Source s = inspect(source_dir, source);
    const std::vector<PlannedTensor> plan = plan_tensors(s, source, layers, o);
    const VocabMeta vocab = read_vocab(source_dir, s.cfg);

    GgufWriter w;
    add_metadata(w, s, vocab, o, source_dir);
    GgufExportResult res;
    res.file = out_file;
    for (const PlannedTensor& p : plan) {
        GgufTensorRecord rec{p.gguf, p.hf, p.type, p.ne, ""};
        const TensorInfo* t = p.t;
        const BlockType type = p.type;
        if (p.packed) {
            rec.source = "packed";
            w.add_tensor(p.gguf, p.ne, static_cast<uint32_t>(type), p.packed->bytes);
        } else if (p.tuned) {
            rec.source = "tuned";
            const QuantizedTensor* q = p.tuned;
            w.add_tensor(p.gguf, p.ne, static_cast<uint32_t>(type), [q, type](uint8_t* dst, size_t n) {
                std::optional<std::vector<uint8_t>> b = gguf_blocks_from_quantized(*q, type);
                check(b && b->size() == n, "GGUF export: layer ", q->name, " cannot be stored as ",
                      gguf::block_type_name(type), " without re-quantization");
                std::memcpy(dst, b->data(), n);
            });
        } else {
            const bool same_float = (type == BlockType::F32 && t->dtype == DType::F32) ||
                                    (type == BlockType::F16 && t->dtype == DType::F16) ||
                                    (type == BlockType::BF16 && t->dtype == DType::BF16);
            rec.source = is_float_type(type) ? "convert" : "rtn";
            const int64_t ne0 = p.ne[0], rows = t->numel() / std::max<int64_t>(1, ne0);
            w.add_tensor(p.gguf, p.ne, static_cast<uint32_t>(type), [t, type, ne0, rows, same_float](uint8_t* dst, size_t n) {
                if (same_float) {
                    std::memcpy(dst, t->data, n);
                    return;
                }
                const int64_t rb = gguf::row_bytes(type, ne0);
                check(rb * rows == static_cast<int64_t>(n), "GGUF export: internal size mismatch for ", t->name);
                int overflow_row = -1;
#pragma omp parallel
                {
                    std::vector<float> row(static_cast<size_t>(ne0));
#pragma omp for schedule(dynamic, 16)
                    for (int64_t r = 0; r < rows; ++r) {
                        source_row(*t, r, ne0, row.data());
                        gguf::quantize_row(type, row.data(), ne0, dst + r * rb);
                        if (type == BlockType::F16) {
                            for (int64_t i = 0; i < ne0; ++i) {
                                uint16_t h;
                                std::memcpy(&h, dst + r * rb + 2 * i, 2);
                                if ((h & 0x7c00u) == 0x7c00u && std::isfinite(row[static_cast<size_t>(i)])) {
#pragma omp critical
                                    overflow_row = static_cast<int>(r);
                                }
                            }
                        }
                    }
                }
                check(overflow_row < 0, "GGUF export: tensor ", t->name, " row ", overflow_row,
                      " has values beyond the float16 range; export gguf:bf16 instead of f16");
            });
        }
        res.tensors.push_back(std::move(rec));
    }
    w.write(out_file);
    return res;
}

}  // namespace autoround

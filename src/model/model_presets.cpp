// model/model_presets.cpp — see model_presets.h.
#include "model/model_presets.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/bf16.h"
#include "core/error.h"
#include "io/model_config.h"
#include "model/qwen3_vl_vision.h"

namespace autoround {
namespace {

struct Preset {
    const char* name;
    int hidden, inter, layers, heads, kv, vocab;
    bool tied;
    double theta;
};

// Qwen3 dense family (public config.json values; head_dim 128 throughout).
constexpr Preset kPresets[] = {
    {"qwen3-0.6b", 1024, 3072, 28, 16, 8, 151936, true, 1e6},
    {"qwen3-1.7b", 2048, 6144, 28, 16, 8, 151936, true, 1e6},
    {"qwen3-4b", 2560, 9728, 36, 32, 8, 151936, true, 5e6},
    {"qwen3-8b", 4096, 12288, 36, 32, 8, 151936, false, 1e6},
    {"qwen3-nano-like", 512, 1280, 6, 4, 2, 8192, true, 1e6},
};

// Qwen3-VL (qwen3-architecture.md §2.1; head_dim 128, mrope_section [24, 20, 20], rope_theta 5e6,
// vision: in_channels 3, patch 16, temporal 2, merge 2, gelu_pytorch_tanh, vision rope theta 1e4).
struct VlPreset {
    const char* name;
    int hidden, inter, layers, heads, kv, vocab, max_pos;
    bool tied;
    int v_depth, v_hidden, v_heads, v_inter, v_pos;
    std::vector<int> deepstack;
    int bos, eos, image, video, vstart, vend;
};

const std::vector<VlPreset>& vl_presets() {
    static const std::vector<VlPreset> v = {
        {"qwen3-vl-8b", 4096, 12288, 36, 32, 8, 151936, 262144, false, 27, 1152, 16, 4304, 2304, {8, 16, 24},
         151643, 151645, 151655, 151656, 151652, 151653},
        {"qwen3-vl-4b", 2560, 9728, 36, 32, 8, 151936, 262144, true, 24, 1024, 16, 4096, 2304, {5, 11, 17},
         151643, 151645, 151655, 151656, 151652, 151653},
        // The shapes and token ids of ../shared/models/qwen3-vl-nano (its tokenizer fits).
        {"qwen3-vl-nano-shape", 512, 1280, 6, 4, 2, 8192, 4096, false, 4, 128, 2, 256, 256, {1, 2},
         8166, 8168, 8178, 8179, 8175, 8176},
    };
    return v;
}

// splitmix64 -> two uniforms -> Box-Muller normal.
struct Rng {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform() { return (double(next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
};

// Elements are generated in chunks of kChunk, chunk c from its own stream (seed·1000003 + c), so any
// chunk-aligned piece of a tensor can be produced on its own and the bytes do not depend on the piece size.
constexpr int64_t kChunk = 1 << 16;
constexpr int64_t kPieceChunks = 256;  // 16M elements = 32 MiB of bf16 per write

// Elements [c0·kChunk, min(n, c1·kChunk)) of a normal(0, std) tensor of n elements into out[0..).
void random_bf16_piece(uint16_t* out, int64_t n, int64_t c0, int64_t c1, uint64_t seed, double std) {
#pragma omp parallel for schedule(static)
    for (int64_t c = c0; c < c1; ++c) {
        Rng r{seed * 1000003ull + static_cast<uint64_t>(c)};
        for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); i += 2) {
            const double u1 = r.uniform(), u2 = r.uniform();
            const double rad = std::sqrt(-2.0 * std::log(u1)) * std;
            out[i - c0 * kChunk] = float_to_bf16(static_cast<float>(rad * std::cos(2 * M_PI * u2)));
            if (i + 1 < n) out[i + 1 - c0 * kChunk] = float_to_bf16(static_cast<float>(rad * std::sin(2 * M_PI * u2)));
        }
    }
}

size_t align8(size_t n) { return (n + 7) / 8 * 8; }

class OutFile {
public:
    explicit OutFile(std::filesystem::path path) : path_(std::move(path)) {
        f_ = std::fopen(path_.c_str(), "wb");
        check(f_ != nullptr, "cannot create ", path_.string(), ": ", std::strerror(errno));
    }
    ~OutFile() {
        if (f_) std::fclose(f_);
    }
    OutFile(const OutFile&) = delete;
    OutFile& operator=(const OutFile&) = delete;
    void write(const void* p, size_t n) {
        check(n == 0 || std::fwrite(p, 1, n, f_) == n, "cannot write ", path_.string(), ": ", std::strerror(errno),
              " (is the disk full?)");
    }
    void close() {
        const bool ok = std::fflush(f_) == 0;
        const int err = errno;
        const bool closed = std::fclose(f_) == 0;
        f_ = nullptr;
        check(ok && closed, "cannot write ", path_.string(), ": ", std::strerror(err), " (is the disk full?)");
    }

private:
    std::filesystem::path path_;
    std::FILE* f_ = nullptr;
};

// One safetensors file holding tensors[which] (header as SafetensorsWriter writes it: "__metadata__"
// {"format": "pt"} first, tensors in order, padded to 8 bytes, data offsets 8-byte aligned).
void write_shard(const std::filesystem::path& path, const std::vector<PresetTensor>& tensors,
                 const std::vector<size_t>& which, const std::vector<uint64_t>& seeds, double std,
                 std::vector<uint16_t>& buf) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    header["__metadata__"] = {{"format", "pt"}};
    size_t offset = 0;
    for (size_t i : which) {
        const size_t nb = static_cast<size_t>(tensors[i].numel()) * 2;
        nlohmann::ordered_json t = nlohmann::ordered_json::object();
        t["dtype"] = "BF16";
        t["shape"] = tensors[i].shape;
        t["data_offsets"] = {offset, offset + nb};
        header[tensors[i].name] = std::move(t);
        offset = align8(offset + nb);
    }
    std::string text = header.dump();
    text.append(align8(8 + text.size()) - 8 - text.size(), ' ');
    OutFile f(path);
    const uint64_t hn = text.size();
    f.write(&hn, 8);
    f.write(text.data(), text.size());
    static const char zeros[8] = {};
    for (size_t i : which) {
        const PresetTensor& t = tensors[i];
        const int64_t n = t.numel();
        const int64_t n_chunks = (n + kChunk - 1) / kChunk;
        for (int64_t c0 = 0; c0 < n_chunks; c0 += kPieceChunks) {
            const int64_t c1 = std::min(n_chunks, c0 + kPieceChunks);
            const int64_t len = std::min(n, c1 * kChunk) - c0 * kChunk;
            if (t.init == PresetTensor::Init::Normal) {
                random_bf16_piece(buf.data(), n, c0, c1, seeds[i], std);
            } else {
                const uint16_t v = float_to_bf16(t.init == PresetTensor::Init::Ones ? 1.0f : 0.0f);
                std::fill(buf.begin(), buf.begin() + len, v);
            }
            f.write(buf.data(), static_cast<size_t>(len) * 2);
        }
        const size_t nb = static_cast<size_t>(n) * 2;
        f.write(zeros, align8(nb) - nb);
    }
    f.close();
}

nlohmann::json generation_config_for(int bos, int eos) {
    return {{"bos_token_id", bos}, {"eos_token_id", eos}, {"do_sample", false}};
}

void write_json(const std::filesystem::path& path, const nlohmann::json& j) {
    std::ofstream out(path);
    out << j.dump(2) << "\n";
    check(static_cast<bool>(out), "cannot write ", path.string());
}

std::string names_list() {
    std::string names;
    for (const auto& n : all_preset_names()) names += (names.empty() ? "" : ", ") + n;
    return names;
}

}  // namespace

int64_t PresetTensor::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

uint64_t preset_bytes(const std::vector<PresetTensor>& tensors) {
    uint64_t n = 0;
    for (const auto& t : tensors) n += static_cast<uint64_t>(t.numel()) * 2;
    return n;
}

std::vector<std::string> qwen3_preset_names() {
    std::vector<std::string> v;
    for (const Preset& p : kPresets) v.push_back(p.name);
    return v;
}

std::vector<std::string> qwen3_vl_preset_names() {
    std::vector<std::string> v;
    for (const VlPreset& p : vl_presets()) v.push_back(p.name);
    return v;
}

bool is_qwen3_vl_preset(const std::string& like) {
    for (const VlPreset& p : vl_presets())
        if (like == p.name) return true;
    return false;
}

std::vector<std::string> all_preset_names() {
    std::vector<std::string> v = qwen3_preset_names();
    for (auto& n : qwen3_vl_preset_names()) v.push_back(std::move(n));
    return v;
}

nlohmann::json qwen3_preset_config(const std::string& like) {
    for (const Preset& p : kPresets) {
        if (like != p.name) continue;
        return {{"architectures", {"Qwen3ForCausalLM"}},
                {"model_type", "qwen3"},
                {"attention_bias", false},
                {"attention_dropout", 0.0},
                {"bos_token_id", 151643},
                {"eos_token_id", 151645},
                {"head_dim", 128},
                {"hidden_act", "silu"},
                {"hidden_size", p.hidden},
                {"intermediate_size", p.inter},
                {"max_position_embeddings", 40960},
                {"num_attention_heads", p.heads},
                {"num_hidden_layers", p.layers},
                {"num_key_value_heads", p.kv},
                {"rms_norm_eps", 1e-6},
                {"rope_theta", p.theta},
                {"rope_scaling", nullptr},
                {"tie_word_embeddings", p.tied},
                {"torch_dtype", "bfloat16"},
                {"use_cache", true},
                {"use_sliding_window", false},
                {"vocab_size", p.vocab}};
    }
    fail("unknown model preset '", like, "'; known: ", names_list());
}

nlohmann::json qwen3_vl_preset_config(const std::string& like) {
    for (const VlPreset& p : vl_presets()) {
        if (like != p.name) continue;
        const nlohmann::json text = {
            {"attention_bias", false},
            {"attention_dropout", 0.0},
            {"bos_token_id", p.bos},
            {"eos_token_id", p.eos},
            {"head_dim", 128},
            {"hidden_act", "silu"},
            {"hidden_size", p.hidden},
            {"initializer_range", 0.02},
            {"intermediate_size", p.inter},
            {"max_position_embeddings", p.max_pos},
            {"model_type", "qwen3_vl_text"},
            {"num_attention_heads", p.heads},
            {"num_hidden_layers", p.layers},
            {"num_key_value_heads", p.kv},
            {"pad_token_id", nullptr},
            {"rms_norm_eps", 1e-6},
            {"rope_parameters",
             {{"mrope_interleaved", true}, {"mrope_section", {24, 20, 20}}, {"rope_theta", 5000000.0},
              {"rope_type", "default"}}},
            {"tie_word_embeddings", p.tied},
            {"use_cache", true},
            {"vocab_size", p.vocab}};
        const nlohmann::json vision = {
            {"deepstack_visual_indexes", p.deepstack},
            {"depth", p.v_depth},
            {"hidden_act", "gelu_pytorch_tanh"},
            {"hidden_size", p.v_hidden},
            {"in_channels", 3},
            {"initializer_range", 0.02},
            {"intermediate_size", p.v_inter},
            {"model_type", "qwen3_vl_vision"},
            {"num_heads", p.v_heads},
            {"num_position_embeddings", p.v_pos},
            {"out_hidden_size", p.hidden},
            {"patch_size", 16},
            {"rope_parameters", {{"rope_theta", 10000.0}, {"rope_type", "axial"}}},
            {"spatial_merge_size", 2},
            {"temporal_patch_size", 2}};
        return {{"architectures", {"Qwen3VLForConditionalGeneration"}},
                {"dtype", "bfloat16"},
                {"image_token_id", p.image},
                {"model_type", "qwen3_vl"},
                {"text_config", text},
                {"tie_word_embeddings", p.tied},
                {"transformers_version", "5.17.0"},
                {"video_token_id", p.video},
                {"vision_config", vision},
                {"vision_end_token_id", p.vend},
                {"vision_start_token_id", p.vstart}};
    }
    fail("unknown Qwen3-VL model preset '", like, "'; known: ", names_list());
}

nlohmann::json qwen3_vl_preprocessor_config(const nlohmann::json& config) {
    const nlohmann::json& v = config.at("vision_config");
    return {{"do_convert_rgb", true},
            {"do_normalize", true},
            {"do_rescale", true},
            {"do_resize", true},
            {"image_mean", {0.5, 0.5, 0.5}},
            {"image_processor_type", "Qwen2VLImageProcessorFast"},
            {"image_std", {0.5, 0.5, 0.5}},
            {"merge_size", v.value("spatial_merge_size", 2)},
            {"patch_size", v.value("patch_size", 16)},
            {"resample", 3},
            {"rescale_factor", 1.0 / 255.0},
            {"size", {{"longest_edge", 16777216}, {"shortest_edge", 65536}}},
            {"temporal_patch_size", v.value("temporal_patch_size", 2)},
            {"processor_class", "Qwen3VLProcessor"}};
}

const std::string& qwen3_vl_chat_template() {
    // The template of ../shared/models/qwen3-vl-nano (chat_template.jinja), the image/video part of the
    // Qwen3-VL template.
    static const std::string t =
        "{%- set image_count = namespace(value=0) %}{%- set video_count = namespace(value=0) %}"
        "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' }}"
        "{%- if message.content is string %}{{- message.content }}{%- else %}"
        "{%- for content in message.content %}"
        "{%- if content.type == 'image' or 'image' in content or 'image_url' in content %}"
        "{%- set image_count.value = image_count.value + 1 %}"
        "{%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}"
        "<|vision_start|><|image_pad|><|vision_end|>"
        "{%- elif content.type == 'video' or 'video' in content %}"
        "{%- set video_count.value = video_count.value + 1 %}"
        "{%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}"
        "<|vision_start|><|video_pad|><|vision_end|>"
        "{%- elif 'text' in content %}{{- content.text }}{%- endif %}{%- endfor %}{%- endif %}"
        "{{- '<|im_end|>\\n' }}{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
    return t;
}

namespace {

// The Qwen3 decoder tensors under `prefix` ("model." or "model.language_model."), then lm_head unless tied.
void add_text_tensors(const ModelConfig& c, const std::string& prefix, std::vector<PresetTensor>& out) {
    using I = PresetTensor::Init;
    const int64_t H = c.hidden_size, D = c.head_dim, nq = c.num_attention_heads, nkv = c.num_key_value_heads,
                  F = c.intermediate_size, V = c.vocab_size;
    out.push_back({prefix + "embed_tokens.weight", {V, H}, I::Normal});
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = prefix + "layers." + std::to_string(l) + ".";
        out.push_back({p + "input_layernorm.weight", {H}, I::Ones});
        out.push_back({p + "self_attn.q_proj.weight", {nq * D, H}, I::Normal});
        out.push_back({p + "self_attn.k_proj.weight", {nkv * D, H}, I::Normal});
        out.push_back({p + "self_attn.v_proj.weight", {nkv * D, H}, I::Normal});
        out.push_back({p + "self_attn.o_proj.weight", {H, nq * D}, I::Normal});
        out.push_back({p + "self_attn.q_norm.weight", {D}, I::Ones});
        out.push_back({p + "self_attn.k_norm.weight", {D}, I::Ones});
        out.push_back({p + "post_attention_layernorm.weight", {H}, I::Ones});
        out.push_back({p + "mlp.gate_proj.weight", {F, H}, I::Normal});
        out.push_back({p + "mlp.up_proj.weight", {F, H}, I::Normal});
        out.push_back({p + "mlp.down_proj.weight", {H, F}, I::Normal});
    }
    out.push_back({prefix + "norm.weight", {H}, I::Ones});
    if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {V, H}, I::Normal});
}

}  // namespace

std::vector<PresetTensor> qwen3_preset_tensors(const nlohmann::json& config) {
    const ModelConfig c = parse_model_config(config, "preset config");
    check(!c.vision_language, "qwen3_preset_tensors: a Qwen3-VL config; use qwen3_vl_preset_tensors");
    std::vector<PresetTensor> t;
    add_text_tensors(c, "model.", t);
    return t;
}

std::vector<PresetTensor> qwen3_vl_preset_tensors(const nlohmann::json& config) {
    using I = PresetTensor::Init;
    const ModelConfig c = parse_model_config(config, "preset config");
    check(c.vision_language, "qwen3_vl_preset_tensors: not a Qwen3-VL config (architectures ", c.architecture, ")");
    const Qwen3VLVisionConfig v = parse_qwen3_vl_vision_config(config.at("vision_config"), "preset config");
    std::vector<PresetTensor> t;
    add_text_tensors(c, c.text_prefix, t);
    const int64_t H = v.hidden_size, F = v.intermediate_size, O = v.out_hidden_size;
    const int64_t M = int64_t(v.spatial_merge_size) * v.spatial_merge_size * H;
    const std::string p = "model.visual.";
    t.push_back({p + "patch_embed.proj.weight", {H, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size},
                 I::Normal});
    t.push_back({p + "patch_embed.proj.bias", {H}, I::Zeros});
    t.push_back({p + "pos_embed.weight", {v.num_position_embeddings, H}, I::Normal});
    for (int b = 0; b < v.depth; ++b) {
        const std::string q = p + "blocks." + std::to_string(b) + ".";
        t.push_back({q + "norm1.weight", {H}, I::Ones});
        t.push_back({q + "norm1.bias", {H}, I::Zeros});
        t.push_back({q + "attn.qkv.weight", {3 * H, H}, I::Normal});
        t.push_back({q + "attn.qkv.bias", {3 * H}, I::Zeros});
        t.push_back({q + "attn.proj.weight", {H, H}, I::Normal});
        t.push_back({q + "attn.proj.bias", {H}, I::Zeros});
        t.push_back({q + "norm2.weight", {H}, I::Ones});
        t.push_back({q + "norm2.bias", {H}, I::Zeros});
        t.push_back({q + "mlp.linear_fc1.weight", {F, H}, I::Normal});
        t.push_back({q + "mlp.linear_fc1.bias", {F}, I::Zeros});
        t.push_back({q + "mlp.linear_fc2.weight", {H, F}, I::Normal});
        t.push_back({q + "mlp.linear_fc2.bias", {H}, I::Zeros});
    }
    auto merger = [&](const std::string& q, int64_t norm_dim) {
        t.push_back({q + "norm.weight", {norm_dim}, I::Ones});
        t.push_back({q + "norm.bias", {norm_dim}, I::Zeros});
        t.push_back({q + "linear_fc1.weight", {M, M}, I::Normal});
        t.push_back({q + "linear_fc1.bias", {M}, I::Zeros});
        t.push_back({q + "linear_fc2.weight", {O, M}, I::Normal});
        t.push_back({q + "linear_fc2.bias", {O}, I::Zeros});
    };
    merger(p + "merger.", H);  // LayerNorm before the 2×2 concat
    for (size_t k = 0; k < v.deepstack_visual_indexes.size(); ++k)
        merger(p + "deepstack_merger_list." + std::to_string(k) + ".", M);  // after the concat
    return t;
}

void write_random_tensors(const std::vector<PresetTensor>& tensors, const std::filesystem::path& dir, uint64_t seed,
                          double std, size_t max_shard_bytes) {
    check(max_shard_bytes > 0, "write_random_tensors: max shard size must be positive");
    std::vector<uint64_t> seeds(tensors.size(), 0);
    uint64_t s = seed;
    for (size_t i = 0; i < tensors.size(); ++i)
        if (tensors[i].init == PresetTensor::Init::Normal) seeds[i] = ++s;
    // Greedy split in order; a tensor larger than the limit gets a shard of its own (as write_sharded).
    std::vector<std::vector<size_t>> shards;
    size_t cur = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
        const size_t sz = static_cast<size_t>(tensors[i].numel()) * 2;
        if (shards.empty() || (!shards.back().empty() && cur + sz > max_shard_bytes)) {
            shards.emplace_back();
            cur = 0;
        }
        shards.back().push_back(i);
        cur += sz;
    }
    if (shards.empty()) shards.emplace_back();
    std::vector<uint16_t> buf(static_cast<size_t>(kPieceChunks * kChunk));
    if (shards.size() == 1) {
        write_shard(dir / "model.safetensors", tensors, shards[0], seeds, std, buf);
        return;
    }
    const size_t n = shards.size();
    nlohmann::json weight_map = nlohmann::json::object();
    for (size_t k = 0; k < n; ++k) {
        char name[64];
        std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k + 1, n);
        write_shard(dir / name, tensors, shards[k], seeds, std, buf);
        for (size_t i : shards[k]) weight_map[tensors[i].name] = name;
    }
    nlohmann::json index;
    index["metadata"] = {{"total_size", preset_bytes(tensors)}};
    index["weight_map"] = std::move(weight_map);
    write_json(dir / "model.safetensors.index.json", index);
}

void write_random_qwen3(const nlohmann::json& config, const std::filesystem::path& dir, uint64_t seed, double std,
                        size_t max_shard_bytes) {
    write_random_tensors(qwen3_preset_tensors(config), dir, seed, std, max_shard_bytes);
    write_json(dir / "config.json", config);
    write_json(dir / "generation_config.json",
               generation_config_for(config.value("bos_token_id", 0), config.value("eos_token_id", 0)));
}

void write_random_qwen3_vl(const nlohmann::json& config, const std::filesystem::path& dir, uint64_t seed, double std,
                           size_t max_shard_bytes) {
    const std::vector<PresetTensor> tensors = qwen3_vl_preset_tensors(config);  // validates the config first
    write_random_tensors(tensors, dir, seed, std, max_shard_bytes);
    write_json(dir / "config.json", config);
    const nlohmann::json& tc = config.at("text_config");
    write_json(dir / "generation_config.json",
               generation_config_for(tc.value("bos_token_id", 0), tc.value("eos_token_id", 0)));
    write_json(dir / "preprocessor_config.json", qwen3_vl_preprocessor_config(config));
    std::ofstream(dir / "chat_template.jinja") << qwen3_vl_chat_template();
}

}  // namespace autoround

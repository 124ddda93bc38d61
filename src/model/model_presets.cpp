// model/model_presets.cpp — see model_presets.h.
#include "model/model_presets.h"

#include <cmath>
#include <fstream>

#include "core/bf16.h"
#include "core/error.h"
#include "io/model_config.h"
#include "io/safetensors.h"

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

std::vector<uint8_t> random_bf16(int64_t n, uint64_t seed, double std) {
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * 2);
    auto* out = reinterpret_cast<uint16_t*>(bytes.data());
    constexpr int64_t kChunk = 1 << 16;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < (n + kChunk - 1) / kChunk; ++c) {
        Rng r{seed * 1000003ull + static_cast<uint64_t>(c)};
        for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); i += 2) {
            const double u1 = r.uniform(), u2 = r.uniform();
            const double rad = std::sqrt(-2.0 * std::log(u1)) * std;
            out[i] = float_to_bf16(static_cast<float>(rad * std::cos(2 * M_PI * u2)));
            if (i + 1 < n) out[i + 1] = float_to_bf16(static_cast<float>(rad * std::sin(2 * M_PI * u2)));
        }
    }
    return bytes;
}

std::vector<uint8_t> ones_bf16(int64_t n) {
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * 2);
    auto* out = reinterpret_cast<uint16_t*>(bytes.data());
    for (int64_t i = 0; i < n; ++i) out[i] = float_to_bf16(1.0f);
    return bytes;
}

}  // namespace

std::vector<std::string> qwen3_preset_names() {
    std::vector<std::string> v;
    for (const Preset& p : kPresets) v.push_back(p.name);
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
    std::string names;
    for (const Preset& p : kPresets) names += std::string(names.empty() ? "" : ", ") + p.name;
    fail("unknown model preset '", like, "'; known: ", names);
}

void write_random_qwen3(const nlohmann::json& config, const std::filesystem::path& dir, uint64_t seed, double std,
                        size_t max_shard_bytes) {
    const ModelConfig c = parse_model_config(config, "preset config");
    const int64_t H = c.hidden_size, D = c.head_dim, nq = c.num_attention_heads, nkv = c.num_key_value_heads,
                  I = c.intermediate_size, V = c.vocab_size;
    SafetensorsWriter w;
    uint64_t tensor_seed = seed;
    auto mat = [&](const std::string& name, int64_t out, int64_t in) {
        w.add(name, DType::BF16, {out, in}, random_bf16(out * in, ++tensor_seed, std));
    };
    auto ones = [&](const std::string& name, int64_t n) { w.add(name, DType::BF16, {n}, ones_bf16(n)); };
    mat("model.embed_tokens.weight", V, H);
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        ones(p + "input_layernorm.weight", H);
        mat(p + "self_attn.q_proj.weight", nq * D, H);
        mat(p + "self_attn.k_proj.weight", nkv * D, H);
        mat(p + "self_attn.v_proj.weight", nkv * D, H);
        mat(p + "self_attn.o_proj.weight", H, nq * D);
        ones(p + "self_attn.q_norm.weight", D);
        ones(p + "self_attn.k_norm.weight", D);
        ones(p + "post_attention_layernorm.weight", H);
        mat(p + "mlp.gate_proj.weight", I, H);
        mat(p + "mlp.up_proj.weight", I, H);
        mat(p + "mlp.down_proj.weight", H, I);
    }
    ones("model.norm.weight", H);
    if (!c.tie_word_embeddings) mat("lm_head.weight", V, H);
    w.write_sharded(dir, max_shard_bytes);
    std::ofstream(dir / "config.json") << config.dump(2) << "\n";
    const nlohmann::json gen = {{"bos_token_id", config.value("bos_token_id", 0)},
                                {"eos_token_id", config.value("eos_token_id", 0)},
                                {"do_sample", false}};
    std::ofstream(dir / "generation_config.json") << gen.dump(2) << "\n";
}

}  // namespace autoround

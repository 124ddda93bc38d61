// model/qwen3_cuda_model.cpp — see qwen3_cuda_model.h.
#include "model/qwen3_cuda_model.h"

#include <algorithm>
#include <cstdio>
#include <optional>

#include "core/bf16.h"
#include "core/error.h"
#include "core/progress_bar.h"
#include "export/pack.h"
#include "model/qwen3_model.h"
#include "ops/cpu/rope.h"
#include "quant/quantized_loader.h"

namespace autoround {
namespace {

// Dense bf16 weight from any WeightView (bf16 is borrowed in place; others are converted row by row).
HostLinear dense_from_view(const WeightView& w) {
    HostLinear h;
    h.out = w.out;
    h.in = w.in;
    if (!w.packed() && w.dtype == DType::BF16) {
        h.dense_bf16 = static_cast<const uint16_t*>(w.data);
        return h;
    }
    h.dense_storage.resize(size_t(w.out * w.in));
    std::vector<float> row(size_t(w.in));
    for (int64_t r = 0; r < w.out; ++r) {
        weight_row_to_f32(w, r, row.data());
        for (int64_t c = 0; c < w.in; ++c) h.dense_storage[size_t(r * w.in + c)] = float_to_bf16(row[size_t(c)]);
    }
    h.dense_bf16 = h.dense_storage.data();
    return h;
}

// Why a quantized tensor cannot run packed on the GPU (empty: it can).
std::string packed_obstacle(const QuantizedTensor& q) {
    if (q.double_quant()) return "double-quantized (GGUF k-quant) scales";
    if (!q.float_zeros.empty()) return "float zero points";
    if (!pack::gptq_bits_ok(q.bits)) return std::to_string(q.bits) + "-bit codes";
    const int64_t g = q.group_len();
    if (q.in_features % 32 != 0 || g % 32 != 0 || q.in_features % g != 0)
        return "group length " + std::to_string(g) + " over " + std::to_string(q.in_features) + " inputs";
    for (int32_t z : q.zeros)
        if (z < 0 || z > 255) return "a zero point of " + std::to_string(z);
    for (float s : q.scales)
        if (fp16_to_float(float_to_fp16(s)) != s) return "scales that are not fp16 values";
    return {};
}

// The packed GPU form of q (GPTQ qweight layout, fp16 scales and uint8 zeros transposed to [ng, out]).
HostLinear packed_from_quantized(const QuantizedTensor& q) {
    HostLinear h;
    h.out = q.out_features;
    h.in = q.in_features;
    h.bits = q.bits;
    h.group_len = q.group_len();
    const std::vector<int32_t> qw = pack::gptq_pack_qweight(q.codes, h.out, h.in, q.bits, q.name.c_str());
    h.qweight.assign(qw.begin(), qw.end());  // bit patterns (int32 -> uint32 keeps them)
    const int64_t ng = h.in / h.group_len;
    h.scales.resize(size_t(ng * h.out));
    h.zeros.resize(size_t(ng * h.out));
    for (int64_t n = 0; n < h.out; ++n)
        for (int64_t g = 0; g < ng; ++g) {
            h.scales[size_t(g * h.out + n)] = float_to_fp16(q.scales[size_t(n * ng + g)]);
            h.zeros[size_t(g * h.out + n)] = uint8_t(q.zeros[size_t(n * ng + g)]);
        }
    return h;
}

struct Census {
    int packed = 0, dense = 0, dequantized = 0;
    int min_bits = 99, max_bits = 0;
    std::string first_reason;
};

// The HostLinear of one linear of `m`: packed layers (view.data == nullptr under PackedLayers::Skip) come from the
// checkpoint through the quantized loader.
HostLinear host_linear(const Qwen3Model& m, const WeightView& view, const std::string& prefix, Census& census) {
    if (view.data != nullptr) {
        if (view.packed()) {
            ++census.dequantized;
            if (census.first_reason.empty())
                census.first_reason = prefix + ": GGUF " + std::string(gguf::block_type_name(*view.block)) + " blocks";
        } else {
            ++census.dense;
        }
        return dense_from_view(view);
    }
    const std::optional<QuantizedTensor> q =
        load_linear_quantized(m.tensors(), prefix, *m.quantization(), view.out, view.in);
    check(q.has_value(), prefix, ": expected a packed layer");
    const std::string why = packed_obstacle(*q);
    if (why.empty()) {
        ++census.packed;
        census.min_bits = std::min(census.min_bits, q->bits);
        census.max_bits = std::max(census.max_bits, q->bits);
        return packed_from_quantized(*q);
    }
    ++census.dequantized;
    if (census.first_reason.empty()) census.first_reason = prefix + ": " + why;
    const std::vector<float> w = q->dequantize();
    HostLinear h;
    h.out = view.out;
    h.in = view.in;
    h.dense_storage.resize(w.size());
    for (size_t i = 0; i < w.size(); ++i) h.dense_storage[i] = float_to_bf16(w[i]);
    h.dense_bf16 = h.dense_storage.data();
    return h;
}

std::string gib(size_t b) {
    char s[32];
    std::snprintf(s, sizeof s, "%.2f GiB", double(b) / double(1ull << 30));
    return s;
}

}  // namespace

DecoderDims decoder_dims(const ModelConfig& c) {
    DecoderDims d;
    d.hidden = c.hidden_size;
    d.intermediate = c.intermediate_size;
    d.vocab = c.vocab_size;
    d.n_layers = c.num_hidden_layers;
    d.n_q_heads = c.num_attention_heads;
    d.n_kv_heads = c.num_key_value_heads;
    d.head_dim = c.head_dim;
    d.rms_eps = c.rms_norm_eps;
    d.qk_norm = c.qk_norm;
    d.inv_freq = rope_inv_freq(c.rope, c.head_dim);
    return d;
}

std::string gpu_runtime_obstacle(const ModelConfig& c) {
    if (c.attention_bias) return "q/k/v biases (" + c.architecture + ")";
    if (c.head_dim > 256) return "head_dim " + std::to_string(c.head_dim) + " > 256";
    if (c.hidden_size % 8 || c.intermediate_size % 8 || (c.num_attention_heads * c.head_dim) % 8)
        return "widths that are not multiples of 8";
    return {};
}

std::unique_ptr<Qwen3CudaModel> Qwen3CudaModel::load(const std::filesystem::path& path, const CudaDecoderOptions& opt,
                                                     bool show_progress) {
    return load(Qwen3Model::load(path, PackedLayers::Skip), opt, show_progress);
}

std::unique_ptr<Qwen3CudaModel> Qwen3CudaModel::load(const Qwen3Model& m, const CudaDecoderOptions& opt,
                                                     bool show_progress) {
    const ModelConfig& c = m.config();
    const std::string why = gpu_runtime_obstacle(c);
    check(why.empty(), "--device cuda: ", c.architecture, " with ", why, " is not supported by the GPU runtime; use "
          "--device cpu");
    for (const Qwen3Layer& L : m.layers())
        check(L.q_bias.empty(), c.architecture, " has q/k/v biases, which the GPU runtime does not implement; use "
              "--device cpu");
    auto out = std::unique_ptr<Qwen3CudaModel>(new Qwen3CudaModel);
    out->cfg_ = c;
    const DecoderDims d = decoder_dims(c);
    out->dec_ = std::make_unique<CudaDecoder>(d, opt);
    CudaDecoder& dec = *out->dec_;

    Census census;
    {
        const HostLinear e = dense_from_view(m.embedding());
        dec.set_embedding(e.dense_bf16);
    }
    dec.set_final_norm(m.final_norm().data());
    const bool tied = m.head_is_embedding();
    Census head_census;
    if (tied) dec.tie_lm_head_to_embedding();
    else dec.set_lm_head(host_linear(m, m.head(), "lm_head", head_census));
    const std::string& tp = c.text_prefix;
    ProgressBar bar("upload", c.num_hidden_layers, "layer");
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        const Qwen3Layer& L = m.layers()[size_t(l)];
        const std::string p = tp + "layers." + std::to_string(l) + ".";
        const HostLinear q = host_linear(m, L.q, p + "self_attn.q_proj", census);
        const HostLinear k = host_linear(m, L.k, p + "self_attn.k_proj", census);
        const HostLinear v = host_linear(m, L.v, p + "self_attn.v_proj", census);
        const HostLinear o = host_linear(m, L.o, p + "self_attn.o_proj", census);
        const HostLinear gate = host_linear(m, L.gate, p + "mlp.gate_proj", census);
        const HostLinear up = host_linear(m, L.up, p + "mlp.up_proj", census);
        const HostLinear down = host_linear(m, L.down, p + "mlp.down_proj", census);
        HostDecoderLayer hl;
        hl.input_norm = L.input_norm.data();
        hl.post_attn_norm = L.post_attn_norm.data();
        hl.q_norm = L.q_norm.empty() ? nullptr : L.q_norm.data();
        hl.k_norm = L.k_norm.empty() ? nullptr : L.k_norm.data();
        hl.q = &q;
        hl.k = &k;
        hl.v = &v;
        hl.o = &o;
        hl.gate = &gate;
        hl.up = &up;
        hl.down = &down;
        dec.set_layer(l, hl);
        if (show_progress) bar.update(l + 1);
    }
    if (show_progress) bar.finish();
    std::string s = std::to_string(census.packed) + " linears packed";
    if (census.packed > 0)
        s += census.min_bits == census.max_bits ? " (" + std::to_string(census.min_bits) + "-bit)"
                                                : " (" + std::to_string(census.min_bits) + "-" +
                                                      std::to_string(census.max_bits) + "-bit)";
    s += ", " + std::to_string(census.dense) + " dense bf16";
    if (census.dequantized > 0)
        s += ", " + std::to_string(census.dequantized) + " dequantized to bf16 (e.g. " + census.first_reason + ")";
    if (tied) s += "; LM head = embedding (bf16)";
    else if (head_census.packed > 0) s += "; LM head packed (" + std::to_string(head_census.max_bits) + "-bit)";
    else if (head_census.dequantized > 0) s += "; LM head dequantized to bf16 (" + head_census.first_reason + ")";
    else s += "; LM head bf16";
    s += "; weights " + gib(dec.weight_bytes()) + " on the GPU";
    out->summary_ = s;
    return out;
}

}  // namespace autoround

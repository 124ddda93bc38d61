// quant/gguf_double_quant.cpp — see gguf_double_quant.h.
#include "quant/gguf_double_quant.h"

#include <cstring>

#include "core/bf16.h"
#include "core/error.h"

namespace autoround {

using gguf::BlockType;

namespace {

LayerScheme dq_scheme(int bits, int64_t gs, bool sym, int sg, int sb) {
    LayerScheme s;
    s.bits = bits;
    s.group_size = gs;
    s.sym = sym;
    s.data_type = sym ? "int_sym_dq" : "int_asym_dq";
    s.super_group_size = sg;
    s.super_bits = sb;
    return s;
}

LayerScheme int_scheme(int bits, bool sym) {
    LayerScheme s;
    s.bits = bits;
    s.group_size = 32;
    s.sym = sym;
    s.data_type = "int";
    return s;
}

bool is_k_quant(BlockType t) { return t == BlockType::Q4_K || t == BlockType::Q5_K || t == BlockType::Q6_K; }

}  // namespace

std::optional<LayerScheme> gguf_block_scheme(BlockType t) {
    switch (t) {
        case BlockType::Q4_0: return int_scheme(4, true);
        case BlockType::Q4_1: return int_scheme(4, false);
        case BlockType::Q8_0: return int_scheme(8, true);
        case BlockType::Q4_K: return dq_scheme(4, 32, false, 8, 6);
        case BlockType::Q5_K: return dq_scheme(5, 32, false, 8, 6);
        case BlockType::Q6_K: return dq_scheme(6, 16, true, 16, 8);
        default: return std::nullopt;
    }
}

std::optional<BlockType> gguf_block_type_of(const LayerScheme& s) {
    for (BlockType t : {BlockType::Q4_0, BlockType::Q4_1, BlockType::Q8_0, BlockType::Q4_K, BlockType::Q5_K,
                        BlockType::Q6_K})
        if (gguf_block_scheme(t) == s) return t;
    return std::nullopt;
}

bool is_double_quant(const LayerScheme& s) { return s.data_type == "int_asym_dq" || s.data_type == "int_sym_dq"; }

FakeQuantConfig fake_quant_config(const LayerScheme& s) {
    FakeQuantConfig c;
    c.bits = s.bits;
    c.group_size = s.group_size;
    c.sym = s.sym;
    c.tau = 1e-5;
    c.out_bf16 = true;
    if (is_double_quant(s)) {
        check(s.super_group_size > 0 && s.super_bits > 0, "scheme ", s.data_type,
              " needs super_group_size and super_bits (GGUF k-quant double quantization)");
        c.kind = s.sym ? FakeQuantKind::SymDQ : FakeQuantKind::AsymDQ;
        c.super_group_size = s.super_group_size;
        c.super_bits = s.super_bits;
        c.scale_fp16 = false;  // scale_dtype float32 for GGUF
    } else {
        c.scale_fp16 = true;
    }
    return c;
}

QuantizedTensor dq_quantized_tensor(const DoubleQuantCodes& c, const LayerScheme& s, int64_t out, int64_t in,
                                    const std::string& name) {
    check(is_double_quant(s), name, ": not a double-quant scheme");
    QuantizedTensor q;
    q.name = name;
    q.bits = s.bits;
    q.group_size = s.group_size;
    q.sym = s.sym;
    q.out_features = out;
    q.in_features = in;
    q.codes = c.codes;
    q.dq_super_group = s.super_group_size;
    q.dq_d = c.d;
    q.dq_sc = c.sc;
    const size_t ng = c.sc.size(), sg = static_cast<size_t>(s.super_group_size);
    q.scales.resize(ng);
    for (size_t g = 0; g < ng; ++g) q.scales[g] = c.d[g / sg] * static_cast<float>(c.sc[g]);
    q.zeros.assign(ng, s.sym ? (1 << (s.bits - 1)) : 0);
    if (!s.sym) {
        q.dq_dmin = c.dmin;
        q.dq_mn = c.mn;
    }
    q.validate();
    return q;
}

QuantizedTensor quantize_dq_rtn(const std::vector<float>& W, int64_t out, int64_t in, const LayerScheme& s,
                                const std::string& name) {
    const std::optional<BlockType> t = gguf_block_type_of(s);
    check(t && is_k_quant(*t), name, ": scheme ", s.data_type, " W", s.bits, " group ", s.group_size,
          " is not a GGUF k-quant type");
    check(in % gguf::kQKK == 0, name, " [", out, ", ", in, "]: a ", gguf::block_type_name(*t), " row needs a width "
          "that is a multiple of 256");
    check(static_cast<int64_t>(W.size()) == out * in, name, ": weight holds ", W.size(), " values, expected ", out * in);
    const int64_t rb = gguf::row_bytes(*t, in);
    std::vector<uint8_t> blocks(static_cast<size_t>(out * rb));
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < out; ++r) gguf::quantize_row(*t, W.data() + r * in, in, blocks.data() + r * rb);
    return dq_tensor_from_blocks(*t, blocks.data(), out, in, name);
}

QuantizedTensor dq_tensor_from_blocks(BlockType t, const uint8_t* blocks, int64_t out, int64_t in,
                                      const std::string& name) {
    const std::optional<LayerScheme> s = gguf_block_scheme(t);
    check(s && is_k_quant(t), name, ": ", gguf::block_type_name(t), " is not a k-quant block type");
    check(in % gguf::kQKK == 0, name, ": row width ", in, " is not a multiple of 256");
    const int64_t nb = in / gguf::kQKK, sg = s->super_group_size, gs = s->group_size, rb = gguf::row_bytes(t, in);
    const int64_t ng = in / gs;
    DoubleQuantCodes c;
    c.super_groups = out * nb;
    c.codes.resize(static_cast<size_t>(out * in));
    c.d.resize(static_cast<size_t>(out * nb));
    c.sc.resize(static_cast<size_t>(out * ng));
    if (!s->sym) {
        c.dmin.resize(c.d.size());
        c.mn.resize(c.sc.size());
    }
    for (int64_t r = 0; r < out; ++r)
        for (int64_t b = 0; b < nb; ++b) {
            const uint8_t* p = blocks + r * rb + b * gguf::block_bytes(t);
            const size_t u = static_cast<size_t>(r * nb + b);
            uint8_t* codes = c.codes.data() + r * in + b * gguf::kQKK;
            const size_t g0 = static_cast<size_t>(r * ng + b * sg);
            if (t == BlockType::Q6_K) {
                gguf::BlockQ6_K blk;
                std::memcpy(&blk, p, sizeof blk);
                c.d[u] = gguf::fp16_to_f32(blk.d);
                for (int k = 0; k < 16; ++k) c.sc[g0 + static_cast<size_t>(k)] = blk.scales[k];
                for (int e = 0; e < gguf::kQKK; ++e) codes[e] = gguf::q6k_code(blk, e);
            } else {  // Q4_K / Q5_K: the same d, dmin and 6-bit scale / min codes; 4- or 5-bit codes
                auto decode = [&](const auto& blk, auto code_of) {
                    c.d[u] = gguf::fp16_to_f32(blk.d);
                    c.dmin[u] = gguf::fp16_to_f32(blk.dmin);
                    for (int k = 0; k < 8; ++k) {
                        uint8_t sc, mn;
                        gguf::q4k_get_scale_min(k, blk.scales, sc, mn);
                        c.sc[g0 + static_cast<size_t>(k)] = sc;
                        c.mn[g0 + static_cast<size_t>(k)] = mn;
                    }
                    for (int e = 0; e < gguf::kQKK; ++e) codes[e] = code_of(blk, e);
                };
                if (t == BlockType::Q4_K) {
                    gguf::BlockQ4_K blk;
                    std::memcpy(&blk, p, sizeof blk);
                    decode(blk, [](const gguf::BlockQ4_K& b4, int e) { return gguf::q4k_code(b4, e); });
                } else {
                    gguf::BlockQ5_K blk;
                    std::memcpy(&blk, p, sizeof blk);
                    decode(blk, [](const gguf::BlockQ5_K& b5, int e) { return gguf::q5k_code(b5, e); });
                }
            }
        }
    return dq_quantized_tensor(c, *s, out, in, name);
}

std::optional<std::vector<uint8_t>> dq_blocks_from_tensor(const QuantizedTensor& q, BlockType t) {
    const std::optional<LayerScheme> s = gguf_block_scheme(t);
    if (!s || !is_k_quant(t) || !q.double_quant()) return std::nullopt;
    if (q.bits != s->bits || q.group_len() != s->group_size || q.sym != s->sym ||
        q.dq_super_group != s->super_group_size || q.in_features % gguf::kQKK != 0)
        return std::nullopt;
    q.validate();
    const int64_t out = q.out_features, in = q.in_features, nb = in / gguf::kQKK, sg = s->super_group_size;
    const int64_t ng = in / s->group_size, rb = gguf::row_bytes(t, in);
    const int P = s->sym ? (1 << (s->super_bits - 1)) : (1 << s->super_bits) - 1;
    std::vector<uint8_t> out_bytes(static_cast<size_t>(out * rb));
    for (int64_t r = 0; r < out; ++r)
        for (int64_t b = 0; b < nb; ++b) {
            uint8_t* p = out_bytes.data() + r * rb + b * gguf::block_bytes(t);
            const size_t u = static_cast<size_t>(r * nb + b);
            const uint8_t* codes = q.codes.data() + r * in + b * gguf::kQKK;
            const size_t g0 = static_cast<size_t>(r * ng + b * sg);
            auto fp16_exact = [&](float v) {
                const uint16_t h = float_to_fp16(v);
                check(gguf::fp16_to_f32(h) == v, q.label(), ": super-block factor ", v, " is not an fp16 value");
                return h;
            };
            if (t == BlockType::Q6_K) {
                gguf::BlockQ6_K blk{};
                blk.d = fp16_exact(q.dq_d[u]);
                for (int k = 0; k < 16; ++k) {
                    const int32_t v = q.dq_sc[g0 + static_cast<size_t>(k)];
                    check(v >= -P && v < P, q.label(), ": Q6_K scale code ", v, " outside [-128, 127]");
                    blk.scales[k] = static_cast<int8_t>(v);
                }
                gguf::q6k_pack_codes(codes, blk);
                std::memcpy(p, &blk, sizeof blk);
                continue;
            }
            uint8_t sc[8], mn[8];
            for (int k = 0; k < 8; ++k) {
                const int32_t a = q.dq_sc[g0 + static_cast<size_t>(k)], m = q.dq_mn[g0 + static_cast<size_t>(k)];
                check(a >= 0 && a <= P && m >= 0 && m <= P, q.label(), ": 6-bit scale / min code ", a, " / ", m,
                      " out of range");
                sc[k] = static_cast<uint8_t>(a);
                mn[k] = static_cast<uint8_t>(m);
            }
            if (t == BlockType::Q4_K) {
                gguf::BlockQ4_K blk{};
                blk.d = fp16_exact(q.dq_d[u]);
                blk.dmin = fp16_exact(q.dq_dmin[u]);
                gguf::q4k_pack_scale_min(sc, mn, blk.scales);
                for (int c = 0; c < 4; ++c)
                    for (int l = 0; l < 32; ++l)
                        blk.qs[32 * c + l] = static_cast<uint8_t>((codes[64 * c + l] & 0xF) | ((codes[64 * c + 32 + l] & 0xF) << 4));
                std::memcpy(p, &blk, sizeof blk);
            } else {
                gguf::BlockQ5_K blk{};
                blk.d = fp16_exact(q.dq_d[u]);
                blk.dmin = fp16_exact(q.dq_dmin[u]);
                gguf::q4k_pack_scale_min(sc, mn, blk.scales);
                gguf::q5k_pack_codes(codes, blk);
                std::memcpy(p, &blk, sizeof blk);
            }
        }
    return out_bytes;
}

}  // namespace autoround

// quant/quantized_tensor.cpp — validation, dequantization and the GPTQ / AWQ / auto-round conversions
// of QuantizedTensor. Bits are moved only by export/pack.h; this file decides what goes into them
// (zero offsets, scale dtypes, transposes, g_idx) per docs/checkpoint-formats.md §1–§3.
#include "quant/quantized_tensor.h"

#include <bit>
#include <cmath>
#include <cstring>

#include "core/bf16.h"
#include "core/error.h"
#include "export/pack.h"

namespace autoround {

static_assert(std::endian::native == std::endian::little, "safetensors bytes are written by memcpy");

int64_t effective_group_len(int64_t group_size, int64_t in) {
    return (group_size <= 0 || group_size >= in) ? in : group_size;
}

int64_t num_groups(int64_t group_size, int64_t in) {
    const int64_t g = effective_group_len(group_size, in);
    return g <= 0 ? 0 : (in + g - 1) / g;
}

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
}

std::string join_name(const std::string& prefix, std::string_view suffix) {
    return prefix.empty() ? std::string(suffix) : prefix + "." + std::string(suffix);
}

template <typename T>
std::vector<uint8_t> to_bytes(const std::vector<T>& v) {
    std::vector<uint8_t> b(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
    return b;
}

// scales [out, ng] float32 -> [ng, out] in `dt` (F16 / BF16 round to nearest even, F32 as is).
PackedTensor encode_scales(const QuantizedTensor& q, DType dt) {
    const int64_t n = q.out_features, ng = q.n_groups();
    PackedTensor t{"scales", dt, {ng, n}, {}};
    if (dt == DType::F32) {
        std::vector<float> v(static_cast<size_t>(ng * n));
        for (int64_t r = 0; r < n; ++r)
            for (int64_t g = 0; g < ng; ++g) v[static_cast<size_t>(g * n + r)] = q.scales[static_cast<size_t>(r * ng + g)];
        t.bytes = to_bytes(v);
        return t;
    }
    check(dt == DType::F16 || dt == DType::BF16, q.label(), ": scales can be written as F16, BF16 or F32, not ",
          dtype_name(dt));
    std::vector<uint16_t> v(static_cast<size_t>(ng * n));
    for (int64_t r = 0; r < n; ++r)
        for (int64_t g = 0; g < ng; ++g) {
            const float s = q.scales[static_cast<size_t>(r * ng + g)];
            const uint16_t h = dt == DType::F16 ? float_to_fp16(s) : float_to_bf16(s);
            const float back = dt == DType::F16 ? fp16_to_float(h) : bf16_to_float(h);
            if (!std::isfinite(back))
                fail(q.label(), ": scale ", s, " of row ", r, ", group ", g, " is not finite as ", dtype_name(dt));
            v[static_cast<size_t>(g * n + r)] = h;
        }
    t.bytes = to_bytes(v);
    return t;
}

// ---- reading ------------------------------------------------------------------------------------------

const TensorInfo* find(const std::map<std::string, TensorInfo>& ts, const std::string& prefix, std::string_view suffix) {
    auto it = ts.find(join_name(prefix, suffix));
    return it == ts.end() ? nullptr : &it->second;
}

const TensorInfo& need(const std::map<std::string, TensorInfo>& ts, const std::string& prefix, std::string_view suffix,
                       const char* format) {
    const TensorInfo* t = find(ts, prefix, suffix);
    if (!t) fail(format, " checkpoint: tensor ", join_name(prefix, suffix), " is missing");
    return *t;
}

void expect(const TensorInfo& t, DType dt, const std::vector<int64_t>& shape) {
    if (t.dtype != dt || t.shape != shape)
        fail("tensor ", t.name, ": expected ", dtype_name(dt), " ", shape_str(shape), ", got ", dtype_name(t.dtype), " ",
             shape_str(t.shape));
    check(t.nbytes == static_cast<size_t>(t.numel()) * dtype_size(dt), "tensor ", t.name, " ", shape_str(t.shape),
          ": holds ", t.nbytes, " bytes, expected ", t.numel() * static_cast<int64_t>(dtype_size(dt)));
}

void expect_rank2(const TensorInfo& t) {
    check(t.shape.size() == 2 && t.shape[0] > 0 && t.shape[1] > 0, "tensor ", t.name,
          ": expected a non-empty 2-D tensor, got shape ", shape_str(t.shape));
}

std::vector<int32_t> read_i32(const TensorInfo& t) {
    std::vector<int32_t> v(static_cast<size_t>(t.numel()));
    if (!v.empty()) std::memcpy(v.data(), t.data, v.size() * sizeof(int32_t));  // mmap data may be unaligned
    return v;
}

// scales [ng, out] (F16/BF16/F32) -> [out, ng] float32.
std::vector<float> read_scales(const TensorInfo& t, int64_t ng, int64_t out) {
    check(t.dtype == DType::F16 || t.dtype == DType::BF16 || t.dtype == DType::F32, "tensor ", t.name,
          ": scales must be F16, BF16 or F32, got ", dtype_name(t.dtype));
    expect(t, t.dtype, {ng, out});
    std::vector<float> tmp(static_cast<size_t>(ng * out));
    convert_to_f32(t, tmp);
    std::vector<float> s(tmp.size());
    for (int64_t g = 0; g < ng; ++g)
        for (int64_t n = 0; n < out; ++n) s[static_cast<size_t>(n * ng + g)] = tmp[static_cast<size_t>(g * out + n)];
    return s;
}

void check_scheme(const QuantScheme& s, const std::string& prefix, const char* format) {
    check(s.bits >= 1 && s.bits <= 8, format, " layer ", prefix, ": bits must be in 1..8, got ", s.bits);
    check(s.group_size == -1 || s.group_size > 0, format, " layer ", prefix, ": group_size must be -1 or positive, got ",
          s.group_size);
}

}  // namespace

// ---- QuantizedTensor ----------------------------------------------------------------------------------

std::string QuantizedTensor::label() const {
    return (name.empty() ? std::string("quantized tensor") : name) + " [" + std::to_string(out_features) + ", " +
           std::to_string(in_features) + "]";
}

void QuantizedTensor::validate() const {
    const std::string l = label();
    check(bits >= 1 && bits <= 8, l, ": bits must be in 1..8, got ", bits);
    check(group_size == -1 || group_size > 0, l, ": group_size must be -1 or positive, got ", group_size);
    check(out_features > 0 && in_features > 0, l, ": shape must be positive");
    const int64_t ng = n_groups();
    check(static_cast<int64_t>(codes.size()) == out_features * in_features, l, ": codes hold ", codes.size(),
          " values, expected [out, in] = ", out_features * in_features);
    check(static_cast<int64_t>(scales.size()) == out_features * ng, l, ": scales hold ", scales.size(),
          " values, expected [out, n_groups] = [", out_features, ", ", ng, "]");
    const uint32_t mask = pack::code_mask(bits);
    for (size_t i = 0; i < codes.size(); ++i)
        if (codes[i] > mask)
            fail(l, ": code ", int(codes[i]), " at [", i / in_features, ", ", i % in_features, "] exceeds ", bits, " bits");
    for (size_t i = 0; i < scales.size(); ++i)
        if (!std::isfinite(scales[i])) fail(l, ": scale at [", i / ng, ", ", i % ng, "] is not finite");
    if (double_quant()) {
        check(ng % dq_super_group == 0, l, ": ", ng, " groups per row are not a multiple of the super-group size ",
              dq_super_group);
        check(float_zeros.empty(), l, ": a double-quantized tensor has no float zero points");
        const size_t nsg = static_cast<size_t>(out_features * ng / dq_super_group);
        check(dq_d.size() == nsg && dq_sc.size() == scales.size(), l, ": double-quant factors hold ", dq_d.size(),
              " / ", dq_sc.size(), " values, expected ", nsg, " / ", scales.size());
        check(sym || (dq_dmin.size() == nsg && dq_mn.size() == scales.size()), l,
              ": an asymmetric double-quantized tensor needs dmin [", nsg, "] and min codes [", scales.size(), "]");
        for (size_t g = 0; g < scales.size(); ++g)
            check(scales[g] == dq_d[g / static_cast<size_t>(dq_super_group)] * static_cast<float>(dq_sc[g]), l,
                  ": scale of group ", g, " is not its super-group factor times its code");
    }
    if (!float_zeros.empty()) {
        check(static_cast<int64_t>(float_zeros.size()) == out_features * ng, l, ": float_zeros hold ",
              float_zeros.size(), " values, expected [out, n_groups] = [", out_features, ", ", ng, "]");
        check(!sym, l, ": a symmetric tensor cannot have float zero points");
        return;
    }
    check(static_cast<int64_t>(zeros.size()) == out_features * ng, l, ": zeros hold ", zeros.size(),
          " values, expected [out, n_groups] = [", out_features, ", ", ng, "]");
    const int32_t zmax = 1 << bits, zsym = 1 << (bits - 1);
    for (size_t i = 0; i < zeros.size(); ++i) {
        if (zeros[i] < 0 || zeros[i] > zmax)
            fail(l, ": zero point ", zeros[i], " at [", i / ng, ", ", i % ng, "] outside [0, ", zmax, "]");
        if (sym && zeros[i] != zsym)
            fail(l, ": sym tensor has zero point ", zeros[i], " at [", i / ng, ", ", i % ng, "]; sym requires ", zsym);
    }
}

std::vector<float> QuantizedTensor::dequantize() const {
    std::vector<float> w(static_cast<size_t>(out_features * in_features));
    dequantize_into(w);
    return w;
}

void QuantizedTensor::dequantize_into(std::span<float> w) const {
    validate();
    check(static_cast<int64_t>(w.size()) == out_features * in_features, label(), ": dequantize output holds ",
          w.size(), " floats, expected ", out_features * in_features);
    const int64_t G = group_len(), ng = n_groups();
    const bool fz = !float_zeros.empty();
    for (int64_t n = 0; n < out_features; ++n) {
        const uint8_t* q = codes.data() + n * in_features;
        float* dst = w.data() + n * in_features;
        if (double_quant() && !sym) {  // w = s·q - m (the k-quant order: one product, one subtraction)
            for (int64_t k = 0; k < in_features; ++k) {
                const size_t gi = static_cast<size_t>(n * ng + k / G);
                const float m = dq_dmin[gi / static_cast<size_t>(dq_super_group)] * static_cast<float>(dq_mn[gi]);
                dst[k] = scales[gi] * static_cast<float>(q[k]) - m;
            }
            continue;
        }
        for (int64_t k = 0; k < in_features; ++k) {
            const size_t gi = static_cast<size_t>(n * ng + k / G);
            // (q - z) is an exact small integer; one rounding at most (none for fp16 scales).
            dst[k] = fz ? (static_cast<float>(q[k]) - float_zeros[gi]) * scales[gi]
                        : static_cast<float>(static_cast<int32_t>(q[k]) - zeros[gi]) * scales[gi];
        }
    }
}

// ---- PackedLinear -------------------------------------------------------------------------------------

bool PackedLinear::has(std::string_view suffix) const {
    for (const auto& t : tensors)
        if (t.suffix == suffix) return true;
    return false;
}

const PackedTensor& PackedLinear::get(std::string_view suffix) const {
    for (const auto& t : tensors)
        if (t.suffix == suffix) return t;
    fail("packed linear has no tensor '", std::string(suffix), "'");
}

void PackedLinear::add_to(SafetensorsWriter& writer, const std::string& prefix) const {
    for (const auto& t : tensors) writer.add(join_name(prefix, t.suffix), t.dtype, t.shape, t.bytes);
}

std::map<std::string, TensorInfo> PackedLinear::infos(const std::string& prefix) const {
    std::map<std::string, TensorInfo> m;
    for (const auto& t : tensors) {
        TensorInfo i;
        i.name = join_name(prefix, t.suffix);
        i.dtype = t.dtype;
        i.shape = t.shape;
        i.data = t.bytes.data();
        i.nbytes = t.bytes.size();
        m.emplace(i.name, std::move(i));
    }
    return m;
}

// ---- GPTQ ---------------------------------------------------------------------------------------------

PackedLinear to_gptq(const QuantizedTensor& q, const GptqOptions& opt) {
    q.validate();
    const std::string l = q.label();
    check(q.float_zeros.empty(), l, ": GPTQ stores integer zero points only; this tensor has float zeros");
    check(!q.double_quant(), l, ": a GGUF k-quant (double-quantized) tensor cannot be stored as GPTQ; export it with "
          "--format gguf:<type> or fake");
    check(pack::gptq_bits_ok(q.bits), l, ": GPTQ supports bits 2, 3, 4, 8, not ", q.bits);
    const int64_t N = q.out_features, K = q.in_features, ng = q.n_groups(), G = q.group_len();
    const int64_t blk = pack::gptq_codes_per_block(q.bits);
    check(K % blk == 0 && N % blk == 0, l, ": ", q.bits, "-bit GPTQ packing needs in and out to be multiples of ", blk);

    // Zero fields: v1 stores z - 1, which must stay inside the field (z = 0 would borrow; docs §1.4).
    const int32_t offset = opt.zeros == GptqZeros::V1 ? 1 : 0;
    const int32_t mask = static_cast<int32_t>(pack::code_mask(q.bits));
    std::vector<uint8_t> fields(q.zeros.size());
    for (size_t i = 0; i < q.zeros.size(); ++i) {
        const int32_t f = q.zeros[i] - offset;
        if (f < 0 || f > mask)
            fail(l, ": zero point ", q.zeros[i], " of row ", i / ng, ", group ", i % ng, " cannot be stored in GPTQ ",
                 opt.zeros == GptqZeros::V1 ? "v1 (field = z - 1 must be in [0, " : "v2 (field = z must be in [0, ", mask,
                 "])", opt.zeros == GptqZeros::V1 ? "; use checkpoint_format gptq_v2 or AWQ, or clamp the zero to 1" : "");
        fields[i] = static_cast<uint8_t>(f);
    }

    PackedLinear p;
    p.tensors.push_back({"qweight", DType::I32, {pack::gptq_words_for(K, q.bits), N},
                         to_bytes(pack::gptq_pack_qweight(q.codes, N, K, q.bits, l.c_str()))});
    p.tensors.push_back({"qzeros", DType::I32, {ng, pack::gptq_words_for(N, q.bits)},
                         to_bytes(pack::gptq_pack_qzeros(fields, N, ng, q.bits, l.c_str()))});
    p.tensors.push_back(encode_scales(q, opt.scale_dtype));
    if (opt.write_g_idx) {
        std::vector<int32_t> g_idx(static_cast<size_t>(K));
        for (int64_t k = 0; k < K; ++k) g_idx[static_cast<size_t>(k)] = static_cast<int32_t>(k / G);
        p.tensors.push_back({"g_idx", DType::I32, {K}, to_bytes(g_idx)});
    }
    return p;
}

QuantizedTensor from_gptq(const std::map<std::string, TensorInfo>& ts, const std::string& prefix,
                          const QuantScheme& scheme, GptqZeros zeros) {
    check_scheme(scheme, prefix, "GPTQ");
    check(pack::gptq_bits_ok(scheme.bits), "GPTQ layer ", prefix, ": bits must be 2, 3, 4 or 8, got ", scheme.bits);
    const int b = scheme.bits;
    const TensorInfo& qw = need(ts, prefix, "qweight", "GPTQ");
    check(qw.dtype == DType::I32, "tensor ", qw.name, ": qweight must be I32, got ", dtype_name(qw.dtype));
    expect_rank2(qw);
    check(qw.shape[0] * 32 % b == 0, "tensor ", qw.name, " ", shape_str(qw.shape), ": ", qw.shape[0],
          " rows is not a whole number of ", b, "-bit codes");
    const int64_t K = qw.shape[0] * 32 / b, N = qw.shape[1];
    check(N * b % 32 == 0, "tensor ", qw.name, " ", shape_str(qw.shape), ": out_features ", N,
          " cannot be packed into ", b, "-bit qzeros words");
    expect(qw, DType::I32, {pack::gptq_words_for(K, b), N});

    QuantizedTensor q;
    q.name = prefix;
    q.bits = b;
    q.group_size = scheme.group_size;
    q.sym = scheme.sym;
    q.out_features = N;
    q.in_features = K;
    const int64_t ng = q.n_groups(), G = q.group_len();

    const TensorInfo& qz = need(ts, prefix, "qzeros", "GPTQ");
    expect(qz, DType::I32, {ng, pack::gptq_words_for(N, b)});
    q.scales = read_scales(need(ts, prefix, "scales", "GPTQ"), ng, N);
    if (const TensorInfo* gi = find(ts, prefix, "g_idx")) {
        expect(*gi, DType::I32, {K});
        const std::vector<int32_t> g = read_i32(*gi);
        for (int64_t k = 0; k < K; ++k)
            if (g[static_cast<size_t>(k)] != k / G)
                fail("tensor ", gi->name, ": g_idx[", k, "] = ", g[static_cast<size_t>(k)], ", expected ", k / G,
                     " (group_size ", scheme.group_size, "); act-order (desc_act) checkpoints are not supported");
    }

    q.codes = pack::gptq_unpack_qweight(read_i32(qw), N, K, b, qw.name.c_str());
    const std::vector<uint8_t> fields = pack::gptq_unpack_qzeros(read_i32(qz), N, ng, b, qz.name.c_str());
    const int32_t offset = zeros == GptqZeros::V1 ? 1 : 0;  // v1: z = field + 1 (vLLM/exllama decode)
    q.zeros.resize(fields.size());
    for (size_t i = 0; i < fields.size(); ++i) q.zeros[i] = static_cast<int32_t>(fields[i]) + offset;
    q.validate();
    return q;
}

// ---- AWQ ----------------------------------------------------------------------------------------------

PackedLinear to_awq(const QuantizedTensor& q, DType scale_dtype) {
    q.validate();
    const std::string l = q.label();
    check(q.bits == 4, l, ": AWQ supports 4-bit only, not ", q.bits);
    check(q.float_zeros.empty(), l, ": AWQ stores integer zero points only; this tensor has float zeros");
    check(!q.double_quant(), l, ": a GGUF k-quant (double-quantized) tensor cannot be stored as AWQ; export it with "
          "--format gguf:<type> or fake");
    const int64_t N = q.out_features, K = q.in_features, ng = q.n_groups();
    check(N % 8 == 0, l, ": AWQ packing needs out_features to be a multiple of 8");
    std::vector<uint8_t> fields(q.zeros.size());
    for (size_t i = 0; i < q.zeros.size(); ++i) {
        if (q.zeros[i] > 15)
            fail(l, ": zero point ", q.zeros[i], " of row ", i / ng, ", group ", i % ng, " does not fit AWQ's 4-bit field");
        fields[i] = static_cast<uint8_t>(q.zeros[i]);  // true zero, no offset (docs §2.3)
    }
    PackedLinear p;
    p.tensors.push_back({"qweight", DType::I32, {K, N / 8}, to_bytes(pack::awq_pack_qweight(q.codes, N, K, l.c_str()))});
    p.tensors.push_back({"qzeros", DType::I32, {ng, N / 8}, to_bytes(pack::awq_pack_qzeros(fields, N, ng, l.c_str()))});
    p.tensors.push_back(encode_scales(q, scale_dtype));
    return p;
}

QuantizedTensor from_awq(const std::map<std::string, TensorInfo>& ts, const std::string& prefix, const QuantScheme& scheme) {
    check_scheme(scheme, prefix, "AWQ");
    check(scheme.bits == 4, "AWQ layer ", prefix, ": AWQ is 4-bit only, config says bits ", scheme.bits);
    const TensorInfo& qw = need(ts, prefix, "qweight", "AWQ");
    check(qw.dtype == DType::I32, "tensor ", qw.name, ": qweight must be I32, got ", dtype_name(qw.dtype));
    expect_rank2(qw);
    const int64_t K = qw.shape[0], N = qw.shape[1] * 8;

    QuantizedTensor q;
    q.name = prefix;
    q.bits = 4;
    q.group_size = scheme.group_size;
    q.sym = scheme.sym;
    q.out_features = N;
    q.in_features = K;
    const int64_t ng = q.n_groups();

    const TensorInfo& qz = need(ts, prefix, "qzeros", "AWQ");
    expect(qz, DType::I32, {ng, N / 8});
    q.scales = read_scales(need(ts, prefix, "scales", "AWQ"), ng, N);
    q.codes = pack::awq_unpack_qweight(read_i32(qw), N, K, qw.name.c_str());
    const std::vector<uint8_t> fields = pack::awq_unpack_qzeros(read_i32(qz), N, ng, qz.name.c_str());
    q.zeros.assign(fields.begin(), fields.end());
    q.validate();
    return q;
}

// ---- auto-round native --------------------------------------------------------------------------------

AutoRoundPacking parse_auto_round_packing(std::string_view f) {
    if (f.empty() || f == "auto_round:auto_gptq" || f == "auto_round:gptq" || f == "auto") return AutoRoundPacking::AutoGptq;
    if (f == "auto_round:auto_awq" || f == "auto_round:awq") return AutoRoundPacking::AutoAwq;
    if (f == "auto_round:gptqmodel") return AutoRoundPacking::GptqModel;
    if (f == "auto_round") return AutoRoundPacking::Plain;
    fail("quantization_config.packing_format '", std::string(f),
         "' is not supported (int formats: auto_round, auto_round:auto_gptq, auto_round:auto_awq, auto_round:gptqmodel)");
}

std::string_view auto_round_packing_name(AutoRoundPacking p) {
    switch (p) {
        case AutoRoundPacking::AutoGptq: return "auto_round:auto_gptq";
        case AutoRoundPacking::AutoAwq: return "auto_round:auto_awq";
        case AutoRoundPacking::GptqModel: return "auto_round:gptqmodel";
        case AutoRoundPacking::Plain: return "auto_round";
    }
    return "auto_round";
}

AutoRoundPacking default_auto_round_packing(int bits, bool sym) {
    if (sym) return AutoRoundPacking::AutoGptq;
    return bits == 4 ? AutoRoundPacking::AutoAwq : AutoRoundPacking::Plain;
}

PackedLinear to_auto_round(const QuantizedTensor& q, AutoRoundPacking packing) {
    switch (packing) {
        case AutoRoundPacking::AutoGptq: return to_gptq(q, {GptqZeros::V1, false, DType::F16});
        case AutoRoundPacking::GptqModel: return to_gptq(q, {GptqZeros::V2, true, DType::F16});
        case AutoRoundPacking::Plain: return to_gptq(q, {GptqZeros::V2, false, DType::F16});
        case AutoRoundPacking::AutoAwq: return to_awq(q, DType::F16);
    }
    fail(q.label(), ": unknown auto-round packing");
}

QuantizedTensor from_auto_round(const std::map<std::string, TensorInfo>& ts, const std::string& prefix,
                                const QuantScheme& scheme, AutoRoundPacking packing) {
    switch (packing) {
        case AutoRoundPacking::AutoGptq: return from_gptq(ts, prefix, scheme, GptqZeros::V1);
        case AutoRoundPacking::GptqModel:
        case AutoRoundPacking::Plain: return from_gptq(ts, prefix, scheme, GptqZeros::V2);
        case AutoRoundPacking::AutoAwq: return from_awq(ts, prefix, scheme);
    }
    fail("auto-round layer ", prefix, ": unknown packing");
}

}  // namespace autoround

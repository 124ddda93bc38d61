// quant/quantized_tensor.h — the format-neutral representation of one quantized nn.Linear weight
// (integer codes + per-group scales + per-group zero points) and its conversion to and from the
// on-disk tensor sets of GPTQ, AWQ (GEMM) and auto-round's native format
// (docs/checkpoint-formats.md §1–§3; bit layouts live in export/pack.h).
//
// Why: the quantizers (RTN, SignRound) produce one QuantizedTensor per layer; every exporter and every
// loader goes through the same to_*/from_* pair, so "the GPTQ file and the AWQ file hold the same model"
// is a property that can be tested (they must give the same QuantizedTensor).
//
// Conventions
//   * Orientation is HF's: codes [out, in] (= [N, K]); scales/zeros [out, n_groups]. The files store
//     the transposes (GPTQ qweight [K*b/32, N], scales [ng, N], ...); the conversions transpose.
//   * group_size -1 (or >= in) = one group per output row over the whole input (docs §0.1: G = K).
//     n_groups = ceil(in / G); a partial last group is allowed here (auto-round pads it with zeros while
//     quantizing, autoround-algorithm.md §2.2) but real runtimes need in % G == 0.
//   * Dequantization, the same for every format: w[n][k] = (q[n][k] - z[n][g]) * s[n][g], g = k / G,
//     computed in float32. |q - z| <= 256 and scales are fp16 values, so the product is exact.
//   * sym = true means every zero equals 2^(bits-1) (what Marlin hard-codes; docs §1.7). Scales may be
//     negative (auto-round's full-range symmetric scheme); they are never abs()'d.
//   * Zero conventions on disk (docs §1.4, §2.3, §3.3):
//       GPTQ "gptq" (v1; also when checkpoint_format is absent) stores z - 1;  "gptq_v2" stores z;
//       AWQ stores z;  auto_round:auto_gptq = GPTQ v1 without g_idx;  plain auto_round = GPTQ layout with
//       true zeros, no g_idx;  auto_round:gptqmodel = GPTQ v2 with g_idx;  auto_round:auto_awq = AWQ.
//     A v1 writer cannot store z = 0 (the field would be -1 and borrow from its neighbour), so to_gptq
//     refuses it. A v1 reader decodes field f as z = f + 1 (vLLM / exllama), so z can read back as 2^bits.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors.h"

namespace autoround {

// What a quantization_config says about one layer.
struct QuantScheme {
    int bits = 4;              // 2, 3, 4, 8 for the packed formats (the tensor itself allows 1..8)
    int64_t group_size = 128;  // -1 = whole row
    bool sym = true;
};

// Group length actually used for a row of `in` values: `in` when group_size <= 0 or >= in.
int64_t effective_group_len(int64_t group_size, int64_t in);
// ceil(in / effective_group_len).
int64_t num_groups(int64_t group_size, int64_t in);

struct QuantizedTensor {
    std::string name;              // layer prefix, e.g. "model.layers.0.mlp.down_proj"; named in errors
    int bits = 4;
    int64_t group_size = 128;      // as configured; -1 = whole row
    bool sym = true;
    int64_t out_features = 0;      // N
    int64_t in_features = 0;       // K
    std::vector<uint8_t> codes;    // [out, in] uint8, unsigned codes in [0, 2^bits - 1]
    std::vector<float> scales;     // [out, n_groups] float32 (fp16/bf16 on disk)
    std::vector<int32_t> zeros;    // [out, n_groups] int32 integer zero points, in [0, 2^bits]
    // Room for float zero points (e.g. auto-round's int_asym_float_zp / GGUF q4_1): when non-empty,
    // [out, n_groups] float32, used by dequantize() instead of `zeros`; no int format can store them.
    std::vector<float> float_zeros;
    // GGUF k-quant double quantization (auto-round's int_asym_dq / int_sym_dq, quant/gguf_double_quant.h): when
    // dq_super_group > 0, every dq_super_group consecutive groups (of one row) form a super-group u, and
    //   scales[g] == dq_d[u] * dq_sc[g] (exact: an fp16 value times a small integer);
    //   asym (sym == false): w = s·q - m with m = dq_dmin[u] * dq_mn[g] (zeros are unused and 0);
    //   sym: zeros == 2^(bits-1), w = (q - z)·s as usual; dq_dmin / dq_mn are empty.
    // Only the GGUF k-quant blocks (Q4_K, Q5_K, Q6_K) and the fake format can store such a tensor.
    int64_t dq_super_group = 0;
    std::vector<float> dq_d, dq_dmin;    // [out · n_groups / dq_super_group] fp16 values
    std::vector<int32_t> dq_sc, dq_mn;   // [out, n_groups] integer scale / min codes
    bool double_quant() const { return dq_super_group > 0; }

    QuantScheme scheme() const { return {bits, group_size, sym}; }
    int64_t group_len() const { return effective_group_len(group_size, in_features); }
    int64_t n_groups() const { return num_groups(group_size, in_features); }

    // Checks sizes, value ranges and the sym rule; throws Error naming the layer and shape.
    void validate() const;
    std::string label() const;  // "<name> [out, in]" for messages

    // w = (q - z) * s, float32 [out, in].
    std::vector<float> dequantize() const;
    void dequantize_into(std::span<float> out) const;  // out.size() == out_features * in_features
};

// ---- on-disk tensor sets ------------------------------------------------------------------------------

// One tensor of a packed Linear, e.g. suffix "qweight", I32, [64, 512], raw little-endian bytes.
struct PackedTensor {
    std::string suffix;            // "qweight", "qzeros", "scales", "g_idx"
    DType dtype = DType::I32;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
};

// The tensors that replace `<prefix>.weight` in a checkpoint.
struct PackedLinear {
    std::vector<PackedTensor> tensors;

    bool has(std::string_view suffix) const;
    const PackedTensor& get(std::string_view suffix) const;  // throws Error naming the suffix
    // Adds every tensor as "<prefix>.<suffix>" (just "<suffix>" when prefix is empty).
    void add_to(SafetensorsWriter& writer, const std::string& prefix) const;
    // Non-owning TensorInfo views named "<prefix>.<suffix>", in the shape from_* expect
    // (valid while this PackedLinear lives).
    std::map<std::string, TensorInfo> infos(const std::string& prefix) const;
};

enum class GptqZeros {
    V1,  // checkpoint_format "gptq" (or absent): field = z - 1
    V2,  // checkpoint_format "gptq_v2": field = z
};

struct GptqOptions {
    GptqZeros zeros = GptqZeros::V1;
    bool write_g_idx = true;            // always true for real GPTQ (docs §1.1); auto_round:auto_gptq omits it
    DType scale_dtype = DType::F16;     // F16 is canonical; BF16/F32 possible
};

// GPTQ (AutoGPTQ / GPTQModel / auto-round "auto_gptq" export), desc_act = false:
//   qweight I32 [in*bits/32, out], qzeros I32 [ng, out*bits/32], scales F16 [ng, out], g_idx I32 [in] = k / G.
// Needs bits 2/3/4/8, in and out multiples of 32/bits (3-bit: of 32).
PackedLinear to_gptq(const QuantizedTensor& q, const GptqOptions& opt = {});
// Reads "<prefix>.qweight/.qzeros/.scales" and, if present, "<prefix>.g_idx" (which must be k / G:
// act-order checkpoints cannot be represented and are refused). Scales may be F16, BF16 or F32.
QuantizedTensor from_gptq(const std::map<std::string, TensorInfo>& tensors, const std::string& prefix,
                          const QuantScheme& scheme, GptqZeros zeros = GptqZeros::V1);

// AWQ GEMM (AutoAWQ, auto-round "auto_awq" export), 4-bit only:
//   qweight I32 [in, out/8], qzeros I32 [ng, out/8] (true zeros), scales F16 [ng, out]. No g_idx.
PackedLinear to_awq(const QuantizedTensor& q, DType scale_dtype = DType::F16);
QuantizedTensor from_awq(const std::map<std::string, TensorInfo>& tensors, const std::string& prefix,
                         const QuantScheme& scheme);

// auto-round native format: `packing_format` picks one of the layouts above (docs §3.1, §3.3).
enum class AutoRoundPacking {
    AutoGptq,   // "auto_round:auto_gptq" (aliases "auto_round:gptq", "auto", absent): GPTQ v1, no g_idx
    AutoAwq,    // "auto_round:auto_awq" (alias "auto_round:awq"): AWQ
    GptqModel,  // "auto_round:gptqmodel": GPTQ v2 (true zeros), with g_idx
    Plain,      // "auto_round": GPTQ layout, true zeros, no g_idx
};
// Parses a packing_format string; "" (key absent) means AutoGptq. Throws Error for other values.
AutoRoundPacking parse_auto_round_packing(std::string_view packing_format);
std::string_view auto_round_packing_name(AutoRoundPacking p);
// What auto-round's `--format auto_round` picks for a layer (docs §3.1): sym -> AutoGptq; asym 4-bit ->
// AutoAwq (auto-round requires every layer of the model to be 4-bit or unquantized for this; the caller
// decides at model level); asym other widths -> Plain.
AutoRoundPacking default_auto_round_packing(int bits, bool sym);

PackedLinear to_auto_round(const QuantizedTensor& q, AutoRoundPacking packing);
QuantizedTensor from_auto_round(const std::map<std::string, TensorInfo>& tensors, const std::string& prefix,
                                const QuantScheme& scheme, AutoRoundPacking packing);

}  // namespace autoround

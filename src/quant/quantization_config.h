// quant/quantization_config.h — how a model is quantized: the global scheme (bits, group_size, sym,
// data_type), the packing, per-layer overrides (bits 16 = kept in full precision), which blocks /
// modules are quantized, and the tuning metadata (iters, lr, nsamples, ...).
//
// Why one struct for three formats: a checkpoint's config.json `quantization_config` comes in three
// dialects — auto-round native (`quant_method: "auto-round"`, `extra_config`, `packing_format`), GPTQ
// (`dynamic` "-:"/"+:" rules, `checkpoint_format` v1/v2, `desc_act`) and AWQ (`zero_point`, `version`,
// `modules_to_not_convert`) — and the exporters write all three from the same tuned model while the
// inference loader reads any of them back (docs/checkpoint-formats.md §1.8, §1.9, §2.5, §3.2, §3.4;
// docs/autoround-algorithm.md §5.4). Parsing fills this struct; `quantization_config_json` writes the
// dict for one quant_method with exactly the keys Intel's auto-round 0.15.0 writes (the peer exports in
// shared/reference/peer-autoround), except where the formats doc says that choice breaks loading.
//
// Layer-name rules (scheme_for): exact-name override > pattern override (first match, in order) >
// modules_to_not_convert (substring) > lm_head flag > block_name_to_quantize (prefix) >
// modules_in_block_to_quantize (suffix inside a block) > global scheme.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "quant/quantized_tensor.h"

namespace autoround {

// Which `quant_method` a checkpoint declares (and which dialect the writer produces).
enum class QuantMethod {
    AutoRound,  // "auto-round" (also read: the legacy "intel/auto-round")
    Gptq,       // "gptq"
    Awq,        // "awq"
};
std::string_view quant_method_name(QuantMethod m);  // "auto-round", "gptq", "awq"

// The scheme of one layer. bits >= 16 means "not quantized" (kept as a plain `.weight`).
struct LayerScheme {
    int bits = 4;
    int64_t group_size = 128;  // -1 = one group per row
    bool sym = true;
    std::string data_type = "int";  // "int" for quantized layers; "float" / "fp" for bits 16; GGUF k-quants:
                                    // "int_asym_dq" (q4_k, q5_k) / "int_sym_dq" (q6_k), quant/gguf_double_quant.h
    int super_group_size = 0;       // *_dq only: groups per super-group (8 or 16)
    int super_bits = 0;             // *_dq only: bits of the super-group's scale codes (6 or 8)

    bool quantized() const { return bits <= 8; }
    QuantScheme quant_scheme() const { return {bits, group_size, sym}; }
    bool operator==(const LayerScheme&) const = default;
};

// A regex rule (auto-round `extra_config` regex keys, GPTQ `dynamic` keys without their "-:"/"+:").
struct PatternOverride {
    std::string pattern;   // ECMAScript regex (Python re syntax for the patterns used in practice)
    LayerScheme scheme;    // bits 16 = skip
    bool anchored = false; // true: must match at the start of the name (Python re.match, GPTQ `dynamic`);
                           // false: anywhere (re.search, auto-round extra_config)
};

struct QuantizationConfig {
    // ---- global scheme --------------------------------------------------------------------------
    QuantMethod method = QuantMethod::AutoRound;  // what the parsed checkpoint declared; the writer takes its own
    int bits = 4;
    int64_t group_size = 128;
    bool sym = true;
    std::string data_type = "int";

    // ---- packing ----------------------------------------------------------------------------------
    AutoRoundPacking packing = AutoRoundPacking::AutoGptq;  // auto-round `packing_format`
    GptqZeros gptq_zeros = GptqZeros::V1;                   // GPTQ `checkpoint_format` ("gptq" / "gptq_v2")
    bool desc_act = false;                                  // GPTQ act-order (the loader refuses real act-order)
    bool static_groups = false;                             // GPTQ
    bool awq_zero_point = true;                             // AWQ `zero_point` as read (the writer always writes true)

    // ---- which layers --------------------------------------------------------------------------------
    std::map<std::string, LayerScheme> layer_overrides;     // exact layer name -> scheme (bits 16 = unquantized)
    std::vector<PatternOverride> pattern_overrides;         // regex rules, first match wins
    std::vector<std::string> block_name_to_quantize;        // e.g. {"model.layers"}; empty = every Linear but lm_head
    std::vector<std::string> modules_to_not_convert;        // substring rules, e.g. {"visual"} (AWQ style)
    std::vector<std::vector<std::string>> modules_in_block_to_quantize;  // GPTQ/optimum: names inside a block
    bool quant_lm_head = false;

    // ---- tuning metadata (written only when set and not auto-round's default; §3.2) -----------------
    std::optional<int> iters;        // default 200
    std::optional<double> lr;        // default 1/iters (5e-3 when iters == 0)
    std::optional<double> minmax_lr; // default = lr's default
    std::optional<int> nsamples;     // default 128
    std::optional<int> seqlen;       // default 2048
    std::optional<int> batch_size;   // default 8
    // auto-round version this port reproduces (docs/autoround-algorithm.md §0: main @ b9f3d00 = 0.15.0).
    // vLLM uses the key's presence to recognise auto-round output; the auto-round loader keys
    // version-dependent behaviour off it.
    std::string autoround_version = "0.15.0";

    LayerScheme global() const;  // the global scheme as a LayerScheme
    // The scheme that applies to `layer` (a module name such as "model.layers.0.self_attn.q_proj").
    LayerScheme scheme_for(const std::string& layer) const;
    bool is_quantized(const std::string& layer) const { return scheme_for(layer).quantized(); }
    // The block prefix from block_name_to_quantize that `layer` lies under ("" if none).
    std::string block_of(const std::string& layer) const;
};

// ---- parsing ----------------------------------------------------------------------------------------

// Parses a `quantization_config` object. `label` names the source in errors
// (e.g. "/m/config.json quantization_config"); every error names the offending field. Regex rules
// (GPTQ `dynamic`, auto-round `extra_config`) keep the file's order, first match winning, so prefer the
// ordered_json overload; the nlohmann::json one sees keys sorted.
QuantizationConfig parse_quantization_config(const nlohmann::ordered_json& qc, const std::string& label);
QuantizationConfig parse_quantization_config(const nlohmann::json& qc, const std::string& label);

// ---- writing ----------------------------------------------------------------------------------------

// The `quantization_config` dict for `method`, keys in the order auto-round writes them:
//   AutoRound: bits, data_type, group_size, sym, [non-default metadata], static_*_granularity,
//              autoround_version, block_name_to_quantize, quant_method, packing_format, [extra_config]
//   Gptq:      bits, data_type, group_size, sym, [metadata], static_*, autoround_version, lm_head, provider,
//              quant_method, desc_act, true_sequential, damp_percent, checkpoint_format, [dynamic],
//              [modules_in_block_to_quantize], [block_name_to_quantize]
//   Awq:       bits, data_type, group_size, sym, [metadata], static_*, to_quant_block_names,
//              autoround_version, provider, quant_method, zero_point, version, modules_to_not_convert
// Deviations from the peer tool (each commented in the .cpp): AWQ writes "zero_point": true for symmetric
// models (vLLM picks AWQ-Marlin only then; §2.4), GPTQ writes an explicit "checkpoint_format" (§1.8).
nlohmann::ordered_json quantization_config_json(const QuantizationConfig& qc, QuantMethod method);

// auto-round's default lr (and minmax_lr) for `iters`: 1/iters, or 5e-3 for iters == 0.
double default_lr_for_iters(int iters);

// ---- helpers ----------------------------------------------------------------------------------------

// Escapes regex metacharacters so that a layer name matches itself literally.
std::string regex_escape(std::string_view s);
// Whether `p` matches `layer` (re.match when anchored, re.search otherwise); Error for an invalid regex.
bool pattern_matches(const PatternOverride& p, const std::string& layer);
// True for "lm_head" and names ending in ".lm_head".
bool is_lm_head_name(const std::string& layer);

}  // namespace autoround

// quant/quantization_config.cpp — parsing and writing of `quantization_config` for the auto-round,
// GPTQ and AWQ dialects (see quantization_config.h; docs/checkpoint-formats.md §1.8, §1.9, §2.5, §3.2,
// §3.4; docs/autoround-algorithm.md §5.4; peer files under shared/reference/peer-autoround).
#include "quant/quantization_config.h"

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

#include "core/error.h"

namespace autoround {

namespace {

// Parsing works on ordered JSON: GPTQ `dynamic` and auto-round `extra_config` regex rules apply in file order
// (first match wins), which a sorted std::map would lose.
using json = nlohmann::ordered_json;
using ojson = nlohmann::ordered_json;

// auto-round's defaults for the tuning metadata (filter_quantization_config drops keys equal to these).
constexpr int kDefaultIters = 200;
constexpr int kDefaultNsamples = 128;
constexpr int kDefaultSeqlen = 2048;
constexpr int kDefaultBatchSize = 8;

// optimum's BLOCK_PATTERNS: transformers auto-detects these block lists, so GPTQ configs omit
// block_name_to_quantize for them (as auto-round's GPTQ export does).
const std::set<std::string> kStandardBlockPatterns = {"transformer.h", "model.decoder.layers", "gpt_neox.layers",
                                                      "model.layers"};

// ---- typed field access; every error names label.field ---------------------------------------------

std::string field_name(const std::string& label, std::string_view key) { return label + "." + std::string(key); }

const json* find_field(const json& j, std::string_view key) {
    auto it = j.find(std::string(key));
    if (it == j.end() || it->is_null()) return nullptr;
    return &*it;
}

std::optional<int64_t> get_int(const json& j, std::string_view key, const std::string& label) {
    const json* v = find_field(j, key);
    if (!v) return std::nullopt;
    if (v->is_number_integer()) return v->get<int64_t>();
    if (v->is_number_float()) {
        const double d = v->get<double>();
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) return static_cast<int64_t>(d);
    }
    fail(field_name(label, key), ": expected an integer, got ", v->dump());
}

std::optional<bool> get_bool(const json& j, std::string_view key, const std::string& label) {
    const json* v = find_field(j, key);
    if (!v) return std::nullopt;
    check(v->is_boolean(), field_name(label, key), ": expected true or false, got ", v->dump());
    return v->get<bool>();
}

std::optional<double> get_double(const json& j, std::string_view key, const std::string& label) {
    const json* v = find_field(j, key);
    if (!v) return std::nullopt;
    check(v->is_number(), field_name(label, key), ": expected a number, got ", v->dump());
    return v->get<double>();
}

std::optional<std::string> get_string(const json& j, std::string_view key, const std::string& label) {
    const json* v = find_field(j, key);
    if (!v) return std::nullopt;
    check(v->is_string(), field_name(label, key), ": expected a string, got ", v->dump());
    return v->get<std::string>();
}

// A string list given as a JSON string (comma-separated) or an array of strings.
std::vector<std::string> get_name_list(const json& j, std::string_view key, const std::string& label) {
    const json* v = find_field(j, key);
    std::vector<std::string> out;
    if (!v) return out;
    auto add_csv = [&](const std::string& s) {
        size_t start = 0;
        while (start <= s.size()) {
            size_t end = s.find(',', start);
            if (end == std::string::npos) end = s.size();
            std::string part = s.substr(start, end - start);
            part.erase(0, part.find_first_not_of(" \t"));
            part.erase(part.find_last_not_of(" \t") + 1);
            if (!part.empty()) out.push_back(part);
            start = end + 1;
        }
    };
    if (v->is_string()) {
        add_csv(v->get<std::string>());
    } else if (v->is_array()) {
        for (const auto& e : *v) {
            check(e.is_string(), field_name(label, key), ": expected a list of strings, found ", e.dump());
            add_csv(e.get<std::string>());
        }
    } else {
        fail(field_name(label, key), ": expected a string or a list of strings, got ", v->dump());
    }
    return out;
}

int checked_bits(int64_t b, const std::string& where) {
    check(b == 2 || b == 3 || b == 4 || b == 8 || b >= 16, where, ": bits must be 2, 3, 4, 8 (or >= 16 for an "
          "unquantized layer), got ", b);
    return static_cast<int>(b);
}

int64_t checked_group(int64_t g, const std::string& where) {
    check(g == -1 || g > 0, where, ": group_size must be -1 (one group per row) or positive, got ", g,
          g == 0 ? " (per-tensor quantization is not supported)" : "");
    return g;
}

void check_int_data_type(const std::string& dt, const std::string& where) {
    check(dt.rfind("int", 0) == 0, where, ": data_type '", dt,
          "' is not supported; autoround.cpp reads and writes integer weight quantization (data_type \"int\") only");
}

LayerScheme unquantized_like(const LayerScheme& g) { return LayerScheme{16, g.group_size, g.sym, "float"}; }

// A scheme object such as {"bits": 16, "data_type": "float"}: missing keys fall back to `base`.
LayerScheme parse_layer_scheme(const json& v, const LayerScheme& base, const std::string& where) {
    check(v.is_object(), where, ": expected an object such as {\"bits\": 8}, got ", v.dump());
    LayerScheme s = base;
    if (auto b = get_int(v, "bits", where)) s.bits = checked_bits(*b, field_name(where, "bits"));
    if (auto g = get_int(v, "group_size", where)) s.group_size = checked_group(*g, field_name(where, "group_size"));
    if (auto sy = get_bool(v, "sym", where)) s.sym = *sy;
    if (auto dt = get_string(v, "data_type", where)) {
        s.data_type = *dt;
    } else if (!s.quantized()) {
        s.data_type = "float";
    } else if (!base.quantized()) {
        s.data_type = "int";
    }
    if (s.quantized()) check_int_data_type(s.data_type, field_name(where, "data_type"));
    return s;
}

// True when a name contains regex syntax (other than '.', which every module name has).
bool looks_like_regex(const std::string& s) { return s.find_first_of("*+?[](){}|^$\\") != std::string::npos; }

bool is_lm_head(const std::string& name) { return is_lm_head_name(name); }

bool regex_matches(const PatternOverride& p, const std::string& name) { return pattern_matches(p, name); }

std::string join(const std::vector<std::string>& v, const char* sep) {
    std::string r;
    for (size_t i = 0; i < v.size(); ++i) r += (i ? sep : "") + v[i];
    return r;
}

bool same_double(double a, double b) { return std::fabs(a - b) <= 1e-12 * std::max(1.0, std::fabs(b)); }

// Keys of `s` that differ from the global scheme `g`, in auto-round's order.
ojson scheme_diff(const LayerScheme& s, const LayerScheme& g) {
    ojson d = ojson::object();
    if (s.bits != g.bits) d["bits"] = s.bits;
    if (s.data_type != g.data_type) d["data_type"] = s.data_type;
    if (s.quantized() && s.group_size != g.group_size) d["group_size"] = s.group_size;
    if (s.quantized() && s.sym != g.sym) d["sym"] = s.sym;
    return d;
}

ojson scheme_full(const LayerScheme& s) {
    ojson d = ojson::object();
    d["bits"] = s.bits;
    d["data_type"] = s.data_type;
    d["group_size"] = s.group_size;
    d["sym"] = s.sym;
    return d;
}

// bits, data_type, group_size, sym, then the non-default tuning metadata (SERIALIZATION_KEYS order),
// then the two static-attention keys auto-round 0.15.0 writes for every scheme.
ojson common_head(const QuantizationConfig& qc) {
    ojson j = ojson::object();
    j["bits"] = qc.bits;
    j["data_type"] = qc.data_type;
    j["group_size"] = qc.group_size;
    j["sym"] = qc.sym;
    const int iters = qc.iters.value_or(kDefaultIters);
    if (qc.batch_size && *qc.batch_size != kDefaultBatchSize) j["batch_size"] = *qc.batch_size;
    if (qc.iters && *qc.iters != kDefaultIters) j["iters"] = *qc.iters;
    if (qc.lr && !same_double(*qc.lr, default_lr_for_iters(iters))) j["lr"] = *qc.lr;
    if (qc.minmax_lr && !same_double(*qc.minmax_lr, default_lr_for_iters(iters))) j["minmax_lr"] = *qc.minmax_lr;
    if (qc.nsamples && *qc.nsamples != kDefaultNsamples) j["nsamples"] = *qc.nsamples;
    if (qc.seqlen && *qc.seqlen != kDefaultSeqlen) j["seqlen"] = *qc.seqlen;
    // auto-round main (0.15.0, after 2026-08-10) serializes these defaults of its experimental static
    // attention / KV-cache quantization even when those are off; they mean nothing for W*A16 and every
    // loader ignores them. Written so our configs carry the same keys as the peer tool's.
    j["static_attention_granularity"] = "tensor";
    j["static_kv_granularity"] = "tensor";
    return j;
}

}  // namespace

std::string_view quant_method_name(QuantMethod m) {
    switch (m) {
        case QuantMethod::AutoRound: return "auto-round";
        case QuantMethod::Gptq: return "gptq";
        case QuantMethod::Awq: return "awq";
    }
    return "auto-round";
}

bool is_lm_head_name(const std::string& name) {
    return name == "lm_head" || (name.size() > 8 && name.compare(name.size() - 8, 8, ".lm_head") == 0);
}

bool pattern_matches(const PatternOverride& p, const std::string& name) {
    try {
        const std::regex re(p.pattern, std::regex::ECMAScript);
        return p.anchored ? std::regex_search(name, re, std::regex_constants::match_continuous)
                          : std::regex_search(name, re);
    } catch (const std::regex_error& e) {
        fail("quantization_config: layer pattern '", p.pattern, "' is not a valid regular expression (", e.what(), ")");
    }
}

double default_lr_for_iters(int iters) { return iters == 0 ? 5e-3 : 1.0 / iters; }

std::string regex_escape(std::string_view s) {
    std::string r;
    for (char c : s) {
        if (std::string_view(".^$|()[]{}*+?\\").find(c) != std::string_view::npos) r += '\\';
        r += c;
    }
    return r;
}

// ---- QuantizationConfig ---------------------------------------------------------------------------------

LayerScheme QuantizationConfig::global() const { return LayerScheme{bits, group_size, sym, data_type}; }

std::string QuantizationConfig::block_of(const std::string& layer) const {
    for (const auto& b : block_name_to_quantize)
        if (layer.size() > b.size() && layer.compare(0, b.size(), b) == 0 && layer[b.size()] == '.') return b;
    return "";
}

LayerScheme QuantizationConfig::scheme_for(const std::string& layer) const {
    const LayerScheme g = global();
    if (auto it = layer_overrides.find(layer); it != layer_overrides.end()) return it->second;
    for (const auto& p : pattern_overrides)
        if (regex_matches(p, layer)) return p.scheme;
    for (const auto& m : modules_to_not_convert)
        if (!m.empty() && layer.find(m) != std::string::npos) return unquantized_like(g);
    if (is_lm_head(layer)) return quant_lm_head ? g : unquantized_like(g);
    const std::string block = block_of(layer);
    if (!block_name_to_quantize.empty() && block.empty()) return unquantized_like(g);
    bool any_listed = false, listed = false;
    for (const auto& group : modules_in_block_to_quantize)
        for (const auto& m : group) {
            any_listed = true;
            if (layer.size() >= m.size() && layer.compare(layer.size() - m.size(), m.size(), m) == 0 &&
                (layer.size() == m.size() || layer[layer.size() - m.size() - 1] == '.'))
                listed = true;
        }
    if (any_listed && !listed) return unquantized_like(g);
    return g;
}

// ---- parsing --------------------------------------------------------------------------------------------

QuantizationConfig parse_quantization_config(const nlohmann::json& j, const std::string& label) {
    return parse_quantization_config(nlohmann::ordered_json::parse(j.dump()), label);
}

QuantizationConfig parse_quantization_config(const nlohmann::ordered_json& j, const std::string& label) {
    check(j.is_object(), label, ": expected a JSON object, got ", j.type_name());
    QuantizationConfig qc;

    const auto method = get_string(j, "quant_method", label);
    check(method.has_value(), field_name(label, "quant_method"),
          " is missing; expected \"auto-round\", \"gptq\" or \"awq\"");
    if (*method == "auto-round" || *method == "intel/auto-round") {
        qc.method = QuantMethod::AutoRound;
    } else if (*method == "gptq") {
        qc.method = QuantMethod::Gptq;
    } else if (*method == "awq") {
        qc.method = QuantMethod::Awq;
    } else {
        fail(field_name(label, "quant_method"), ": '", *method,
             "' is not supported; autoround.cpp reads \"auto-round\", \"gptq\" and \"awq\" checkpoints");
    }

    // bits / group_size (AWQ also accepts the older w_bit / q_group_size spellings, as vLLM does).
    std::optional<int64_t> bits = get_int(j, "bits", label);
    std::string bits_key = "bits";
    if (!bits && qc.method == QuantMethod::Awq && (bits = get_int(j, "w_bit", label))) bits_key = "w_bit";
    check(bits.has_value(), field_name(label, "bits"), " is missing (required by vLLM and transformers)");
    qc.bits = checked_bits(*bits, field_name(label, bits_key));
    check(qc.bits <= 8, field_name(label, bits_key), ": the global bits must be 2, 3, 4 or 8, got ", qc.bits);
    std::optional<int64_t> gs = get_int(j, "group_size", label);
    std::string gs_key = "group_size";
    if (!gs && qc.method == QuantMethod::Awq && (gs = get_int(j, "q_group_size", label))) gs_key = "q_group_size";
    check(gs.has_value(), field_name(label, "group_size"), " is missing (required by vLLM and transformers)");
    qc.group_size = checked_group(*gs, field_name(label, gs_key));

    if (auto dt = get_string(j, "data_type", label)) qc.data_type = *dt;
    check_int_data_type(qc.data_type, field_name(label, "data_type"));
    if (auto ab = get_int(j, "act_bits", label))
        check(*ab >= 16, field_name(label, "act_bits"), ": ", *ab,
              "-bit activation quantization is not supported (weight-only checkpoints only)");

    // metadata (any dialect: auto-round writes it into its GPTQ and AWQ configs too)
    if (auto v = get_int(j, "iters", label)) qc.iters = static_cast<int>(*v);
    if (auto v = get_double(j, "lr", label)) qc.lr = *v;
    if (auto v = get_double(j, "minmax_lr", label)) qc.minmax_lr = *v;
    if (auto v = get_int(j, "nsamples", label)) qc.nsamples = static_cast<int>(*v);
    if (auto v = get_int(j, "seqlen", label)) qc.seqlen = static_cast<int>(*v);
    if (auto v = get_int(j, "batch_size", label)) qc.batch_size = static_cast<int>(*v);
    qc.autoround_version = get_string(j, "autoround_version", label).value_or("");

    const std::string extra_label = field_name(label, "extra_config");
    switch (qc.method) {
        case QuantMethod::AutoRound: {
            qc.sym = get_bool(j, "sym", label).value_or(true);
            qc.packing = parse_auto_round_packing(get_string(j, "packing_format", label).value_or(""));
            qc.block_name_to_quantize = get_name_list(j, "block_name_to_quantize", label);
            if (qc.block_name_to_quantize.empty())
                qc.block_name_to_quantize = get_name_list(j, "to_quant_block_names", label);
            if (const json* ec = find_field(j, "extra_config")) {
                check(ec->is_object(), extra_label, ": expected an object of layer name -> scheme, got ", ec->type_name());
                for (const auto& [name, v] : ec->items()) {
                    const std::string where = extra_label + "[\"" + name + "\"]";
                    const LayerScheme s = parse_layer_scheme(v, qc.global(), where);
                    if (looks_like_regex(name)) {
                        qc.pattern_overrides.push_back({name, s, false});
                    } else {
                        qc.layer_overrides[name] = s;
                        if (is_lm_head(name)) qc.quant_lm_head = s.quantized();
                    }
                }
            }
            break;
        }
        case QuantMethod::Gptq: {
            qc.sym = get_bool(j, "sym", label).value_or(true);  // AutoGPTQ's default when absent
            std::string fmt_key = "checkpoint_format";
            auto fmt = get_string(j, "checkpoint_format", label);
            if (!fmt && (fmt = get_string(j, "format", label))) fmt_key = "format";
            const std::string f = fmt.value_or("gptq");
            if (f == "gptq" || f == "v1") {
                qc.gptq_zeros = GptqZeros::V1;
            } else if (f == "gptq_v2" || f == "v2") {
                qc.gptq_zeros = GptqZeros::V2;
            } else {
                fail(field_name(label, fmt_key), ": '", f, "' is not supported (\"gptq\" = v1 or \"gptq_v2\"; ",
                     f == "marlin" ? "Marlin-repacked AutoGPTQ checkpoints cannot be read" : "unknown format", ")");
            }
            qc.desc_act = get_bool(j, "desc_act", label).value_or(false);
            qc.static_groups = get_bool(j, "static_groups", label).value_or(false);
            qc.quant_lm_head = get_bool(j, "lm_head", label).value_or(false);
            qc.block_name_to_quantize = get_name_list(j, "block_name_to_quantize", label);
            if (const json* m = find_field(j, "modules_in_block_to_quantize")) {
                const std::string where = field_name(label, "modules_in_block_to_quantize");
                check(m->is_array(), where, ": expected a list (of lists) of module names, got ", m->dump());
                std::vector<std::string> flat;
                for (const auto& e : *m) {
                    if (e.is_string()) {
                        flat.push_back(e.get<std::string>());
                    } else if (e.is_array()) {
                        std::vector<std::string> group;
                        for (const auto& s : e) {
                            check(s.is_string(), where, ": expected module names, found ", s.dump());
                            group.push_back(s.get<std::string>());
                        }
                        qc.modules_in_block_to_quantize.push_back(std::move(group));
                    } else {
                        fail(where, ": expected module names or lists of them, found ", e.dump());
                    }
                }
                if (!flat.empty()) qc.modules_in_block_to_quantize.push_back(std::move(flat));
            }
            if (const json* d = find_field(j, "dynamic")) {
                const std::string dl = field_name(label, "dynamic");
                check(d->is_object(), dl, ": expected an object of \"-:regex\" / \"+:regex\" rules, got ", d->type_name());
                for (const auto& [key, v] : d->items()) {
                    const std::string where = dl + "[\"" + key + "\"]";
                    if (key.rfind("-:", 0) == 0) {
                        qc.pattern_overrides.push_back({key.substr(2), unquantized_like(qc.global()), true});
                    } else {
                        const std::string pat = key.rfind("+:", 0) == 0 ? key.substr(2) : key;
                        LayerScheme s = parse_layer_scheme(v, qc.global(), where);
                        if (auto da = get_bool(v, "desc_act", where); da && *da)
                            fail(where, ".desc_act: act-order layers are not supported");
                        qc.pattern_overrides.push_back({pat, s, true});
                    }
                }
            }
            break;
        }
        case QuantMethod::Awq: {
            check(qc.bits == 4, field_name(label, bits_key), ": AWQ checkpoints are 4-bit only, got ", qc.bits);
            qc.awq_zero_point = get_bool(j, "zero_point", label).value_or(true);
            // zeros are always stored and subtracted (§2.4); "sym" (auto-round's key) only tells whether they
            // must all be 8. AutoAWQ writes no "sym": zero_point true means asymmetric.
            qc.sym = get_bool(j, "sym", label).value_or(!qc.awq_zero_point);
            const std::string version = get_string(j, "version", label).value_or("gemm");
            std::string lower = version;
            std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
            check(lower == "gemm", field_name(label, "version"), ": '", version,
                  "' is not supported; only the GEMM layout (\"gemm\", what vLLM assumes) can be read");
            qc.modules_to_not_convert = get_name_list(j, "modules_to_not_convert", label);
            qc.block_name_to_quantize = get_name_list(j, "to_quant_block_names", label);
            if (qc.block_name_to_quantize.empty())
                qc.block_name_to_quantize = get_name_list(j, "block_name_to_quantize", label);
            break;
        }
    }
    return qc;
}

// ---- writing --------------------------------------------------------------------------------------------

ojson quantization_config_json(const QuantizationConfig& qc, QuantMethod method) {
    check(qc.bits == 2 || qc.bits == 3 || qc.bits == 4 || qc.bits == 8,
          "quantization_config: global bits must be 2, 3, 4 or 8, got ", qc.bits);
    check_int_data_type(qc.data_type, "quantization_config.data_type");
    const LayerScheme g = qc.global();
    ojson j = common_head(qc);
    const std::string blocks = join(qc.block_name_to_quantize, ",");

    switch (method) {
        case QuantMethod::AutoRound: {
            if (!qc.autoround_version.empty()) j["autoround_version"] = qc.autoround_version;
            if (!blocks.empty()) j["block_name_to_quantize"] = blocks;
            j["quant_method"] = "auto-round";
            j["packing_format"] = std::string(auto_round_packing_name(qc.packing));
            // extra_config: only the keys that differ from the global scheme; a quantized layer outside the
            // quantized blocks (e.g. lm_head) gets its full scheme, since vLLM would otherwise skip it (§3.4).
            ojson extra = ojson::object();
            for (const auto& [name, s] : qc.layer_overrides) {
                const bool outside = !qc.block_name_to_quantize.empty() && qc.block_of(name).empty();
                ojson d = (s.quantized() && (outside || is_lm_head(name))) ? scheme_full(s) : scheme_diff(s, g);
                if (!d.empty()) extra[name] = std::move(d);
            }
            if (qc.quant_lm_head && !qc.layer_overrides.count("lm_head")) extra["lm_head"] = scheme_full(g);
            for (const auto& p : qc.pattern_overrides) {
                ojson d = scheme_diff(p.scheme, g);
                if (d.empty()) continue;
                extra[p.anchored ? "^" + p.pattern : p.pattern] = std::move(d);
            }
            for (const auto& m : qc.modules_to_not_convert)
                if (!is_lm_head(m)) extra[".*" + regex_escape(m) + ".*"] = scheme_diff(unquantized_like(g), g);
            if (!extra.empty()) j["extra_config"] = std::move(extra);
            break;
        }
        case QuantMethod::Gptq: {
            if (!qc.autoround_version.empty()) j["autoround_version"] = qc.autoround_version;
            j["lm_head"] = qc.quant_lm_head;
            j["provider"] = "auto-round";
            j["quant_method"] = "gptq";
            // Exports write g_idx = k / G: never act-order.
            j["desc_act"] = false;
            j["true_sequential"] = false;
            j["damp_percent"] = 0.01;
            // Not written by the peer tool (absent means v1 too). Written explicitly because the formats
            // doc recommends it (§1.8, §6: older consumers read checkpoint_format) and v2 must be stated.
            j["checkpoint_format"] = qc.gptq_zeros == GptqZeros::V1 ? "gptq" : "gptq_v2";
            // dynamic (GPTQModel / vLLM / SGLang): "-:regex" skips, "+:regex" overrides; re.match semantics.
            ojson dyn = ojson::object();
            for (const auto& [name, s] : qc.layer_overrides) {
                if (is_lm_head(name) && s.quantized() == qc.quant_lm_head && (!s.quantized() || s == g)) continue;
                if (!s.quantized()) {
                    dyn["-:" + regex_escape(name)] = ojson::object();
                } else if (!(s == g)) {
                    dyn["+:" + regex_escape(name)] = {{"bits", s.bits}, {"group_size", s.group_size}, {"sym", s.sym}};
                }
            }
            for (const auto& p : qc.pattern_overrides) {
                const std::string pat = p.anchored ? p.pattern : ".*" + p.pattern;
                if (!p.scheme.quantized()) {
                    dyn["-:" + pat] = ojson::object();
                } else if (!(p.scheme == g)) {
                    dyn["+:" + pat] = {{"bits", p.scheme.bits}, {"group_size", p.scheme.group_size}, {"sym", p.scheme.sym}};
                }
            }
            for (const auto& m : qc.modules_to_not_convert)
                if (!is_lm_head(m)) dyn["-:.*" + regex_escape(m) + ".*"] = ojson::object();
            if (!dyn.empty()) j["dynamic"] = std::move(dyn);
            if (!qc.modules_in_block_to_quantize.empty()) j["modules_in_block_to_quantize"] = qc.modules_in_block_to_quantize;
            // optimum auto-detects the standard block lists; anything else (e.g. a VLM's
            // "model.language_model.layers") must be named or optimum quantizes nothing / the wrong layers.
            bool standard = true;
            for (const auto& b : qc.block_name_to_quantize) standard = standard && kStandardBlockPatterns.count(b);
            if (!blocks.empty() && !standard) j["block_name_to_quantize"] = blocks;
            break;
        }
        case QuantMethod::Awq: {
            check(qc.bits == 4, "quantization_config: AWQ is 4-bit only, got bits ", qc.bits);
            if (!blocks.empty()) j["to_quant_block_names"] = blocks;
            if (!qc.autoround_version.empty()) j["autoround_version"] = qc.autoround_version;
            j["provider"] = "auto-round";
            j["quant_method"] = "awq";
            // The peer tool writes "zero_point": !sym (false for symmetric models). Every AWQ runtime
            // subtracts the stored qzeros anyway (ours hold 8 for sym), but vLLM selects the fast AWQ-Marlin
            // kernel (the only AWQ path with bf16) only for zero_point true; with false it falls back to the
            // fp16-only `awq` kernel and refuses bf16. checkpoint-formats.md §2.4/§4.3: write true.
            j["zero_point"] = true;
            j["version"] = "gemm";
            std::vector<std::string> skip;
            auto add = [&](const std::string& s) {
                if (std::find(skip.begin(), skip.end(), s) == skip.end()) skip.push_back(s);
            };
            if (!qc.quant_lm_head) add("lm_head");
            for (const auto& m : qc.modules_to_not_convert) add(m);
            for (const auto& [name, s] : qc.layer_overrides)
                if (!s.quantized() && !is_lm_head(name)) add(name);
            for (const auto& p : qc.pattern_overrides)
                if (!p.scheme.quantized()) add(p.pattern);
            j["modules_to_not_convert"] = skip.empty() ? ojson(nullptr) : ojson(skip);
            break;
        }
    }
    return j;
}

}  // namespace autoround

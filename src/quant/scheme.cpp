// quant/scheme.cpp — presets, layer_config parsing and the layer selection rules (see scheme.h).
#include "quant/scheme.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/qwen3_block_grad.h"
#include "model/qwen3_vl_vision_block_grad.h"

namespace autoround {

namespace {

using ojson = nlohmann::ordered_json;

std::string upper(std::string_view s) {
    std::string r(s);
    for (char& c : r) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return r;
}

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::string cur;
    std::istringstream in(s);
    while (std::getline(in, cur, ',')) {
        cur = trim(cur);
        if (!cur.empty()) out.push_back(cur);
    }
    return out;
}

std::regex compile_regex(const std::string& pattern, const std::string& flag) {
    try {
        return std::regex(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        fail(flag, ": '", pattern, "' is not a valid regular expression (", e.what(), ")");
    }
}

LayerScheme unquantized(const LayerScheme& g, const std::string& data_type) {
    return LayerScheme{16, g.group_size, g.sym, data_type};
}

void validate_quantized(const LayerScheme& s, const std::string& what) {
    check(s.bits >= 2 && s.bits <= 8, what, ": bits must be 2..8 (2, 3, 4 and 8 can be packed) or 16 to keep ",
          "the layer unquantized, got ", s.bits);
    check(s.group_size == -1 || s.group_size > 0, what, ": group_size must be -1 (per channel) or positive, got ",
          s.group_size, s.group_size == 0 ? " (per-tensor quantization is not supported)" : "");
    check(s.data_type == "int", what, ": data_type '", s.data_type,
          "' is not supported; only \"int\" weight-only schemes are implemented");
}

// auto-round's to_standard_regex: a key without regex syntax becomes ".*<escaped>.*".
std::string to_standard_regex(const std::string& key) {
    if (key.find_first_of("*+?[](){}|^$\\") != std::string::npos) return key;
    return ".*" + regex_escape(key) + ".*";
}

// Quotes bare words so that the Python CLI's JSON-like "{k_proj:{bits:8}}" parses; True/False -> true/false.
std::string quote_bare_words(const std::string& s) {
    std::string r;
    for (size_t i = 0; i < s.size();) {
        const char c = s[i];
        if (c == '"' || c == '\'') {  // copy a quoted string, normalising to double quotes
            const char q = c;
            size_t j = i + 1;
            std::string body;
            while (j < s.size() && s[j] != q) {
                if (s[j] == '\\' && j + 1 < s.size()) body += s[j++];
                body += s[j++];
            }
            r += '"' + body + '"';
            i = j + 1;
        } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '*') {
            size_t j = i;
            while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) ||
                                    std::string_view("_.-*").find(s[j]) != std::string_view::npos))
                ++j;
            const std::string w = s.substr(i, j - i);
            if (w == "true" || w == "True") r += "true";
            else if (w == "false" || w == "False") r += "false";
            else if (w == "null" || w == "None") r += "null";
            else r += '"' + w + '"';
            i = j;
        } else {
            r += c;
            ++i;
        }
    }
    return r;
}

ojson parse_layer_config_text(const std::string& arg) {
    std::string text = arg;
    std::string label = "--layer_config";
    std::error_code ec;
    if (!arg.empty() && arg.find('{') == std::string::npos && std::filesystem::is_regular_file(arg, ec)) {
        std::ifstream f(arg, std::ios::binary);
        check(static_cast<bool>(f), "--layer_config: cannot read ", arg);
        std::ostringstream ss;
        ss << f.rdbuf();
        text = ss.str();
        label = "--layer_config " + arg;
    }
    ojson j;
    try {
        j = ojson::parse(text);
    } catch (const nlohmann::json::exception&) {
        try {
            j = ojson::parse(quote_bare_words(text));
        } catch (const nlohmann::json::exception& e) {
            fail(label, ": not valid JSON (", e.what(),
                 "); expected e.g. '{\"mlp.down_proj\": {\"bits\": 8}, \"model.layers.0.self_attn.q_proj\": \"W8A16\"}'");
        }
    }
    check(j.is_object(), label, ": expected a JSON object of layer name (or regex) -> scheme, got ", j.type_name());
    return j;
}

// One layer_config value -> a full scheme (missing keys from the global scheme).
LayerScheme parse_layer_value(const ojson& v, const LayerScheme& g, const std::string& where) {
    if (v.is_string()) {
        LayerScheme s = preset_scheme(v.get<std::string>());
        if (s.quantized()) validate_quantized(s, where);
        return s;
    }
    check(v.is_object(), where, ": expected a preset name (e.g. \"W8A16\") or an object {bits, group_size, sym}, got ",
          v.type_name());
    LayerScheme s = g;
    if (auto it = v.find("scheme"); it != v.end()) {
        check(it->is_string(), where, ".scheme: expected a preset name");
        s = preset_scheme(it->get<std::string>());
    }
    static const std::set<std::string> kIgnorable = {"act_group_size", "act_sym", "act_data_type", "act_dynamic",
                                                     "fixed_by_user", "in_blocks"};
    for (const auto& [k, val] : v.items()) {
        const std::string f = where + "." + k;
        if (k == "scheme") continue;
        if (k == "bits") {
            check(val.is_number_integer(), f, ": expected an integer");
            s.bits = val.get<int>();
        } else if (k == "group_size") {
            check(val.is_number_integer(), f, ": expected an integer (-1 = per channel)");
            s.group_size = val.get<int64_t>();
        } else if (k == "sym") {
            check(val.is_boolean(), f, ": expected true or false");
            s.sym = val.get<bool>();
        } else if (k == "data_type" || k == "dtype") {
            check(val.is_string(), f, ": expected a string");
            s.data_type = val.get<std::string>();
        } else if (k == "act_bits") {
            check(val.is_number_integer() && val.get<int>() >= 16, f,
                  ": activation quantization (act_bits < 16) is not supported; only weight-only schemes");
        } else if (k == "scale_dtype") {
            check(val.is_string() && (val == "fp16" || val == "float16" || val == "torch.float16"), f,
                  ": only fp16 scales are supported");
        } else if (kIgnorable.count(k)) {
            // meaningful only with activation quantization (act_bits < 16), which is off
        } else {
            fail(f, ": unknown key; allowed keys: bits, group_size, sym, data_type, scheme, act_bits (16), scale_dtype");
        }
    }
    if (s.bits >= 16) {
        s.bits = 16;
        if (s.data_type == "int") s.data_type = "float";
    } else {
        validate_quantized(s, where);
    }
    return s;
}

}  // namespace

const std::vector<SchemePreset>& scheme_presets() {
    static const std::vector<SchemePreset> p = {
        {"W4A16", 4, 128, true},   {"W2A16", 2, 128, true}, {"W2A16G64", 2, 64, true}, {"W2A16G32", 2, 32, true},
        {"W3A16", 3, 128, true},   {"W5A16", 5, 128, true}, {"W6A16", 6, 128, true},   {"W8A16", 8, 128, true},
    };
    return p;
}

LayerScheme preset_scheme(std::string_view name) {
    const std::string u = upper(trim(name));
    for (const auto& p : scheme_presets())
        if (p.name == u) return LayerScheme{p.bits, p.group_size, p.sym, "int"};
    if (u == "BF16" || u == "FP16" || u == "FLOAT" || u == "FP") return LayerScheme{16, 128, true, "float"};
    std::string names;
    for (const auto& p : scheme_presets()) names += (names.empty() ? "" : ", ") + p.name;
    fail("unknown scheme '", name, "'; available: ", names, " (and BF16 in --layer_config to keep a layer unquantized)");
}

LayerScheme resolve_global_scheme(const SchemeOptions& o) {
    LayerScheme g = preset_scheme(o.scheme);
    check(g.quantized(), "--scheme ", o.scheme, " does not quantize anything; choose a W*A16 preset");
    if (o.bits) g.bits = *o.bits;
    if (o.group_size) g.group_size = *o.group_size;
    if (o.sym) g.sym = *o.sym;
    g.data_type = o.data_type.empty() ? "int" : o.data_type;
    validate_quantized(g, "--scheme " + o.scheme + " with --bits/--group_size overrides");
    return g;
}

int64_t QuantPlan::num_quantized() const {
    int64_t n = static_cast<int64_t>(outside.size());
    for (const auto& b : blocks) n += static_cast<int64_t>(b.layers.size());
    return n;
}

std::vector<PlannedLayer> QuantPlan::all_layers() const {
    std::vector<PlannedLayer> r;
    for (const auto& b : blocks) r.insert(r.end(), b.layers.begin(), b.layers.end());
    r.insert(r.end(), outside.begin(), outside.end());
    return r;
}

namespace {
constexpr const char* kVisionBlocks = "model.visual.blocks.";
}  // namespace

bool is_vision_block_name(const std::string& block) { return block.rfind(kVisionBlocks, 0) == 0; }

ModelLayout describe_model(const ModelConfig& cfg, const TensorStore& st, bool include_vision) {
    ModelLayout m;
    m.tie_word_embeddings = cfg.tie_word_embeddings;
    if (include_vision) {
        for (int i = 0;; ++i) {
            const std::string block = kVisionBlocks + std::to_string(i);
            if (!st.has(block + "." + vision_linear_name(kVisQkv) + ".weight")) break;
            m.blocks.push_back(block);
            for (int w = 0; w < kNumVisionLinears; ++w) {
                const std::string name = block + "." + vision_linear_name(w);
                check(st.has(name + ".weight"), "tensor ", name, ".weight is missing from the vision tower");
                const TensorInfo& t = st.get(name + ".weight");
                check(t.shape.size() == 2, "tensor ", name, ".weight has shape ", t.shape_str(), ", expected 2-D");
                m.linears.push_back({name, t.shape[0], t.shape[1]});
            }
        }
        check(!m.blocks.empty(), "--quant_nontext_module: the checkpoint has no vision blocks (", kVisionBlocks,
              "0.attn.qkv.weight)");
    }
    for (int i = 0; i < cfg.num_hidden_layers; ++i) {
        const std::string block = cfg.text_prefix + "layers." + std::to_string(i);  // Qwen3-VL: language model only
        m.blocks.push_back(block);
        std::set<std::string> known;
        for (int w = 0; w < kNumBlockLinears; ++w) {
            const std::string name = block + "." + block_linear_name(w);
            if (!st.has(name + ".weight")) continue;
            const TensorInfo& t = st.get(name + ".weight");
            check(t.shape.size() == 2, "tensor ", name, ".weight has shape ", t.shape_str(), ", expected 2-D");
            m.linears.push_back({name, t.shape[0], t.shape[1]});
            known.insert(name);
        }
        // any other 2-D weight in the block (not a Qwen3 Linear; listed so the selection sees it)
        const std::string prefix = block + ".";
        for (auto it = st.tensors().lower_bound(prefix); it != st.tensors().end() && it->first.rfind(prefix, 0) == 0;
             ++it) {
            const std::string& tn = it->first;
            if (tn.size() < 7 || tn.compare(tn.size() - 7, 7, ".weight") != 0 || it->second.shape.size() != 2) continue;
            const std::string name = tn.substr(0, tn.size() - 7);
            if (!known.count(name)) m.linears.push_back({name, it->second.shape[0], it->second.shape[1]});
        }
    }
    const std::string head = st.has("lm_head.weight") ? "lm_head.weight" : cfg.text_prefix + "embed_tokens.weight";
    if (st.has(head)) {
        const TensorInfo& t = st.get(head);
        if (t.shape.size() == 2) m.linears.push_back({"lm_head", t.shape[0], t.shape[1]});
    }
    return m;
}

QuantPlan plan_quantization(const ModelLayout& model, const SchemeOptions& o) {
    QuantPlan plan;
    const LayerScheme g = resolve_global_scheme(o);
    QuantizationConfig& qc = plan.qc;
    qc.method = QuantMethod::AutoRound;
    qc.bits = g.bits;
    qc.group_size = g.group_size;
    qc.sym = g.sym;
    qc.data_type = g.data_type;
    check(!model.blocks.empty(), "the model has no transformer blocks (model.layers.* / model.language_model.layers.*) to quantize");

    // ---- 2. blocks ---------------------------------------------------------------------------------
    std::vector<int> selected;
    if (trim(o.to_quant_block_names).empty()) {
        for (size_t i = 0; i < model.blocks.size(); ++i) selected.push_back(static_cast<int>(i));
    } else {
        std::set<int> chosen;
        for (const auto& tok : split_list(o.to_quant_block_names)) {
            const std::regex re = compile_regex(tok, "--to_quant_block_names");
            for (size_t i = 0; i < model.blocks.size(); ++i)
                if (std::regex_search(model.blocks[i], re)) chosen.insert(static_cast<int>(i));
        }
        check(!chosen.empty(), "--to_quant_block_names '", o.to_quant_block_names, "' matched no block; the blocks are ",
              model.blocks.front(), " .. ", model.blocks.back());
        selected.assign(chosen.begin(), chosen.end());
    }
    std::set<std::string> selected_blocks;
    for (int i : selected) selected_blocks.insert(model.blocks[static_cast<size_t>(i)]);
    auto block_of = [&](const std::string& layer) -> std::string {
        for (const auto& b : model.blocks)
            if (layer.size() > b.size() && layer.compare(0, b.size(), b) == 0 && layer[b.size()] == '.') return b;
        return "";
    };
    for (const auto& b : model.blocks) {
        // "model.layers.3" -> "model.layers" (the block lists the exporters record, model order)
        const std::string list = b.substr(0, b.rfind('.'));
        if (std::find(qc.block_name_to_quantize.begin(), qc.block_name_to_quantize.end(), list) ==
            qc.block_name_to_quantize.end())
            qc.block_name_to_quantize.push_back(list);
    }

    // ---- 3./4. explicit per-layer entries ---------------------------------------------------------
    std::map<std::string, LayerScheme> entry;        // explicit scheme per Linear
    std::map<std::string, std::string> entry_reason;  // for the skipped list
    std::set<std::string> names;
    for (const auto& l : model.linears) names.insert(l.name);

    if (!trim(o.layer_config).empty()) {
        const ojson lc = parse_layer_config_text(o.layer_config);
        for (const auto& [key, val] : lc.items()) {
            const std::string where = "--layer_config[\"" + key + "\"]";
            const LayerScheme s = parse_layer_value(val, g, where);
            if (names.count(key)) {
                entry[key] = s;
                entry_reason[key] = "layer_config";
                continue;
            }
            const std::regex re = compile_regex(key, "--layer_config key");
            int matched = 0;
            for (const auto& l : model.linears)
                if (std::regex_search(l.name, re)) {
                    entry[l.name] = s;
                    entry_reason[l.name] = "layer_config";
                    ++matched;
                }
            check(matched > 0, where, ": '", key, "' is neither a Linear layer name nor a regex matching one (e.g. ",
                  model.linears.front().name, ")");
            qc.pattern_overrides.push_back({to_standard_regex(key), s, false});
        }
    }
    for (const auto& tok : split_list(o.ignore_layers)) {
        int matched = 0;
        if (names.count(tok)) {
            entry[tok] = unquantized(g, "float");
            entry_reason[tok] = "ignore_layers";
            ++matched;
        } else {
            const std::string t = std::isdigit(static_cast<unsigned char>(tok.back())) ? tok + "." : tok;
            for (const auto& l : model.linears)
                if (l.name.find(t) != std::string::npos) {
                    entry[l.name] = unquantized(g, "float");
                    entry_reason[l.name] = "ignore_layers";
                    ++matched;
                }
        }
        if (matched == 0) plan.warnings.push_back("--ignore_layers '" + tok + "' matched no Linear layer");
    }

    // ---- 5. lm_head ----------------------------------------------------------------------------------
    const bool head_exists = names.count(model.lm_head) > 0;
    bool quant_head = o.quant_lm_head || (entry.count(model.lm_head) && entry[model.lm_head].quantized());
    if (quant_head && head_exists && model.tie_word_embeddings) {
        plan.warnings.push_back(
            "lm_head is not quantized: quantizing lm_head with tied word embeddings is not supported (as in "
            "auto-round); --quant_lm_head / its layer_config entry are ignored");
        quant_head = false;
        entry.erase(model.lm_head);
    }
    if (quant_head && head_exists && !entry.count(model.lm_head)) {
        entry[model.lm_head] = g;
        entry_reason[model.lm_head] = "quant_lm_head";
    }
    if (!quant_head && entry.count(model.lm_head) && entry[model.lm_head].quantized()) entry.erase(model.lm_head);
    if (quant_head && !head_exists) plan.warnings.push_back("--quant_lm_head: the model has no lm_head layer");

    // ---- 6./7. final scheme per Linear -----------------------------------------------------------------
    std::map<std::string, size_t> block_pos;
    for (int i : selected) {
        block_pos[model.blocks[static_cast<size_t>(i)]] = plan.blocks.size();
        const std::string& bn = model.blocks[static_cast<size_t>(i)];
        const int layer = std::stoi(bn.substr(bn.rfind('.') + 1));  // the layer number within its list
        plan.blocks.push_back({bn, layer, {}, is_vision_block_name(bn)});
    }
    int shape_skips = 0;
    for (const auto& l : model.linears) {
        const std::string blk = block_of(l.name);
        const bool in_selected = !blk.empty() && selected_blocks.count(blk);
        const auto it = entry.find(l.name);
        LayerScheme s;
        std::string reason;
        if (it != entry.end()) {
            s = it->second;
            reason = entry_reason[l.name];
        } else if (in_selected) {
            s = g;
        } else {
            continue;  // outside the selected blocks and not configured: not quantized, not mentioned
        }
        if (s.quantized() && (l.out % 32 != 0 || l.in % 32 != 0)) {
            s = unquantized(g, "fp");
            reason = "shape not divisible by 32";
            ++shape_skips;
            plan.warnings.push_back(l.name + " [" + std::to_string(l.out) + ", " + std::to_string(l.in) +
                                    "] skipped quantization (shape not divisible by 32)");
        }
        if (!(s == g) && (in_selected || s.quantized())) qc.layer_overrides[l.name] = s;
        if (!s.quantized()) {
            if (in_selected || l.name == model.lm_head) plan.skipped.push_back({l.name, reason});
            continue;
        }
        const PlannedLayer pl{l.name, l.out, l.in, s};
        if (in_selected) {
            bool qwen3_linear = false;
            if (is_vision_block_name(blk)) {
                for (int w = 0; w < kNumVisionLinears; ++w)
                    if (l.name == blk + "." + vision_linear_name(w)) qwen3_linear = true;
            } else {
                for (int w = 0; w < kNumBlockLinears; ++w)
                    if (l.name == blk + "." + block_linear_name(w)) qwen3_linear = true;
            }
            check(qwen3_linear, "layer ", l.name,
                  " is not one of the 7 Qwen3 block linears (q/k/v/o_proj, gate/up/down_proj); this architecture "
                  "cannot be tuned; exclude it with --ignore_layers");
            plan.blocks[block_pos[blk]].layers.push_back(pl);
        } else {
            plan.outside.push_back(pl);
            if (l.name == model.lm_head) qc.quant_lm_head = true;
        }
    }
    (void)shape_skips;
    check(plan.num_quantized() > 0, "no layer is left to quantize (every Linear of the selected blocks is skipped or "
          "ignored); check --ignore_layers, --layer_config and --to_quant_block_names");
    return plan;
}

}  // namespace autoround

// io/model_config.cpp — config.json / generation_config.json / tokenizer_config.json readers.
//
// Why: the model, sampler and chat template need typed values, and a Hugging Face folder is
// untrusted input written by many tools and transformers versions. Each field is read through a
// typed accessor that names the field and file when it is missing or has the wrong JSON type,
// so no nlohmann exception escapes. Both config.json styles are handled (new `rope_parameters`
// + `dtype`, older `rope_theta` + `rope_scaling` + `torch_dtype`); features we do not implement
// (other architectures, YaRN/dynamic/LongRoPE, sliding-window attention) are rejected up front.
#include "io/model_config.h"

#include <climits>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace autoround {

namespace {

using json = nlohmann::json;

constexpr const char* kSupportedArchs =
    "Qwen3ForCausalLM, Qwen3VLForConditionalGeneration, Qwen2ForCausalLM, LlamaForCausalLM, MistralForCausalLM";

// Typed field access. `label` names the file, `ctx` an optional parent object ("rope_scaling.").
struct Fields {
    const json& j;
    const std::string& label;
    std::string ctx;

    const json* find(const char* key) const {
        const auto it = j.find(key);
        if (it == j.end() || it->is_null()) return nullptr;
        return &*it;
    }
    [[noreturn]] void wrong(const char* key, const char* expected, const json& v) const {
        fail(label, ": field '", ctx, key, "' must be ", expected, ", got a JSON ", v.type_name(),
             "; fix the file");
    }
    std::optional<int64_t> opt_int64(const char* key) const {
        const json* v = find(key);
        if (!v) return std::nullopt;
        if (v->is_number_unsigned()) {
            const uint64_t u = v->get<uint64_t>();
            if (u > static_cast<uint64_t>(INT64_MAX)) wrong(key, "an integer in range", *v);
            return static_cast<int64_t>(u);
        }
        if (v->is_number_integer()) return v->get<int64_t>();
        // Some exporters write integral values as floats (4096.0); accept those exactly.
        if (v->is_number_float()) {
            const double d = v->get<double>();
            if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
        }
        wrong(key, "an integer", *v);
    }
    std::optional<int> opt_int(const char* key) const {
        const auto v = opt_int64(key);
        if (!v) return std::nullopt;
        check(*v >= INT_MIN && *v <= INT_MAX, label, ": field '", ctx, key, "' = ", *v,
              " is out of range; fix the file");
        return static_cast<int>(*v);
    }
    int req_int(const char* key) const {
        check(j.contains(key), label, ": required field '", ctx, key, "' is missing; add it to the file");
        check(!j.at(key).is_null(), label, ": required field '", ctx, key, "' is null; set it to an integer");
        return *opt_int(key);
    }
    std::optional<double> opt_num(const char* key) const {
        const json* v = find(key);
        if (!v) return std::nullopt;
        if (!v->is_number()) wrong(key, "a number", *v);
        const double d = v->get<double>();
        check(std::isfinite(d), label, ": field '", ctx, key, "' is not finite; fix the file");
        return d;
    }
    std::optional<bool> opt_bool(const char* key) const {
        const json* v = find(key);
        if (!v) return std::nullopt;
        if (!v->is_boolean()) wrong(key, "true or false", *v);
        return v->get<bool>();
    }
    std::optional<std::string> opt_str(const char* key) const {
        const json* v = find(key);
        if (!v) return std::nullopt;
        if (!v->is_string()) wrong(key, "a string", *v);
        return v->get<std::string>();
    }
    const json* opt_obj(const char* key) const {
        const json* v = find(key);
        if (!v) return nullptr;
        if (!v->is_object()) wrong(key, "an object", *v);
        return v;
    }
    // An int or a list of ints (eos_token_id); null or absent -> empty.
    std::vector<int> int_list(const char* key) const {
        const json* v = find(key);
        std::vector<int> out;
        if (!v) return out;
        if (v->is_array()) {
            for (const auto& e : *v) {
                if (!e.is_number_integer()) wrong(key, "an integer or a list of integers", *v);
                const int64_t x = e.get<int64_t>();
                check(x >= 0 && x <= INT_MAX, label, ": field '", ctx, key, "' holds ", x,
                      ", not a valid token id; fix the file");
                out.push_back(static_cast<int>(x));
            }
            return out;
        }
        if (!v->is_number_integer()) wrong(key, "an integer or a list of integers", *v);
        const int x = *opt_int(key);
        check(x >= 0, label, ": field '", ctx, key, "' = ", x, " is not a valid token id; fix the file");
        out.push_back(x);
        return out;
    }
    std::optional<int> opt_token_id(const char* key) const {
        const auto v = opt_int(key);
        if (v) check(*v >= 0, label, ": field '", ctx, key, "' = ", *v, " is not a valid token id; fix the file");
        return v;
    }
};

void positive(int v, const char* field, const std::string& label) {
    check(v > 0, label, ": field '", field, "' must be positive, got ", v, "; fix the file");
}

RopeConfig parse_rope(const Fields& f) {
    RopeConfig r;
    const json* params = f.opt_obj("rope_parameters");
    // transformers 5 may key rope_parameters by layer type; we only run full attention.
    if (params && !params->contains("rope_type") && !params->contains("rope_theta") &&
        params->contains("full_attention") && params->at("full_attention").is_object())
        params = &params->at("full_attention");
    const json* scaling = params ? nullptr : f.opt_obj("rope_scaling");
    const char* where = params ? "rope_parameters" : "rope_scaling";
    if (auto theta = f.opt_num("rope_theta")) r.theta = *theta;
    if (params || scaling) {
        const Fields p{params ? *params : *scaling, f.label, std::string(where) + "."};
        std::optional<std::string> type = p.opt_str("rope_type");
        if (!type) type = p.opt_str("type");
        if (type) r.type = *type;
        if (auto theta = p.opt_num("rope_theta")) r.theta = *theta;
        if (r.type == "linear") {
            const auto factor = p.opt_num("factor");
            check(factor.has_value(), f.label, ": ", where, " of type linear needs a 'factor'; fix the file");
            r.factor = *factor;
        } else if (r.type == "llama3") {
            const auto factor = p.opt_num("factor");
            const auto lo = p.opt_num("low_freq_factor");
            const auto hi = p.opt_num("high_freq_factor");
            auto orig = p.opt_int("original_max_position_embeddings");
            if (!orig) orig = f.opt_int("original_max_position_embeddings");
            check(factor && lo && hi && orig, f.label, ": ", where,
                  " of type llama3 needs factor, low_freq_factor, high_freq_factor and "
                  "original_max_position_embeddings; fix the file");
            r.factor = *factor;
            r.low_freq_factor = *lo;
            r.high_freq_factor = *hi;
            r.original_max_position_embeddings = *orig;
            check(r.low_freq_factor > 0 && r.high_freq_factor > r.low_freq_factor, f.label, ": ", where,
                  ": llama3 needs 0 < low_freq_factor < high_freq_factor, got ", r.low_freq_factor, " and ",
                  r.high_freq_factor, "; fix the file");
            check(r.original_max_position_embeddings > 0, f.label, ": ", where,
                  ".original_max_position_embeddings must be positive; fix the file");
        } else if (r.type != "default") {
            fail("unsupported RoPE type '", r.type, "' in ", f.label, " (", where,
                 "); supported: default, linear, llama3 (YaRN, dynamic NTK and LongRoPE scaling are not "
                 "implemented; remove the scaling entry to run at the native context length)");
        }
        if (r.type != "default")
            check(r.factor > 0, f.label, ": ", where, ".factor must be positive, got ", r.factor, "; fix the file");
    }
    check(r.theta > 0, f.label, ": rope_theta must be positive, got ", r.theta, "; fix the file");
    return r;
}

ModelConfig parse_model_config_impl(const json& j, const std::string& label);

bool is_qwen3_vl(const Fields& f) {
    if (const json* archs = f.find("architectures")) {
        if (archs->is_array() && !archs->empty() && (*archs)[0].is_string())
            return (*archs)[0].get<std::string>() == "Qwen3VLForConditionalGeneration";
        if (archs->is_string()) return archs->get<std::string>() == "Qwen3VLForConditionalGeneration";
        return false;
    }
    return f.opt_str("model_type").value_or("") == "qwen3_vl";
}

// Qwen3-VL: the language model is a Qwen3 decoder described by `text_config`; the top level holds the
// multimodal token ids and (in transformers 5) tie_word_embeddings / dtype.
ModelConfig parse_qwen3_vl_config(const json& j, const std::string& label) {
    const Fields f{j, label, ""};
    const json* text = f.opt_obj("text_config");
    check(text != nullptr, label, ": a Qwen3VLForConditionalGeneration config needs a 'text_config' object; fix the file");
    json tc = *text;
    tc.erase("architectures");
    tc["model_type"] = "qwen3";
    ModelConfig c = parse_model_config_impl(tc, label + " (text_config)");
    c.architecture = "Qwen3VLForConditionalGeneration";
    c.model_type = "qwen3_vl";
    c.vision_language = true;
    c.text_prefix = "model.language_model.";
    check(f.opt_obj("vision_config") != nullptr, label, ": a Qwen3-VL config needs a 'vision_config' object; fix the file");
    if (auto tie = f.opt_bool("tie_word_embeddings")) c.tie_word_embeddings = *tie;
    if (auto d = f.opt_str("dtype")) c.dtype = *d;
    else if (auto td = f.opt_str("torch_dtype")) c.dtype = *td;
    c.image_token_id = f.opt_token_id("image_token_id").value_or(-1);
    c.video_token_id = f.opt_token_id("video_token_id").value_or(-1);
    c.vision_start_token_id = f.opt_token_id("vision_start_token_id").value_or(-1);
    c.vision_end_token_id = f.opt_token_id("vision_end_token_id").value_or(-1);
    check(c.image_token_id >= 0 && c.image_token_id < c.vocab_size, label, ": image_token_id ", c.image_token_id,
          " is missing or outside the vocabulary [0, ", c.vocab_size, "); fix the file");

    // mrope_section lives in text_config.rope_parameters (5.x) or text_config.rope_scaling (4.x).
    const Fields tf{*text, label, "text_config."};
    const json* rp = tf.opt_obj("rope_parameters");
    if (!rp) rp = tf.opt_obj("rope_scaling");
    const json* sec = rp ? (rp->contains("mrope_section") ? &rp->at("mrope_section") : nullptr) : nullptr;
    check(sec != nullptr && sec->is_array() && sec->size() == 3, label,
          ": text_config.rope_parameters.mrope_section must be a list of 3 integers (t, h, w); fix the file");
    int sum = 0;
    for (const auto& e : *sec) {
        check(e.is_number_integer() && e.get<int64_t>() >= 0 && e.get<int64_t>() <= 4096, label,
              ": mrope_section entries must be non-negative integers; fix the file");
        c.mrope_section.push_back(static_cast<int>(e.get<int64_t>()));
        sum += c.mrope_section.back();
    }
    check(sum == c.head_dim / 2, label, ": mrope_section sums to ", sum, " but head_dim/2 is ", c.head_dim / 2,
          "; fix the file");
    check(3 * c.mrope_section[1] <= c.head_dim / 2 && 3 * c.mrope_section[2] <= c.head_dim / 2, label,
          ": interleaved M-RoPE needs 3*mrope_section[1] and 3*mrope_section[2] <= head_dim/2; fix the file");
    return c;
}

ModelConfig parse_model_config_impl(const json& j, const std::string& label) {
    check(j.is_object(), label, ": expected a JSON object, got a JSON ", j.type_name());
    const Fields f{j, label, ""};
    if (is_qwen3_vl(f)) return parse_qwen3_vl_config(j, label);
    ModelConfig c;
    c.model_type = f.opt_str("model_type").value_or("");

    if (const json* archs = f.find("architectures")) {
        if (archs->is_string()) {
            c.architecture = archs->get<std::string>();
        } else {
            check(archs->is_array() && !archs->empty() && (*archs)[0].is_string(), label,
                  ": field 'architectures' must be a non-empty list of strings; fix the file");
            c.architecture = (*archs)[0].get<std::string>();
        }
    } else if (c.model_type == "qwen3") {
        c.architecture = "Qwen3ForCausalLM";
    } else if (c.model_type == "qwen2") {
        c.architecture = "Qwen2ForCausalLM";
    } else if (c.model_type == "llama") {
        c.architecture = "LlamaForCausalLM";
    } else if (c.model_type == "mistral") {
        c.architecture = "MistralForCausalLM";
    } else {
        fail(label, ": no 'architectures' field (and model_type '", c.model_type,
             "' does not imply one); supported: ", kSupportedArchs);
    }

    if (c.architecture == "Qwen3ForCausalLM") {
        c.family = ArchFamily::Qwen3;
        if (c.model_type.empty()) c.model_type = "qwen3";
    } else if (c.architecture == "Qwen2ForCausalLM") {
        c.family = ArchFamily::Qwen2;
        if (c.model_type.empty()) c.model_type = "qwen2";
    } else if (c.architecture == "LlamaForCausalLM" || c.architecture == "MistralForCausalLM") {
        c.family = ArchFamily::Llama;
        if (c.model_type.empty()) c.model_type = c.architecture == "LlamaForCausalLM" ? "llama" : "mistral";
    } else {
        fail("unsupported architecture ", c.architecture, " in ", label, "; supported: ", kSupportedArchs);
    }

    c.hidden_size = f.req_int("hidden_size");
    c.num_hidden_layers = f.req_int("num_hidden_layers");
    c.num_attention_heads = f.req_int("num_attention_heads");
    c.vocab_size = f.req_int("vocab_size");
    c.intermediate_size = f.req_int("intermediate_size");
    positive(c.hidden_size, "hidden_size", label);
    positive(c.num_hidden_layers, "num_hidden_layers", label);
    positive(c.num_attention_heads, "num_attention_heads", label);
    positive(c.vocab_size, "vocab_size", label);
    positive(c.intermediate_size, "intermediate_size", label);

    c.num_key_value_heads = f.opt_int("num_key_value_heads").value_or(c.num_attention_heads);
    positive(c.num_key_value_heads, "num_key_value_heads", label);
    check(c.num_attention_heads % c.num_key_value_heads == 0, label, ": num_attention_heads (",
          c.num_attention_heads, ") must be a multiple of num_key_value_heads (", c.num_key_value_heads,
          "); fix the file");
    if (auto hd = f.opt_int("head_dim")) {
        c.head_dim = *hd;
        positive(c.head_dim, "head_dim", label);
    } else {
        check(c.hidden_size % c.num_attention_heads == 0, label, ": hidden_size (", c.hidden_size,
              ") is not divisible by num_attention_heads (", c.num_attention_heads,
              ") and no head_dim is given; fix the file");
        c.head_dim = c.hidden_size / c.num_attention_heads;
    }
    check(c.head_dim % 2 == 0, label, ": head_dim ", c.head_dim, " must be even for rotary embeddings; fix the file");

    const double eps = f.opt_num("rms_norm_eps").value_or(1e-6);
    check(eps > 0 && eps < 1, label, ": rms_norm_eps must be in (0, 1), got ", eps, "; fix the file");
    c.rms_norm_eps = static_cast<float>(eps);

    const int default_max_pos = c.family == ArchFamily::Llama ? 2048 : 32768;
    c.max_position_embeddings = f.opt_int("max_position_embeddings").value_or(default_max_pos);
    positive(c.max_position_embeddings, "max_position_embeddings", label);

    c.tie_word_embeddings = f.opt_bool("tie_word_embeddings").value_or(false);
    // Qwen2 always has q/k/v biases (transformers hard-codes bias=True); others follow the config.
    c.attention_bias = c.family == ArchFamily::Qwen2 ? true : f.opt_bool("attention_bias").value_or(false);
    c.qk_norm = c.family == ArchFamily::Qwen3;
    c.hidden_act = f.opt_str("hidden_act").value_or("silu");
    if (auto d = f.opt_str("dtype")) {
        c.dtype = *d;
    } else if (auto td = f.opt_str("torch_dtype")) {
        c.dtype = *td;
    }
    c.bos_token_id = f.opt_token_id("bos_token_id");
    c.eos_token_ids = f.int_list("eos_token_id");

    c.rope = parse_rope(f);

    // Sliding-window attention is not implemented: refuse configs that enable it.
    const auto sliding = f.opt_int64("sliding_window");
    const auto use_sliding = f.opt_bool("use_sliding_window");
    if (use_sliding.has_value()) {
        check(!(*use_sliding && sliding.has_value()), label, ": sliding-window attention (use_sliding_window "
              "true, sliding_window ", sliding.value_or(0), ") is not supported; only full attention is implemented");
    } else if (sliding && c.architecture == "MistralForCausalLM") {
        check(*sliding >= c.max_position_embeddings, label, ": sliding-window attention (sliding_window ", *sliding,
              ") is not supported; only full attention is implemented");
    }
    if (const json* lt = f.find("layer_types")) {
        check(lt->is_array(), label, ": field 'layer_types' must be a list of strings, got a JSON ", lt->type_name(),
              "; fix the file");
        for (const auto& t : *lt) {
            check(t.is_string(), label, ": field 'layer_types' must be a list of strings; fix the file");
            check(t.get<std::string>() == "full_attention", label, ": layer type '", t.get<std::string>(),
                  "' is not supported; only full_attention layers are implemented");
        }
    }
    return c;
}

GenerationConfig parse_generation_config_impl(const json& j, const std::string& label) {
    check(j.is_object(), label, ": expected a JSON object, got a JSON ", j.type_name());
    const Fields f{j, label, ""};
    GenerationConfig g;
    g.do_sample = f.opt_bool("do_sample").value_or(g.do_sample);
    g.temperature = static_cast<float>(f.opt_num("temperature").value_or(g.temperature));
    g.top_p = static_cast<float>(f.opt_num("top_p").value_or(g.top_p));
    g.top_k = f.opt_int("top_k").value_or(g.top_k);
    g.repetition_penalty = static_cast<float>(f.opt_num("repetition_penalty").value_or(g.repetition_penalty));
    g.eos_token_ids = f.int_list("eos_token_id");
    g.bos_token_id = f.opt_token_id("bos_token_id");
    g.pad_token_id = f.opt_token_id("pad_token_id");
    g.max_new_tokens = f.opt_int("max_new_tokens");
    check(g.temperature >= 0, label, ": temperature must be >= 0, got ", g.temperature, "; fix the file");
    check(g.top_p > 0 && g.top_p <= 1, label, ": top_p must be in (0, 1], got ", g.top_p, "; fix the file");
    check(g.top_k >= 0, label, ": top_k must be >= 0, got ", g.top_k, "; fix the file");
    check(g.repetition_penalty > 0, label, ": repetition_penalty must be positive, got ", g.repetition_penalty,
          "; fix the file");
    if (g.max_new_tokens)
        check(*g.max_new_tokens >= 0, label, ": max_new_tokens must be >= 0, got ", *g.max_new_tokens,
              "; fix the file");
    return g;
}

// A special token: "text", {"content": "text", ...} (AddedToken), or null.
std::string special_token(const Fields& f, const char* key) {
    const json* v = f.find(key);
    if (!v) return "";
    if (v->is_string()) return v->get<std::string>();
    if (v->is_object()) {
        const auto it = v->find("content");
        if (it != v->end() && it->is_string()) return it->get<std::string>();
    }
    f.wrong(key, "a string, an object with a string 'content', or null", *v);
}

// chat_template: a string, or a list of {"name", "template"} from which "default" is taken.
std::optional<std::string> chat_template_value(const json& v, const std::string& label) {
    if (v.is_null()) return std::nullopt;
    if (v.is_string()) return v.get<std::string>();
    check(v.is_array(), label, ": field 'chat_template' must be a string or a list of {name, template}, got a JSON ",
          v.type_name(), "; fix the file");
    for (const auto& e : v) {
        check(e.is_object(), label, ": field 'chat_template' list entries must be objects {name, template}; fix the file");
        const auto n = e.find("name");
        const auto t = e.find("template");
        check(n != e.end() && n->is_string() && t != e.end() && t->is_string(), label,
              ": field 'chat_template' list entries need a string 'name' and a string 'template'; fix the file");
        if (n->get_ref<const std::string&>() == "default") return t->get<std::string>();
    }
    return std::nullopt;  // named templates only: none is the default
}

TokenizerConfig parse_tokenizer_config_impl(const json& j, const std::string& label) {
    check(j.is_object(), label, ": expected a JSON object, got a JSON ", j.type_name());
    const Fields f{j, label, ""};
    TokenizerConfig t;
    if (const auto it = j.find("chat_template"); it != j.end()) t.chat_template = chat_template_value(*it, label);
    t.eos_token = special_token(f, "eos_token");
    t.bos_token = special_token(f, "bos_token");
    t.pad_token = special_token(f, "pad_token");
    t.add_bos_token = f.opt_bool("add_bos_token").value_or(false);
    t.tokenizer_class = f.opt_str("tokenizer_class").value_or("");
    return t;
}

// Converts stray nlohmann exceptions (should not happen: every access is type-checked) to Error.
template <typename F>
auto guarded(const std::string& label, F&& fn) {
    try {
        return fn();
    } catch (const nlohmann::json::exception& e) {
        fail(label, ": unexpected JSON content (", e.what(), "); fix the file");
    }
}

}  // namespace

std::string ModelConfig::family_name() const {
    switch (family) {
        case ArchFamily::Qwen3: return "Qwen3";
        case ArchFamily::Qwen2: return "Qwen2";
        case ArchFamily::Llama: return "Llama";
    }
    return "unknown";
}

ModelConfig parse_model_config(const nlohmann::json& j, const std::string& label) {
    return guarded(label, [&] { return parse_model_config_impl(j, label); });
}

GenerationConfig parse_generation_config(const nlohmann::json& j, const std::string& label) {
    return guarded(label, [&] { return parse_generation_config_impl(j, label); });
}

TokenizerConfig parse_tokenizer_config(const nlohmann::json& j, const std::string& label) {
    return guarded(label, [&] { return parse_tokenizer_config_impl(j, label); });
}

ModelConfig load_model_config(const std::filesystem::path& model_dir) {
    const auto path = model_dir / "config.json";
    std::error_code ec;
    check(std::filesystem::exists(path, ec), "no config.json in ", model_dir.string(),
          "; expected a Hugging Face model folder (config.json, *.safetensors, tokenizer files)");
    return parse_model_config(read_json_file(path), path.string());
}

GenerationConfig load_generation_config(const std::filesystem::path& model_dir) {
    std::error_code ec;
    const auto path = model_dir / "generation_config.json";
    GenerationConfig g;
    if (std::filesystem::exists(path, ec)) g = parse_generation_config(read_json_file(path), path.string());
    // Without EOS ids here, fall back to config.json's, as transformers does for a missing file.
    const auto cfg = model_dir / "config.json";
    if (g.eos_token_ids.empty() && std::filesystem::exists(cfg, ec)) {
        const json j = read_json_file(cfg);
        if (j.is_object()) {
            const Fields f{j, cfg.string(), ""};
            g.eos_token_ids = guarded(cfg.string(), [&] { return f.int_list("eos_token_id"); });
            if (!g.bos_token_id) g.bos_token_id = guarded(cfg.string(), [&] { return f.opt_token_id("bos_token_id"); });
        }
    }
    return g;
}

TokenizerConfig load_tokenizer_config(const std::filesystem::path& model_dir) {
    std::error_code ec;
    TokenizerConfig t;
    const auto cfg = model_dir / "tokenizer_config.json";
    if (std::filesystem::exists(cfg, ec)) t = parse_tokenizer_config(read_json_file(cfg), cfg.string());

    const auto jinja = model_dir / "chat_template.jinja";
    const auto tjson = model_dir / "chat_template.json";
    if (std::filesystem::exists(jinja, ec)) {
        std::ifstream in(jinja, std::ios::binary);
        check(static_cast<bool>(in), "cannot open ", jinja.string(), " (check the file permissions)");
        std::ostringstream ss;
        ss << in.rdbuf();
        check(!in.bad(), "cannot read ", jinja.string(), " (I/O error)");
        t.chat_template = ss.str();
    } else if (std::filesystem::exists(tjson, ec)) {
        const json j = read_json_file(tjson);
        const std::string label = tjson.string();
        check(j.is_object() && j.contains("chat_template"), label,
              ": expected an object {\"chat_template\": \"...\"}; fix the file");
        auto v = guarded(label, [&] { return chat_template_value(j.at("chat_template"), label); });
        if (v) t.chat_template = std::move(v);
    }
    return t;
}

}  // namespace autoround

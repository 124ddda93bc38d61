// export/model_card.cpp — the README.md of each exported folder (see model_card.h). The runtime notes
// restate docs/checkpoint-formats.md §4 (vLLM kernel selection, transformers packages) for the folder's
// format, bits, group size and symmetry, so that a reader of the card knows whether vLLM will pick a Marlin
// kernel before downloading anything.
#include "export/model_card.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "hub/repo_id.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace autoround {

namespace {

// ---- small text helpers ------------------------------------------------------------------------------

std::string fmt_num(double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.6g", v);
    return b;
}

std::string code(std::string_view s) {
    std::string r(1, '`');
    r.append(s);
    r += '`';
    return r;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
    return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

std::string trim(std::string_view s) {
    const size_t b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) return "";
    return std::string(s.substr(b, s.find_last_not_of(" \t\r") - b + 1));
}

// A YAML scalar: plain when that is unambiguous, else double-quoted with escapes.
std::string yaml_scalar(std::string_view s) {
    // plain unless it holds ": ", " #", a line break, or starts with an indicator character (YAML 1.2 §7.3.3)
    bool plain = !s.empty() && s.find(": ") == std::string_view::npos && s.find(" #") == std::string_view::npos &&
                 s.find_first_of("\n\t\r\\\"") == std::string_view::npos &&
                 std::string_view("-?:,[]{}#&*!|>'%@` ").find(s.front()) == std::string_view::npos &&
                 s.back() != ' ' && s.back() != ':';
    static const std::set<std::string> special = {"true", "false", "yes", "no", "on", "off", "null", "~"};
    std::string low(s);
    std::transform(low.begin(), low.end(), low.begin(), [](unsigned char c) { return std::tolower(c); });
    if (special.count(low) || low.find_first_not_of("0123456789.+-e_x") == std::string::npos) plain = false;  // bool, null, number
    if (plain) return std::string(s);
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out + "\"";
}

bool is_hub_id(const std::string& s) { return s.find('/') != std::string::npos && hub::looks_like_repo_id(s); }

// Python string literal (double quotes).
std::string py_str(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// A shell word, single-quoted when it holds anything but safe characters.
std::string sh_word(std::string_view s) {
    if (!s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/:@=+,%") ==
                          std::string_view::npos)
        return std::string(s);
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += "'\\''";
        else out += c;
    }
    return out + "'";
}

// ---- format facts (checkpoint-formats.md §4) ---------------------------------------------------------------

enum class Family { AutoRound, Gptq, Awq, Fake, Gguf };

Family family_of(const ModelCardInfo& c) {
    if (starts_with(c.format, "gguf")) return Family::Gguf;
    if (c.format == "auto_gptq") return Family::Gptq;
    if (c.format == "auto_awq") return Family::Awq;
    if (c.format == "fake") return Family::Fake;
    return Family::AutoRound;
}

bool marlin_group(int64_t g) { return g == -1 || g == 32 || g == 64 || g == 128; }
bool gptq_marlin(const ModelCardInfo& c) { return c.sym && (c.bits == 4 || c.bits == 8) && marlin_group(c.group_size); }
bool awq_marlin(const ModelCardInfo& c) { return c.bits == 4 && marlin_group(c.group_size); }

std::string format_title(const ModelCardInfo& c) {
    switch (family_of(c)) {
        case Family::Gptq: return "GPTQ";
        case Family::Awq: return "AWQ";
        case Family::Fake: return "fake-quantized (QDQ)";
        case Family::Gguf: {
            std::string t = c.format.substr(c.format.find(':') + 1);
            std::transform(t.begin(), t.end(), t.begin(), [](unsigned char ch) { return std::toupper(ch); });
            return "GGUF " + t;
        }
        case Family::AutoRound: return "AutoRound";
    }
    return c.format;
}

std::string scheme_name(const ModelCardInfo& c) {
    return "W" + std::to_string(c.bits) + "A16" + (c.group_size == 128 ? "" : "G" + std::to_string(c.group_size));
}

std::vector<std::string> tags_of(const ModelCardInfo& c) {
    std::vector<std::string> t = {"autoround", "intel"};
    switch (family_of(c)) {
        case Family::Gptq: t.push_back("gptq"); break;
        case Family::Awq: t.push_back("awq"); break;
        case Family::Fake: t.push_back("fake-quant"); break;
        case Family::Gguf: t.push_back("gguf"); t.push_back(c.format.substr(c.format.find(':') + 1)); break;
        case Family::AutoRound: t.push_back("auto-round"); break;
    }
    if (family_of(c) != Family::Gguf) {  // a GGUF type names its own bit width
        t.push_back(std::to_string(c.bits) + "-bit");
        t.push_back("w" + std::to_string(c.bits) + "a16");
    }
    if (!c.model_type.empty()) t.push_back(c.model_type);
    if (c.vision) t.push_back("vision-language");
    std::vector<std::string> out;
    for (auto& s : t)
        if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    return out;
}

struct Runtime {
    std::string name, support;
};

std::string autoround_cpp_support(const ModelCardInfo& c) {
    if (c.vision) return "yes: `generate --image` runs image + text, `eval` the text side (CPU)";
    if (family_of(c) == Family::Gguf) return "yes: `generate` and `eval` read the .gguf file (CPU, or CUDA builds)";
    return "yes: `generate` and `eval` dequantize the packed layers at load (CPU, or CUDA builds)";
}

std::vector<Runtime> runtimes_of(const ModelCardInfo& c) {
    std::vector<Runtime> r;
    const bool lm_head_note = c.quant_lm_head;
    switch (family_of(c)) {
        case Family::Gptq:
            r.push_back({"vLLM", gptq_marlin(c)
                                     ? "yes: GPTQ-Marlin kernel, float16 or bfloat16 (compute capability 7.5+)"
                                     : "yes: the `gptq` (exllama) kernel, float16 only and slower than Marlin, which "
                                       "needs symmetric 4- or 8-bit weights with group size -1/32/64/128"});
            r.push_back({"SGLang", gptq_marlin(c) ? "yes: `gptq` (Marlin kernel)" : "yes: `gptq`"});
            r.push_back({"transformers", c.sym ? "yes, with `gptqmodel` and `optimum` installed (or auto-gptq on "
                                                 "transformers 4.x)"
                                               : "yes, with `gptqmodel` and `optimum` installed (auto-gptq cannot run "
                                                 "asymmetric GPTQ)"});
            break;
        case Family::Awq:
            r.push_back({"vLLM", awq_marlin(c) ? "yes: AWQ-Marlin kernel (`zero_point: true`), float16 or bfloat16 "
                                                 "(compute capability 8.0+)"
                                               : "yes: the `awq` kernel, float16 only"});
            r.push_back({"SGLang", awq_marlin(c) ? "yes: `awq_marlin`" : "yes: `awq`"});
            r.push_back({"transformers", "yes: transformers 5 with `gptqmodel`; transformers 4.x with `autoawq` on a "
                                         "CUDA GPU (AutoAWQ is deprecated)"});
            break;
        case Family::AutoRound:
            if (c.backend == "auto_round:auto_gptq" || c.backend == "auto_round:auto_awq") {
                const bool gptq = c.backend == "auto_round:auto_gptq";
                std::string k = gptq ? (gptq_marlin(c) ? "GPTQ-Marlin kernel, float16 or bfloat16"
                                                       : "the `gptq` kernel, float16 only (Marlin needs symmetric "
                                                         "4- or 8-bit weights with group size -1/32/64/128)")
                                     : (awq_marlin(c) ? "AWQ-Marlin kernel, float16 or bfloat16"
                                                      : "the `awq` kernel, float16 only");
                r.push_back({"vLLM", "yes (`quant_method: auto-round`, packing " + c.backend + "): " + k +
                                         (lm_head_note ? "; the quantized lm_head is not supported there" : "")});
                r.push_back({"SGLang", "yes (`auto-round`)"});
            } else {
                r.push_back({"vLLM", "no: vLLM reads the auto_round:auto_gptq and auto_round:auto_awq packings only; "
                                     "export auto_round:auto_gptq, auto_gptq or auto_awq for vLLM"});
                r.push_back({"SGLang", "no (same packings as vLLM)"});
            }
            r.push_back({"transformers", "yes, with `auto-round` 0.5+ installed (`pip install auto-round`); it picks a "
                                         "kernel for each layer"});
            break;
        case Family::Fake:
            r.push_back({"vLLM", "yes, as an ordinary 16-bit model"});
            r.push_back({"SGLang", "yes, as an ordinary 16-bit model"});
            r.push_back({"transformers", "yes, as an ordinary 16-bit model"});
            break;
        case Family::Gguf:
            r.push_back({"llama.cpp", "yes: `llama-cli`, `llama-server` and the tools built on llama.cpp (Ollama, "
                                      "LM Studio, ...)"});
            r.push_back({"transformers", "reads it with `gguf_file=` and dequantizes it to 16-bit (no memory saving)"});
            break;
    }
    r.push_back({"autoround.cpp", autoround_cpp_support(c)});
    return r;
}

std::string format_paragraph(const ModelCardInfo& c) {
    std::ostringstream o;
    switch (family_of(c)) {
        case Family::Gptq:
            o << "GPTQ layout (`quant_method: gptq`, `checkpoint_format: gptq`, i.e. v1 zero points stored as z - 1), "
                 "as AutoGPTQ and GPTQModel write it: per quantized Linear `qweight` (int32, "
              << (c.bits == 3 ? "32 codes per 3 words" : std::to_string(32 / std::max(1, c.bits)) + " codes per word")
              << " along the input), `qzeros`, `scales` (float16) and `g_idx`. "
                 "`quantize_config.json` repeats the config for AutoGPTQ/GPTQModel loaders; config.json says "
                 "`torch_dtype: float16` because vLLM's non-Marlin kernels are float16-only.";
            break;
        case Family::Awq:
            o << "AWQ GEMM layout (`quant_method: awq`, `version: gemm`), as AutoAWQ writes it: per quantized Linear "
                 "`qweight` (int32, 8 output channels per word in AWQ's interleaved order), `qzeros`, `scales` "
                 "(float16); config.json says `torch_dtype: float16`.";
            if (c.sym)
                o << "\n\n**Symmetric weights in AWQ.** AWQ has no symmetric mode, so every zero point is stored as 8 "
                     "(`qzeros` words 0x88888888) and config.json says `zero_point: true`; the dequantized weights are "
                     "exactly the symmetric ones. Intel's auto-round writes `zero_point: false` for symmetric models, "
                     "which keeps vLLM off AWQ-Marlin (its fast kernel, and the only AWQ kernel with bfloat16); "
                     "`true` is mathematically identical and loads everywhere.";
            break;
        case Family::AutoRound:
            o << "AutoRound's native format (`quant_method: auto-round`, `packing_format: " << c.backend
              << "`): ";
            if (c.backend == "auto_round:auto_gptq")
                o << "GPTQ-packed tensors (`qweight`, `qzeros` stored as z - 1, `scales`), no `g_idx`.";
            else if (c.backend == "auto_round:auto_awq")
                o << "AWQ-packed tensors (`qweight`, `qzeros`, `scales` in AWQ's interleaved order).";
            else
                o << "GPTQ-packed tensors with true zero points (no z - 1 offset)"
                  << (c.backend == "auto_round:gptqmodel" ? " and `g_idx`." : ".");
            o << " `block_name_to_quantize` and `extra_config` tell the loaders which layers are quantized.";
            break;
        case Family::Fake:
            o << "Fake-quantized (QDQ): every quantized Linear holds its dequantized weights in the source dtype and "
                 "config.json has no `quantization_config`. It loads as an ordinary 16-bit model and saves no memory; "
                 "use it to measure the accuracy of the quantized weights with any tool.";
            break;
        case Family::Gguf:
            o << "One llama.cpp GGUF file";
            if (!c.gguf_file.empty()) o << ", " << code(c.gguf_file);
            o << " (type " << format_title(c).substr(5)
              << "). Layers whose AutoRound scheme maps exactly onto the GGUF block type keep the tuned codes; the "
                 "other tensors are quantized with llama.cpp's reference quantizer.";
            break;
    }
    return o.str();
}

std::string method_text(const ModelCardInfo& c) {
    if (c.method == "signround")
        return "AutoRound (SignRound): rounding offsets and weight clipping tuned block by block with SignSGD" +
               std::string(c.iters ? ", " + std::to_string(*c.iters) + " iterations" : "");
    if (c.method == "opt-rtn") return "optimized round-to-nearest (`--iters 0`: activation-weighted scale search, no tuning)";
    if (c.method == "rtn") return "round-to-nearest (RTN, `--iters 0 --disable_opt_rtn`: no calibration, no tuning)";
    if (c.iters && *c.iters == 0) return "round-to-nearest (`--iters 0`, no SignRound tuning)";
    return "";
}

// ---- usage snippets ------------------------------------------------------------------------------------------

const char* const kPrompt = "Explain weight-only quantization in two sentences.";
const char* const kImageUrl =
    "https://huggingface.co/datasets/huggingface/documentation-images/resolve/main/pipeline-cat-chonk.jpeg";

void usage_transformers(std::ostringstream& o, const ModelCardInfo& c) {
    const Family f = family_of(c);
    o << "### transformers\n\n";
    switch (f) {
        case Family::Gptq: o << "Needs `pip install gptqmodel optimum`.\n\n"; break;
        case Family::Awq: o << "Needs `pip install gptqmodel` (transformers 5) or `autoawq` (transformers 4.x).\n\n"; break;
        case Family::AutoRound: o << "Needs `pip install auto-round`.\n\n"; break;
        default: break;
    }
    const std::string id = py_str(c.model_ref);
    if (c.vision) {
        o << "```python\nfrom transformers import AutoModelForImageTextToText, AutoProcessor\n\n"
          << "model_id = " << id << "\n"
          << "model = AutoModelForImageTextToText.from_pretrained(model_id, device_map=\"auto\", dtype=\"auto\")\n"
          << "processor = AutoProcessor.from_pretrained(model_id)\n"
          << "messages = [{\"role\": \"user\", \"content\": [\n"
          << "    {\"type\": \"image\", \"url\": " << py_str(kImageUrl) << "},\n"
          << "    {\"type\": \"text\", \"text\": \"Describe this image.\"},\n]}]\n"
          << "inputs = processor.apply_chat_template(messages, tokenize=True, add_generation_prompt=True,\n"
          << "                                       return_dict=True, return_tensors=\"pt\").to(model.device)\n"
          << "out = model.generate(**inputs, max_new_tokens=128)\n"
          << "print(processor.decode(out[0][inputs[\"input_ids\"].shape[-1]:], skip_special_tokens=True))\n```\n\n";
        return;
    }
    o << "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
      << "model_id = " << id << "\n"
      << "tokenizer = AutoTokenizer.from_pretrained(model_id)\n"
      << "model = AutoModelForCausalLM.from_pretrained(model_id, device_map=\"auto\", dtype=\"auto\")\n";
    if (c.chat_template)
        o << "messages = [{\"role\": \"user\", \"content\": " << py_str(kPrompt) << "}]\n"
          << "inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True,\n"
          << "                                       return_tensors=\"pt\").to(model.device)\n";
    else
        o << "inputs = tokenizer(" << py_str("Weight-only quantization") << ", return_tensors=\"pt\").to(model.device)\n";
    o << "out = model.generate(**inputs, max_new_tokens=128)\n"
      << "print(tokenizer.decode(out[0][inputs[\"input_ids\"].shape[-1]:], skip_special_tokens=True))\n```\n\n";
}

void usage_vllm(std::ostringstream& o, const ModelCardInfo& c) {
    o << "### vLLM\n\n```sh\nvllm serve " << sh_word(c.model_ref) << "\n```\n\n```python\nfrom vllm import LLM, SamplingParams\n\n";
    if (c.vision) {
        o << "llm = LLM(model=" << py_str(c.model_ref) << ", limit_mm_per_prompt={\"image\": 1})\n"
          << "messages = [{\"role\": \"user\", \"content\": [\n"
          << "    {\"type\": \"image_url\", \"image_url\": {\"url\": " << py_str(kImageUrl) << "}},\n"
          << "    {\"type\": \"text\", \"text\": \"Describe this image.\"},\n]}]\n";
    } else {
        o << "llm = LLM(model=" << py_str(c.model_ref) << ")\n";
        if (c.chat_template) o << "messages = [{\"role\": \"user\", \"content\": " << py_str(kPrompt) << "}]\n";
    }
    if (c.chat_template || c.vision)
        o << "print(llm.chat(messages, SamplingParams(max_tokens=128))[0].outputs[0].text)\n```\n\n";
    else
        o << "print(llm.generate(" << py_str("Weight-only quantization")
          << ", SamplingParams(max_tokens=128))[0].outputs[0].text)\n```\n\n";
}

void usage_gguf(std::ostringstream& o, const ModelCardInfo& c) {
    const std::string file = c.gguf_file.empty() ? "MODEL.gguf" : c.gguf_file;
    o << "### llama.cpp\n\n```sh\n";
    if (c.model_ref_is_hub) o << "llama-cli -hf " << sh_word(c.model_ref) << "\n";
    else o << "llama-cli -m " << sh_word((fs::path(c.model_ref) / file).string()) << "\n";
    if (c.model_ref_is_hub) o << "llama-server -hf " << sh_word(c.model_ref) << "\n";
    else o << "llama-server -m " << sh_word((fs::path(c.model_ref) / file).string()) << "\n";
    o << "```\n\n";
}

void usage_autoround(std::ostringstream& o, const ModelCardInfo& c) {
    o << "### autoround (autoround.cpp CLI)\n\n";
    if (c.vision) {
        o << "```sh\nautoround generate --model " << sh_word(c.model_ref)
          << " --image photo.jpg --prompt \"Describe this image.\"\n```\n\n";
        return;
    }
    std::string m = c.model_ref;
    if (family_of(c) == Family::Gguf && c.model_ref_is_hub) {
        o << "Download " << code(c.gguf_file.empty() ? "MODEL.gguf" : c.gguf_file) << " first, then:\n\n";
        m = c.gguf_file.empty() ? "MODEL.gguf" : c.gguf_file;
    }
    const std::string ms = sh_word(m);
    o << "```sh\nautoround generate --model " << ms << (c.chat_template ? " --chat" : "") << " --prompt "
      << sh_word(c.chat_template ? kPrompt : "Weight-only quantization") << " --max_new_tokens 128\n";
    o << "# perplexity of a text file (e.g. WikiText-2's wiki.test.raw)"
      << (is_hub_id(c.base_model) ? ", next to the base model's" : "") << "\n";
    o << "autoround eval ppl";
    if (is_hub_id(c.base_model)) o << " --model " << sh_word(c.base_model);
    o << " --model " << ms << " --data wiki.test.raw --seqlen 2048\n";
    o << "```\n\n";
}

// ---- kept layers ------------------------------------------------------------------------------------------

std::string reason_text(const std::string& r) {
    if (r == "ignore_layers") return "kept 16-bit by `--ignore_layers`";
    if (r == "layer_config") return "kept 16-bit by `--layer_config`";
    if (r == "shape not divisible by 32")
        return "in or out features not a multiple of 32, which the GPTQ/AWQ kernels need (auto-round's shape rule)";
    if (r == "quant_lm_head") return "`--quant_lm_head` was requested but could not apply";
    return r;
}

}  // namespace

// ---- public helpers -------------------------------------------------------------------------------------------

std::string front_matter_value(std::string_view text, std::string_view key) {
    std::istringstream in{std::string(text)};
    std::string line;
    if (!std::getline(in, line) || trim(line) != "---") return "";
    while (std::getline(in, line)) {
        const std::string t = trim(line);
        if (t == "---" || t == "...") break;
        if (line.empty() || line[0] == ' ' || line[0] == '\t' || line[0] == '-' || line[0] == '#') continue;
        const size_t colon = line.find(':');
        if (colon == std::string::npos || trim(line.substr(0, colon)) != key) continue;
        std::string v = trim(line.substr(colon + 1));
        const size_t hash = v.find(" #");
        if (hash != std::string::npos && v.front() != '"' && v.front() != '\'') v = trim(v.substr(0, hash));
        if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) v = v.substr(1, v.size() - 2);
        return v;
    }
    return "";
}

std::string expand_format_placeholder(std::string_view pattern, std::string_view format_name) {
    std::string f(format_name);
    std::replace(f.begin(), f.end(), ':', '-');
    std::string out(pattern);
    for (size_t p = out.find("{format}"); p != std::string::npos; p = out.find("{format}", p + f.size()))
        out.replace(p, 8, f);
    return out;
}

// ---- rendering ----------------------------------------------------------------------------------------------

std::string render_model_card(const ModelCardInfo& c) {
    std::ostringstream o;
    const Family fam = family_of(c);

    // front matter
    o << "---\n";
    if (!c.base_model.empty()) o << "base_model: " << yaml_scalar(c.base_model) << "\n";
    o << "base_model_relation: quantized\n";
    if (fam != Family::Gguf) o << "library_name: transformers\n";
    o << "pipeline_tag: " << (c.vision ? "image-text-to-text" : "text-generation") << "\n";
    if (!c.license.empty()) {
        o << "license: " << yaml_scalar(c.license) << "\n";
        if (!c.license_name.empty()) o << "license_name: " << yaml_scalar(c.license_name) << "\n";
        if (!c.license_link.empty()) o << "license_link: " << yaml_scalar(c.license_link) << "\n";
    }
    if (!c.datasets.empty()) {
        o << "datasets:\n";
        for (const auto& d : c.datasets) o << "- " << yaml_scalar(d) << "\n";
    }
    o << "tags:\n";
    for (const auto& t : tags_of(c)) o << "- " << yaml_scalar(t) << "\n";
    o << "---\n\n";

    // title and summary
    const std::string base_link =
        is_hub_id(c.base_model) ? "[" + c.base_model + "](https://huggingface.co/" + c.base_model + ")" : code(c.base_model);
    o << "# " << (c.title.empty() ? c.base_model : c.title) << "\n\n";
    o << base_link << " quantized to " << c.bits << "-bit integer weights (" << scheme_name(c) << ": group size "
      << c.group_size << ", " << (c.sym ? "symmetric" : "asymmetric") << ", 16-bit activations) with autoround.cpp, "
      << "a C++ implementation of Intel's [AutoRound](https://github.com/intel/auto-round), and saved in the **"
      << format_title(c) << "** format (`--format " << c.format << "`).\n\n";

    // settings
    o << "## Quantization\n\n| setting | value |\n|---|---|\n";
    o << "| scheme | " << scheme_name(c) << " (" << c.data_type << c.bits << " weights, 16-bit activations) |\n";
    o << "| bits | " << c.bits << " |\n";
    o << "| group size | " << c.group_size << (c.group_size <= 0 ? " (one group per output channel)" : "") << " |\n";
    o << "| sym | " << (c.sym ? "true (full-range symmetric, zero point 2^(bits-1))" : "false (per-group zero points)")
      << " |\n";
    if (const std::string m = method_text(c); !m.empty()) o << "| method | " << m << " |\n";
    if (c.iters) o << "| iters | " << *c.iters << " |\n";
    if (c.nsamples) o << "| nsamples | " << *c.nsamples << " |\n";
    if (c.seqlen) o << "| seqlen | " << *c.seqlen << " |\n";
    if (c.batch_size) o << "| batch size | " << *c.batch_size << " |\n";
    if (c.gradient_accumulate_steps && *c.gradient_accumulate_steps != 1)
        o << "| gradient accumulation steps | " << *c.gradient_accumulate_steps << " |\n";
    if (c.lr) o << "| lr | " << fmt_num(*c.lr) << " |\n";
    if (c.minmax_lr) o << "| minmax lr | " << fmt_num(*c.minmax_lr) << " |\n";
    if (!c.dataset.empty()) o << "| calibration dataset | " << code(c.dataset) << " |\n";
    if (c.seed) o << "| seed | " << *c.seed << " |\n";
    if (!c.quantized_blocks.empty()) {
        o << "| quantized blocks |";
        for (size_t i = 0; i < c.quantized_blocks.size(); ++i) o << (i ? ", " : " ") << code(c.quantized_blocks[i]);
        o << " |\n";
    }
    o << "| lm_head | " << (c.quant_lm_head ? "quantized" : "16-bit") << " |\n\n";

    if (!c.kept_layers.empty()) {
        o << "Kept in 16-bit:\n\n";
        const size_t shown = std::min<size_t>(c.kept_layers.size(), 32);
        for (size_t i = 0; i < shown; ++i)
            o << "- " << code(c.kept_layers[i].name) << ": " << c.kept_layers[i].reason << "\n";
        if (shown < c.kept_layers.size())
            o << "- ... and " << c.kept_layers.size() - shown << " more (config.json `quantization_config` lists them)\n";
        o << "\n";
    }

    // format and runtimes
    o << "## Format and runtimes\n\n" << format_paragraph(c) << "\n\n| runtime | loads this folder |\n|---|---|\n";
    for (const auto& r : runtimes_of(c)) o << "| " << r.name << " | " << r.support << " |\n";
    o << "\n";

    // usage
    o << "## Usage\n\n";
    if (!c.model_ref_is_hub)
        o << code(c.model_ref) << " is this folder, relative to the `--output_dir` of `autoround quantize`; once it "
          << "is on the Hub (`autoround push --repo USER/NAME --folder ...`), load `USER/NAME` instead.\n\n";
    if (fam == Family::Gguf) {
        usage_gguf(o, c);
    } else {
        usage_transformers(o, c);
        const auto rt = runtimes_of(c);
        const bool vllm = std::any_of(rt.begin(), rt.end(),
                                      [](const Runtime& r) { return r.name == "vLLM" && starts_with(r.support, "yes"); });
        if (vllm) usage_vllm(o, c);
    }
    usage_autoround(o, c);

    // evaluation
    if (!c.evals.empty()) {
        o << "## Evaluation\n\nMeasured by autoround.cpp on the base model and on this folder:\n\n"
          << "| metric | dataset | base | this model | change |\n|---|---|---|---|---|\n";
        for (const auto& e : c.evals) {
            std::string change = "-";
            if (e.base != 0 && std::isfinite(e.base) && std::isfinite(e.quantized)) {
                char b[64];
                std::snprintf(b, sizeof b, "%+.2f %%", 100.0 * (e.quantized - e.base) / std::fabs(e.base));
                change = b;
            }
            o << "| " << e.metric << " | " << e.dataset << " | " << fmt_num(e.base) << " | " << fmt_num(e.quantized)
              << " | " << change << " (" << (e.lower_is_better ? "lower" : "higher") << " is better) |\n";
        }
        o << "\n";
    }

    // provenance
    o << "---\n\nMade with autoround.cpp (AutoRound " << c.autoround_version << " algorithm and formats)";
    if (!c.command_line.empty()) o << ":\n\n```sh\n" << c.command_line << "\n```\n";
    else o << ".\n";
    return o.str();
}

// ---- gathering the facts --------------------------------------------------------------------------------------

namespace {

nlohmann::json read_json_or_empty(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) return nlohmann::json::object();
    try {
        return nlohmann::json::parse(f);
    } catch (const std::exception&) {
        return nlohmann::json::object();
    }
}

std::string read_text_or_empty(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) return "";
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// The Hub id of a folder inside a Hugging Face cache (<cache>/models--org--name/snapshots/<commit>), else "".
std::string cache_repo_id(const fs::path& dir) {
    const fs::path d = dir.lexically_normal();
    fs::path snap = d.has_filename() ? d : d.parent_path();
    if (snap.parent_path().filename() != "snapshots") return "";
    const std::string repo = snap.parent_path().parent_path().filename().string();
    if (!starts_with(repo, "models--")) return "";
    std::string id = repo.substr(8);
    const size_t sep = id.find("--");
    if (sep == std::string::npos) return id;
    return id.substr(0, sep) + "/" + id.substr(sep + 2);
}

std::string folder_name(const std::string& path) {
    std::error_code ec;
    fs::path p = fs::path(path).lexically_normal();
    if (!p.has_filename()) p = p.parent_path();
    std::string n = p.filename().string();
    if (n.empty() || n == "." || n == "..") {
        const fs::path abs = fs::weakly_canonical(fs::path(path), ec);
        n = abs.filename().string();
    }
    return n;
}

template <class T>
std::optional<T> setting(const nlohmann::ordered_json& s, const char* key) {
    if (!s.is_object() || !s.contains(key) || s[key].is_null()) return std::nullopt;
    try {
        return s[key].get<T>();
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace

ModelCardInfo model_card_info(const fs::path& source_dir, const TensorStore& source, const std::string& model_name,
                              const QuantizationConfig& qc, const std::vector<std::string>& skipped_in_block,
                              const std::vector<std::string>& unquantized_outside, std::string_view format,
                              std::string_view backend, const fs::path& folder, const std::vector<std::string>& files,
                              const ModelCardOptions& o) {
    ModelCardInfo c;
    c.format = std::string(format);
    c.backend = std::string(backend);
    // the folder as the card names it: relative to the output directory ("./qwen3-nano-w4g128/auto-gptq")
    if (folder.is_relative() && !folder.empty()) {
        c.title = folder.begin()->string();
        c.model_ref = "./" + folder.generic_string();
    } else {
        c.title = folder_name(folder.string());
        c.model_ref = folder.string();
    }
    for (const auto& f : files)
        if (ends_with(f, ".gguf")) c.gguf_file = f;

    // base model: the option, the Hub cache's repo id, the Hub id given as --model, else the folder name
    std::error_code ec;
    const std::string name = model_name.empty() ? source_dir.string() : model_name;
    if (!o.base_model.empty()) c.base_model = o.base_model;
    else if (const std::string id = cache_repo_id(source_dir); !id.empty()) c.base_model = id;
    else if (!fs::exists(name, ec) && is_hub_id(name.substr(0, name.find('@')))) c.base_model = name.substr(0, name.find('@'));
    else c.base_model = folder_name(name);

    if (!o.repo_id.empty()) {
        c.model_ref = expand_format_placeholder(o.repo_id, format);
        c.model_ref_is_hub = true;
    }

    // license: the option, else the source README.md's front matter
    const std::string readme = read_text_or_empty(source_dir / "README.md");
    c.license = o.license.empty() ? front_matter_value(readme, "license") : o.license;
    if (o.license.empty() && c.license == "other") {
        c.license_name = front_matter_value(readme, "license_name");
        c.license_link = front_matter_value(readme, "license_link");
    }

    // the model's config
    const nlohmann::json cfg = read_json_or_empty(source_dir / "config.json");
    c.model_type = cfg.value("model_type", std::string());
    if (cfg.contains("architectures") && cfg["architectures"].is_array() && !cfg["architectures"].empty() &&
        cfg["architectures"][0].is_string())
        c.architecture = cfg["architectures"][0].get<std::string>();
    c.vision = cfg.contains("vision_config") || c.architecture.find("VL") != std::string::npos ||
               c.model_type.find("_vl") != std::string::npos;
    auto tie = [](const nlohmann::json& j) { return j.is_object() && j.contains("tie_word_embeddings") &&
                                                    j["tie_word_embeddings"].is_boolean() && j["tie_word_embeddings"].get<bool>(); };
    c.tie_word_embeddings = tie(cfg) || (cfg.contains("text_config") && tie(cfg["text_config"]));
    const nlohmann::json tcfg = read_json_or_empty(source_dir / "tokenizer_config.json");
    c.chat_template = tcfg.contains("chat_template") || fs::exists(source_dir / "chat_template.jinja", ec) ||
                      fs::exists(source_dir / "chat_template.json", ec);

    // scheme and tuning settings: the report's settings win, then the config
    const auto& s = o.settings;
    c.bits = setting<int>(s, "bits").value_or(qc.bits);
    c.group_size = setting<int64_t>(s, "group_size").value_or(qc.group_size);
    c.sym = setting<bool>(s, "sym").value_or(qc.sym);
    c.data_type = setting<std::string>(s, "data_type").value_or(qc.data_type);
    c.iters = setting<int>(s, "iters");
    if (!c.iters) c.iters = qc.iters;
    c.lr = setting<double>(s, "lr");
    if (!c.lr && c.iters && *c.iters > 0) c.lr = qc.lr;
    c.minmax_lr = setting<double>(s, "minmax_lr");
    if (!c.minmax_lr && c.iters && *c.iters > 0) c.minmax_lr = qc.minmax_lr;
    const std::optional<std::string> dataset = setting<std::string>(s, "dataset");
    const bool calibrated = dataset.has_value();
    if (c.iters && *c.iters > 0) c.method = "signround";
    else if (const auto no_opt = setting<bool>(s, "disable_opt_rtn"); c.iters && no_opt) c.method = *no_opt ? "rtn" : "opt-rtn";
    if (calibrated || (c.iters && *c.iters > 0)) {
        c.nsamples = setting<int>(s, "nsamples_used");
        if (!c.nsamples) c.nsamples = setting<int>(s, "nsamples");
        if (!c.nsamples) c.nsamples = qc.nsamples;
        c.seqlen = setting<int>(s, "seqlen");
        if (!c.seqlen) c.seqlen = qc.seqlen;
    }
    if (c.iters && *c.iters > 0) {
        c.batch_size = setting<int>(s, "batch_size");
        if (!c.batch_size) c.batch_size = qc.batch_size;
        c.gradient_accumulate_steps = setting<int>(s, "gradient_accumulate_steps");
    }
    if (calibrated) c.seed = setting<uint64_t>(s, "seed");
    if (dataset) {
        c.dataset = *dataset;
        // Hub dataset ids among the comma-separated entries ("name:key=value" options stripped)
        std::stringstream parts(*dataset);
        for (std::string part; std::getline(parts, part, ',');) {
            const std::string id = trim(part.substr(0, part.find(':')));
            if (is_hub_id(id) && !fs::exists(id, ec) &&
                std::find(c.datasets.begin(), c.datasets.end(), id) == c.datasets.end())
                c.datasets.push_back(id);
        }
    }
    c.quantized_blocks = qc.block_name_to_quantize;
    c.quant_lm_head = qc.quant_lm_head;
    c.autoround_version = qc.autoround_version;

    // layers kept 16-bit, with the reason for each (the caller's reasons win)
    std::map<std::string, std::string> given;
    for (const auto& k : o.kept_layers) given[k.name] = reason_text(k.reason);
    std::set<std::string> listed;
    auto add = [&](const std::string& n, const std::string& why) {
        if (!listed.insert(n).second) return;
        const auto it = given.find(n);
        c.kept_layers.push_back({n, it != given.end() && !it->second.empty() ? it->second : why});
    };
    for (const auto& [tname, t] : source.tensors()) {
        if (t.shape.size() == 2 && ends_with(tname, ".weight") && tname.find("embed_tokens") != std::string::npos)
            add(tname.substr(0, tname.size() - 7), "token embeddings (weight-only formats quantize Linear layers only)");
    }
    if (!c.quant_lm_head) {
        bool head = false;
        for (const auto& [tname, t] : source.tensors())
            if (ends_with(tname, ".weight") && is_lm_head_name(tname.substr(0, tname.size() - 7))) head = true;
        if (c.tie_word_embeddings)
            add("lm_head", "tied to the token embeddings, which stay 16-bit (auto-round does not quantize a tied lm_head)");
        else if (head)
            add("lm_head", "auto-round keeps lm_head 16-bit by default (`--quant_lm_head` quantizes it; only the "
                           "auto_round format loads a quantized lm_head)");
    }
    for (const auto& n : skipped_in_block) {
        std::string why = "kept 16-bit by `--ignore_layers` or `--layer_config`";
        const auto ov = qc.layer_overrides.find(n);
        const std::string wname = n + ".weight";
        const bool bad_shape = source.has(wname) && source.get(wname).shape.size() == 2 &&
                               (source.get(wname).shape[0] % 32 != 0 || source.get(wname).shape[1] % 32 != 0);
        if (bad_shape || (ov != qc.layer_overrides.end() && ov->second.data_type == "fp"))
            why = reason_text("shape not divisible by 32");
        else if (ends_with(n, ".mlp.gate") || n.find("router") != std::string::npos)
            why = "MoE router (kept 16-bit for accuracy, and because vLLM expects it unquantized)";
        add(n, why);
    }
    bool vision_tuned = false;  // --quant_nontext_module: the tower's blocks are in the block list
    for (const auto& b : qc.block_name_to_quantize)
        if (b.find("visual") != std::string::npos) vision_tuned = true;
    for (const auto& n : unquantized_outside) {
        const bool vision = n.find("visual") != std::string::npos || n.find("vision") != std::string::npos;
        add(n, !vision        ? "outside the quantized blocks"
               : vision_tuned ? "vision tower outside its blocks (mergers): kept 16-bit, as auto-round does"
                              : "vision tower: only the language model's blocks are quantized (auto-round's default "
                                "for VLMs)");
    }
    for (const auto& k : o.kept_layers)
        if (!listed.count(k.name)) add(k.name, reason_text(k.reason));

    c.evals = o.evals;
    c.command_line = o.command_line;
    return c;
}

}  // namespace autoround

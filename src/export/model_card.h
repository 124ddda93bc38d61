// export/model_card.h — the README.md (Hugging Face model card) of each exported folder.
//
// What a card holds (issues 3 and 6, item 4; docs/checkpoint-formats.md §4 for the runtimes):
//   * Hub front matter: base_model (the source's Hub id, else its folder name), base_model_relation:
//     quantized, library_name (transformers; omitted for GGUF, which the Hub recognises by itself),
//     pipeline_tag (text-generation, image-text-to-text for VL configs), license (copied from the source
//     README.md's front matter, omitted when it has none), datasets (calibration sets that are Hub ids), tags;
//   * the quantization settings (scheme, bits, group size, sym, method, iters, nsamples, seqlen, batch
//     size, lr, dataset) and the layers kept 16-bit with the reason for each;
//   * the format, which runtimes load it and with which kernel (vLLM, SGLang, transformers, autoround.cpp;
//     llama.cpp for GGUF), including the AWQ zero_point note for symmetric models;
//   * usage snippets (transformers, vLLM, autoround CLI; an image example for Qwen3-VL configs);
//   * the measured evaluation table when one is given; the "made with autoround.cpp" line and command.
//
// Split in two so that the text is testable without a model: model_card_info() gathers the facts from
// the source folder, the resolved config and ModelCardOptions; render_model_card() is a pure function of
// ModelCardInfo. export_model writes the result as README.md into every folder (ExportOptions::card).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "quant/quantization_config.h"

namespace autoround {

class TensorStore;

// One row of the card's evaluation table.
struct CardEval {
    std::string metric;        // "perplexity", "KLD", "acc_norm", ...
    std::string dataset;       // "WikiText-2 test, 65,536 tokens, seqlen 1024"
    double base = 0;           // the source (16-bit) model
    double quantized = 0;      // this model
    bool lower_is_better = true;  // perplexity, KLD: true; accuracies: false (only words the change column)
};

struct KeptLayer {
    std::string name;    // module name, or a prefix such as "model.visual"
    std::string reason;  // human text, or one of the QuantPlan::skipped tokens ("ignore_layers", ...)
};

// What the exporter cannot know by itself; ExportOptions::card. Everything is optional.
struct ModelCardOptions {
    bool write = true;                    // false: no README.md
    std::string base_model;               // "" = derived (Hub id of the source, else its folder name)
    // The Hub repo the folder goes to; "{format}" is replaced per folder (expand_format_placeholder).
    // Usage snippets load this id; "" = the local output folder.
    std::string repo_id;
    std::string license;                  // "" = copied from the source README.md front matter, if any
    std::string command_line;             // shown under "made with autoround.cpp"
    // The quantize_report.json "settings" object (keys scheme, bits, group_size, sym, iters, lr, minmax_lr,
    // nsamples, nsamples_used, seqlen, batch_size, gradient_accumulate_steps, dataset, seed, disable_opt_rtn,
    // ...); values that are missing or null come from the quantization config or are left out.
    nlohmann::ordered_json settings;
    std::vector<KeptLayer> kept_layers;   // e.g. QuantPlan::skipped; merged with the ones derived from the config
    std::vector<CardEval> evals;          // empty = no evaluation section
};

// Every fact the card states.
struct ModelCardInfo {
    std::string title;                    // the folder name, e.g. "Qwen3-4B-Instruct-2507-w4g128"
    std::string base_model;               // "Qwen/Qwen3-4B-Instruct-2507" or a folder name
    std::string model_ref;                // what the usage snippets load: a Hub id or a local path
    bool model_ref_is_hub = false;        // model_ref is a Hub repo id (else a folder)
    std::string license;                  // "" = no license key
    std::string license_name, license_link;  // copied along with license "other"
    std::string model_type;               // config.json model_type ("qwen3", "qwen3_vl")
    std::string architecture;             // config.json architectures[0]
    bool vision = false;                  // a VL config (vision_config / Qwen3-VL): image-text-to-text
    bool chat_template = false;           // the folder has a chat template (snippets use it)
    bool tie_word_embeddings = false;

    std::string format;                   // export_format_name: "auto_round", "auto_gptq", "gguf:q4_k_m", ...
    std::string backend;                  // export_backend_name: "auto_round:auto_gptq", ...
    std::string gguf_file;                // GGUF formats: the .gguf file name

    int bits = 4;
    int64_t group_size = 128;
    bool sym = true;
    std::string data_type = "int";
    std::string method;                   // "signround", "rtn", "opt-rtn"; "" = unknown
    std::optional<int> iters, nsamples, seqlen, batch_size, gradient_accumulate_steps;
    std::optional<double> lr, minmax_lr;
    std::optional<uint64_t> seed;
    std::string dataset;                  // "" = none / unknown
    std::vector<std::string> datasets;    // the Hub dataset ids among them (front matter)
    std::vector<std::string> quantized_blocks;  // block_name_to_quantize
    bool quant_lm_head = false;
    std::vector<KeptLayer> kept_layers;
    std::vector<CardEval> evals;

    std::string command_line;
    std::string autoround_version = "0.15.0";  // the auto-round version whose formats are written
};

// The README.md text: front matter, settings, format and runtimes, usage, evaluation, provenance.
std::string render_model_card(const ModelCardInfo& info);

// The facts of one exported folder: `qc` is the resolved config the folder was written with (its
// layer_overrides list the in-block Linears kept 16-bit), `skipped_in_block` / `unquantized_outside` the
// exporter's lists, `folder` the folder as the card names it (relative to the output directory, so that the
// card does not depend on where the output went; an absolute path is used as is), `files` what the folder
// holds (the .gguf name for GGUF). Reads the source's config.json, tokenizer_config.json and README.md (for
// the license).
ModelCardInfo model_card_info(const std::filesystem::path& source_dir, const TensorStore& source,
                              const std::string& model_name, const QuantizationConfig& qc,
                              const std::vector<std::string>& skipped_in_block,
                              const std::vector<std::string>& unquantized_outside, std::string_view format,
                              std::string_view backend, const std::filesystem::path& folder,
                              const std::vector<std::string>& files, const ModelCardOptions& options);

// The value of a top-level `key: value` line of a README.md's YAML front matter (quotes removed); "" when
// the text has no front matter or no such key.
std::string front_matter_value(std::string_view readme, std::string_view key);

// `pattern` with every "{format}" replaced by the format's name as a repo name can hold it: the --format
// name with ':' -> '-' ("auto_round", "auto_gptq", "auto_awq", "gguf-q4_k_m"). --push_to_hub uses the same.
std::string expand_format_placeholder(std::string_view pattern, std::string_view format_name);

}  // namespace autoround

// quant/scheme.h — the quantization scheme (presets + overrides) and the layer selection of a model:
// which blocks are tuned, which Linears in them are quantized with which scheme, which stay 16-bit and
// why. Output: a QuantizationConfig for the exporters and a QuantPlan for the tuner.
//
// Why one place: auto-round resolves this once (schemes.py PRESET_SCHEMES, utils/model.py
// get_block_names / find_matching_blocks, compressors/layer_config/resolver.py) and both the tuning and
// every export format must agree on it (autoround-algorithm.md §1.5, §2.11).
//
// Rules, in the order they are applied (the reference's set_layer_config):
//   1. global scheme = preset (W4A16 default), then --bits / --group_size / --sym|--asym field by field;
//   2. blocks = model.layers.0..N-1; --to_quant_block_names (comma list of regexes, re.search on the
//      block names) selects a subset (duplicates dropped, model order kept);
//   3. --ignore_layers (comma list): a token equal to a Linear name selects it; otherwise a token ending in
//      a digit gets a trailing '.', and every Linear whose name contains the token is selected
//      -> bits 16, data_type "float";
//   4. --layer_config JSON {name-or-regex: preset-name | {bits, group_size, sym, data_type, ...}}: exact
//      Linear names apply to that layer; other keys are regexes (re.search) over all Linear names, applied
//      in order (a later key wins) and kept for the export's extra_config as ".*<escaped>.*" when they
//      contain no regex syntax (to_standard_regex); a key that matches nothing is an error. Missing keys
//      are filled from the global scheme. Deviation: an --ignore_layers entry always wins (the reference
//      lets a later regex override it, which contradicts an explicit request to keep the layer 16-bit);
//   5. lm_head (the Linear outside the blocks) is quantized only with --quant_lm_head or a layer_config
//      entry; with tied embeddings that request is dropped with a warning (as the reference does);
//   6. shape rule: a Linear with out % 32 != 0 or in % 32 != 0 stays 16-bit (data_type "fp", warning);
//   7. every other Linear inside a selected block gets the global scheme.
// Linears outside the selected blocks that end up quantized (lm_head, or a layer_config match in an
// unselected block) are listed in QuantPlan::outside; the tuner quantizes them with RTN.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quant/quantization_config.h"

namespace autoround {

class TensorStore;
struct ModelConfig;

struct SchemePreset {
    std::string name;  // upper case, e.g. "W4A16"
    int bits;
    int64_t group_size;
    bool sym;
};
// W4A16 (default), W2A16, W2A16G64, W2A16G32, W3A16, W5A16, W6A16, W8A16 (§2.11; int weight-only).
const std::vector<SchemePreset>& scheme_presets();
// Case-insensitive lookup; "BF16"/"FP16"/"FLOAT" give an unquantized scheme (bits 16, data_type "float").
// Error lists the preset names.
LayerScheme preset_scheme(std::string_view name);

struct SchemeOptions {
    std::string scheme = "W4A16";
    std::optional<int> bits;
    std::optional<int64_t> group_size;
    std::optional<bool> sym;
    std::string data_type = "int";        // only "int" weight-only schemes are implemented
    std::string to_quant_block_names;     // comma-separated regexes; "" = every block
    std::string ignore_layers;            // comma-separated names / substrings
    std::string layer_config;             // JSON text, or the path of a JSON file; "" = none
    bool quant_lm_head = false;
};

// The global scheme (preset + overrides), validated: bits 2..8, group_size -1 or > 0.
LayerScheme resolve_global_scheme(const SchemeOptions& o);

struct LinearInfo {
    std::string name;  // module name, e.g. "model.layers.0.self_attn.q_proj" (no ".weight")
    int64_t out = 0, in = 0;
};

// What the layer selection needs to know about a model.
struct ModelLayout {
    std::vector<std::string> blocks;   // "model.layers.0", ... in model order
    std::vector<LinearInfo> linears;   // every Linear in named_modules order (blocks, then lm_head)
    std::string lm_head = "lm_head";
    bool tie_word_embeddings = false;
};
// From config.json + the checkpoint: every 2-D `.weight` under model.layers.<i>. (in the order of the 7
// Qwen3 linears, then any others), plus lm_head (shape of the embedding when tied). With include_vision
// (--quant_nontext_module on a Qwen3-VL checkpoint) the vision tower's blocks model.visual.blocks.<i> come
// first (named_modules order: the tower precedes the language model), each with its 4 linears.
ModelLayout describe_model(const ModelConfig& cfg, const TensorStore& tensors, bool include_vision = false);
// "model.visual.blocks.3" -> true (a Qwen3-VL vision block name as describe_model lists it).
bool is_vision_block_name(const std::string& block);

struct PlannedLayer {
    std::string name;
    int64_t out = 0, in = 0;
    LayerScheme scheme;  // quantized (bits <= 8)
};
struct PlannedBlock {
    std::string name;                   // "model.layers.3"
    int index = 0;                      // 3
    std::vector<PlannedLayer> layers;   // the quantized Linears of this block (possibly none)
    bool vision = false;                // a Qwen3-VL vision block (quant/vision_tuner.h tunes it)
};
struct SkippedLayer {
    std::string name;
    std::string reason;                 // "ignore_layers", "layer_config", "shape not divisible by 32", ...
};

struct QuantPlan {
    QuantizationConfig qc;              // global scheme, per-layer overrides, regex rules, block list
    std::vector<PlannedBlock> blocks;   // the selected blocks, model order
    std::vector<PlannedLayer> outside;  // quantized Linears outside the selected blocks (RTN)
    std::vector<SkippedLayer> skipped;  // Linears of selected blocks (and lm_head if asked) kept 16-bit
    std::vector<std::string> warnings;

    int64_t num_quantized() const;
    std::vector<PlannedLayer> all_layers() const;  // blocks' layers then outside
};

// Applies the rules above. Errors name the flag at fault (bad regex, no block matched, a layer_config key
// that matches nothing, invalid values).
QuantPlan plan_quantization(const ModelLayout& model, const SchemeOptions& o);

}  // namespace autoround

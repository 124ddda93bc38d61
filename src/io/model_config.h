// io/model_config.h — typed views of a Hugging Face model folder's JSON configs.
//
// config.json            -> ModelConfig       (architecture, shapes, RoPE, tie, dtype)
// generation_config.json -> GenerationConfig  (sampling defaults, EOS ids; optional file)
// tokenizer_config.json  -> TokenizerConfig   (chat template, special tokens; the template may
//                           also come from chat_template.jinja or chat_template.json)
// Qwen3-VL configs (text_config + vision_config) are read into the same struct (vision_language = true).
// Both config.json styles are read: new (`rope_parameters`, `dtype`) and older (`rope_theta`,
// `rope_scaling`, `torch_dtype`). Unknown architectures get
// "unsupported architecture X; supported: ..." and missing required fields name the field and file.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace autoround {

enum class ArchFamily { Qwen3, Qwen2, Llama };

struct RopeConfig {
    std::string type = "default";   // "default", "linear", "llama3" (others rejected)
    double theta = 10000.0;
    double factor = 1.0;            // linear / llama3
    double low_freq_factor = 1.0;   // llama3
    double high_freq_factor = 4.0;  // llama3
    int original_max_position_embeddings = 8192;  // llama3
};

struct ModelConfig {
    std::string architecture;       // e.g. "Qwen3ForCausalLM"
    ArchFamily family = ArchFamily::Qwen3;
    std::string model_type;         // "qwen3", "qwen2", "llama"
    int vocab_size = 0;
    int hidden_size = 0;
    int intermediate_size = 0;
    int num_hidden_layers = 0;
    int num_attention_heads = 0;
    int num_key_value_heads = 0;
    int head_dim = 0;               // explicit, else hidden_size / num_attention_heads
    float rms_norm_eps = 1e-6f;
    RopeConfig rope;
    int max_position_embeddings = 0;
    bool tie_word_embeddings = false;
    bool attention_bias = false;    // q/k/v bias (Qwen2 always has it)
    bool qk_norm = false;           // Qwen3: per-head RMSNorm on q and k before RoPE
    std::string hidden_act = "silu";
    std::string dtype = "bfloat16"; // from `dtype` or `torch_dtype`
    std::optional<int> bos_token_id;
    std::vector<int> eos_token_ids;

    // Qwen3-VL (Qwen3VLForConditionalGeneration, qwen3-architecture.md §2): the fields above come from
    // `text_config`; the language model's tensors live under "model.language_model." and its RoPE is
    // interleaved M-RoPE over (t, h, w) positions. The vision tower's own config is read by
    // model/qwen3_vl_vision.h from config.json's `vision_config`.
    bool vision_language = false;
    std::string text_prefix = "model.";   // prefix of embed_tokens / layers.{i} / norm
    std::vector<int> mrope_section;       // [t, h, w] frequency counts (sum = head_dim/2); empty: 1-D RoPE
    int image_token_id = -1, video_token_id = -1, vision_start_token_id = -1, vision_end_token_id = -1;

    std::string family_name() const;
};

ModelConfig parse_model_config(const nlohmann::json& j, const std::string& label);
ModelConfig load_model_config(const std::filesystem::path& model_dir);  // reads model_dir/config.json

struct GenerationConfig {
    bool do_sample = false;
    float temperature = 1.0f;
    float top_p = 1.0f;
    int top_k = 50;
    float repetition_penalty = 1.0f;
    std::vector<int> eos_token_ids;
    std::optional<int> bos_token_id;
    std::optional<int> pad_token_id;
    std::optional<int> max_new_tokens;
};

GenerationConfig parse_generation_config(const nlohmann::json& j, const std::string& label);
// Missing file -> defaults. EOS (and BOS) ids missing here are taken from config.json if present.
GenerationConfig load_generation_config(const std::filesystem::path& model_dir);

struct TokenizerConfig {
    std::optional<std::string> chat_template;  // the default template's source text
    std::string eos_token;
    std::string bos_token;
    std::string pad_token;
    bool add_bos_token = false;
    std::string tokenizer_class;
};

TokenizerConfig parse_tokenizer_config(const nlohmann::json& j, const std::string& label);
// Reads tokenizer_config.json (optional) and chat_template.jinja / chat_template.json if present
// (those take precedence, as in transformers). A chat_template given as a list of
// {name, template} picks "default".
TokenizerConfig load_tokenizer_config(const std::filesystem::path& model_dir);

// Reads and parses a JSON file; errors name the file (missing, unreadable, invalid JSON + position).
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace autoround

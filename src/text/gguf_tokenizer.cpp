// text/gguf_tokenizer.cpp — see gguf_tokenizer.h.
#include "text/gguf_tokenizer.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace autoround {

namespace {

// llama.cpp's pre-tokenizer names (llama-vocab.cpp) -> the Split regex of the HF tokenizer.json they were
// detected from. "qwen2" covers Qwen2, Qwen2.5, Qwen3 and Qwen3-VL.
const char* pre_regex(const std::string& pre) {
    if (pre == "qwen2")
        return "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
               "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    return nullptr;
}

}  // namespace

std::string gguf_tokenizer_json(const GgufFile& f) {
    const std::string label = f.path().string();
    const std::string model = f.get_string("tokenizer.ggml.model");
    check(model == "gpt2", label, ": tokenizer.ggml.model is '", model,
          "'; only byte-level BPE (gpt2) GGUF tokenizers are supported");
    const std::string pre = f.opt_string("tokenizer.ggml.pre").value_or("default");
    const char* regex = pre_regex(pre);
    check(regex != nullptr, label, ": tokenizer.ggml.pre is '", pre,
          "'; only the qwen2 pre-tokenizer (Qwen2/2.5/3) is implemented; pass --tokenizer with a tokenizer.json");
    const auto& tokens = f.get_string_array("tokenizer.ggml.tokens");
    const std::vector<int32_t> types = f.has("tokenizer.ggml.token_type") ? f.get_i32_array("tokenizer.ggml.token_type")
                                                                         : std::vector<int32_t>(tokens.size(), 1);
    check(types.size() == tokens.size(), label, ": tokenizer.ggml.token_type has ", types.size(),
          " entries but tokenizer.ggml.tokens has ", tokens.size());
    const auto& merges = f.get_string_array("tokenizer.ggml.merges");

    using json = nlohmann::ordered_json;
    json vocab = json::object();
    json added = json::array();
    for (size_t i = 0; i < tokens.size(); ++i) {
        switch (types[i]) {
            case 1:  // NORMAL
            case 6:  // BYTE
                vocab[tokens[i]] = i;
                break;
            case 3:  // CONTROL
            case 4:  // USER_DEFINED
                added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false},
                                 {"rstrip", false}, {"normalized", types[i] == 4}, {"special", types[i] == 3}});
                break;
            case 2:  // UNKNOWN
            case 5:  // UNUSED
                break;
            default:
                fail(label, ": tokenizer.ggml.token_type[", i, "] = ", types[i], " is not a llama.cpp token type (1..6)");
        }
    }
    json doc = {
        {"version", "1.0"},
        {"added_tokens", added},
        {"normalizer", {{"type", "NFC"}}},
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           json::array({{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
                         {"use_regex", false}}})}}},
        {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
        {"model",
         {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
          {"vocab", vocab}, {"merges", merges}}},
    };
    try {
        return doc.dump();
    } catch (const nlohmann::json::exception& e) {
        fail(label, ": the GGUF tokenizer holds a token that is not valid UTF-8 (", e.what(), "); the file is corrupt");
    }
}

BpeTokenizer load_gguf_tokenizer(const GgufFile& f) {
    return BpeTokenizer::from_json_text(gguf_tokenizer_json(f), f.path().string() + " (GGUF tokenizer)");
}

}  // namespace autoround

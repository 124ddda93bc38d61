// text/bpe_tokenizer.h — byte-level BPE tokenizer from a Hugging Face tokenizer.json
// (the Qwen2/Qwen3 pipeline: added tokens matched first, NFC, the Qwen split regex with Unicode
// classes, GPT-2 byte->unicode mapping, merge-rank BPE; decode reverses it with U+FFFD for invalid UTF-8).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace autoround {

class BpeTokenizer {
public:
    // Loads `tokenizer.json` (a file path, or a model folder that contains it).
    // Errors (missing file, invalid JSON, a model type other than BPE, a pre-tokenizer this
    // engine does not implement) name the file and the problem.
    static BpeTokenizer load(const std::filesystem::path& path);
    static BpeTokenizer from_json_text(std::string_view json_text, const std::string& label);

    BpeTokenizer(BpeTokenizer&&) noexcept;
    BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
    ~BpeTokenizer();

    // Encodes text without adding BOS/EOS. Invalid UTF-8 input throws Error.
    std::vector<int32_t> encode(std::string_view text) const;
    // Decodes ids; unknown ids throw Error. Invalid byte sequences become U+FFFD.
    std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

    // The token's string as stored in the vocab (byte-level encoded), or the added token's content.
    const std::string& id_to_token(int32_t id) const;
    std::optional<int32_t> token_to_id(std::string_view token) const;
    bool is_special(int32_t id) const;  // added token with "special": true
    int32_t vocab_size() const;         // max id + 1 over vocab and added tokens

private:
    struct Impl;
    explicit BpeTokenizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;

    friend class StreamingDecoder;
};

// Incremental detokenizer for streaming generation: push ids, get back the newly completed text;
// bytes of an incomplete UTF-8 sequence are held back until they complete (or flushed as U+FFFD).
class StreamingDecoder {
public:
    explicit StreamingDecoder(const BpeTokenizer& tok, bool skip_special_tokens = false);
    std::string push(int32_t id);
    std::string flush();

private:
    const BpeTokenizer& tok_;
    bool skip_special_;
    std::string pending_;  // raw bytes not yet emitted
};

}  // namespace autoround

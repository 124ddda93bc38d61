// text/pretokenizer.h — the regex Split pre-tokenizer (behavior "Isolated") on PCRE2.
//
// Why: Qwen2/Qwen3 split text with an Oniguruma regex that needs \p{L}, \p{N}, Unicode \s and a
// negative lookahead, which std::regex cannot do (and would be far too slow). PCRE2 with UTF+UCP
// and JIT handles it. Oniguruma's Unicode \s is narrower than PCRE2's (it is exactly
// [\t\n\v\f\r\x{85}\p{Z}]), so \s and \S are rewritten to that explicit class before compiling.
// With "Isolated", every match is a piece and so is every unmatched gap between matches.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace autoround {

class SplitRegex {
public:
    // `pattern` uses Oniguruma syntax as found in tokenizer.json. `label` names the file for
    // error messages. Throws Error if the pattern does not compile.
    SplitRegex(const std::string& pattern, const std::string& label);
    SplitRegex(SplitRegex&&) noexcept;
    SplitRegex& operator=(SplitRegex&&) noexcept;
    SplitRegex(const SplitRegex&) = delete;
    SplitRegex& operator=(const SplitRegex&) = delete;
    ~SplitRegex();

    // Finds the first non-empty match in text[from..]. Returns false if there is none.
    // `text` must be valid UTF-8 and `from` a code point boundary. Thread-safe.
    bool find(std::string_view text, std::size_t from, std::size_t& begin, std::size_t& end) const;

    // Calls f(piece) for each piece of `text` in order: matches and the gaps between them.
    template <typename F>
    void for_each_piece(std::string_view text, F&& f) const {
        std::size_t pos = 0, b = 0, e = 0;
        while (pos < text.size() && find(text, pos, b, e)) {
            if (b > pos) f(text.substr(pos, b - pos));
            f(text.substr(b, e - b));
            pos = e;
        }
        if (pos < text.size()) f(text.substr(pos));
    }

    // The pattern as given to PCRE2 (after the \s rewrite); for tests and error messages.
    const std::string& pcre_pattern() const { return pcre_pattern_; }

    // Rewrites Oniguruma's \s / \S into PCRE2 classes with Oniguruma's meaning.
    static std::string translate_oniguruma(std::string_view pattern);

private:
    void* code_ = nullptr;  // pcre2_code_8*
    bool jit_ = false;
    std::string pcre_pattern_;
    std::string label_;
};

}  // namespace autoround

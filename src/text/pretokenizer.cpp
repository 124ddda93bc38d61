// text/pretokenizer.cpp — PCRE2 (UTF + UCP + JIT) implementation of the Split pre-tokenizer.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/pretokenizer.h"

#include <pcre2.h>

#include <utility>

#include "core/error.h"

namespace autoround {

namespace {

// Oniguruma's Unicode \s: U+0009..U+000D, U+0085 and General_Category Z (Zs, Zl, Zp).
constexpr const char* kOnigSpaceBody = "\\t\\n\\x0B\\f\\r\\x{85}\\p{Z}";

// Per-thread PCRE2 scratch: match data (pattern-independent, sized generously) and a JIT stack.
struct Scratch {
    pcre2_match_data* md = nullptr;
    pcre2_match_context* mc = nullptr;
    pcre2_jit_stack* js = nullptr;
    Scratch() {
        md = pcre2_match_data_create(32, nullptr);
        mc = pcre2_match_context_create(nullptr);
        js = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
        if (mc && js) pcre2_jit_stack_assign(mc, nullptr, js);
    }
    ~Scratch() {
        if (md) pcre2_match_data_free(md);
        if (mc) pcre2_match_context_free(mc);
        if (js) pcre2_jit_stack_free(js);
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
};

Scratch& scratch() {
    thread_local Scratch s;
    check(s.md != nullptr && s.mc != nullptr, "PCRE2: out of memory for match data");
    return s;
}

}  // namespace

std::string SplitRegex::translate_oniguruma(std::string_view p) {
    std::string out;
    out.reserve(p.size() + 64);
    bool in_class = false;
    for (std::size_t i = 0; i < p.size(); ++i) {
        const char c = p[i];
        if (c == '\\' && i + 1 < p.size()) {
            const char d = p[i + 1];
            if (d == 's') {
                if (in_class) {
                    out += kOnigSpaceBody;
                } else {
                    out += '[';
                    out += kOnigSpaceBody;
                    out += ']';
                }
            } else if (d == 'S' && !in_class) {
                out += "[^";
                out += kOnigSpaceBody;
                out += ']';
            } else {
                out += c;
                out += d;  // any other escape (\p{..}, \r, \S inside a class, ...) is copied
            }
            ++i;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            out += c;
            // A ']' right after '[' or '[^' is a literal in both dialects.
            if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
            if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
            continue;
        }
        if (in_class && c == ']') in_class = false;
        out += c;
    }
    return out;
}

SplitRegex::SplitRegex(const std::string& pattern, const std::string& label)
    : pcre_pattern_(translate_oniguruma(pattern)), label_(label) {
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pcre_pattern_.data()), pcre_pattern_.size(),
                                     PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    if (!code) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(err, buf, sizeof buf);
        fail(label, ": pre-tokenizer regex does not compile (", reinterpret_cast<const char*>(buf), " at offset ", off,
             "): ", pattern);
    }
    code_ = code;
    jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

SplitRegex::SplitRegex(SplitRegex&& o) noexcept
    : code_(std::exchange(o.code_, nullptr)), jit_(o.jit_), pcre_pattern_(std::move(o.pcre_pattern_)),
      label_(std::move(o.label_)) {}

SplitRegex& SplitRegex::operator=(SplitRegex&& o) noexcept {
    if (this != &o) {
        if (code_) pcre2_code_free(static_cast<pcre2_code*>(code_));
        code_ = std::exchange(o.code_, nullptr);
        jit_ = o.jit_;
        pcre_pattern_ = std::move(o.pcre_pattern_);
        label_ = std::move(o.label_);
    }
    return *this;
}

SplitRegex::~SplitRegex() {
    if (code_) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

bool SplitRegex::find(std::string_view text, std::size_t from, std::size_t& begin, std::size_t& end) const {
    Scratch& s = scratch();
    auto* code = static_cast<const pcre2_code*>(code_);
    const auto* subj = reinterpret_cast<PCRE2_SPTR>(text.data());
    // NOTEMPTY: an empty match is never a piece; PCRE2 then looks for a non-empty one.
    const uint32_t opts = PCRE2_NOTEMPTY | PCRE2_NO_UTF_CHECK;
    const int rc = jit_ ? pcre2_jit_match(code, subj, text.size(), from, opts, s.md, s.mc)
                        : pcre2_match(code, subj, text.size(), from, opts, s.md, s.mc);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(rc, buf, sizeof buf);
        fail(label_, ": pre-tokenizer regex failed at byte ", from, ": ", reinterpret_cast<const char*>(buf));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.md);
    begin = ov[0];
    end = ov[1];
    return end > begin;
}

}  // namespace autoround

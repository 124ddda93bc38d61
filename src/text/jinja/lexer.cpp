// text/jinja/lexer.cpp — the tokenizer; mirrors jinja2 3.1's lexer rules (see lexer.h).
#include "text/jinja/lexer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "text/jinja/pystr.h"

namespace autoround::jinja {

void syntax_error(int line, int col, const std::string& message) {
    fail("template syntax error at line ", line, ", column ", col, ": ", message);
}

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (c & 0x80); }
bool is_name_char(char c) { return is_name_start(c) || std::isdigit(static_cast<unsigned char>(c)); }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

class Lexer {
public:
    explicit Lexer(std::string_view raw) {
        // Normalise \r\n and \r to \n, then drop one trailing newline (keep_trailing_newline=False).
        for (size_t i = 0; i < raw.size(); ++i) {
            if (raw[i] == '\r') {
                src_ += '\n';
                if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
            } else {
                src_ += raw[i];
            }
        }
        if (!src_.empty() && src_.back() == '\n') src_.pop_back();
        line_starts_.push_back(0);
        for (size_t i = 0; i < src_.size(); ++i)
            if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }

    std::vector<Token> run() {
        bool line_starting = true;
        while (pos_ < src_.size()) {
            size_t tag = find_tag(pos_);
            if (tag == std::string::npos) {
                emit_data(pos_, src_.substr(pos_));
                break;
            }
            char kind = src_[tag + 1];  // '{', '%' or '#'
            char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
            std::string text = src_.substr(pos_, tag - pos_);
            text = strip_before(text, sign, kind != '{', line_starting);
            emit_data(pos_, std::move(text));
            pos_ = tag + 2 + (sign ? 1 : 0);
            if (kind == '#') {
                line_starting = lex_comment(tag);
            } else if (kind == '%' && lex_raw(tag, line_starting)) {
                // raw block handled
            } else {
                line_starting = lex_tag(tag, kind == '%');
            }
        }
        tokens_.push_back(make(Tok::Eof, src_.size()));
        return std::move(tokens_);
    }

private:
    std::string src_;
    std::vector<size_t> line_starts_;
    std::vector<Token> tokens_;
    size_t pos_ = 0;

    Token make(Tok type, size_t at, std::string text = {}) {
        size_t line = std::upper_bound(line_starts_.begin(), line_starts_.end(), at) - line_starts_.begin();
        Token t{type, std::move(text)};
        t.line = static_cast<int>(line);
        t.col = static_cast<int>(at - line_starts_[line - 1] + 1);
        return t;
    }
    [[noreturn]] void error_at(size_t at, const std::string& msg) {
        Token t = make(Tok::Eof, at);
        syntax_error(t.line, t.col, msg);
    }
    void emit_data(size_t at, std::string text) {
        if (!text.empty()) tokens_.push_back(make(Tok::Data, at, std::move(text)));
    }

    size_t find_tag(size_t from) const {
        for (size_t p = src_.find('{', from); p != std::string::npos; p = src_.find('{', p + 1))
            if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')) return p;
        return std::string::npos;
    }

    // '-' strips all whitespace before the tag; otherwise lstrip_blocks strips spaces/tabs between
    // the start of the line and a block or comment tag.
    static std::string strip_before(std::string text, char sign, bool block_like, bool line_starting) {
        if (sign == '-') {
            size_t e = text.size();
            while (e > 0 && is_ws(text[e - 1])) --e;
            text.resize(e);
        } else if (sign != '+' && block_like) {
            size_t nl = text.rfind('\n');
            size_t l = nl == std::string::npos ? 0 : nl + 1;
            if ((l > 0 || line_starting) &&
                std::all_of(text.begin() + static_cast<long>(l), text.end(), [](char c) { return is_ws(c); }))
                text.resize(l);
        }
        return text;
    }

    // After a block/comment end: '-' eats all whitespace, '+' nothing, otherwise one newline (trim_blocks).
    // Returns whether the consumed end ended with a newline (jinja's `line_starting`).
    bool finish_end(size_t& p, char sign, bool trim_newline) {
        bool nl = false;
        if (sign == '-') {
            while (p < src_.size() && is_ws(src_[p])) nl = src_[p++] == '\n';
        } else if (sign != '+' && trim_newline && p < src_.size() && src_[p] == '\n') {
            ++p;
            nl = true;
        }
        return nl;
    }

    bool lex_comment(size_t tag) {
        for (size_t p = pos_; p < src_.size(); ++p) {
            char sign = src_[p] == '-' || src_[p] == '+' ? src_[p] : 0;
            if (src_.compare(p + (sign ? 1 : 0), 2, "#}") != 0) continue;
            p += (sign ? 1 : 0) + 2;
            bool nl = finish_end(p, sign, true);
            pos_ = p;
            return nl;
        }
        error_at(tag, "Missing end of comment tag");
    }

    // {% raw %} ... {% endraw %}: the body is data. Returns false (nothing consumed) if not a raw tag.
    bool lex_raw(size_t tag, bool& line_starting) {
        size_t p = skip_ws(pos_);
        if (src_.compare(p, 3, "raw") != 0) return false;
        p = skip_ws(p + 3);
        if (src_.compare(p, 3, "-%}") == 0) {
            p += 3;
            while (p < src_.size() && is_ws(src_[p])) ++p;
        } else if (src_.compare(p, 2, "%}") == 0) {
            p += 2;
        } else {
            return false;
        }
        line_starting = p > 0 && src_[p - 1] == '\n';
        for (size_t q = find_tag(p); q != std::string::npos; q = find_tag(q + 1)) {
            if (src_[q + 1] != '%') continue;
            char sign = q + 2 < src_.size() && (src_[q + 2] == '-' || src_[q + 2] == '+') ? src_[q + 2] : 0;
            size_t r = skip_ws(q + 2 + (sign ? 1 : 0));
            if (src_.compare(r, 6, "endraw") != 0) continue;
            r = skip_ws(r + 6);
            char esign = src_[r] == '-' || src_[r] == '+' ? src_[r] : 0;
            if (src_.compare(r + (esign ? 1 : 0), 2, "%}") != 0) continue;
            emit_data(p, strip_before(src_.substr(p, q - p), sign, true, line_starting));
            r += (esign ? 1 : 0) + 2;
            line_starting = finish_end(r, esign, true);
            pos_ = r;
            return true;
        }
        error_at(tag, "Missing end of raw directive");
    }

    size_t skip_ws(size_t p) const {
        while (p < src_.size() && is_ws(src_[p])) ++p;
        return p;
    }

    // Tokens of one {{ ... }} or {% ... %}; ends only when brackets are balanced.
    bool lex_tag(size_t tag, bool block) {
        tokens_.push_back(make(block ? Tok::BlockBegin : Tok::VarBegin, tag));
        std::string brackets;
        while (true) {
            pos_ = skip_ws(pos_);
            if (pos_ >= src_.size()) error_at(tag, std::string("unexpected end of template, the tag opened here was never closed"));
            if (brackets.empty()) {
                const char* close = block ? "%}" : "}}";
                char sign = src_[pos_] == '-' || (block && src_[pos_] == '+') ? src_[pos_] : 0;
                if (src_.compare(pos_ + (sign ? 1 : 0), 2, close) == 0) {
                    tokens_.push_back(make(block ? Tok::BlockEnd : Tok::VarEnd, pos_));
                    pos_ += (sign ? 1 : 0) + 2;
                    return finish_end(pos_, sign, block);
                }
            }
            lex_expr_token(brackets);
        }
    }

    void lex_expr_token(std::string& brackets) {
        size_t start = pos_;
        char c = src_[pos_];
        if (is_digit(c)) return lex_number();
        if (is_name_start(c)) {
            while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
            tokens_.push_back(make(Tok::Name, start, src_.substr(start, pos_ - start)));
            return;
        }
        if (c == '\'' || c == '"') return lex_string();
        static const char* two[] = {"//", "**", "==", "!=", "<=", ">="};
        for (const char* op : two)
            if (src_.compare(pos_, 2, op) == 0) {
                pos_ += 2;
                tokens_.push_back(make(Tok::Op, start, op));
                return;
            }
        if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos)
            error_at(start, std::string("unexpected char '") + c + "'");
        if (c == '(' || c == '[' || c == '{') brackets += c == '(' ? ')' : c == '[' ? ']' : '}';
        if (c == ')' || c == ']' || c == '}') {
            if (brackets.empty()) error_at(start, std::string("unexpected '") + c + "'");
            if (brackets.back() != c) error_at(start, std::string("unexpected '") + c + "', expected '" + brackets.back() + "'");
            brackets.pop_back();
        }
        ++pos_;
        tokens_.push_back(make(Tok::Op, start, std::string(1, c)));
    }

    size_t digits(size_t p) const {  // \d+(_\d+)*
        size_t q = p;
        while (q < src_.size() && (is_digit(src_[q]) || (src_[q] == '_' && q > p && q + 1 < src_.size() && is_digit(src_[q + 1])))) ++q;
        return q;
    }

    void lex_number() {
        size_t start = pos_;
        auto clean = [&](size_t e) {
            std::string s = src_.substr(start, e - start);
            s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
            return s;
        };
        char c1 = pos_ + 1 < src_.size() ? static_cast<char>(std::tolower(static_cast<unsigned char>(src_[pos_ + 1]))) : 0;
        if (src_[pos_] == '0' && (c1 == 'x' || c1 == 'o' || c1 == 'b')) {
            int base = c1 == 'x' ? 16 : c1 == 'o' ? 8 : 2;
            size_t e = pos_ + 2;
            auto ok = [&](char ch) { return base == 16 ? std::isxdigit(static_cast<unsigned char>(ch)) != 0 : ch >= '0' && ch < '0' + base; };
            while (e < src_.size() && (ok(src_[e]) || (src_[e] == '_' && e + 1 < src_.size() && ok(src_[e + 1])))) ++e;
            if (e > pos_ + 2) {
                std::string s = clean(e).substr(2);
                Token t = make(Tok::Int, start, src_.substr(start, e - start));
                errno = 0;
                unsigned long long v = std::strtoull(s.c_str(), nullptr, base);
                if (errno || v > uint64_t(INT64_MAX)) error_at(start, "integer literal too large");
                t.ival = static_cast<int64_t>(v);
                pos_ = e;
                tokens_.push_back(t);
                return;
            }
        }
        size_t e = digits(pos_);
        bool is_float = false, preceded_by_dot = start > 0 && src_[start - 1] == '.';
        if (!preceded_by_dot && e + 1 < src_.size() && src_[e] == '.' && is_digit(src_[e + 1])) {
            e = digits(e + 1);
            is_float = true;
        }
        if (!preceded_by_dot && e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
            size_t x = e + 1;
            if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
            if (x < src_.size() && is_digit(src_[x])) { e = digits(x); is_float = true; }
        }
        if (!is_float) {  // jinja: [1-9](_?\d)* or 0(_?0)*
            if (src_[start] == '0') {
                e = start + 1;
                while (e < src_.size() && (src_[e] == '0' || (src_[e] == '_' && e + 1 < src_.size() && src_[e + 1] == '0'))) ++e;
            }
        }
        Token t = make(is_float ? Tok::Float : Tok::Int, start, src_.substr(start, e - start));
        std::string s = clean(e);
        if (is_float) {
            t.fval = std::strtod(s.c_str(), nullptr);
        } else {
            errno = 0;
            t.ival = std::strtoll(s.c_str(), nullptr, 10);
            if (errno) error_at(start, "integer literal too large");
        }
        pos_ = e;
        tokens_.push_back(t);
    }

    // Python unicode-escape decoding of the literal body.
    void lex_string() {
        size_t start = pos_;
        char quote = src_[pos_++];
        std::string out;
        while (true) {
            if (pos_ >= src_.size()) error_at(start, "unexpected char '" + std::string(1, quote) + "'");
            char c = src_[pos_++];
            if (c == quote) break;
            if (c != '\\') { out += c; continue; }
            if (pos_ >= src_.size()) error_at(start, "unterminated string");
            char e = src_[pos_++];
            auto hex = [&](int n) {
                uint32_t v = 0;
                for (int i = 0; i < n; ++i) {
                    if (pos_ >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[pos_])))
                        error_at(start, "truncated \\" + std::string(1, e) + " escape");
                    char h = src_[pos_++];
                    v = v * 16 + static_cast<uint32_t>(is_digit(h) ? h - '0' : std::tolower(static_cast<unsigned char>(h)) - 'a' + 10);
                }
                if (v > 0x10FFFF) error_at(start, "illegal Unicode character");
                pystr::append_utf8(out, v);
            };
            switch (e) {
                case '\n': break;
                case '\\': out += '\\'; break;
                case '\'': out += '\''; break;
                case '"': out += '"'; break;
                case 'a': out += '\a'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'v': out += '\v'; break;
                case 'x': hex(2); break;
                case 'u': hex(4); break;
                case 'U': hex(8); break;
                case 'N': error_at(start, "\\N{...} escapes are not supported");
                default:
                    if (e >= '0' && e <= '7') {
                        uint32_t v = static_cast<uint32_t>(e - '0');
                        for (int i = 0; i < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7'; ++i)
                            v = v * 8 + static_cast<uint32_t>(src_[pos_++] - '0');
                        pystr::append_utf8(out, v);
                    } else {
                        out += '\\';
                        out += e;
                    }
            }
        }
        tokens_.push_back(make(Tok::String, start, std::move(out)));
    }
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace autoround::jinja

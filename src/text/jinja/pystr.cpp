// text/jinja/pystr.cpp — Python str methods over UTF-8 (see pystr.h for what is and is not exact).
#include "text/jinja/pystr.h"

#include <algorithm>
#include <cstdio>

#include <utf8proc.h>

#include "core/error.h"

namespace autoround::jinja::pystr {

std::u32string decode(std::string_view s) {
    std::u32string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
        bool ok = n > 0 && i + n <= s.size();
        for (int k = 1; ok && k < n; ++k) {
            unsigned char cc = static_cast<unsigned char>(s[i + k]);
            ok = (cc & 0xC0) == 0x80;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (!ok) { out.push_back(0xFFFD); ++i; continue; }
        out.push_back(cp);
        i += n;
    }
    return out;
}

void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | ((cp >> 18) & 0x07));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

std::string encode(std::u32string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t c : s) append_utf8(out, c);
    return out;
}

size_t length(std::string_view s) {
    size_t n = 0;
    for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    return n;
}

bool is_space(char32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

static char32_t to_upper(char32_t c) { return static_cast<char32_t>(utf8proc_toupper(static_cast<int32_t>(c))); }
static char32_t to_lower(char32_t c) { return static_cast<char32_t>(utf8proc_tolower(static_cast<int32_t>(c))); }
static char32_t to_title(char32_t c) { return static_cast<char32_t>(utf8proc_totitle(static_cast<int32_t>(c))); }
static bool is_cased(char32_t c) {
    auto cat = utf8proc_category(static_cast<int32_t>(c));
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
}

template <typename F>
static std::string map_chars(std::string_view s, F f) {
    std::u32string u = decode(s);
    for (size_t i = 0; i < u.size(); ++i) u[i] = f(u[i], i);
    return encode(u);
}

std::string upper(std::string_view s) { return map_chars(s, [](char32_t c, size_t) { return to_upper(c); }); }
std::string lower(std::string_view s) { return map_chars(s, [](char32_t c, size_t) { return to_lower(c); }); }
std::string capitalize(std::string_view s) {
    return map_chars(s, [](char32_t c, size_t i) { return i == 0 ? to_title(c) : to_lower(c); });
}
std::string title(std::string_view s) {
    bool prev_cased = false;
    return map_chars(s, [&](char32_t c, size_t) {
        char32_t r = prev_cased ? to_lower(c) : to_title(c);
        prev_cased = is_cased(c);
        return r;
    });
}

std::string strip(std::string_view s, const std::string* chars, bool left, bool right) {
    std::u32string u = decode(s);
    std::u32string set = chars ? decode(*chars) : std::u32string();
    auto strippable = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : is_space(c); };
    size_t b = 0, e = u.size();
    while (left && b < e && strippable(u[b])) ++b;
    while (right && e > b && strippable(u[e - 1])) --e;
    return encode(std::u32string_view(u).substr(b, e - b));
}

std::vector<std::string> split(std::string_view s, const std::string* sep, int64_t maxsplit) {
    std::vector<std::string> out;
    if (sep) {
        check(!sep->empty(), "ValueError: empty separator");
        size_t pos = 0;
        while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
            size_t hit = s.find(*sep, pos);
            if (hit == std::string_view::npos) break;
            out.emplace_back(s.substr(pos, hit - pos));
            pos = hit + sep->size();
        }
        out.emplace_back(s.substr(pos));
        return out;
    }
    std::u32string u = decode(s);
    size_t i = 0;
    while (true) {
        while (i < u.size() && is_space(u[i])) ++i;
        if (i == u.size()) break;
        if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
            out.push_back(encode(std::u32string_view(u).substr(i)));
            break;
        }
        size_t j = i;
        while (j < u.size() && !is_space(u[j])) ++j;
        out.push_back(encode(std::u32string_view(u).substr(i, j - i)));
        i = j;
    }
    return out;
}

std::vector<std::string> rsplit(std::string_view s, const std::string* sep, int64_t maxsplit) {
    // Split the reversed string with the reversed separator, then reverse everything back.
    auto rev = [](std::string_view x) { std::u32string u = decode(x); std::reverse(u.begin(), u.end()); return encode(u); };
    std::string rsep = sep ? rev(*sep) : std::string();
    std::vector<std::string> parts = split(rev(s), sep ? &rsep : nullptr, maxsplit);
    std::reverse(parts.begin(), parts.end());
    for (auto& p : parts) p = rev(p);
    return parts;
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
    std::u32string u = decode(s);
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t i = 0; i < u.size(); ++i) {
        char32_t c = u[i];
        bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 ||
                   c == 0x2028 || c == 0x2029;
        if (!brk) continue;
        size_t end = i;
        if (c == '\r' && i + 1 < u.size() && u[i + 1] == '\n') ++i;
        out.push_back(encode(std::u32string_view(u).substr(start, (keepends ? i + 1 : end) - start)));
        start = i + 1;
    }
    if (start < u.size()) out.push_back(encode(std::u32string_view(u).substr(start)));
    return out;
}

std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count) {
    std::string out;
    if (old.empty()) {  // Python inserts `with` before every code point and at the end
        std::u32string u = decode(s);
        int64_t n = 0;
        for (char32_t c : u) {
            if (count < 0 || n++ < count) out += with;
            append_utf8(out, c);
        }
        if (count < 0 || n < count) out += with;
        return out;
    }
    size_t pos = 0;
    for (int64_t n = 0; count < 0 || n < count; ++n) {
        size_t hit = s.find(old, pos);
        if (hit == std::string_view::npos) break;
        out.append(s.substr(pos, hit - pos)).append(with);
        pos = hit + old.size();
    }
    out.append(s.substr(pos));
    return out;
}

int64_t find(std::string_view s, std::string_view sub, bool reverse) {
    size_t hit = reverse ? s.rfind(sub) : s.find(sub);
    return hit == std::string_view::npos ? -1 : static_cast<int64_t>(length(s.substr(0, hit)));
}

int64_t count(std::string_view s, std::string_view sub) {
    if (sub.empty()) return static_cast<int64_t>(length(s)) + 1;
    int64_t n = 0;
    for (size_t pos = s.find(sub); pos != std::string_view::npos; pos = s.find(sub, pos + sub.size())) ++n;
    return n;
}

static bool is_printable(char32_t c) {
    if (c == ' ') return true;
    auto cat = utf8proc_category(static_cast<int32_t>(c));
    switch (cat) {
        case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
        case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZL:
        case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_ZS: return false;
        default: return true;
    }
}

std::string repr(std::string_view s) {
    std::u32string u = decode(s);
    bool has_single = u.find(U'\'') != std::u32string::npos, has_double = u.find(U'"') != std::u32string::npos;
    char quote = has_single && !has_double ? '"' : '\'';
    std::string out(1, quote);
    char buf[16];
    for (char32_t c : u) {
        if (c == static_cast<char32_t>(quote) || c == '\\') { out += '\\'; out += static_cast<char>(c); }
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c < 0x80 ? (c >= 0x20 && c < 0x7F) : is_printable(c)) append_utf8(out, c);
        else {
            std::snprintf(buf, sizeof buf, c < 0x100 ? "\\x%02x" : c < 0x10000 ? "\\u%04x" : "\\U%08x", static_cast<unsigned>(c));
            out += buf;
        }
    }
    out += quote;
    return out;
}

void json_quote(std::string& out, std::string_view s, bool ensure_ascii) {
    out += '"';
    char buf[16];
    auto hex = [&](unsigned v) { std::snprintf(buf, sizeof buf, "\\u%04x", v); out += buf; };
    for (char32_t c : decode(s)) {
        if (c == '"') out += "\\\"";
        else if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c == '\b') out += "\\b";
        else if (c == '\f') out += "\\f";
        else if (c < 0x20 || (ensure_ascii && c > 0x7E && c < 0x10000)) hex(c);
        else if (ensure_ascii && c >= 0x10000) { hex(0xD800 + ((c - 0x10000) >> 10)); hex(0xDC00 + ((c - 0x10000) & 0x3FF)); }
        else append_utf8(out, c);
    }
    out += '"';
}

}  // namespace autoround::jinja::pystr

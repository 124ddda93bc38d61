// text/utf8.cpp — strict UTF-8 validation and maximal-subpart U+FFFD replacement (see utf8.h).
#include "text/utf8.h"

#include <cstring>

namespace autoround::utf8 {

namespace {

// For a lead byte: the number of continuation bytes and the allowed range of the FIRST
// continuation byte (the later ones are always 80..BF). need == -1 marks an invalid lead.
struct Lead {
    int8_t need;
    uint8_t lo, hi;
};

inline Lead lead_info(uint8_t b) {
    if (b < 0x80) return {0, 0, 0};
    if (b < 0xC2) return {-1, 0, 0};  // stray continuation or overlong C0/C1
    if (b < 0xE0) return {1, 0x80, 0xBF};
    if (b == 0xE0) return {2, 0xA0, 0xBF};  // no overlongs
    if (b == 0xED) return {2, 0x80, 0x9F};  // no surrogates
    if (b < 0xF0) return {2, 0x80, 0xBF};
    if (b == 0xF0) return {3, 0x90, 0xBF};  // no overlongs
    if (b < 0xF4) return {3, 0x80, 0xBF};
    if (b == 0xF4) return {3, 0x80, 0x8F};  // nothing above U+10FFFF
    return {-1, 0, 0};
}

// Result of looking at the sequence that starts at in[i]:
//   len > 0, ok  -> a valid sequence of `len` bytes
//   len > 0, !ok -> an ill-formed maximal subpart of `len` bytes (one U+FFFD)
//   incomplete   -> valid so far but the input ends before the sequence does
struct Step {
    std::size_t len;
    bool ok;
    bool incomplete;
};

inline Step step(const uint8_t* p, std::size_t n, std::size_t i) {
    const Lead L = lead_info(p[i]);
    if (L.need == 0) return {1, true, false};
    if (L.need < 0) return {1, false, false};
    std::size_t k = 1;
    for (int c = 0; c < L.need; ++c, ++k) {
        if (i + k >= n) return {k, false, true};
        const uint8_t b = p[i + k];
        const uint8_t lo = c == 0 ? L.lo : 0x80, hi = c == 0 ? L.hi : 0xBF;
        if (b < lo || b > hi) return {k, false, false};
    }
    return {k, true, false};
}

}  // namespace

std::size_t find_invalid(std::string_view s) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        // ASCII fast path, 8 bytes at a time.
        while (i + 8 <= n) {
            uint64_t w;
            std::memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        if (p[i] < 0x80) {
            ++i;
            continue;
        }
        const Step st = step(p, n, i);
        if (!st.ok) return i;
        i += st.len;
    }
    return std::string_view::npos;
}

std::size_t decode_lossy(std::string_view in, std::string& out, bool final) {
    const auto* p = reinterpret_cast<const uint8_t*>(in.data());
    const std::size_t n = in.size();
    std::size_t i = 0, run = 0;  // [run, i) is valid and not yet copied
    while (i < n) {
        if (p[i] < 0x80) {
            ++i;
            continue;
        }
        const Step st = step(p, n, i);
        if (st.ok) {
            i += st.len;
            continue;
        }
        out.append(in.data() + run, i - run);
        if (st.incomplete && !final) return i;  // hold back the incomplete tail
        out.append("\xEF\xBF\xBD");
        i += st.len;
        run = i;
    }
    out.append(in.data() + run, n - run);
    return n;
}

void append_codepoint(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

}  // namespace autoround::utf8

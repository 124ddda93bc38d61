// text/byte_level.cpp — GPT-2 byte <-> unicode tables (see byte_level.h), built once.
#include "text/byte_level.h"

#include "text/utf8.h"

namespace autoround::byte_level {

namespace {

struct Tables {
    std::array<uint32_t, 256> to_cp{};
    std::array<std::string, 256> to_str{};
    std::array<int16_t, 0x144> from_cp{};  // every mapped code point is < U+0144

    Tables() {
        from_cp.fill(-1);
        uint32_t extra = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
            to_cp[b] = printable ? static_cast<uint32_t>(b) : 0x100 + extra++;
            from_cp[to_cp[b]] = static_cast<int16_t>(b);
            utf8::append_codepoint(to_str[b], to_cp[b]);
        }
    }
};

const Tables& tables() {
    static const Tables t;
    return t;
}

}  // namespace

uint32_t byte_to_codepoint(uint8_t b) { return tables().to_cp[b]; }

int codepoint_to_byte(uint32_t cp) { return cp < 0x144 ? tables().from_cp[cp] : -1; }

const std::string& byte_to_string(uint8_t b) { return tables().to_str[b]; }

std::string encode(std::string_view bytes) {
    const Tables& t = tables();
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) out += t.to_str[c];
    return out;
}

bool decode_append(std::string_view s, std::string& out) {
    const Tables& t = tables();
    const std::size_t start = out.size();
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    const std::size_t n = s.size();
    for (std::size_t i = 0; i < n;) {
        uint32_t cp;
        if (p[i] < 0x80) {
            cp = p[i];
            i += 1;
        } else if ((p[i] & 0xE0) == 0xC0 && i + 1 < n && (p[i + 1] & 0xC0) == 0x80) {
            cp = ((p[i] & 0x1Fu) << 6) | (p[i + 1] & 0x3Fu);
            i += 2;
        } else {
            out.resize(start);  // 3- and 4-byte code points are never in the map
            return false;
        }
        const int b = cp < 0x144 ? t.from_cp[cp] : -1;
        if (b < 0) {
            out.resize(start);
            return false;
        }
        out.push_back(static_cast<char>(b));
    }
    return true;
}

}  // namespace autoround::byte_level

// io/compressed_file.cpp — see compressed_file.h.
#include "io/compressed_file.h"

#include <bzlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace autoround {
namespace {

// Owns a bz_stream set up for decompression; BZ2_bzDecompressEnd on every exit path.
struct Bz2Decoder {
    bz_stream s{};
    explicit Bz2Decoder(const std::string& label) {
        const int rc = BZ2_bzDecompressInit(&s, 0, 0);
        check(rc == BZ_OK, label, ": cannot start bzip2 decompression (libbz2 error ", rc, ")");
    }
    ~Bz2Decoder() { BZ2_bzDecompressEnd(&s); }
    Bz2Decoder(const Bz2Decoder&) = delete;
    Bz2Decoder& operator=(const Bz2Decoder&) = delete;
};

const char* bz2_error_text(int rc) {
    switch (rc) {
        case BZ_DATA_ERROR: return "corrupt bzip2 data (a block failed its integrity check)";
        case BZ_DATA_ERROR_MAGIC: return "not bzip2 data (bad stream magic)";
        case BZ_MEM_ERROR: return "out of memory while decompressing";
        case BZ_PARAM_ERROR: return "invalid decompression parameters";
        default: return "bzip2 decompression failed";
    }
}

}  // namespace

bool is_bzip2(std::string_view b) {
    return b.size() >= 4 && b[0] == 'B' && b[1] == 'Z' && b[2] == 'h' && b[3] >= '1' && b[3] <= '9';
}

std::string bzip2_decompress(std::string_view in, const std::string& label, std::size_t max_bytes) {
    check(is_bzip2(in), label, ": not bzip2 data (the file does not start with \"BZh1\"..\"BZh9\")");
    std::string out;
    std::size_t pos = 0;  // start of the current stream in `in`
    while (pos < in.size()) {
        check(is_bzip2(in.substr(pos)), label, ": ", in.size() - pos, " bytes of trailing data after the bzip2 stream",
              " (at byte ", pos, "); the file is corrupt or not a plain .bz2");
        Bz2Decoder d(label);
        d.s.next_in = const_cast<char*>(in.data() + pos);
        std::size_t fed = 0;  // bytes of this stream handed to libbz2 so far
        for (;;) {
            if (d.s.avail_in == 0 && pos + fed < in.size()) {
                const std::size_t chunk = std::min<std::size_t>(in.size() - pos - fed, UINT_MAX / 2);
                d.s.next_in = const_cast<char*>(in.data() + pos + fed);
                d.s.avail_in = static_cast<unsigned>(chunk);
                fed += chunk;
            }
            // Room for at most max_bytes + 1 bytes in all, so that going over the limit is seen.
            const std::size_t old = out.size(), cap = max_bytes == SIZE_MAX ? max_bytes : max_bytes + 1;
            const std::size_t room = std::max<std::size_t>(1 << 16, std::min<std::size_t>(old, 1 << 26));
            out.resize(old + std::min({room, cap - old, std::size_t(UINT_MAX / 2)}));
            d.s.next_out = out.data() + old;
            d.s.avail_out = static_cast<unsigned>(out.size() - old);
            const unsigned in_before = d.s.avail_in;
            const int rc = BZ2_bzDecompress(&d.s);
            out.resize(out.size() - d.s.avail_out);
            check(out.size() <= max_bytes, label, ": decompresses to more than ", max_bytes, " bytes");
            if (rc == BZ_STREAM_END) break;
            check(rc == BZ_OK, label, ": ", bz2_error_text(rc), " in the stream starting at byte ", pos);
            const bool no_progress = d.s.avail_in == in_before && out.size() == old;
            check(!(no_progress && pos + fed >= in.size()), label,
                  ": truncated bzip2 stream (the data ends before the end-of-stream marker); the file was cut short");
        }
        pos += fed - d.s.avail_in;
    }
    return out;
}

std::string read_file_maybe_compressed(const std::filesystem::path& path) {
    std::ifstream f(path, std::ios::binary);
    check(static_cast<bool>(f), "cannot open ", path.string(), ": ", std::strerror(errno));
    std::ostringstream ss;
    ss << f.rdbuf();
    check(!f.bad(), "error reading ", path.string());
    std::string bytes = std::move(ss).str();
    if (!is_bzip2(bytes)) return bytes;
    return bzip2_decompress(bytes, path.string());
}

}  // namespace autoround

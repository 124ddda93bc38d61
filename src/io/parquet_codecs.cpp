// io/parquet_codecs.cpp — see parquet_codecs.h.
#include "io/parquet_codecs.h"

#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>

#include "core/error.h"

namespace autoround::parquet {

const char* codec_name(int64_t codec) {
    switch (codec) {
        case UNCOMPRESSED: return "UNCOMPRESSED";
        case SNAPPY: return "SNAPPY";
        case GZIP: return "GZIP";
        case LZO: return "LZO";
        case BROTLI: return "BROTLI";
        case LZ4: return "LZ4";
        case ZSTD: return "ZSTD";
        case LZ4_RAW: return "LZ4_RAW";
        default: return "unknown";
    }
}

namespace {

constexpr size_t kMaxPage = size_t(1) << 30;

std::string gunzip(const uint8_t* src, size_t n, size_t out_size, const std::string& label) {
    // deflate expands at most ~1032:1; a larger claim is corrupt (and must not allocate)
    check(out_size <= n * 1100 + 1024, label, ": corrupt GZIP page: claims ", out_size, " bytes from ", n);
    std::string out(out_size, '\0');
    z_stream zs{};
    check(inflateInit2(&zs, 15 + 32) == Z_OK, label, ": cannot initialise zlib");  // gzip or zlib header
    zs.next_in = const_cast<Bytef*>(src);
    zs.avail_in = static_cast<uInt>(n);
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out_size);
    int rc = Z_OK;
    while (rc == Z_OK) {
        rc = inflate(&zs, Z_FINISH);
        // concatenated gzip members (allowed by RFC 1952): continue with the next one
        if (rc == Z_STREAM_END && zs.avail_in > 0 && zs.avail_out > 0) rc = inflateReset(&zs);
        if (rc == Z_BUF_ERROR && zs.avail_out == 0) break;
    }
    const size_t produced = out_size - zs.avail_out;
    inflateEnd(&zs);
    check((rc == Z_STREAM_END || rc == Z_BUF_ERROR || rc == Z_OK) && produced == out_size, label,
          ": corrupt GZIP page (zlib: ", rc == Z_DATA_ERROR ? "invalid data" : "truncated or wrong size", ", ",
          produced, " of ", out_size, " bytes)");
    return out;
}

}  // namespace

std::string decompress_page(int64_t codec, const uint8_t* src, size_t n, size_t out_size, const std::string& label) {
    check(out_size <= kMaxPage, label, ": a page claims ", out_size, " uncompressed bytes (over 1 GiB); corrupt file");
    switch (codec) {
        case UNCOMPRESSED:
            check(n == out_size, label, ": corrupt page: ", n, " stored bytes but ", out_size, " expected");
            return std::string(reinterpret_cast<const char*>(src), n);
        case SNAPPY: {
            // a snappy element of k bytes expands to at most 64 bytes: a larger claim is corrupt
            check(out_size <= n * 64 + 64, label, ": corrupt SNAPPY page: claims ", out_size, " bytes from ", n);
            size_t len = 0;
            check(snappy_uncompressed_length(reinterpret_cast<const char*>(src), n, &len) == SNAPPY_OK &&
                      len == out_size,
                  label, ": corrupt SNAPPY page (its length header does not match the page header)");
            std::string out(out_size, '\0');
            size_t got = out_size;
            check(snappy_uncompress(reinterpret_cast<const char*>(src), n, out.data(), &got) == SNAPPY_OK &&
                      got == out_size,
                  label, ": corrupt SNAPPY page");
            return out;
        }
        case GZIP:
            return gunzip(src, n, out_size, label);
        case ZSTD: {
            const unsigned long long fsz = ZSTD_getFrameContentSize(src, n);
            check(fsz != ZSTD_CONTENTSIZE_ERROR, label, ": corrupt ZSTD page (not a zstd frame)");
            check(fsz == ZSTD_CONTENTSIZE_UNKNOWN || fsz == out_size, label, ": corrupt ZSTD page (frame holds ", fsz,
                  " bytes, the page header says ", out_size, ")");
            check(out_size <= n * 2048 + (size_t(1) << 20), label,
                  ": corrupt ZSTD page: claims ", out_size, " bytes from ", n);
            std::string out(out_size, '\0');
            const size_t got = ZSTD_decompress(out.data(), out_size, src, n);
            check(!ZSTD_isError(got) && got == out_size, label, ": corrupt ZSTD page (",
                  ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong size", ")");
            return out;
        }
        default:
            fail(label, ": pages compressed with ", codec_name(codec), " (codec ", codec,
                 ") are not supported; re-save the file with SNAPPY, ZSTD, GZIP or no compression");
    }
}

}  // namespace autoround::parquet

// io/parquet_codecs.h — decompression of Parquet pages: UNCOMPRESSED, SNAPPY (libsnappy), GZIP (zlib)
// and ZSTD (libzstd), the codecs Hugging Face datasets and pyarrow write. Each call must produce
// exactly the page's uncompressed size; anything else (corrupt data, a size mismatch, an unsupported
// codec such as BROTLI or LZ4) throws an Error naming `label`. Sizes are checked against the
// compressed data before allocating (a hostile header cannot make us reserve gigabytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace autoround::parquet {

// Parquet CompressionCodec values (parquet.thrift).
enum Codec : int32_t { UNCOMPRESSED = 0, SNAPPY = 1, GZIP = 2, LZO = 3, BROTLI = 4, LZ4 = 5, ZSTD = 6, LZ4_RAW = 7 };

const char* codec_name(int64_t codec);

// Decompresses `n` bytes at `src` into exactly `uncompressed_size` bytes.
std::string decompress_page(int64_t codec, const uint8_t* src, size_t n, size_t uncompressed_size,
                            const std::string& label);

}  // namespace autoround::parquet

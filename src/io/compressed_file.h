// io/compressed_file.h — read a whole file, transparently bzip2-decompressed.
//
// Why: evaluation sets are shipped compressed (hellaswag_val_full.txt.bz2). Compression is detected by
// the content — the bzip2 magic "BZh" and a block-size digit '1'..'9' — never by the extension, so a
// renamed file still works and a plain .txt is read as is. Decompression uses Debian's libbz2 and
// accepts several concatenated streams (as `bzip2 -d` and pbzip2 output do). Corrupt data, a stream
// cut short and trailing bytes that are not another stream are errors naming the file.
#pragma once

#include <cstddef>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>

namespace autoround {

// True if `bytes` starts with a bzip2 stream header ("BZh" then '1'..'9').
bool is_bzip2(std::string_view bytes);

// Decompresses bzip2 data (one stream or several concatenated). `label` names the source in errors;
// output larger than `max_bytes` is an error (a guard against decompression bombs from untrusted input).
std::string bzip2_decompress(std::string_view compressed, const std::string& label,
                             std::size_t max_bytes = std::numeric_limits<std::size_t>::max());

// Reads the whole file; bzip2 content is decompressed. Errors name the file.
std::string read_file_maybe_compressed(const std::filesystem::path& path);

}  // namespace autoround

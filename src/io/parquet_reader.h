// io/parquet_reader.h — reads one string column (e.g. `text`) out of a Parquet file, which is how
// Hugging Face stores datasets such as NeelNanda/pile-10k (data/train-*.parquet).
//
// Why a reader of our own: the calibration set needs the text column of a few Parquet files, and
// Arrow is not a Debian-packaged dependency we want. What is covered is what those files use:
//   * the footer: `PAR1` ... FileMetaData (Thrift compact, parquet_thrift.h) + u32 length + `PAR1`;
//   * the schema tree: the column must be a top-level leaf of physical type BYTE_ARRAY (strings),
//     REQUIRED or OPTIONAL (max definition level 0 or 1); nested/repeated columns are refused;
//   * every row group's column chunk: an optional DICTIONARY_PAGE (PLAIN values), then DATA_PAGE (v1:
//     levels inside the compressed block, RLE with a 4-byte length) and DATA_PAGE_V2 (levels stored
//     uncompressed before the values, `is_compressed` honoured); INDEX pages are skipped;
//   * value encodings PLAIN, PLAIN_DICTIONARY and RLE_DICTIONARY (a pyarrow writer falls back from
//     dictionary to PLAIN mid-chunk when the dictionary grows too big; both are read), and
//     DELTA_LENGTH_BYTE_ARRAY; definition levels in the RLE/bit-packed hybrid encoding;
//   * codecs UNCOMPRESSED, SNAPPY, GZIP, ZSTD (parquet_codecs.h).
// Untrusted input: every offset, length and count is bounds-checked; a corrupt or truncated file
// throws autoround::Error naming the file (and row group/page) — it never crashes or over-allocates
// (`max_output_bytes` caps what the decoded column may take, dictionary repeats included).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace autoround::parquet {

struct ColumnInfo {
    std::string name;          // dotted path for nested columns ("a.b")
    int64_t physical_type = 0; // parquet Type: 0 BOOLEAN, 1 INT32, 2 INT64, 3 INT96, 4 FLOAT, 5 DOUBLE, 6 BYTE_ARRAY, 7 FIXED_LEN
    int max_def = 0, max_rep = 0;
};

struct StringColumn {
    std::vector<std::optional<std::string>> values;  // one per row; nullopt = null
    int64_t num_rows = 0;
};

// Leaf columns of the file's schema (for error messages: "the file has columns: ...").
std::vector<ColumnInfo> parquet_columns(std::span<const uint8_t> file, const std::string& label);

// Reads column `column` of every row group, in order. `label` names the file in errors.
StringColumn read_parquet_string_column(std::span<const uint8_t> file, const std::string& column,
                                        const std::string& label, size_t max_output_bytes = size_t(16) << 30);

// The same for a file on disk.
StringColumn read_parquet_string_column(const std::filesystem::path& path, const std::string& column);

}  // namespace autoround::parquet

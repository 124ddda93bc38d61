// tests/io/test_parquet_reader.cpp — io/parquet_reader on the fixtures in tests/data/parquet/
// (scripts/gen_parquet_fixtures.py: pa_* written by pyarrow 25.0.1, own_* by the script's own
// spec-following writer — and checked with pyarrow): every encoding (PLAIN, PLAIN/RLE_DICTIONARY,
// dictionary fallback to PLAIN, DELTA_LENGTH_BYTE_ARRAY), page version (v1, v2) and codec
// (none, snappy, gzip, zstd), nulls, several row groups and pages, column selection; then
// corrupt and truncated files (every prefix, byte flips) must give an Error, never a crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "core/error.h"
#include "io/parquet_reader.h"

namespace fs = std::filesystem;
namespace pq = autoround::parquet;
using autoround::Error;

namespace {

const fs::path kDir = fs::path(AR_SOURCE_DIR) / "tests/data/parquet";
constexpr int kRows = 37;

// keep in sync with scripts/gen_parquet_fixtures.py
std::string text(int i) {
    static const char* words[] = {"alpha ", "beta ", "gamma ", "δέλτα ✓ ", ""};
    std::string s = "row " + std::to_string(i % 11) + ": ";
    for (int k = 0; k < 1 + i % 3; ++k) s += words[i % 5];
    return s;
}
bool is_null(int i) { return i % 7 == 3; }

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::span<const uint8_t> bytes(const std::string& s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

TEST(ParquetReader, EveryFixtureReadsTheExpectedRows) {
    int n = 0;
    for (const auto& e : fs::directory_iterator(kDir)) {
        if (e.path().extension() != ".parquet") continue;
        ++n;
        const std::string name = e.path().filename().string();
        SCOPED_TRACE(name);
        const bool required = name.find("required") != std::string::npos;
        const pq::StringColumn col = pq::read_parquet_string_column(e.path(), "text");
        ASSERT_EQ(col.values.size(), size_t(kRows));
        EXPECT_EQ(col.num_rows, kRows);
        for (int i = 0; i < kRows; ++i) {
            if (!required && is_null(i)) {
                EXPECT_FALSE(col.values[i].has_value()) << "row " << i;
            } else {
                ASSERT_TRUE(col.values[i].has_value()) << "row " << i;
                EXPECT_EQ(*col.values[i], text(i)) << "row " << i;
            }
        }
    }
    EXPECT_GE(n, 26) << "fixtures missing in " << kDir;
}

TEST(ParquetReader, ColumnsAndClearErrors) {
    const std::string data = slurp(kDir / "pa_dict_v1_snappy.parquet");
    const auto cols = pq::parquet_columns(bytes(data), "x.parquet");
    ASSERT_EQ(cols.size(), 2u);
    EXPECT_EQ(cols[0].name, "id");
    EXPECT_EQ(cols[1].name, "text");
    EXPECT_EQ(cols[1].max_def, 1);
    try {
        pq::read_parquet_string_column(bytes(data), "content", "x.parquet");
        ADD_FAILURE();
    } catch (const Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("no column 'content'"), std::string::npos) << m;
        EXPECT_NE(m.find("id, text"), std::string::npos) << m;
        EXPECT_NE(m.find("--dataset_field"), std::string::npos) << m;
    }
    try {
        pq::read_parquet_string_column(bytes(data), "id", "x.parquet");
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("INT64"), std::string::npos) << e.what();
    }
    EXPECT_THROW(pq::read_parquet_string_column(fs::path(kDir / "missing.parquet"), "text"), Error);
}

TEST(ParquetReader, TruncatedFilesFailCleanly) {
    for (const char* name : {"pa_dict_v2_zstd.parquet", "own_dict_v1_gzip.parquet", "pa_plain_v1_snappy.parquet"}) {
        const std::string data = slurp(kDir / name);
        for (size_t n = 0; n < data.size(); ++n) {
            const std::string cut = data.substr(0, n);
            EXPECT_THROW(pq::read_parquet_string_column(bytes(cut), "text", name), Error) << name << " cut at " << n;
        }
    }
    try {
        const std::string data = slurp(kDir / "pa_plain_v1_none.parquet");
        pq::read_parquet_string_column(bytes(data.substr(0, data.size() - 1)), "text", "cut.parquet");
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("cut.parquet"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
}

TEST(ParquetReader, CorruptBytesNeverCrash) {
    std::mt19937 rng(7);
    for (const auto& e : fs::directory_iterator(kDir)) {
        if (e.path().extension() != ".parquet") continue;
        const std::string data = slurp(e.path());
        for (int trial = 0; trial < 300; ++trial) {
            std::string bad = data;
            const int flips = 1 + static_cast<int>(rng() % 4);
            for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255);
            try {
                const auto col = pq::read_parquet_string_column(bytes(bad), "text", "corrupt.parquet", size_t(64) << 20);
                EXPECT_LE(col.values.size(), size_t(1) << 24);
            } catch (const Error&) {
            }
        }
    }
}

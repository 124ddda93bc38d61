// fuzz/fuzz_parquet.cpp — libFuzzer target: read_parquet_string_column on arbitrary bytes.
//
// Why: Parquet files come from Hub downloads (calibration datasets) and the reader decodes Thrift
// metadata, RLE/bit-packed levels, dictionaries and compressed pages from them. Any input must either
// decode or throw autoround::Error; crashes, sanitizer reports, hangs and other exception types are
// bugs. The output cap keeps a hostile dictionary/RLE expansion from exhausting memory. Seeds:
// tests/data/parquet/*.parquet (scripts/fuzz.sh passes fuzz/seeds/fuzz_parquet if present).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "io/parquet_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    for (const char* column : {"text", "id"}) {
        try {
            const auto col = autoround::parquet::read_parquet_string_column({data, size}, column, "fuzz.parquet",
                                                                            size_t(32) << 20);
            volatile size_t sink = 0;
            for (const auto& v : col.values)
                if (v) sink = sink + v->size();
        } catch (const autoround::Error&) {
        }
    }
    try {
        (void)autoround::parquet::parquet_columns({data, size}, "fuzz.parquet");
    } catch (const autoround::Error&) {
    }
    return 0;
}

// fuzz/fuzz_gguf.cpp — libFuzzer target: parse_gguf on arbitrary bytes.
//
// Why: GGUF files come from untrusted downloads. Any input must either parse into metadata and tensors
// whose bytes all lie inside the buffer, or throw autoround::Error; crashes, sanitizer reports, hangs and
// other exception types are bugs. Every returned tensor is read in full, and tensors of the types the
// runtime dequantizes (export/gguf_blocks.h) are dequantized row by row (the first 64 Ki values), so ASan
// sees an out-of-bounds pointer if validation missed one. Array metadata is walked as the loaders do.
// Build: cmake -DAUTOROUND_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang ...
// Run:   ./fuzz_gguf -max_len=65536 [corpus]
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "export/gguf_blocks.h"
#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    autoround::GgufContents g;
    try {
        g = autoround::parse_gguf({data, size}, "fuzz.gguf");
    } catch (const autoround::Error&) {
        return 0;
    }
    volatile uint8_t sink = 0;
    for (const auto& [key, v] : g.kv) {
        for (const auto& s : v.strs) sink = sink ^ static_cast<uint8_t>(s.size());
        for (uint8_t b : v.raw) sink = sink ^ b;
    }
    for (const auto& t : g.tensors) {
        for (size_t i = 0; i < t.nbytes; ++i) sink = sink ^ t.data[i];
        (void)t.ne_str();
        if (!autoround::gguf::is_supported(t.type) || t.ne.empty() || t.ne[0] == 0) continue;
        const auto type = static_cast<autoround::gguf::BlockType>(t.type);
        const int64_t ne0 = t.ne[0];
        if (ne0 > (1 << 16)) continue;
        const int64_t rb = autoround::gguf::row_bytes(type, ne0);  // must not throw: ne0 was validated
        std::vector<float> row(static_cast<size_t>(ne0));
        int64_t done = 0;
        for (int64_t r = 0; r < t.rows() && done < (1 << 16); ++r, done += ne0)
            autoround::gguf::dequantize_row(type, t.data + r * rb, ne0, row.data());
    }
    return 0;
}

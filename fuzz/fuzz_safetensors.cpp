// fuzz/fuzz_safetensors.cpp — libFuzzer target: parse_safetensors on arbitrary bytes.
//
// Why: safetensors headers come from untrusted downloads. Any input must either parse into
// tensors whose bytes all lie inside the buffer, or throw autoround::Error; crashes, sanitizer
// reports and other exception types are bugs. Every returned tensor is read in full and the
// floating ones are converted, so ASan sees an out-of-bounds pointer if validation missed one.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::map<std::string, std::string> meta;
    std::vector<autoround::TensorInfo> tensors;
    try {
        tensors = autoround::parse_safetensors({data, size}, "fuzz.safetensors", &meta);
    } catch (const autoround::Error&) {
        return 0;
    }
    volatile uint8_t sink = 0;
    for (const auto& t : tensors) {
        for (size_t i = 0; i < t.nbytes; ++i) sink = sink ^ t.data[i];
        (void)t.shape_str();
        switch (t.dtype) {
            case autoround::DType::BF16:
            case autoround::DType::F16:
            case autoround::DType::F32:
            case autoround::DType::F64: {
                std::vector<float> out(static_cast<size_t>(t.numel()));
                autoround::convert_to_f32(t, out);  // must not throw: the header was validated
                break;
            }
            default:
                break;
        }
    }
    return 0;
}

// fuzz/fuzz_model_config.cpp — libFuzzer target: JSON bytes -> parse_model_config /
// parse_generation_config / parse_tokenizer_config.
//
// Why: config files are untrusted. Invalid JSON is skipped; for any valid JSON value the three
// parsers must return or throw autoround::Error. An nlohmann exception escaping one of them
// (a type error we failed to convert into a message naming the field) aborts the run on purpose.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
    try {
        (void)autoround::parse_model_config(j, "fuzz/config.json");
    } catch (const autoround::Error&) {
    }
    try {
        (void)autoround::parse_generation_config(j, "fuzz/generation_config.json");
    } catch (const autoround::Error&) {
    }
    try {
        (void)autoround::parse_tokenizer_config(j, "fuzz/tokenizer_config.json");
    } catch (const autoround::Error&) {
    }
    return 0;
}

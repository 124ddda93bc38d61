// fuzz/fuzz_hellaswag.cpp — libFuzzer target: bytes -> (bzip2 decompression) -> parse_hellaswag.
//
// Why: `eval hellaswag --data` reads any file, plain or bzip2 (detected by the magic). Neither the
// decompressor nor the 6-line task parser may crash, hang or read out of bounds, whatever the bytes.
// Each input is parsed as text as is; if it starts with the bzip2 magic it is also decompressed
// (capped at 16 MiB of output, so that tiny bombs are rejected) and the result parsed. autoround::Error
// is the expected way to reject bad input; anything else aborts. When parsing succeeds the tasks must
// satisfy the format's invariants (gold 0..3, contexts not blank, no newline inside a line, increasing
// line numbers 6 apart).
// Build: cmake -DAUTOROUND_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang ...
// Run:   ./fuzz_hellaswag -max_len=4096
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/error.h"
#include "eval/hellaswag.h"
#include "io/compressed_file.h"

namespace {

void check_or_die(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "fuzz_hellaswag: invariant failed: %s\n", what);
        std::abort();
    }
}

void parse(std::string_view text) {
    try {
        const auto tasks = autoround::parse_hellaswag(text, "fuzz.txt");
        check_or_die(!tasks.empty(), "a parsed file has at least one task");
        for (size_t t = 0; t < tasks.size(); ++t) {
            check_or_die(tasks[t].gold >= 0 && tasks[t].gold <= 3, "gold in 0..3");
            check_or_die(tasks[t].line == static_cast<int64_t>(6 * t + 1), "task t starts at line 6t+1");
            check_or_die(tasks[t].context.find_first_not_of(" \t\n\v\f\r") != std::string::npos, "context not blank");
            check_or_die(tasks[t].context.find('\n') == std::string::npos, "no newline in a context");
            for (const std::string& e : tasks[t].endings) check_or_die(e.find('\n') == std::string::npos, "no newline in an ending");
        }
    } catch (const autoround::Error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    parse(input);
    if (autoround::is_bzip2(input)) {
        try {
            parse(autoround::bzip2_decompress(input, "fuzz.bz2", std::size_t(16) << 20));
        } catch (const autoround::Error&) {
        }
    }
    return 0;
}

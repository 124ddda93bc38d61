// tests/model/test_decode_team.cpp — the persistent-team decode step (DecodeSchedule::Team, model/qwen3_model.h)
// against the per-op schedule, on q4_0 and q4_k_m GGUF exports of qwen3-nano (RTN, written to a temp dir; the
// Q4_K_M file mixes Q4_K and Q6_K weights inside one layer): for 1, 2 and 3 threads, decode steps of 1 token and of
// 3 tokens, and all-logits steps, the logits and every layer's hidden state (the hooks) are the same bit for bit, and
// so is the KV cache the steps leave behind. Prompts longer than 4 tokens take the per-op path either way.
// GgufWeights::Packed makes the CPU runtime's repacked copies of the Q4_0 / Q4_K weights (ops/cpu/qmm_repack.h) where
// the build has their dots, so both schedules run them. Against GgufWeights::Mapped (no copies) each matmul differs
// by float rounding only (the same integer dot per block, block sums added in another order; tests/ops/
// test_quant_matmul.cpp bounds it), but over the layers a rounding flip in a later activation's int8 quantization
// grows that to the int8 path's own error: so the test asks that the repacked model's logits stay as close to the
// exact weights' (GgufWeights::Dequantized, float math) as the in-place ones (within 1.5x their largest deviation),
// and differ from them by less than twice it. AUTOROUND_NO_REPACK=1 leaves the copies out.
// After repacking, the loader drops the mapping's pages of the repacked rows from the resident set: right after load
// none of them is in the page table (/proc/self/pagemap), and with those pages made unreadable (mprotect PROT_NONE: a
// read would crash the test) prefill (dequantized tiles), team decode steps and the tied embedding's lookups give the
// same logits and hidden states, bit for bit, as a model that keeps them (AUTOROUND_KEEP_MAPPED=1).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "export/gguf_export.h"
#include "io/io_test_util.h"
#include "io/safetensors.h"
#include "model/qwen3_model.h"
#include "ops/cpu/qmm_repack.h"
#include "ops/cpu/quant_matmul.h"

using namespace autoround;
namespace fs = std::filesystem;

namespace {

const fs::path kNano = fs::path(AR_SHARED_DIR) / "models/qwen3-nano";

// qwen3-nano exported to a GGUF of type ft in dir; returns its path
fs::path write_nano_gguf(const fs::path& dir, const TensorStore& store, GgufFileType ft) {
    GgufExportOptions o;
    o.file_type = ft;
    const fs::path file = dir / gguf_file_name("qwen3-nano", ft);
    write_gguf_model(kNano, store, {}, o, file);
    return file;
}

struct DecodeRun {
    std::vector<float> logits;  // every step's logits, concatenated
    std::vector<float> hidden;  // every hook call's data, concatenated
    std::vector<float> cache;   // layer 0 and the last layer's K and V after the last step
};

DecodeRun decode(const Qwen3Model& m, int threads, const std::vector<std::vector<int32_t>>& steps, bool all_logits) {
    const int prev = omp_get_max_threads();
    omp_set_num_threads(threads);
    DecodeRun r;
    const int64_t V = m.config().vocab_size;
    KvCache cache = m.make_cache();
    const HiddenHook hook = [&](const std::string&, int, const float* d, int64_t T, int64_t dim) {
        r.hidden.insert(r.hidden.end(), d, d + T * dim);
    };
    for (const auto& s : steps) {
        std::vector<float> lg(static_cast<size_t>((all_logits ? s.size() : 1) * V));
        m.forward(s, cache, lg.data(), all_logits, hook);
        r.logits.insert(r.logits.end(), lg.begin(), lg.end());
    }
    const int L = m.config().num_hidden_layers;
    for (int l : {0, L - 1}) {
        r.cache.insert(r.cache.end(), cache.k(l), cache.k(l) + cache.size() * cache.stride());
        r.cache.insert(r.cache.end(), cache.v(l), cache.v(l) + cache.size() * cache.stride());
    }
    omp_set_num_threads(prev);
    return r;
}

}  // namespace

TEST(DecodeTeam, SameLogitsHiddenStatesAndCacheAsThePerOpScheduleBitForBit) {
    const testio::TempDir dir;
    const TensorStore store = TensorStore::open(kNano);
    for (GgufFileType ft : {GgufFileType::Q4_0, GgufFileType::Q4_K_M}) {
        const fs::path file = write_nano_gguf(dir.path(), store, ft);
        Qwen3Model m = Qwen3Model::load_gguf(file, GgufWeights::Packed);
        for (const Qwen3Layer& L : m.layers())  // else the team path would not run
            for (const WeightView* w : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) {
                ASSERT_TRUE(w->packed());
                // the repacked dots run where the build has them
                if (qmm_repacked_dots_available() && qmm_repack_supported(*w->block)) {
                    ASSERT_TRUE(w->repacked);
                }
            }
        // a 6-token prompt (per-op path), then single tokens and a 3-token step (the team path)
        std::vector<std::vector<int32_t>> steps = {{1, 20, 300, 4000, 17, 99}};
        for (int i = 0; i < 9; ++i) steps.push_back({(i * 7919 + 13) % static_cast<int32_t>(m.config().vocab_size)});
        steps.push_back({5, 6, 7});
        steps.push_back({8});
        for (const bool all : {false, true}) {
            m.set_decode_schedule(DecodeSchedule::PerOp);
            const DecodeRun want = decode(m, 2, steps, all);
            m.set_decode_schedule(DecodeSchedule::Team);
            for (int threads : {1, 2, 3}) {
                const DecodeRun got = decode(m, threads, steps, all);
                const std::string what = std::string(gguf_file_type_name(ft)) + " threads=" + std::to_string(threads) +
                                         (all ? " all logits" : "");
                ASSERT_EQ(want.logits.size(), got.logits.size()) << what;
                EXPECT_TRUE(want.logits == got.logits) << what;
                EXPECT_TRUE(want.hidden == got.hidden) << what;
                EXPECT_TRUE(want.cache == got.cache) << what;
            }
        }
    }
}

TEST(DecodeTeam, RepackedCopiesChangeTheLogitsOnlyByRounding) {
    const testio::TempDir dir;
    const TensorStore store = TensorStore::open(kNano);
    for (GgufFileType ft : {GgufFileType::Q4_0, GgufFileType::Q4_K_M}) {
        const fs::path file = write_nano_gguf(dir.path(), store, ft);
        const Qwen3Model repacked = Qwen3Model::load_gguf(file, GgufWeights::Packed);
        const Qwen3Model mapped = Qwen3Model::load_gguf(file, GgufWeights::Mapped);
        const Qwen3Model exact = Qwen3Model::load_gguf(file, GgufWeights::Dequantized);
        for (const Qwen3Layer& L : mapped.layers()) ASSERT_EQ(L.q.repacked, nullptr);
        ::setenv("AUTOROUND_NO_REPACK", "1", 1);
        const Qwen3Model opted_out = Qwen3Model::load_gguf(file);
        ::unsetenv("AUTOROUND_NO_REPACK");
        for (const Qwen3Layer& L : opted_out.layers()) ASSERT_EQ(L.gate.repacked, nullptr);
        const std::vector<std::vector<int32_t>> steps = {{1, 20, 300, 4000, 17, 99}, {5}, {6, 7}, {8}};
        const DecodeRun a = decode(repacked, 2, steps, false), b = decode(mapped, 2, steps, false),
                        e = decode(exact, 2, steps, false);
        ASSERT_EQ(a.logits.size(), b.logits.size());
        ASSERT_EQ(a.logits.size(), e.logits.size());
        float top = 0.f, diff = 0.f, err_a = 0.f, err_b = 0.f;
        for (size_t i = 0; i < a.logits.size(); ++i) {
            top = std::max(top, std::fabs(b.logits[i]));
            diff = std::max(diff, std::fabs(a.logits[i] - b.logits[i]));
            err_a = std::max(err_a, std::fabs(a.logits[i] - e.logits[i]));
            err_b = std::max(err_b, std::fabs(b.logits[i] - e.logits[i]));
        }
        std::printf("[ %s ] max |logit|: %.3g; max |repacked - mapped| %.3g, |repacked - exact| %.3g, |mapped - exact| "
                    "%.3g\n", std::string(gguf_file_type_name(ft)).c_str(), top, diff, err_a, err_b);
        // (builds without the int8 dots run the float reference in both: nothing to compare then)
        if (qmm_repacked_dots_available()) {
            EXPECT_GT(err_b, 0.f);
        }
        EXPECT_LE(err_a, 1.5f * err_b) << gguf_file_type_name(ft);
        EXPECT_LE(diff, 2.f * err_b) << gguf_file_type_name(ft);
    }
}

namespace {
// The page-aligned interior of each repacked weight's file rows [data, data + rows · row_bytes): what the loader
// releases (model/qwen3_model.cpp).
std::vector<std::pair<uintptr_t, size_t>> released_ranges(const Qwen3Model& m) {
    const uintptr_t ps = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    std::vector<std::pair<uintptr_t, size_t>> r;
    auto add = [&](const WeightView& w) {
        if (!w.repacked) return;
        const uintptr_t b = reinterpret_cast<uintptr_t>(w.data);
        const uintptr_t lo = (b + ps - 1) / ps * ps,
                        hi = (b + static_cast<uintptr_t>(w.repacked->rows * w.row_bytes())) / ps * ps;
        if (hi > lo) r.emplace_back(lo, hi - lo);
    };
    add(m.head());
    for (const Qwen3Layer& L : m.layers())
        for (const WeightView* w : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) add(*w);
    return r;
}
// Pages of the ranges present in this process's page table (bit 63 of /proc/self/pagemap); -1 if unreadable.
int64_t present_pages(const std::vector<std::pair<uintptr_t, size_t>>& ranges) {
    const int fd = ::open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0) return -1;
    const uintptr_t ps = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    int64_t n = 0;
    for (const auto& [a, len] : ranges)
        for (uintptr_t p = a; p < a + len; p += ps) {
            uint64_t e = 0;
            if (::pread(fd, &e, 8, static_cast<off_t>(p / ps * 8)) != 8) {
                ::close(fd);
                return -1;
            }
            n += (e >> 63) & 1;
        }
    ::close(fd);
    return n;
}
}  // namespace

TEST(DecodeTeam, ReleasedFilePagesOfRepackedWeightsAreNeverReadAgain) {
    if (!qmm_repacked_dots_available()) GTEST_SKIP() << "no repacked copies in this build";
    const testio::TempDir dir;
    const TensorStore store = TensorStore::open(kNano);
    for (GgufFileType ft : {GgufFileType::Q4_0, GgufFileType::Q4_K_M}) {
        const fs::path file = write_nano_gguf(dir.path(), store, ft);
        const std::string what(gguf_file_type_name(ft));
        const Qwen3Model released = Qwen3Model::load_gguf(file, GgufWeights::Packed);
        const std::vector<std::pair<uintptr_t, size_t>> ranges = released_ranges(released);
        ASSERT_FALSE(ranges.empty()) << what;
        size_t bytes = 0;
        for (const auto& r : ranges) bytes += r.second;
        const int64_t present = present_pages(ranges);
        std::printf("[ %s ] released %zu bytes of the mapping in %zu ranges; pages still mapped: %lld\n", what.c_str(),
                    bytes, ranges.size(), static_cast<long long>(present));
        if (present >= 0) {
            EXPECT_EQ(present, 0) << what;
        }
        EXPECT_EQ(released.embedding().repacked, released.head().repacked) << what << " (tied: one copy)";
        ::setenv("AUTOROUND_KEEP_MAPPED", "1", 1);
        const Qwen3Model kept = Qwen3Model::load_gguf(file, GgufWeights::Packed);
        ::unsetenv("AUTOROUND_KEEP_MAPPED");
        EXPECT_GT(present_pages(released_ranges(kept)), 0) << what;
        // a 6-token prompt (dequantized tiles + sgemm), then team decode steps of 1 and 2 tokens
        const std::vector<std::vector<int32_t>> steps = {{1, 20, 300, 4000, 17, 99}, {5}, {6, 7}, {8}};
        const DecodeRun want = decode(kept, 2, steps, false);
        for (const auto& [a, len] : ranges) ASSERT_EQ(0, ::mprotect(reinterpret_cast<void*>(a), len, PROT_NONE));
        const DecodeRun got = decode(released, 2, steps, false);
        std::vector<float> row(static_cast<size_t>(released.config().hidden_size)),
            ref(static_cast<size_t>(released.config().hidden_size));
        bool rows_equal = true;
        for (int64_t t = 0; t < released.config().vocab_size; t += 97) {
            weight_row_to_f32(released.embedding(), t, row.data());
            const WeightView& e = kept.embedding();  // the file's row, dequantized
            gguf::dequantize_row(*e.block, e.packed_row(t), e.in, ref.data());
            rows_equal = rows_equal && row == ref;
        }
        for (const auto& [a, len] : ranges) ASSERT_EQ(0, ::mprotect(reinterpret_cast<void*>(a), len, PROT_READ));
        EXPECT_TRUE(rows_equal) << what;
        EXPECT_TRUE(want.logits == got.logits) << what;
        EXPECT_TRUE(want.hidden == got.hidden) << what;
    }
}

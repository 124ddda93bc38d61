// bench/bench_quant_matmul.cpp — single-op timing of the CPU int8 dots (ops/cpu/quant_matmul.h) on one thread, with
// and without the load-time repacked copy (ops/cpu/qmm_repack.h), for Q4_0, Q4_K and Q6_K.
//
// Two cases per type, as the decode meets them: a 768 × in weight that sits in L2 (the dots' compute rate; best of
// --reps_l2 calls) and a weight of --cold_mb MB that no cache holds, read once per call through a PrefetchStream
// holding its ranges (as the decode team's threads do; best of --reps_cold calls). µs per call include quantizing the
// activation row (N = 1); GB/s = weight bytes / time. Weights: random codes with sane fp16 scales, in 2 MiB-aligned
// memory with huge pages asked for, like the repacked copies (on this VM 4 KiB pages stream slower).
// Usage: bench_quant_matmul [--in 1024] [--reps_l2 2000] [--reps_cold 10] [--cold_mb 220] [--rounds 3]
//                           [--distance 4096]  (the stream's prefetch distance, bytes; the decode team's is 4096)
//                           [--types q4_0,q4_k,q6_k]
//                           [--team T]  (instead: T threads stream one cold repacked weight per type, each its share
//                                        of the rows with its own stream, as the decode team's threads; the types
//                                        alternate call by call, so a change of the memory speed hits them alike;
//                                        best and median of --rounds × --reps_cold calls)
// Each round times old (in place) then new (repacked) back to back, so a change of the machine's load shows in both.
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "export/gguf_blocks.h"
#include "ops/cpu/prefetch_stream.h"
#include "ops/cpu/qmm_repack.h"
#include "ops/cpu/quant_matmul.h"

using namespace autoround;

namespace {

struct Weight {
    std::shared_ptr<uint8_t> bytes;  // 2 MiB aligned, huge pages asked for: as the repacked copies (qmm_repack.h)
    WeightView view;
    std::shared_ptr<const QmmRepacked> copy;
};

Weight make(gguf::BlockType t, int64_t out, int64_t in) {
    Weight w;
    const int64_t rb = gguf::row_bytes(t, in), bb = gguf::block_bytes(t);
    const size_t huge = size_t(1) << 21, n = static_cast<size_t>(out * rb), cap = (n + huge - 1) / huge * huge;
    w.bytes.reset(static_cast<uint8_t*>(std::aligned_alloc(huge, cap)), [](uint8_t* p) { std::free(p); });
    uint8_t* b = w.bytes.get();
    madvise(b, cap, MADV_HUGEPAGE);
    std::mt19937_64 g(1);
    for (size_t i = 0; i + 8 <= n; i += 8) {
        const uint64_t v = g();
        std::copy_n(reinterpret_cast<const uint8_t*>(&v), 8, b + i);
    }
    for (int64_t i = 0; i < out * rb; i += bb) {  // fp16 scales near 2^-7 (d, and Q4_K's dmin; Q6_K's d ends its block)
        const int64_t at = t == gguf::BlockType::Q6_K ? bb - 2 : 0;
        b[i + at] = 0, b[i + at + 1] = 0x20;
        if (t == gguf::BlockType::Q4_K) b[i + 2] = 0, b[i + 3] = 0x20;
    }
    w.view = packed_weight_view("bench", t, b, out, in);
    return w;
}

// Best time of `reps` calls of rows [0, out) on this thread, with a stream over the weight when `stream`.
double best_us(const WeightView& v, const float* x, float* y, int reps, bool stream, int64_t distance) {
    QmmScratch s;
    PrefetchStream pf;
    const QmmPart part[1] = {{&v, nullptr, y, 0, v.out}};
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        pf.clear();
        if (stream) {
            add_qmm_part_ranges(pf, v, 0, v.out);
            pf.start(distance);
        }
        const auto t0 = std::chrono::steady_clock::now();
        quant_matmul_q8_part(x, 1, part, s, stream ? &pf : nullptr);
        best = std::min(best, std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

// --team T: T threads each read their share of the rows (whole 16-row groups) of one cold repacked weight, one stream
// each, as the decode team's threads; one call per type in turn, so a change of the memory speed shows in every type.
int team_bench(int nt, int64_t in, int64_t cold_mb, int reps, int rounds, int64_t distance, const std::string& types) {
    std::vector<float> x(static_cast<size_t>(in));
    std::mt19937 g(2);
    for (float& v : x) v = std::uniform_real_distribution<float>(-1.f, 1.f)(g);
    struct W { std::string name; Weight w; WeightView rv; double mb; std::vector<double> t; };
    std::vector<W> ws;
    for (const gguf::BlockType t : {gguf::BlockType::Q4_0, gguf::BlockType::Q4_K, gguf::BlockType::Q6_K}) {
        std::string name(gguf::block_type_name(t));
        std::transform(name.begin(), name.end(), name.begin(), [](char ch) { return static_cast<char>(std::tolower(ch)); });
        if (("," + types + ",").find("," + name + ",") == std::string::npos) continue;
        const int64_t rb = gguf::row_bytes(t, in), out = cold_mb * 1000000 / rb / 16 * 16;
        W e{name, make(t, out, in), {}, static_cast<double>(out * rb) / 1e6, {}};
        e.w.copy = qmm_repack(e.w.view);
        e.rv = e.w.view;
        e.rv.repacked = e.w.copy.get();
        ws.push_back(std::move(e));
    }
    int64_t most = 0;
    for (const W& e : ws) most = std::max(most, e.rv.out);
    std::vector<float> y(static_cast<size_t>(most), 0.f);  // written before the clock starts: no page faults timed
    for (int r = 0; r < rounds * reps; ++r)
        for (W& e : ws) {
            const int64_t out = e.rv.out;
            double t0 = 0;
#pragma omp parallel num_threads(nt)
            {
                const int tid = omp_get_thread_num();
                const int64_t o0 = out * tid / nt / 16 * 16, o1 = tid + 1 == nt ? out : out * (tid + 1) / nt / 16 * 16;
                QmmScratch s;
                PrefetchStream pf;
                add_qmm_part_ranges(pf, e.rv, o0, o1);
                const QmmPart part[1] = {{&e.rv, nullptr, y.data(), o0, o1}};
#pragma omp barrier
#pragma omp master
                t0 = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
#pragma omp barrier
                pf.start(distance);
                quant_matmul_q8_part(x.data(), 1, part, s, &pf);
#pragma omp barrier
#pragma omp master
                e.t.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count() - t0);
            }
        }
    for (W& e : ws) {
        std::sort(e.t.begin(), e.t.end());
        std::printf("team %d  %-5s %7.1f MB  best %8.1f us %6.1f GB/s  median %8.1f us %6.1f GB/s\n", nt, e.name.c_str(), e.mb,
                    e.t[0], e.mb * 1e3 / e.t[0], e.t[e.t.size() / 2], e.mb * 1e3 / e.t[e.t.size() / 2]);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    int64_t in = 1024, cold_mb = 220, distance = 4096;
    int reps_l2 = 2000, reps_cold = 10, rounds = 3;
    std::string types = "q4_0,q4_k,q6_k";
    bench::Flags f;
    f.value("--in", in).value("--reps_l2", reps_l2).value("--reps_cold", reps_cold).value("--cold_mb", cold_mb);
    f.value("--rounds", rounds).value("--distance", distance).value("--types", types);
    int team = 0;
    f.value("--team", team);
    if (!f.parse(argc, argv)) return 2;
    if (team > 0) return team_bench(team, in, cold_mb, reps_cold, rounds, distance, types);
    omp_set_num_threads(1);
    if (!qmm_repacked_dots_available()) std::printf("(this build has no repacked dots: 'new' runs the in-place dots)\n");
    std::vector<float> x(static_cast<size_t>(in));
    std::mt19937 g(2);
    for (float& v : x) v = std::uniform_real_distribution<float>(-1.f, 1.f)(g);
    for (const gguf::BlockType t : {gguf::BlockType::Q4_0, gguf::BlockType::Q4_K, gguf::BlockType::Q6_K}) {
        std::string name(gguf::block_type_name(t));
        std::transform(name.begin(), name.end(), name.begin(), [](char ch) { return static_cast<char>(std::tolower(ch)); });
        if (("," + types + ",").find("," + name + ",") == std::string::npos) continue;
        const int64_t rb = gguf::row_bytes(t, in);
        for (const bool cold : {false, true}) {
            const int64_t out = cold ? cold_mb * 1000000 / rb / 16 * 16 : 768;
            Weight w = make(t, out, in);
            w.copy = qmm_repack(w.view);
            WeightView repacked = w.view;
            repacked.repacked = w.copy.get();
            std::vector<float> y(static_cast<size_t>(out));
            const double mb = static_cast<double>(out * rb) / 1e6;
            for (int r = 0; r < rounds; ++r) {
                const double o = best_us(w.view, x.data(), y.data(), cold ? reps_cold : reps_l2, cold, distance);
                const double n = best_us(repacked, x.data(), y.data(), cold ? reps_cold : reps_l2, cold, distance);
                std::printf("%-5s %-13s %8.2f MB  in place %9.2f us %6.1f GB/s | repacked %9.2f us %6.1f GB/s | %.2fx\n",
                            std::string(gguf::block_type_name(t)).c_str(), cold ? "out of cache" : "L2 (768 rows)", mb, o,
                            mb * 1e3 / o, n, mb * 1e3 / n, o / n);
                std::fflush(stdout);
            }
        }
    }
    return 0;
}

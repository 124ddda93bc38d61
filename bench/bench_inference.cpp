// bench/bench_inference.cpp — CPU prefill and decode throughput of the Qwen3 runtime, and how close
// decode gets to the machine's memory bandwidth.
//
// Decode reads every linear weight once per token, so tokens/s × weight bytes = achieved GB/s;
// it is compared with this machine's measured memcpy rate and a multi-threaded read-only sweep (the
// bytes-moved bound of decode is read bandwidth / weight bytes per token).
// Prefill: --prompt_tokens from an empty cache. Decode: --decode_tokens single-token steps after a
// --decode_prompt token prompt. Best of --reps runs of each (after one warm-up that touches every weight). The read
// sweeps run in the same process right after each decode run (one line per rep), so a load on the shared machine
// that slows one tends to slow the other; the bound is the best sweep of all reps.
// Usage: bench_inference --model DIR|FILE.gguf [--prompt_tokens 128] [--decode_tokens 32] [--decode_prompt 8]
//                        [--reps 3] [--threads N]
//        bench_inference --membw [--threads N]   (only the read bandwidth, GB/s)
//        (make a 0.6B-shaped model with: autoround init-model --like qwen3-0.6b --output DIR; a .gguf runs
//         its quantized weights packed, ops/cpu/quant_matmul.h, Q4_0 / Q4_K / Q6_K from the load-time repacked copies of
//         ops/cpu/qmm_repack.h unless AUTOROUND_NO_REPACK=1: the "repacked" line / field says how many; the
//         "resident" line: RSS after load + warm-up, where the repacked rows' file pages are released unless
//         AUTOROUND_KEEP_MAPPED=1)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "io/gguf.h"
#include "model/qwen3_model.h"

using namespace autoround;
using clk = std::chrono::steady_clock;

static double secs(clk::time_point a, clk::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// This process's resident memory in MB from /proc/self/status: VmRSS, and its file-backed (RssFile: the mapped
// model's pages) and anonymous (RssAnon: the repacked copies, caches, buffers) parts; -1 where unreadable.
struct Rss {
    double total = -1, file = -1, anon = -1;
};
static Rss rss_mb() {
    Rss r;
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return r;
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
        long kb = 0;
        if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) r.total = kb / 1024.0;
        else if (std::sscanf(line, "RssFile: %ld kB", &kb) == 1) r.file = kb / 1024.0;
        else if (std::sscanf(line, "RssAnon: %ld kB", &kb) == 1) r.anon = kb / 1024.0;
    }
    std::fclose(f);
    return r;
}

// Best of 5 copies of a 512 MiB buffer: bytes copied per second.
static double memcpy_gbs() {
    const size_t n = size_t(512) << 20;
    std::vector<char> a(n, 1), b(n, 2);
    double best = 0;
    for (int r = 0; r < 5; ++r) {
        const auto t0 = clk::now();
        std::memcpy(b.data(), a.data(), n);
        best = std::max(best, n / secs(t0, clk::now()) / 1e9);
    }
    return best;
}

// Multi-threaded read sweeps over a 512 MiB buffer (16x the L3 here; 4096-byte aligned and written once before timing,
// so its pages are resident), each thread summing its own contiguous part: bytes read per second, best of `reps`.
// Three loops, because on this machine (a Zen 5 VM whose memory is shared with other guests) none of them is always
// the fastest: from one minute to the next 64-byte loads streamed 31–67 GB/s, 32-byte loads 39–66, the compiler's
// uint64 loop 38–50 (session 13). The bound is the best of the three (what the machine delivered to some plain read
// loop at that moment); the per-loop figures are printed too. Before session 13 the bound was the uint64 loop alone.
//   kind 0: the compiler-vectorised uint64 sum (`omp for`), kind 1: 32-byte loads, kind 2: 64-byte loads (AVX-512
//   builds; else 32-byte), four independent accumulators each, no software prefetch. Integer adds (no float latency).
struct ReadBuf {
    static constexpr size_t n = (size_t(512) << 20) / sizeof(uint64_t);  // a multiple of 32
    std::unique_ptr<uint64_t[], decltype(&std::free)> a{static_cast<uint64_t*>(std::aligned_alloc(4096, n * 8)),
                                                        &std::free};
    ReadBuf() { std::fill(a.get(), a.get() + n, uint64_t(1)); }
};
static uint64_t sum_part(const uint64_t* a, size_t b, size_t e, int kind) {
#ifdef __AVX512F__
    if (kind == 2) {
        __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t i = b; i < e; i += 32) {
            s0 = _mm512_add_epi64(s0, _mm512_load_si512(a + i));
            s1 = _mm512_add_epi64(s1, _mm512_load_si512(a + i + 8));
            s2 = _mm512_add_epi64(s2, _mm512_load_si512(a + i + 16));
            s3 = _mm512_add_epi64(s3, _mm512_load_si512(a + i + 24));
        }
        return _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3)));
    }
#endif
#ifdef __AVX2__
    (void)kind;
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = b; i < e; i += 16) {
        s0 = _mm256_add_epi64(s0, _mm256_load_si256(reinterpret_cast<const __m256i*>(a + i)));
        s1 = _mm256_add_epi64(s1, _mm256_load_si256(reinterpret_cast<const __m256i*>(a + i + 4)));
        s2 = _mm256_add_epi64(s2, _mm256_load_si256(reinterpret_cast<const __m256i*>(a + i + 8)));
        s3 = _mm256_add_epi64(s3, _mm256_load_si256(reinterpret_cast<const __m256i*>(a + i + 12)));
    }
    alignas(32) uint64_t t[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(t), _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3)));
    return t[0] + t[1] + t[2] + t[3];
#else
    (void)kind;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = b; i < e; i += 4) s0 += a[i], s1 += a[i + 1], s2 += a[i + 2], s3 += a[i + 3];
    return s0 + s1 + s2 + s3;
#endif
}
static double read_gbs_kind(const ReadBuf& buf, int kind, int reps) {
    const uint64_t* a = buf.a.get();
    const size_t n = ReadBuf::n;
    double best = 0;
    volatile uint64_t sink = 0;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = clk::now();
        uint64_t s = 0;
        if (kind == 0) {
#pragma omp parallel for reduction(+ : s) schedule(static)
            for (size_t i = 0; i < n; ++i) s += a[i];
        } else {
#pragma omp parallel reduction(+ : s)
            {
                const size_t nt = omp_get_num_threads(), t = omp_get_thread_num();
                s += sum_part(a, n / 32 * t / nt * 32, n / 32 * (t + 1) / nt * 32, kind);
            }
        }
        sink = s;
        best = std::max(best, n * sizeof(uint64_t) / secs(t0, clk::now()) / 1e9);
    }
    (void)sink;
    return best;
}
// One timed window of `passes` back-to-back sweeps (kind as above): the sustained read rate over about as many bytes
// and as long as a decode run, so a short stall of a thread (another process, the host) costs both alike; the
// best-of-short-sweeps figure above is the peak.
static double read_gbs_sustained(const ReadBuf& buf, int kind, int passes) {
    const uint64_t* a = buf.a.get();
    const size_t n = ReadBuf::n;
    volatile uint64_t sink = 0;
    const auto t0 = clk::now();
    uint64_t s = 0;
#pragma omp parallel reduction(+ : s)
    {
        const size_t nt = omp_get_num_threads(), t = omp_get_thread_num();
        for (int p = 0; p < passes; ++p) {
            const uint64_t* ap = a;
            asm volatile("" : "+r"(ap));  // an opaque pointer per pass: the compiler may not fold the passes into one
            s += sum_part(ap, n / 32 * t / nt * 32, n / 32 * (t + 1) / nt * 32, kind);
        }
    }
    sink = s;
    (void)sink;
    return double(passes) * n * sizeof(uint64_t) / secs(t0, clk::now()) / 1e9;
}
struct ReadGbs {
    double loop[3] = {0, 0, 0};  // uint64 loop, 32-byte loads, 64-byte loads
    double best() const { return std::max({loop[0], loop[1], loop[2]}); }
    void take_max(const ReadGbs& o) {
        for (int k = 0; k < 3; ++k) loop[k] = std::max(loop[k], o.loop[k]);
    }
    void measure(const ReadBuf& buf, int reps) {
        for (int k = 0; k < 3; ++k) loop[k] = std::max(loop[k], read_gbs_kind(buf, k, reps));
    }
};

// Bytes a decode step streams: every 2-D weight + the LM head (embedding rows read per token are negligible).
static double decode_weight_bytes(const Qwen3Model& m) {
    double b = 0;
    const bool tied = m.config().tie_word_embeddings;
    if (const auto& g = m.gguf()) {
        for (const GgufTensorInfo& t : g->tensors())
            if (t.ne.size() == 2 && (t.name != "token_embd.weight" || tied)) b += double(t.nbytes);
        return b;
    }
    for (const auto& [name, t] : m.tensors().tensors())
        if (t.shape.size() == 2 && (name != "model.embed_tokens.weight" || tied)) b += double(t.nbytes);
    return b;
}

int main(int argc, char** argv) {
    std::string model_dir;
    int prompt_tokens = 128, decode_tokens = 32, decode_prompt = 8, reps = 3, threads = 0;
    bool membw_only = false;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        if (k == "--membw") { membw_only = true; continue; }
        if (i + 1 >= argc) { std::fprintf(stderr, "option %s needs a value\n", k.c_str()); return 2; }
        const char* v = argv[++i];
        if (k == "--model") model_dir = v;
        else if (k == "--prompt_tokens") prompt_tokens = std::stoi(v);
        else if (k == "--decode_tokens") decode_tokens = std::stoi(v);
        else if (k == "--decode_prompt") decode_prompt = std::stoi(v);
        else if (k == "--reps") reps = std::stoi(v);
        else if (k == "--threads") threads = std::stoi(v);
        else { std::fprintf(stderr, "unknown option %s\n", k.c_str()); return 2; }
    }
    if (model_dir.empty()) model_dir = std::string(AR_SHARED_DIR) + "/models/qwen3-nano";
    if (threads > 0) omp_set_num_threads(threads);
    if (membw_only) {
        const ReadBuf buf;
        ReadGbs rd;
        rd.measure(buf, 5);
        std::printf("{\"threads\":%d,\"read_gbs\":%.3f,\"read_u64_loop_gbs\":%.3f,\"read_32b_gbs\":%.3f,"
                    "\"read_64b_gbs\":%.3f}\n", omp_get_max_threads(), rd.best(), rd.loop[0], rd.loop[1], rd.loop[2]);
        return 0;
    }
    try {
        const Qwen3Model m = Qwen3Model::load(model_dir);
        const ModelConfig& c = m.config();
        const double weight_bytes = decode_weight_bytes(m);
        int repacked = 0, linears = 1;  // the LM head, then the layers' weights
        repacked += m.head().repacked != nullptr;
        for (const Qwen3Layer& L : m.layers())
            for (const WeightView* w : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down})
                repacked += w->repacked != nullptr, ++linears;
        auto ids = [&](int n) {
            std::vector<int32_t> v(n);
            for (int i = 0; i < n; ++i) v[i] = (i * 7919 + 13) % c.vocab_size;
            return v;
        };
        const std::vector<int32_t> prompt = ids(prompt_tokens), short_prompt = ids(decode_prompt);
        std::vector<float> logits(c.vocab_size);
        {  // warm-up: touch every weight page once
            KvCache w = m.make_cache();
            m.forward(std::span<const int32_t>(prompt.data(), std::min(prompt_tokens, 8)), w, logits.data(), false);
        }
        const Rss rss = rss_mb();  // after load and warm-up, before the benchmark's own buffers
        // The read sweeps run inside the rep loop, right after each decode run, so a load on the shared machine that
        // slows one tends to slow the other (best of all reps for each).
        const ReadBuf buf;
        double best_prefill = 1e30, best_decode = 1e30, sustained = 0;
        ReadGbs rd;
        // sustained sweeps read about the bytes of one decode run
        const int passes = std::max(1, int(decode_tokens * weight_bytes / double(ReadBuf::n * sizeof(uint64_t)) + 0.5));
        for (int rep = 0; rep < reps; ++rep) {
            KvCache cache = m.make_cache();
            const auto t0 = clk::now();
            m.forward(prompt, cache, logits.data(), false);
            best_prefill = std::min(best_prefill, secs(t0, clk::now()));

            KvCache dc = m.make_cache();
            m.forward(short_prompt, dc, logits.data(), false);
            const auto t1 = clk::now();
            for (int i = 0; i < decode_tokens; ++i) {
                const int32_t one[1] = {(i * 31 + 7) % c.vocab_size};
                m.forward(one, dc, logits.data(), false);
            }
            const double dt = secs(t1, clk::now());
            best_decode = std::min(best_decode, dt);
            ReadGbs now;
            now.measure(buf, 2);
            rd.take_max(now);
            const double sus = std::max(read_gbs_sustained(buf, 1, passes), read_gbs_sustained(buf, 2, passes));
            sustained = std::max(sustained, sus);
            std::printf("rep %d            decode %.2f tok/s (%.2f GB/s); read sweeps right after: peak %.2f GB/s (uint64 "
                        "loop %.2f, 32-byte %.2f, 64-byte %.2f), sustained over %d x 512 MiB %.2f GB/s\n", rep,
                        decode_tokens / dt, decode_tokens / dt * weight_bytes / 1e9, now.best(), now.loop[0],
                        now.loop[1], now.loop[2], passes, sus);
        }
        const double prefill_tps = prompt_tokens / best_prefill, decode_tps = decode_tokens / best_decode;
        const double decode_gbs = decode_tps * weight_bytes / 1e9;
        const double mc = memcpy_gbs();
        const double flops = 2.0 * double(m.parameter_count()) * prompt_tokens;
        std::printf("model            %s (%.3f B params, %d layers, hidden %d)\n", model_dir.c_str(),
                    m.parameter_count() / 1e9, c.num_hidden_layers, c.hidden_size);
        std::printf("threads          %d\n", omp_get_max_threads());
        std::printf("repacked         %d of %d linear weights (ops/cpu/qmm_repack.h; AUTOROUND_NO_REPACK=1: none)\n",
                    repacked, linears);
        std::printf("resident         VmRSS %.1f MB after load + warm-up (RssFile %.1f: mapped file, RssAnon %.1f; "
                    "AUTOROUND_KEEP_MAPPED=1 keeps the repacked rows' file pages)\n", rss.total, rss.file, rss.anon);
        std::printf("prefill          %d tokens: %.1f tok/s (%.1f GFLOP/s), best of %d\n", prompt_tokens, prefill_tps,
                    flops / best_prefill / 1e9, reps);
        std::printf("decode           %d tokens after a %d-token prompt: %.2f tok/s, %.2f ms/tok, best of %d\n",
                    decode_tokens, decode_prompt, decode_tps, 1e3 / decode_tps, reps);
        std::printf("decode traffic   %.1f MB weights/token -> %.2f GB/s\n", weight_bytes / 1e6, decode_gbs);
        const double bound = rd.best();
        std::printf("machine          memcpy %.2f GB/s copied, parallel read %.2f GB/s (best of: uint64 loop %.2f, 32-byte "
                    "loads %.2f, 64-byte loads %.2f)\n", mc, bound, rd.loop[0], rd.loop[1], rd.loop[2]);
        std::printf("                 sustained read %.2f GB/s (one window of %d sweeps, about one decode run's bytes; best "
                    "of %d)\n", sustained, passes, reps);
        std::printf("decode vs read   %.0f%% of the bytes-moved bound at the peak read (%.1f tok/s), %.0f%% at the sustained "
                    "read (%.1f tok/s)\n", 100 * decode_gbs / bound, bound * 1e9 / weight_bytes,
                    100 * decode_gbs / sustained, sustained * 1e9 / weight_bytes);
        std::printf("{\"model\":\"%s\",\"threads\":%d,\"prefill_tps\":%.2f,\"decode_tps\":%.3f,\"weight_mb\":%.3f,"
                    "\"decode_gbs\":%.3f,\"memcpy_gbs\":%.3f,\"read_gbs\":%.3f,\"read_u64_loop_gbs\":%.3f,"
                    "\"read_32b_gbs\":%.3f,\"read_64b_gbs\":%.3f,\"bound_fraction\":%.4f,\"read_sustained_gbs\":%.3f,"
                    "\"sustained_fraction\":%.4f,\"repacked\":%d,\"rss_mb\":%.1f,\"rss_file_mb\":%.1f,"
                    "\"rss_anon_mb\":%.1f}\n",
                    model_dir.c_str(), omp_get_max_threads(), prefill_tps, decode_tps, weight_bytes / 1e6, decode_gbs,
                    mc, bound, rd.loop[0], rd.loop[1], rd.loop[2], decode_gbs / bound, sustained, decode_gbs / sustained,
                    repacked, rss.total, rss.file, rss.anon);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}

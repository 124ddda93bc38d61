// bench/bench_tokenizer.cpp — load and encode speed of the byte-level BPE tokenizer.
//
// Why: loading the 11 MB Qwen3 tokenizer.json must stay well under 1 s and encoding WikiText-2
// test (1.3 MB) under 1 s on one core. "Cold" encodes use a freshly loaded tokenizer (empty piece
// cache), which is what a one-shot CLI run sees; "warm" encodes reuse the cache.
// Run: ./bench_tokenizer [--benchmark_filter=...]; files come from AR_SHARED_DIR.
#include <benchmark/benchmark.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "text/bpe_tokenizer.h"

using autoround::BpeTokenizer;

namespace {

const std::string kShared = AR_SHARED_DIR;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

const std::string& qwen3_json() {
    static const std::string text = [] {
        const std::string path = kShared + "/tokenizers/qwen3/tokenizer.json.gz";
        gzFile f = gzopen(path.c_str(), "rb");
        if (!f) throw std::runtime_error("cannot open " + path);
        std::string out;
        char buf[1 << 16];
        int n;
        while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
        gzclose(f);
        return out;
    }();
    return text;
}

// The unpacked Qwen3 tokenizer.json in a temp file, so that load() includes file I/O.
const std::filesystem::path& qwen3_file() {
    static const std::filesystem::path p = [] {
        const auto path = std::filesystem::temp_directory_path() / "ar_bench_qwen3_tokenizer.json";
        std::ofstream(path, std::ios::binary) << qwen3_json();
        return path;
    }();
    return p;
}

const std::string& nano_path() {
    static const std::string p = kShared + "/models/qwen3-nano/tokenizer.json";
    return p;
}

// WikiText-2 test as the HF recipe joins it (rows, whitespace-only rows emptied, "\n\n").
const std::string& wikitext() {
    static const std::string text = [] {
        std::ifstream in(kShared + "/data/text/wikitext-2-raw/wiki.test.raw", std::ios::binary);
        std::string out, line;
        bool first = true;
        while (std::getline(in, line)) {
            line += '\n';
            if (line.find_first_not_of(" \t\n\r\f\v") == std::string::npos) line.clear();
            if (!first) out += "\n\n";
            out += line;
            first = false;
        }
        return out;
    }();
    return text;
}

void BM_LoadQwen3File(benchmark::State& state) {
    const auto& path = qwen3_file();
    for (auto _ : state) {
        BpeTokenizer t = BpeTokenizer::load(path);
        benchmark::DoNotOptimize(t.vocab_size());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(qwen3_json().size()));
}

void BM_LoadQwen3FromText(benchmark::State& state) {
    const std::string& text = qwen3_json();
    for (auto _ : state) {
        BpeTokenizer t = BpeTokenizer::from_json_text(text, "qwen3");
        benchmark::DoNotOptimize(t.vocab_size());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(text.size()));
}

void BM_LoadNano(benchmark::State& state) {
    for (auto _ : state) {
        BpeTokenizer t = BpeTokenizer::load(nano_path());
        benchmark::DoNotOptimize(t.vocab_size());
    }
}

template <bool kQwen3, bool kCold>
void BM_EncodeWikiText(benchmark::State& state) {
    const std::string& text = wikitext();
    auto make = [] { return kQwen3 ? BpeTokenizer::from_json_text(qwen3_json(), "qwen3") : BpeTokenizer::load(nano_path()); };
    BpeTokenizer tok = make();
    std::size_t n = 0;
    for (auto _ : state) {
        if (kCold) {
            state.PauseTiming();
            tok = make();  // empty piece cache
            state.ResumeTiming();
        }
        auto ids = tok.encode(text);
        n = ids.size();
        benchmark::DoNotOptimize(ids.data());
    }
    state.counters["tokens"] = static_cast<double>(n);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(text.size()));
}

void BM_DecodeWikiTextNano(benchmark::State& state) {
    const BpeTokenizer tok = BpeTokenizer::load(nano_path());
    const auto ids = tok.encode(wikitext());
    for (auto _ : state) {
        std::string s = tok.decode(ids);
        benchmark::DoNotOptimize(s.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(wikitext().size()));
}

}  // namespace

BENCHMARK(BM_LoadQwen3File)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_LoadQwen3FromText)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_LoadNano)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeWikiText<false, true>)->Name("BM_EncodeWikiText/nano/cold")->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_EncodeWikiText<false, false>)->Name("BM_EncodeWikiText/nano/warm")->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeWikiText<true, true>)->Name("BM_EncodeWikiText/qwen3/cold")->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_EncodeWikiText<true, false>)->Name("BM_EncodeWikiText/qwen3/warm")->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeWikiTextNano)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();

// tests/quant/test_calibration.cpp — the calibration set (quant/calibration.h, spec §1.4): the peer
// recipe of shared/reference/peer-autoround (c4-sample.jsonl in file order, first 128 documents of
// >= 512 tokens cut to 512) checked against an independent document-by-document encoding; the
// --dataset grammar; the length and repetition filters; .txt / .jsonl / .json / folder inputs;
// chat templating, concat and several datasets; the seeded shuffles against values printed by
// CPython 3.11 (random.Random(seed).shuffle) and numpy 1.24 (default_rng(seed).permutation);
// error messages; the nsamples-reduction warning.
//
// The expected shuffles were printed with (numpy from Debian's python3-numpy 1.24.2):
//   python3 -c "import numpy as np; print(np.random.default_rng(SEED).permutation(N))"
//   python3 -c "import random; x=list(range(N)); random.Random(SEED).shuffle(x); print(x)"
// and, for long ones, the first entries plus sum(v * (i + 1) for i, v in enumerate(x)).
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_config.h"
#include "quant/calibration.h"
#include "quant/quant_test_util.h"
#include "text/bpe_tokenizer.h"
#include "text/chat_template.h"

using namespace autoround;
using autoround::testquant::expect_error;
namespace fs = std::filesystem;

namespace {

const fs::path kShared = AR_SHARED_DIR;
const fs::path kModel = kShared / "models" / "qwen3-nano";
const fs::path kC4 = kShared / "data" / "text" / "c4-sample.jsonl";

const BpeTokenizer& tok() {
    static const BpeTokenizer t = BpeTokenizer::load(kModel / "tokenizer.json");
    return t;
}
const TokenizerConfig& tcfg() {
    static const TokenizerConfig c = load_tokenizer_config(kModel);
    return c;
}

struct TempDir {
    fs::path path;
    TempDir() {
        static std::atomic<int> counter{0};
        path = fs::temp_directory_path() /
               ("ar_calib_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path write(const std::string& name, const std::string& content) const {
        const fs::path p = path / name;
        std::ofstream(p, std::ios::binary) << content;
        return p;
    }
};

std::string jsonl(const std::vector<std::string>& texts) {
    std::string s;
    for (const auto& t : texts) s += nlohmann::json{{"text", t}, {"id", s.size()}}.dump() + "\n";
    return s;
}

CalibrationOptions options(const std::string& dataset, int seqlen, int nsamples, uint64_t seed = 42) {
    CalibrationOptions o;
    o.dataset = dataset;
    o.seqlen = seqlen;
    o.nsamples = nsamples;
    o.seed = seed;
    return o;
}

std::vector<int32_t> head(std::vector<int32_t> ids, size_t n) {
    if (ids.size() > n) ids.resize(n);
    return ids;
}

// Texts long enough for a small seqlen, all different.
std::vector<std::string> long_texts(int n) {
    std::vector<std::string> v;
    for (int i = 0; i < n; ++i)
        v.push_back("Document number " + std::to_string(i) +
                    " talks about rivers, mountains and the slow history of the valley towns.");
    return v;
}

bool has_warning(const CalibrationSet& s, const std::string& frag) {
    for (const auto& w : s.warnings)
        if (w.find(frag) != std::string::npos) return true;
    return false;
}

// ---- shuffles: exact against CPython / numpy ---------------------------------------------------

TEST(CalibrationShuffle, NumpyPermutationMatchesNumpy) {
    // numpy 1.24.2: np.random.default_rng(seed).permutation(n)
    EXPECT_EQ(numpy_permutation(10, 42), (std::vector<size_t>{5, 6, 0, 7, 3, 2, 4, 9, 1, 8}));
    EXPECT_EQ(numpy_permutation(1, 42), (std::vector<size_t>{0}));
    EXPECT_EQ(numpy_permutation(2, 42), (std::vector<size_t>{1, 0}));
    EXPECT_EQ(numpy_permutation(0, 42), (std::vector<size_t>{}));
    EXPECT_EQ(numpy_permutation(10, 1099511627781ull), (std::vector<size_t>{8, 1, 2, 5, 3, 0, 9, 7, 4, 6}));
    EXPECT_EQ(numpy_permutation(10, 18446744073709551615ull), (std::vector<size_t>{8, 7, 3, 0, 4, 6, 1, 2, 5, 9}));
    auto prefix = [](std::vector<size_t> v, size_t n) { v.resize(n); return v; };
    auto weighted = [](const std::vector<size_t>& v) {
        uint64_t s = 0;
        for (size_t i = 0; i < v.size(); ++i) s += static_cast<uint64_t>(v[i]) * (i + 1);
        return s;
    };
    const auto p20 = numpy_permutation(20, 0);
    EXPECT_EQ(prefix(p20, 12), (std::vector<size_t>{4, 19, 6, 2, 13, 16, 3, 11, 10, 8, 0, 12}));
    EXPECT_EQ(weighted(p20), 2074u);
    const auto p13 = numpy_permutation(13, 7);
    EXPECT_EQ(prefix(p13, 12), (std::vector<size_t>{6, 8, 0, 7, 4, 1, 10, 3, 12, 2, 5, 9}));
    EXPECT_EQ(weighted(p13), 604u);
    const auto p1000 = numpy_permutation(1000, 42);
    EXPECT_EQ(prefix(p1000, 12), (std::vector<size_t>{978, 933, 859, 916, 127, 608, 856, 260, 147, 810, 635, 972}));
    EXPECT_EQ(weighted(p1000), 248821039u);
    const auto p100k = numpy_permutation(100000, 42);
    EXPECT_EQ(prefix(p100k, 6), (std::vector<size_t>{45262, 49850, 30394, 90177, 95569, 10900}));
    EXPECT_EQ(weighted(p100k), 249157033702609ull);
    const auto p70k = numpy_permutation(70000, 42);
    EXPECT_EQ(prefix(p70k, 6), (std::vector<size_t>{68143, 31172, 6037, 29920, 45886, 65638}));
    EXPECT_EQ(weighted(p70k), 85613659460057ull);
}

TEST(CalibrationShuffle, PythonShuffleMatchesCPython) {
    // CPython 3.11: x = list(range(n)); random.Random(seed).shuffle(x)
    auto prefix = [](std::vector<size_t> v, size_t n) { v.resize(std::min(n, v.size())); return v; };
    auto weighted = [](const std::vector<size_t>& v) {
        uint64_t s = 0;
        for (size_t i = 0; i < v.size(); ++i) s += static_cast<uint64_t>(v[i]) * (i + 1);
        return s;
    };
    EXPECT_EQ(python_random_shuffle_order(10, 42), (std::vector<size_t>{7, 3, 2, 8, 5, 6, 9, 4, 0, 1}));
    EXPECT_EQ(python_random_shuffle_order(10, 1099511627781ull), (std::vector<size_t>{1, 2, 3, 6, 7, 0, 5, 4, 9, 8}));
    EXPECT_EQ(python_random_shuffle_order(10, 18446744073709551615ull),
              (std::vector<size_t>{2, 6, 7, 9, 8, 1, 4, 5, 3, 0}));
    const auto p20 = python_random_shuffle_order(20, 0);
    EXPECT_EQ(prefix(p20, 12), (std::vector<size_t>{10, 18, 16, 14, 0, 17, 11, 2, 3, 9, 5, 7}));
    EXPECT_EQ(weighted(p20), 1890u);
    const auto p13 = python_random_shuffle_order(13, 7);
    EXPECT_EQ(p13, (std::vector<size_t>{3, 10, 12, 7, 9, 4, 11, 8, 1, 0, 6, 2, 5}));
    EXPECT_EQ(weighted(p13), 461u);
    const auto p1000 = python_random_shuffle_order(1000, 42);
    EXPECT_EQ(prefix(p1000, 12), (std::vector<size_t>{776, 507, 895, 922, 33, 483, 85, 750, 354, 523, 184, 809}));
    EXPECT_EQ(weighted(p1000), 250681098u);
    const auto p100k = python_random_shuffle_order(100000, 42);
    EXPECT_EQ(prefix(p100k, 12),
              (std::vector<size_t>{3813, 99183, 80737, 65674, 53670, 97104, 38743, 36888, 75154, 1326, 29763, 41960}));
    EXPECT_EQ(weighted(p100k), 250182806318157ull);
}

// ---- the peer recipe ---------------------------------------------------------------------------

TEST(CalibrationSet, PeerRecipeFirst128DocumentsOf512TokensInFileOrder) {
    const CalibrationSet set =
        build_calibration_set(options(kC4.string() + ":shuffle=false", 512, 128), tok(), tcfg());

    // Independent selection: encode the documents one by one in file order.
    std::ifstream in(kC4);
    ASSERT_TRUE(in);
    std::vector<std::vector<int32_t>> expected;
    std::vector<size_t> expected_docs;
    std::string line;
    size_t doc = 0;
    while (expected.size() < 128 && std::getline(in, line)) {
        const auto j = nlohmann::json::parse(line);
        const std::vector<int32_t> ids = tok().encode(j.at("text").get<std::string>());
        if (ids.size() >= 512) {
            expected.emplace_back(ids.begin(), ids.begin() + 512);
            expected_docs.push_back(doc);
        }
        ++doc;
    }
    ASSERT_EQ(expected.size(), 128u);

    ASSERT_EQ(set.samples.size(), 128u);
    ASSERT_EQ(set.origins.size(), 128u);
    for (size_t i = 0; i < 128; ++i) {
        EXPECT_EQ(set.samples[i].size(), 512u);
        EXPECT_EQ(set.samples[i], expected[i]) << "sample " << i;
        EXPECT_EQ(set.origins[i].document, expected_docs[i]) << "sample " << i;
        EXPECT_EQ(set.origins[i].line, expected_docs[i] + 1) << "sample " << i;
        EXPECT_EQ(set.origins[i].dataset, 0);
    }
    EXPECT_TRUE(set.warnings.empty()) << set.warnings.front();
    EXPECT_NE(set.description.find("128 calibration samples x 512 tokens"), std::string::npos) << set.description;
    EXPECT_NE(set.description.find("file order"), std::string::npos) << set.description;
}

TEST(CalibrationSet, SeededShuffleIsDeterministicAndFollowsPythonOrder) {
    const std::string ds = kC4.string();
    const CalibrationSet a = build_calibration_set(options(ds, 64, 12, 42), tok(), tcfg());
    const CalibrationSet b = build_calibration_set(options(ds, 64, 12, 42), tok(), tcfg());
    const CalibrationSet c = build_calibration_set(options(ds, 64, 12, 7), tok(), tcfg());
    ASSERT_EQ(a.samples.size(), 12u);
    EXPECT_EQ(a.samples, b.samples);
    EXPECT_NE(a.samples, c.samples);

    // The documents are those of random.Random(42).shuffle over the file, first 12 of >= 64 tokens.
    std::vector<std::string> texts;
    std::ifstream in(kC4);
    std::string line;
    while (std::getline(in, line)) texts.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
    const auto order = python_random_shuffle_order(texts.size(), 42);
    EXPECT_EQ(order[0], 776u);  // CPython: random.Random(42).shuffle(list(range(1000)))[0]
    std::vector<std::vector<int32_t>> expected;
    std::vector<size_t> docs;
    for (size_t k = 0; k < order.size() && expected.size() < 12; ++k) {
        auto ids = head(tok().encode(texts[order[k]]), 64);
        if (calibration_sample_ok(ids, 64)) expected.push_back(ids), docs.push_back(order[k]);
    }
    EXPECT_EQ(a.samples, expected);
    for (size_t i = 0; i < docs.size(); ++i) EXPECT_EQ(a.origins[i].document, docs[i]);
    EXPECT_NE(a.description.find("shuffled with seed 42"), std::string::npos) << a.description;
}

// ---- grammar -------------------------------------------------------------------------------------

TEST(CalibrationSpec, ParsesTheGrammar) {
    auto one = parse_dataset_spec("data/c4.jsonl");
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0].name, "data/c4.jsonl");
    EXPECT_FALSE(one[0].num.has_value());
    EXPECT_FALSE(one[0].concat);
    EXPECT_FALSE(one[0].apply_chat_template);
    EXPECT_TRUE(one[0].shuffle);

    auto many = parse_dataset_spec(
        "a.jsonl:num=64:concat=true:shuffle=false, b.txt:apply_chat_template:split=train+test,"
        "c:system_prompt=You are a helpful assistant.:concat");
    ASSERT_EQ(many.size(), 3u);
    EXPECT_EQ(many[0].name, "a.jsonl");
    EXPECT_EQ(many[0].num, 64);
    EXPECT_TRUE(many[0].concat);
    EXPECT_FALSE(many[0].shuffle);
    EXPECT_EQ(many[1].name, "b.txt");
    EXPECT_TRUE(many[1].apply_chat_template);
    EXPECT_FALSE(many[1].system_prompt.has_value());
    EXPECT_EQ(many[1].split, (std::vector<std::string>{"train", "test"}));
    EXPECT_TRUE(many[1].shuffle);
    EXPECT_EQ(many[2].name, "c");
    EXPECT_TRUE(many[2].apply_chat_template);  // system_prompt implies the chat template
    EXPECT_EQ(many[2].system_prompt, std::string("You are a helpful assistant."));  // spaces kept
    EXPECT_TRUE(many[2].concat);

    auto off = parse_dataset_spec("x.jsonl:concat=false:apply_chat_template=False:shuffle=0");
    EXPECT_FALSE(off[0].concat);
    EXPECT_FALSE(off[0].apply_chat_template);
    EXPECT_FALSE(off[0].shuffle);
    EXPECT_EQ(parse_dataset_spec("x:system_prompt=")[0].system_prompt, std::string());
}

TEST(CalibrationSpec, RejectsBadStrings) {
    expect_error([] { parse_dataset_spec("x.jsonl:foo=1"); }, {"unknown key 'foo'", "num=N", "shuffle"});
    expect_error([] { parse_dataset_spec("x.jsonl:num=abc"); }, {"num=abc", "positive integer"});
    expect_error([] { parse_dataset_spec("x.jsonl:num=0"); }, {"num=0"});
    expect_error([] { parse_dataset_spec("x.jsonl:num"); }, {"num needs a value"});
    expect_error([] { parse_dataset_spec("x.jsonl:concat=maybe"); }, {"concat=maybe", "boolean"});
    expect_error([] { parse_dataset_spec("a.jsonl,,b.jsonl"); }, {"empty entry"});
    expect_error([] { parse_dataset_spec(":num=3"); }, {"no dataset name"});
    expect_error([] { parse_dataset_spec("  "); }, {"--dataset is empty"});
}

// ---- filters -------------------------------------------------------------------------------------

TEST(CalibrationFilter, LengthAndRepetition) {
    using V = std::vector<int32_t>;
    EXPECT_TRUE(calibration_sample_ok(V{1, 2, 3, 4}, 4));
    EXPECT_FALSE(calibration_sample_ok(V{1, 2, 3}, 4));                // too short
    EXPECT_TRUE(calibration_sample_ok(V{1, 2, 5, 5}, 4));              // 2 of 4: not more than half
    EXPECT_FALSE(calibration_sample_ok(V{1, 5, 5, 5}, 4));             // 3 of 4
    EXPECT_TRUE(calibration_sample_ok(V{5, 5, 5, 1, 5, 5, 5}, 4));     // only the first seqlen count; last is 1
    EXPECT_FALSE(calibration_sample_ok(V{7, 1, 7, 2, 7, 9, 9}, 5));    // last of first 5 is 7: 3 > 2
    EXPECT_TRUE(calibration_sample_ok(V{9, 9}, 2));                    // seqlen <= 2: length only
}

TEST(CalibrationFilter, RepetitiveDocumentsAreDropped) {
    TempDir dir;
    std::string rep = "the";
    for (int i = 0; i < 60; ++i) rep += " the";
    std::vector<std::string> texts = long_texts(3);
    texts.insert(texts.begin() + 1, rep);
    const fs::path f = dir.write("rep.jsonl", jsonl(texts));
    const int seqlen = 12;
    ASSERT_FALSE(calibration_sample_ok(head(tok().encode(rep), seqlen), seqlen));
    const CalibrationSet s = build_calibration_set(options(f.string() + ":shuffle=false", seqlen, 3), tok(), tcfg());
    ASSERT_EQ(s.samples.size(), 3u);
    EXPECT_EQ(s.origins[0].document, 0u);
    EXPECT_EQ(s.origins[1].document, 2u);
    EXPECT_EQ(s.origins[2].document, 3u);
    EXPECT_EQ(s.samples[1], head(tok().encode(texts[2]), seqlen));
    EXPECT_NE(s.description.find("1 repetitive"), std::string::npos) << s.description;
}

// ---- inputs --------------------------------------------------------------------------------------

TEST(CalibrationSet, TextFileHasOneDocumentPerLine) {
    TempDir dir;
    const auto t = long_texts(3);
    // CRLF, a blank line, a short line, trailing spaces (right-stripped), no final newline.
    const fs::path f = dir.write("notes.txt", t[0] + "\r\n\nshort\r\n" + t[1] + "   \n" + t[2]);
    const int seqlen = 10;
    const CalibrationSet s = build_calibration_set(options(f.string() + ":shuffle=false", seqlen, 8), tok(), tcfg());
    ASSERT_EQ(s.samples.size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(s.samples[i], head(tok().encode(t[i]), seqlen));
    EXPECT_EQ(s.origins[0].line, 1u);
    EXPECT_EQ(s.origins[1].line, 4u);
    EXPECT_EQ(s.origins[2].line, 5u);
    EXPECT_EQ(s.origins[1].document, 3u);  // the blank line is document 1, "short" document 2
    EXPECT_EQ(s.origins[0].file, f.string());
    EXPECT_TRUE(has_warning(s, "nsamples reduced from 8 to 3")) << (s.warnings.empty() ? "" : s.warnings[0]);

    // Every line is a document for the shuffle too (as the reference's local loader).
    const CalibrationSet sh = build_calibration_set(options(f.string(), seqlen, 8, 3), tok(), tcfg());
    const auto order = python_random_shuffle_order(5, 3);
    std::vector<size_t> expect_docs;
    for (size_t d : order)
        if (d == 0 || d == 3 || d == 4) expect_docs.push_back(d);
    ASSERT_EQ(sh.origins.size(), 3u);
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(sh.origins[i].document, expect_docs[i]);
}

TEST(CalibrationSet, JsonFieldAndJsonArray) {
    TempDir dir;
    const auto t = long_texts(2);
    const fs::path f = dir.write("c.jsonl", nlohmann::json{{"content", t[0]}}.dump() + "\n\n" +
                                                nlohmann::json{{"content", t[1]}, {"text", "x"}}.dump() + "\n");
    CalibrationOptions o = options(f.string() + ":shuffle=false", 10, 2);
    o.dataset_field = "content";
    const CalibrationSet s = build_calibration_set(o, tok(), tcfg());
    ASSERT_EQ(s.samples.size(), 2u);
    EXPECT_EQ(s.samples[1], head(tok().encode(t[1]), 10));
    EXPECT_EQ(s.origins[1].line, 3u);  // the blank line is skipped but counted

    const fs::path a = dir.write("arr.json", nlohmann::json::array({t[1], {{"text", t[0]}}}).dump());
    const CalibrationSet sa = build_calibration_set(options(a.string() + ":shuffle=false", 10, 2), tok(), tcfg());
    ASSERT_EQ(sa.samples.size(), 2u);
    EXPECT_EQ(sa.samples[0], head(tok().encode(t[1]), 10));
    EXPECT_EQ(sa.samples[1], head(tok().encode(t[0]), 10));
}

TEST(CalibrationSet, FolderIsReadInNameOrder) {
    TempDir dir;
    const auto t = long_texts(4);
    dir.write("b.txt", t[2] + "\n" + t[3] + "\n");
    dir.write("a.jsonl", jsonl({t[0], t[1]}));
    dir.write("c.md", t[0] + "\n");             // not a dataset file: ignored
    dir.write(".hidden.txt", t[0] + "\n");      // hidden: ignored
    const CalibrationSet s =
        build_calibration_set(options(dir.path.string() + ":shuffle=false", 10, 4), tok(), tcfg());
    ASSERT_EQ(s.samples.size(), 4u);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(s.samples[i], head(tok().encode(t[i]), 10)) << i;
    EXPECT_EQ(fs::path(s.origins[1].file).filename(), "a.jsonl");
    EXPECT_EQ(fs::path(s.origins[2].file).filename(), "b.txt");
    EXPECT_EQ(s.origins[2].document, 2u);
    EXPECT_EQ(s.origins[2].line, 1u);
    EXPECT_NE(s.description.find("folder of 2 files"), std::string::npos) << s.description;
}

// ---- num / concat / chat template / several datasets --------------------------------------------

TEST(CalibrationSet, NumLimitsOneDataset) {
    TempDir dir;
    const fs::path f = dir.write("d.jsonl", jsonl(long_texts(6)));
    const CalibrationSet s = build_calibration_set(options(f.string() + ":num=4:shuffle=false", 10, 3), tok(), tcfg());
    EXPECT_EQ(s.samples.size(), 3u);  // nsamples still caps
    EXPECT_TRUE(s.warnings.empty());
    const CalibrationSet s2 = build_calibration_set(options(f.string() + ":num=2:shuffle=false", 10, 5), tok(), tcfg());
    EXPECT_EQ(s2.samples.size(), 2u);
    EXPECT_TRUE(has_warning(s2, "num=2 limits")) << s2.warnings.at(0);
    EXPECT_TRUE(has_warning(s2, "nsamples reduced from 5 to 2"));
}

TEST(CalibrationSet, ConcatJoinsDocumentsIntoChunks) {
    TempDir dir;
    const std::vector<std::string> t = {"Short opening words.", long_texts(1)[0], "A middle one, brief.",
                                        long_texts(2)[1]};
    const fs::path f = dir.write("cat.jsonl", jsonl(t));
    const int seqlen = 16;
    std::vector<int32_t> stream;
    for (const auto& s : t) {
        const auto ids = head(tok().encode(s), seqlen);  // each document truncated to seqlen first
        stream.insert(stream.end(), ids.begin(), ids.end());
    }
    const size_t nchunks = stream.size() / seqlen;
    ASSERT_GE(nchunks, 2u);
    const CalibrationSet s =
        build_calibration_set(options(f.string() + ":concat=true:shuffle=false", seqlen, 100), tok(), tcfg());
    ASSERT_EQ(s.samples.size(), nchunks);
    for (size_t c = 0; c < nchunks; ++c)
        EXPECT_EQ(s.samples[c], std::vector<int32_t>(stream.begin() + c * seqlen, stream.begin() + (c + 1) * seqlen));
    EXPECT_EQ(s.origins[0].document, 0u);
    EXPECT_TRUE(has_warning(s, "nsamples reduced from 100"));
}

TEST(CalibrationSet, ChatTemplateWrapsEachText) {
    ASSERT_TRUE(tcfg().chat_template.has_value());
    TempDir dir;
    const auto t = long_texts(2);
    const fs::path f = dir.write("chat.jsonl", jsonl(t));
    const ChatTemplate tmpl(*tcfg().chat_template);
    auto rendered = [&](const std::string& text, const std::string& system) {
        ChatTemplateInputs in;
        if (!system.empty()) in.messages.push_back({{"role", "system"}, {"content", system}});
        in.messages.push_back({{"role", "user"}, {"content", text}});
        in.add_generation_prompt = true;
        return tok().encode(tmpl.render(in));
    };
    const auto u0 = rendered(t[0], ""), u1 = rendered(t[1], "");
    const int seqlen = static_cast<int>(std::min(u0.size(), u1.size()));
    const CalibrationSet s = build_calibration_set(
        options(f.string() + ":apply_chat_template:shuffle=false", seqlen, 2), tok(), tcfg());
    ASSERT_EQ(s.samples.size(), 2u);
    EXPECT_EQ(s.samples[0], head(u0, seqlen));
    EXPECT_EQ(s.samples[1], head(u1, seqlen));
    EXPECT_EQ(s.samples[0].front(), *tok().token_to_id("<|im_start|>"));

    const auto v0 = rendered(t[0], "Be brief and precise."), v1 = rendered(t[1], "Be brief and precise.");
    const int seqlen2 = static_cast<int>(std::min(v0.size(), v1.size()));
    const CalibrationSet sp = build_calibration_set(
        options(f.string() + ":system_prompt=Be brief and precise.:shuffle=false", seqlen2, 2), tok(), tcfg());
    ASSERT_EQ(sp.samples.size(), 2u);
    EXPECT_EQ(sp.samples[0], head(v0, seqlen2));
    EXPECT_EQ(sp.samples[1], head(v1, seqlen2));
    EXPECT_NE(tok().decode(sp.samples[0]).find("system\nBe brief and precise."), std::string::npos);
}

TEST(CalibrationSet, SeveralDatasetsSplitNsamplesAndMix) {
    TempDir dir;
    std::vector<std::string> ta = long_texts(20), tb;
    for (int i = 0; i < 3; ++i) tb.push_back("Second source, entry " + std::to_string(i) + ": winter birds over the frozen lake.");
    const fs::path a = dir.write("a.jsonl", jsonl(ta));
    const fs::path b = dir.write("b.jsonl", jsonl(tb));
    const int seqlen = 10;
    auto enc = [&](const std::string& s) { return head(tok().encode(s), seqlen); };

    // Both in file order: no mixing; b (3 samples) is the smaller, so a gets 10 - 3 = 7.
    const CalibrationSet plain = build_calibration_set(
        options(a.string() + ":shuffle=false," + b.string() + ":shuffle=false", seqlen, 10), tok(), tcfg());
    ASSERT_EQ(plain.samples.size(), 10u);
    for (int i = 0; i < 7; ++i) EXPECT_EQ(plain.samples[i], enc(ta[i]));
    for (int i = 0; i < 3; ++i) EXPECT_EQ(plain.samples[7 + i], enc(tb[i]));
    EXPECT_EQ(plain.origins[7].dataset, 1);
    EXPECT_TRUE(plain.warnings.empty());

    // b shuffled (Python order), then everything mixed by numpy's permutation over
    // [b's 3 (smaller first), a's 7].
    const CalibrationSet mixed = build_calibration_set(
        options(a.string() + ":shuffle=false," + b.string(), seqlen, 10, 42), tok(), tcfg());
    std::vector<std::vector<int32_t>> cat;
    for (size_t d : python_random_shuffle_order(3, 42)) cat.push_back(enc(tb[d]));
    for (int i = 0; i < 7; ++i) cat.push_back(enc(ta[i]));
    const auto perm = numpy_permutation(10, 42);
    ASSERT_EQ(mixed.samples.size(), 10u);
    for (size_t k = 0; k < 10; ++k) EXPECT_EQ(mixed.samples[k], cat[perm[k]]) << k;
    EXPECT_NE(mixed.description.find("mixed with seed 42"), std::string::npos);

    // num on one entry: a takes 4, b has only 3 for the remaining 6 -> 7 samples and a warning.
    const CalibrationSet withnum = build_calibration_set(
        options(a.string() + ":num=4:shuffle=false," + b.string() + ":shuffle=false", seqlen, 10), tok(), tcfg());
    EXPECT_EQ(withnum.samples.size(), 7u);
    EXPECT_TRUE(has_warning(withnum, "nsamples reduced from 10 to 7"));
}

// ---- errors ----------------------------------------------------------------------------------------

TEST(CalibrationErrors, MissingFileHubNameAndBadInput) {
    TempDir dir;
    const std::string missing = (dir.path / "nope.jsonl").string();
    expect_error([&] { build_calibration_set(options(missing, 8, 4), tok(), tcfg()); }, {missing, "not found"});

    // Hub names are Hub datasets; offline with an empty cache, the error names the repo and the cache
    ::setenv("HF_HUB_OFFLINE", "1", 1);
    ::setenv("HF_HUB_CACHE", (dir.path / "hf-cache").c_str(), 1);
    expect_error([] { build_calibration_set(CalibrationOptions{}, tok(), tcfg()); },
                 {"NeelNanda/pile-10k", "HF_HUB_OFFLINE=1", "not in the cache", "local file or folder"});
    expect_error([] { build_calibration_set(options("pile-10k:num=8", 8, 4), tok(), tcfg()); }, {"NeelNanda/pile-10k"});
    ::unsetenv("HF_HUB_OFFLINE");
    ::unsetenv("HF_HUB_CACHE");

    const fs::path bad = dir.write("bad.jsonl", jsonl(long_texts(1)) + "{not json}\n");
    expect_error([&] { build_calibration_set(options(bad.string(), 8, 4), tok(), tcfg()); },
                 {bad.string() + ":2", "invalid JSON"});

    const fs::path nofield = dir.write("nofield.jsonl", "{\"body\": \"hello there\", \"id\": 1}\n");
    expect_error([&] { build_calibration_set(options(nofield.string(), 8, 4), tok(), tcfg()); },
                 {nofield.string() + ":1", "no field 'text'", "body", "--dataset_field"});
    const fs::path notstr = dir.write("notstr.jsonl", "{\"text\": 5}\n");
    expect_error([&] { build_calibration_set(options(notstr.string(), 8, 4), tok(), tcfg()); },
                 {notstr.string() + ":1", "not a string"});

    const fs::path empty = dir.write("empty.txt", "");
    expect_error([&] { build_calibration_set(options(empty.string(), 8, 4), tok(), tcfg()); },
                 {empty.string(), "is empty"});
    const fs::path blank = dir.write("blank.jsonl", "\n\n");
    expect_error([&] { build_calibration_set(options(blank.string(), 8, 4), tok(), tcfg()); }, {"is empty"});

    const fs::path shorty = dir.write("short.txt", "tiny line\nanother tiny line\n");
    expect_error([&] { build_calibration_set(options(shorty.string(), 512, 4), tok(), tcfg()); },
                 {shorty.string(), "no sample of 512 tokens", "--seqlen", "concat=true"});

    TempDir empty_dir;
    empty_dir.write("readme.md", "nothing here");
    expect_error([&] { build_calibration_set(options(empty_dir.path.string(), 8, 4), tok(), tcfg()); },
                 {"holds no .txt, .jsonl or .json file"});

    const fs::path ok = dir.write("ok.jsonl", jsonl(long_texts(2)));
    expect_error([&] { build_calibration_set(options(ok.string(), 8, 0), tok(), tcfg()); }, {"--nsamples"});
    expect_error([&] { build_calibration_set(options(ok.string(), 0, 4), tok(), tcfg()); }, {"--seqlen"});

    TokenizerConfig no_template = tcfg();
    no_template.chat_template.reset();
    expect_error([&] { build_calibration_set(options(ok.string() + ":apply_chat_template", 8, 4), tok(), no_template); },
                 {"chat template"});
}

TEST(CalibrationErrors, ReducesNsamplesWithAWarning) {
    TempDir dir;
    const auto t = long_texts(5);
    std::vector<std::string> docs = {t[0], "too short", t[1], t[2]};
    const fs::path f = dir.write("few.jsonl", jsonl(docs));
    const CalibrationSet s = build_calibration_set(options(f.string() + ":shuffle=false", 12, 128), tok(), tcfg());
    EXPECT_EQ(s.samples.size(), 3u);
    ASSERT_EQ(s.warnings.size(), 1u);
    EXPECT_NE(s.warnings[0].find("only 3 calibration samples of 12 tokens"), std::string::npos) << s.warnings[0];
    EXPECT_NE(s.warnings[0].find("nsamples reduced from 128 to 3"), std::string::npos) << s.warnings[0];
    EXPECT_NE(s.description.find("1 shorter than 12 tokens"), std::string::npos) << s.description;
}

}  // namespace

// tests/text/test_bpe_tokenizer.cpp — the byte-level BPE tokenizer against Hugging Face goldens.
//
// Why: token ids must match the `tokenizers` library exactly, or every downstream number (logits,
// perplexity) is off. Goldens: shared/reference/tokenizer-reference.json (43 strings, real Qwen3
// and nano tokenizers), llama.cpp's qwen2 vocab cases, and the WikiText-2 ids of the nano
// reference run. Also round trips, added tokens, errors, U+FFFD rules and streaming decode.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "text/bpe_merge.h"
#include "text/bpe_tokenizer.h"
#include "text/byte_level.h"
#include "text/pretokenizer.h"
#include "text/reference_safetensors.h"
#include "text/utf8.h"

using namespace autoround;
using nlohmann::json;

namespace {

const std::string kShared = AR_SHARED_DIR;
const std::string kNanoJson = kShared + "/models/qwen3-nano/tokenizer.json";
const std::string kQwen3Gz = kShared + "/tokenizers/qwen3/tokenizer.json.gz";

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string gunzip_file(const std::string& path) {
    const std::string gz = read_file(path);
    z_stream zs{};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw std::runtime_error("inflateInit2 failed");
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
    zs.avail_in = static_cast<uInt>(gz.size());
    std::string out;
    char buf[1 << 16];
    int rc;
    do {
        zs.next_out = reinterpret_cast<Bytef*>(buf);
        zs.avail_out = sizeof buf;
        rc = inflate(&zs, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&zs);
            throw std::runtime_error("gunzip failed for " + path);
        }
        out.append(buf, sizeof buf - zs.avail_out);
    } while (rc != Z_STREAM_END);
    inflateEnd(&zs);
    return out;
}

const BpeTokenizer& nano() {
    static const BpeTokenizer t = BpeTokenizer::load(kNanoJson);
    return t;
}

const BpeTokenizer& qwen3() {
    static const BpeTokenizer t = BpeTokenizer::from_json_text(gunzip_file(kQwen3Gz), kQwen3Gz);
    return t;
}

const json& reference() {
    static const json j = json::parse(read_file(kShared + "/reference/tokenizer-reference.json"));
    return j;
}

std::vector<int32_t> ids_of(const json& arr) { return arr.get<std::vector<int32_t>>(); }

std::string expect_error(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected autoround::Error";
    return "";
}

// A small byte-level tokenizer: the 256 byte tokens (id = byte), a few merges, added tokens.
json tiny_json(bool merges_as_pairs) {
    json vocab = json::object();
    for (int b = 0; b < 256; ++b) vocab[byte_level::byte_to_string(static_cast<uint8_t>(b))] = b;
    const std::vector<std::pair<std::string, std::string>> merges = {
        {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"\xC4\xA0", "w"}, {"o", "r"}, {"\xC4\xA0w", "or"}};
    int next = 256;
    json jm = json::array();
    for (const auto& [a, b] : merges) {
        vocab[a + b] = next++;
        if (merges_as_pairs)
            jm.push_back(json::array({a, b}));
        else
            jm.push_back(a + " " + b);
    }
    json added = json::array();
    auto add = [&](int id, const std::string& content, bool special) {
        added.push_back({{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", special}});
    };
    add(1000, "<a>", true);
    add(1001, "<a><b>", false);
    add(1002, "<|end|>", true);
    return {
        {"version", "1.0"},
        {"added_tokens", added},
        {"normalizer", {{"type", "NFC"}}},
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           json::array({{{"type", "Split"},
                         {"pattern",
                          {{"Regex",
                            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                            "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
                         {"behavior", "Isolated"},
                         {"invert", false}},
                        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}})}}},
        {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
        {"model",
         {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", ""},
          {"end_of_word_suffix", ""}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
          {"vocab", vocab}, {"merges", jm}}},
    };
}

BpeTokenizer tiny(bool pairs = false) { return BpeTokenizer::from_json_text(tiny_json(pairs).dump(), "tiny.json"); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Goldens

TEST(BpeTokenizer, ReferenceCasesQwen3) {
    const BpeTokenizer& tok = qwen3();
    const json& cases = reference()["cases"];
    ASSERT_EQ(cases.size(), 43u);
    for (const json& c : cases) {
        const std::string text = c["text"];
        SCOPED_TRACE(text);
        const std::vector<int32_t> ids = tok.encode(text);
        EXPECT_EQ(ids, ids_of(c["qwen3_ids"]));
        const std::string decoded = tok.decode(ids_of(c["qwen3_ids"]));
        EXPECT_EQ(decoded, c["qwen3_decoded"].get<std::string>());
        EXPECT_EQ(decoded == text, c["qwen3_roundtrip"].get<bool>());
    }
}

TEST(BpeTokenizer, ReferenceCasesNano) {
    const BpeTokenizer& tok = nano();
    const json& cases = reference()["cases"];
    ASSERT_EQ(cases.size(), 43u);
    for (const json& c : cases) {
        const std::string text = c["text"];
        SCOPED_TRACE(text);
        const std::vector<int32_t> ids = tok.encode(text);
        EXPECT_EQ(ids, ids_of(c["nano_ids"]));
        const std::string decoded = tok.decode(ids_of(c["nano_ids"]));
        EXPECT_EQ(decoded, c["nano_decoded"].get<std::string>());
        EXPECT_EQ(decoded == text, c["nano_roundtrip"].get<bool>());
        const auto tokens = c["nano_tokens"].get<std::vector<std::string>>();
        ASSERT_EQ(tokens.size(), ids.size());
        for (std::size_t i = 0; i < ids.size(); ++i) {
            EXPECT_EQ(tok.id_to_token(ids[i]), tokens[i]);
            EXPECT_EQ(tok.token_to_id(tokens[i]), ids[i]);
        }
    }
}

TEST(BpeTokenizer, LlamaCppQwen2Goldens) {
    const std::string dir = kShared + "/tokenizers/qwen3/";
    const std::string inp = read_file(dir + "ggml-vocab-qwen2.gguf.inp");
    const std::string out = read_file(dir + "ggml-vocab-qwen2.gguf.out");
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> texts;
    for (std::size_t pos = 0; pos < inp.size();) {
        const std::size_t e = inp.find(sep, pos);
        ASSERT_NE(e, std::string::npos);
        texts.push_back(inp.substr(pos, e - pos));
        pos = e + sep.size();
    }
    std::vector<std::vector<int32_t>> expected;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream ls(line);
        std::vector<int32_t> v;
        for (int32_t id; ls >> id;) v.push_back(id);
        expected.push_back(v);
    }
    ASSERT_EQ(texts.size(), 46u);
    ASSERT_EQ(expected.size(), texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
        SCOPED_TRACE(texts[i]);
        const auto ids = qwen3().encode(texts[i]);
        EXPECT_EQ(ids, expected[i]);
        EXPECT_EQ(qwen3().decode(ids), texts[i]);
    }
}

TEST(BpeTokenizer, WikiText2NanoMatchesReferenceIds) {
    std::ifstream in(kShared + "/data/text/wikitext-2-raw/wiki.test.raw", std::ios::binary);
    ASSERT_TRUE(in.good());
    std::vector<std::string> rows;
    for (std::string line; std::getline(in, line);) rows.push_back(line + "\n");
    ASSERT_EQ(rows.size(), 4358u);
    std::string text;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        std::string& r = rows[i];
        if (r.find_first_not_of(" \t\n\r\f\v") == std::string::npos) r.clear();
        if (i) text += "\n\n";
        text += r;
    }
    const std::vector<int32_t> ids = nano().encode(text);
    EXPECT_EQ(ids.size(), 424471u);
    const std::vector<int64_t> ref = test::read_safetensors_i64(kShared + "/reference/qwen3-nano-text.safetensors",
                                                                "wikitext.input_ids_first32768");
    ASSERT_EQ(ref.size(), 32768u);
    ASSERT_GE(ids.size(), ref.size());
    std::size_t mismatches = 0, first = ref.size();
    for (std::size_t i = 0; i < ref.size(); ++i)
        if (ids[i] != ref[i] && mismatches++ == 0) first = i;
    EXPECT_EQ(mismatches, 0u) << "first mismatch at " << first;
    EXPECT_EQ(nano().decode(ids), text);  // WikiText is NFC, so it round-trips
}

// ---------------------------------------------------------------------------------------------
// Vocabulary queries, added tokens

TEST(BpeTokenizer, Qwen3VocabularyAndAddedTokens) {
    const BpeTokenizer& tok = qwen3();
    EXPECT_EQ(tok.vocab_size(), 151669);
    EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 151643);
    EXPECT_EQ(tok.token_to_id("<|im_start|>"), 151644);
    EXPECT_EQ(tok.token_to_id("<think>"), 151667);
    EXPECT_EQ(tok.token_to_id("no such token"), std::nullopt);
    EXPECT_TRUE(tok.is_special(151643));
    EXPECT_TRUE(tok.is_special(151655));
    EXPECT_FALSE(tok.is_special(151657));  // <tool_call> is not special
    EXPECT_FALSE(tok.is_special(151667));  // <think> is not special
    EXPECT_FALSE(tok.is_special(9707));
    EXPECT_FALSE(tok.is_special(-1));
    EXPECT_FALSE(tok.is_special(1 << 30));
    EXPECT_EQ(tok.id_to_token(151645), "<|im_end|>");
    EXPECT_EQ(tok.id_to_token(220), "\xC4\xA0");  // "Ġ"
    EXPECT_EQ(tok.encode("<|im_end|>"), std::vector<int32_t>{151645});
}

TEST(BpeTokenizer, SpecialTokensInsideText) {
    const BpeTokenizer& tok = qwen3();
    const std::string text = "a<|im_start|>b<think>c</think><|im_end|><|im_end|>x<|im_start";
    const auto ids = tok.encode(text);
    const auto count = [&](int32_t id) { return std::count(ids.begin(), ids.end(), id); };
    EXPECT_EQ(count(151644), 1);
    EXPECT_EQ(count(151645), 2);
    EXPECT_EQ(count(151667), 1);
    EXPECT_EQ(count(151668), 1);
    EXPECT_EQ(tok.decode(ids), text);
    // Pieces between added tokens are encoded on their own: "a" then <|im_start|>.
    EXPECT_EQ(ids[0], tok.encode("a")[0]);
    EXPECT_EQ(ids[1], 151644);
    // skip_special_tokens drops special tokens but keeps non-special added tokens.
    EXPECT_EQ(tok.decode(ids, true), "ab<think>c</think>x<|im_start");
}

TEST(BpeTokenizer, AddedTokensLeftmostLongest) {
    const BpeTokenizer tok = tiny();
    EXPECT_EQ(tok.encode("<a><b>"), std::vector<int32_t>{1001});
    EXPECT_EQ(tok.encode("<a><c>"), (std::vector<int32_t>{1000, '<', 'c', '>'}));
    EXPECT_EQ(tok.encode("x<a><a><b><|end|>"), (std::vector<int32_t>{'x', 1000, 1001, 1002}));
    EXPECT_EQ(tok.decode(tok.encode("x<a><a><b><|end|>"), true), "x<a><b>");
}

TEST(BpeTokenizer, MergesAsStringsOrPairsAreEquivalent) {
    const BpeTokenizer a = tiny(false), b = tiny(true);
    for (const char* s : {"hello world", "hell", "hello", " world", "helloworld wor", "ll he"}) {
        EXPECT_EQ(a.encode(s), b.encode(s)) << s;
    }
    const auto hello = a.token_to_id("hello");
    ASSERT_TRUE(hello.has_value());
    EXPECT_EQ(a.encode("hello"), std::vector<int32_t>{*hello});
    EXPECT_EQ(a.encode("hello world"), (std::vector<int32_t>{*hello, *a.token_to_id("\xC4\xA0wor"), 'l', 'd'}));
}

TEST(BpeTokenizer, LoadFromFolderAndFile) {
    BpeTokenizer a = BpeTokenizer::load(kShared + "/models/qwen3-nano");
    const BpeTokenizer b = BpeTokenizer::load(kNanoJson);
    EXPECT_EQ(a.vocab_size(), 8192);
    EXPECT_EQ(a.encode("Hello world"), b.encode("Hello world"));
    BpeTokenizer moved = std::move(a);
    EXPECT_EQ(moved.encode("Hello world"), (std::vector<int32_t>{6157, 315, 2147}));
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(BpeTokenizer, RoundTripsNfcText) {
    std::vector<std::string> texts = {
        "",
        " ",
        "\n\n\n",
        "  leading and trailing  ",
        "mixed\tTABS\r\nand CRLF\r\n",
        "código, naïve, Ærøskøbing, straße",
        "日本語のテキストと English mixed 123",
        "emoji 👩🏽‍💻🇯🇵 and math ∮ E⋅da = Q",
        "\xEF\xBF\xBD replacement char and \xF0\x9F\x98\x80",
        "'S 'T 'RE 'Ve 'm 'LL 'd ' s'",
    };
    // Random strings over a mix of ASCII, Latin-1, CJK and astral code points.
    std::mt19937 rng(1234);
    const std::vector<uint32_t> pool = {'a', 'Z', ' ', ' ', '\n', '\t', '\r', '0', '7', '\'', '.', '!', 0xA0, 0xE9,
                                        0x3B1, 0x4E2D, 0x3000, 0x200B, 0x1F600, 0x1F44D, '<', '|', '>'};
    for (int i = 0; i < 200; ++i) {
        std::string s;
        const int len = static_cast<int>(rng() % 40);
        for (int k = 0; k < len; ++k) utf8::append_codepoint(s, pool[rng() % pool.size()]);
        texts.push_back(s);
    }
    for (const BpeTokenizer* tok : {&nano(), &qwen3()}) {
        for (const std::string& t : texts) {
            EXPECT_EQ(tok->decode(tok->encode(t)), t) << t;
        }
    }
}

TEST(BpeTokenizer, LongPiecesUseTheHeapAndAgree) {
    // A 5000-space run and a 3000-letter word are single pieces far above the scan limit.
    const std::string spaces(5000, ' ');
    std::string word;
    for (int i = 0; i < 3000; ++i) word += "abcab"[i % 5];
    for (const std::string& t : {spaces + "x", word, spaces + word + "\n"}) {
        const auto ids = nano().encode(t);
        EXPECT_EQ(nano().decode(ids), t);
        EXPECT_EQ(qwen3().decode(qwen3().encode(t)), t);
    }
}

TEST(BpeMerge, ScanAndHeapAgreeOnRandomTables) {
    std::mt19937 rng(42);
    for (int trial = 0; trial < 50; ++trial) {
        MergeTable table;
        int32_t next = 6;
        for (int r = 0; r < 60; ++r) {
            const int32_t a = static_cast<int32_t>(rng() % static_cast<uint32_t>(next));
            const int32_t b = static_cast<int32_t>(rng() % static_cast<uint32_t>(next));
            if (table.find(a, b)) continue;
            table.insert(a, b, {r, next++});
        }
        BpeScratch s1, s2;
        for (int k = 0; k < 40; ++k) {
            std::vector<int32_t> ids(rng() % 120);
            for (auto& x : ids) x = static_cast<int32_t>(rng() % 6);
            std::vector<int32_t> a = ids, b = ids;
            bpe_merge_scan(table, a, s1);
            bpe_merge_heap(table, b, s2);
            ASSERT_EQ(a, b);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decode: U+FFFD rules and streaming

namespace {
int32_t byte_id(const BpeTokenizer& tok, uint8_t b) { return *tok.token_to_id(byte_level::byte_to_string(b)); }
std::vector<int32_t> byte_ids(const BpeTokenizer& tok, const std::string& bytes) {
    std::vector<int32_t> v;
    for (unsigned char c : bytes) v.push_back(byte_id(tok, c));
    return v;
}
const std::string kFFFD = "\xEF\xBF\xBD";
}  // namespace

TEST(BpeTokenizer, DecodeReplacesMaximalSubparts) {
    const BpeTokenizer& tok = nano();
    // Expected strings follow Python's bytes.decode("utf-8", errors="replace").
    EXPECT_EQ(tok.decode(byte_ids(tok, "\xE4\xBD")), kFFFD);                 // truncated 3-byte: one
    EXPECT_EQ(tok.decode(byte_ids(tok, "\xE4\xBD" "A")), kFFFD + "A");       // interrupted: one
    EXPECT_EQ(tok.decode(byte_ids(tok, "\xF0\x80\x80")), kFFFD + kFFFD + kFFFD);  // bad 2nd byte: each
    EXPECT_EQ(tok.decode(byte_ids(tok, "\xED\xA0\x80")), kFFFD + kFFFD + kFFFD);  // surrogate
    EXPECT_EQ(tok.decode(byte_ids(tok, "\xC0\xAF")), kFFFD + kFFFD);         // overlong
    EXPECT_EQ(tok.decode(byte_ids(tok, "\xF4\x90\x80\x80")), kFFFD + kFFFD + kFFFD + kFFFD);  // > U+10FFFF
    EXPECT_EQ(tok.decode(byte_ids(tok, "\xF0\x9F\x98")), kFFFD);             // truncated 4-byte: one
    EXPECT_EQ(tok.decode(byte_ids(tok, "a\x80\xBF" "b")), "a" + kFFFD + kFFFD + "b");
    EXPECT_EQ(tok.decode(byte_ids(tok, "\xE4\xBD\xA0")), "\xE4\xBD\xA0");    // 你
    EXPECT_EQ(tok.decode(byte_ids(tok, "\xFF\xFE")), kFFFD + kFFFD);
}

TEST(BpeTokenizer, DecodeUnknownIdThrows) {
    const std::string msg = expect_error([] { nano().decode(std::vector<int32_t>{1, 99999}); });
    EXPECT_NE(msg.find("99999"), std::string::npos) << msg;
    EXPECT_THROW(nano().decode(std::vector<int32_t>{-1}), Error);
    EXPECT_THROW(nano().id_to_token(8192), Error);
}

TEST(StreamingDecoder, HoldsBackIncompleteSequences) {
    const BpeTokenizer& tok = nano();
    StreamingDecoder dec(tok);
    // 你 = E4 BD A0, one byte per token.
    EXPECT_EQ(dec.push(byte_id(tok, 0xE4)), "");
    EXPECT_EQ(dec.push(byte_id(tok, 0xBD)), "");
    EXPECT_EQ(dec.push(byte_id(tok, 0xA0)), "\xE4\xBD\xA0");
    // An interrupted sequence is replaced as soon as it is known to be bad.
    EXPECT_EQ(dec.push(byte_id(tok, 0xF0)), "");
    EXPECT_EQ(dec.push(byte_id(tok, 0x9F)), "");
    EXPECT_EQ(dec.push(byte_id(tok, 'A')), kFFFD + "A");
    // flush() turns a pending incomplete tail into one U+FFFD.
    EXPECT_EQ(dec.push(byte_id(tok, 0xE4)), "");
    EXPECT_EQ(dec.flush(), kFFFD);
    EXPECT_EQ(dec.flush(), "");
}

TEST(StreamingDecoder, ConcatenationEqualsDecode) {
    for (const BpeTokenizer* tok : {&nano(), &qwen3()}) {
        const std::string text =
            "你好，世界！ emoji 👨‍👩‍👧‍👦 🇺🇸 <|im_start|>user\nΚαλημέρα κόσμε<|im_end|> مرحبا 안녕하세요 done";
        const auto ids = tok->encode(text);
        for (bool skip : {false, true}) {
            StreamingDecoder dec(*tok, skip);
            std::string streamed;
            for (int32_t id : ids) {
                const std::string piece = dec.push(id);
                EXPECT_EQ(utf8::find_invalid(piece), std::string::npos);
                streamed += piece;
            }
            streamed += dec.flush();
            EXPECT_EQ(streamed, tok->decode(ids, skip));
        }
    }
    // The nano vocabulary splits CJK characters across tokens, so holding back really happens.
    const auto ids = nano().encode("你好世界");
    EXPECT_GT(ids.size(), 4u);
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST(BpeTokenizer, InvalidUtf8InputThrowsWithOffset) {
    const std::string msg = expect_error([] { nano().encode(std::string("abc\xC3(def")); });
    EXPECT_NE(msg.find("invalid UTF-8"), std::string::npos) << msg;
    EXPECT_NE(msg.find("byte offset 3"), std::string::npos) << msg;
    EXPECT_THROW(nano().encode(std::string("\xED\xA0\x80")), Error);   // surrogate
    EXPECT_THROW(nano().encode(std::string("\xC0\x80")), Error);       // overlong NUL
    EXPECT_THROW(nano().encode(std::string("ok \xF0\x9F\x98")), Error);  // truncated at end
    EXPECT_EQ(nano().encode(std::string("a\0b", 3)).size(), 3u);        // NUL is valid UTF-8
}

TEST(BpeTokenizer, RejectsNonBpeModel) {
    json j = tiny_json(false);
    j["model"]["type"] = "WordPiece";
    const std::string msg = expect_error([&] { BpeTokenizer::from_json_text(j.dump(), "wp/tokenizer.json"); });
    EXPECT_NE(msg.find("wp/tokenizer.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("WordPiece"), std::string::npos) << msg;
    EXPECT_NE(msg.find("only BPE"), std::string::npos) << msg;

    json u = tiny_json(false);
    u["model"] = {{"type", "Unigram"}, {"vocab", json::array({json::array({"a", -1.0})})}};
    EXPECT_NE(expect_error([&] { BpeTokenizer::from_json_text(u.dump(), "u.json"); }).find("Unigram"), std::string::npos);
}

TEST(BpeTokenizer, RejectsCorruptJson) {
    const std::string good = tiny_json(false).dump();
    for (const std::string& bad : {good.substr(0, good.size() / 2), std::string("{\"model\": }"), std::string(""),
                                   std::string("[1, 2, 3]"), std::string("{\"version\": \"1.0\"}"), good + "}"}) {
        const std::string msg = expect_error([&] { BpeTokenizer::from_json_text(bad, "bad.json"); });
        EXPECT_NE(msg.find("bad.json"), std::string::npos) << msg;
    }
    const std::string msg = expect_error([&] { BpeTokenizer::from_json_text(good.substr(0, 100), "cut.json"); });
    EXPECT_NE(msg.find("invalid JSON"), std::string::npos) << msg;
}

TEST(BpeTokenizer, RejectsBadModelContents) {
    auto err = [](const json& j) { return expect_error([&] { BpeTokenizer::from_json_text(j.dump(), "t.json"); }); };
    json j = tiny_json(false);
    j["model"]["merges"].push_back("x nosuchtoken");
    EXPECT_NE(err(j).find("not in model.vocab"), std::string::npos);
    j = tiny_json(false);
    j["model"]["merges"].push_back("nospace");
    EXPECT_NE(err(j).find("left right"), std::string::npos);
    j = tiny_json(false);
    j["model"]["vocab"]["bad"] = "str";
    EXPECT_NE(err(j).find("integer"), std::string::npos);
    j = tiny_json(false);
    j["model"]["vocab"]["huge"] = 1ll << 40;
    EXPECT_NE(err(j).find("outside"), std::string::npos);
    j = tiny_json(false);
    j["model"]["byte_fallback"] = true;
    EXPECT_NE(err(j).find("byte_fallback"), std::string::npos);
    j = tiny_json(false);
    j["normalizer"] = {{"type", "Lowercase"}};
    EXPECT_NE(err(j).find("unsupported normalizer"), std::string::npos);
    j = tiny_json(false);
    j["pre_tokenizer"] = {{"type", "Whitespace"}};
    EXPECT_NE(err(j).find("unsupported pre-tokenizer"), std::string::npos);
    j = tiny_json(false);
    j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
    EXPECT_NE(err(j).find("Removed"), std::string::npos);
    j = tiny_json(false);
    j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
    EXPECT_NE(err(j).find("does not compile"), std::string::npos);
    j = tiny_json(false);
    j["decoder"] = {{"type", "WordPiece"}};
    EXPECT_NE(err(j).find("unsupported decoder"), std::string::npos);
}

TEST(BpeTokenizer, MissingFileErrors) {
    const std::string msg = expect_error([] { BpeTokenizer::load("/nonexistent/dir/tokenizer.json"); });
    EXPECT_NE(msg.find("not found"), std::string::npos) << msg;
    EXPECT_NE(msg.find("/nonexistent/dir/tokenizer.json"), std::string::npos) << msg;
    const auto dir = std::filesystem::temp_directory_path() / "ar_tok_empty_dir_test";
    std::filesystem::create_directories(dir);
    const std::string msg2 = expect_error([&] { BpeTokenizer::load(dir); });
    EXPECT_NE(msg2.find("tokenizer.json"), std::string::npos) << msg2;
    std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
// Pieces

TEST(SplitRegex, OnigurumaWhitespaceClass) {
    // U+180E (Mongolian vowel separator) is \s for PCRE2's \h but not for Oniguruma.
    const std::string p = SplitRegex::translate_oniguruma("\\s+(?!\\S)|[^\\s\\p{L}]");
    EXPECT_EQ(p.find("\\s"), std::string::npos) << p;
    EXPECT_EQ(p.find("\\S"), std::string::npos) << p;
    SplitRegex re("\\s+", "t");
    std::size_t b = 0, e = 0;
    EXPECT_FALSE(re.find("\xE1\xA0\x8E", 0, b, e));
    ASSERT_TRUE(re.find("a\xE3\x80\x80 b", 0, b, e));  // U+3000 ideographic space is \s
    EXPECT_EQ(b, 1u);
    EXPECT_EQ(e, 5u);
}

TEST(BpeTokenizer, NfcAppliedInsideText) {
    // e + U+0301 -> é; Å + U+0301 -> Ǻ (U+01FA); Hangul jamo L+V -> 가; ASCII around stays.
    const std::string raw = "cafe\xCC\x81 x \xC3\x85\xCC\x81 \xE1\x84\x80\xE1\x85\xA1! q\xCC\xA3\xCC\x87.";
    const std::string nfc = "caf\xC3\xA9 x \xC7\xBA \xEA\xB0\x80! q\xCC\xA3\xCC\x87.";
    for (const BpeTokenizer* tok : {&nano(), &qwen3()}) {
        EXPECT_EQ(tok->decode(tok->encode(raw)), nfc);
        EXPECT_EQ(tok->encode(raw), tok->encode(nfc));
    }
    // Canonical reordering: dot above (230) then dot below (220) reorders, then composes with s.
    const std::string s = "s\xCC\x87\xCC\xA3";  // s + U+0307 + U+0323 -> U+1E69
    EXPECT_EQ(nano().decode(nano().encode(s)), "\xE1\xB9\xA9");
}

TEST(BpeTokenizer, ConcurrentEncodeIsConsistent) {
    // encode() is const and shares the piece cache between threads.
    const json& cases = reference()["cases"];
    std::vector<std::string> texts;
    for (const json& c : cases) texts.push_back(c["text"]);
    std::vector<std::vector<int32_t>> expected;
    for (const json& c : cases) expected.push_back(ids_of(c["nano_ids"]));
    const BpeTokenizer tok = BpeTokenizer::load(kNanoJson);  // fresh cache
    std::vector<std::thread> threads;
    std::atomic<int> bad{0};
    for (int th = 0; th < 4; ++th) {
        threads.emplace_back([&, th] {
            for (int rep = 0; rep < 50; ++rep)
                for (std::size_t i = 0; i < texts.size(); ++i) {
                    const std::size_t k = (i + static_cast<std::size_t>(th) * 7) % texts.size();
                    if (tok.encode(texts[k]) != expected[k]) ++bad;
                }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(bad.load(), 0);
}

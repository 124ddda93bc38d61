// fuzz/fuzz_tokenizer.cpp — libFuzzer target for the byte-level BPE tokenizer.
//
// Why: encode() takes arbitrary user text and from_json_text() arbitrary files; neither may crash,
// hang or read out of bounds, whatever the bytes. Each input is used three ways:
//   (a) encoded with the qwen3-nano tokenizer (loaded once from $AR_SHARED_DIR, default
//       "../shared") and decoded again. Invalid UTF-8 must throw Error; valid text must
//       round-trip to its NFC form, and streaming decode must equal decode.
//   (b) parsed as a whole tokenizer.json by BpeTokenizer::from_json_text.
//   (c) spliced into a small valid tokenizer.json (as the split regex, an added token or a
//       merge), so that the loader's deeper checks are reached too; if it loads, it encodes.
// autoround::Error is the expected way to reject bad input; anything else aborts.
// Build: cmake -DAUTOROUND_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang ...
// Run:   AR_SHARED_DIR=/path/to/shared ./fuzz_tokenizer -max_len=4096
#include <utf8proc.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "text/bpe_tokenizer.h"

using autoround::BpeTokenizer;
using autoround::Error;
using autoround::StreamingDecoder;

namespace {

const BpeTokenizer& nano() {
    static const BpeTokenizer* tok = [] {
        const char* env = std::getenv("AR_SHARED_DIR");
        const std::string dir = env && *env ? env : "../shared";
        try {
            return new BpeTokenizer(BpeTokenizer::load(dir + "/models/qwen3-nano/tokenizer.json"));
        } catch (const Error& e) {
            std::fprintf(stderr, "fuzz_tokenizer: %s (set AR_SHARED_DIR)\n", e.what());
            std::abort();
        }
    }();
    return *tok;
}

bool valid_utf8(std::string_view s) {
    utf8proc_int32_t cp;
    for (std::size_t i = 0; i < s.size();) {
        const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                        static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
        if (n <= 0) return false;
        i += static_cast<std::size_t>(n);
    }
    return true;
}

std::string nfc(std::string_view s) {
    utf8proc_uint8_t* out = nullptr;
    const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
                                &out, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    std::string r = n >= 0 ? std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(n)) : std::string();
    std::free(out);
    return r;
}

void check_or_die(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "fuzz_tokenizer: invariant failed: %s\n", what);
        std::abort();
    }
}

void exercise(const BpeTokenizer& tok, std::string_view text) {
    try {
        const std::vector<int32_t> ids = tok.encode(text);
        const std::string back = tok.decode(ids);
        StreamingDecoder dec(tok);
        std::string streamed;
        for (int32_t id : ids) streamed += dec.push(id);
        streamed += dec.flush();
        check_or_die(streamed == back, "streaming decode == decode");
        for (int32_t id : ids) (void)tok.id_to_token(id);
    } catch (const Error&) {
    }
}

// A small valid tokenizer.json; the fuzz input replaces one of its parts.
nlohmann::json template_json() {
    using nlohmann::json;
    json vocab = json::object();
    const char* bytes_printable = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";
    int id = 0;
    for (const char* p = bytes_printable; *p; ++p) vocab[std::string(1, *p)] = id++;
    vocab["\xC4\xA0"] = id++;  // "Ġ" (space)
    vocab["he"] = id++;
    vocab["ll"] = id++;
    vocab["hell"] = id++;
    return {
        {"added_tokens", json::array({{{"id", 1000}, {"content", "<|x|>"}, {"special", true}}})},
        {"normalizer", {{"type", "NFC"}}},
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           json::array({{{"type", "Split"}, {"pattern", {{"Regex", "\\s+|\\p{L}+|\\p{N}|[^\\s\\p{L}\\p{N}]+"}}}, {"behavior", "Isolated"}},
                        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
        {"decoder", {{"type", "ByteLevel"}}},
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"h e", json::array({"l", "l"}), "he ll"})}}},
    };
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const BpeTokenizer& tok = nano();

    // (a) encode / decode with the real nano tokenizer.
    const bool valid = valid_utf8(input);
    try {
        const std::vector<int32_t> ids = tok.encode(input);
        check_or_die(valid, "invalid UTF-8 was accepted");
        const std::string back = tok.decode(ids);
        // Added tokens are matched before NFC, so NFC of the whole text is only the expectation
        // when no added token can occur (every nano added token starts with '<').
        if (input.find('<') == std::string_view::npos) check_or_die(back == nfc(input), "decode(encode(x)) == NFC(x)");
        check_or_die(valid_utf8(back), "decode output is valid UTF-8");
        StreamingDecoder dec(tok, size % 2 == 1);
        std::string streamed;
        for (int32_t id : ids) streamed += dec.push(id);
        streamed += dec.flush();
        check_or_die(streamed == tok.decode(ids, size % 2 == 1), "streaming decode == decode");
    } catch (const Error&) {
        check_or_die(!valid, "valid UTF-8 was rejected");
    }
    // decode of arbitrary ids built from the input bytes: must give valid UTF-8 or throw Error.
    try {
        std::vector<int32_t> ids;
        for (std::size_t i = 0; i + 1 < size && ids.size() < 512; i += 2) ids.push_back((data[i] << 8 | data[i + 1]) % 8300);
        check_or_die(valid_utf8(tok.decode(ids)), "decode output is valid UTF-8");
    } catch (const Error&) {
    }

    // (b) the input as a whole tokenizer.json.
    try {
        const BpeTokenizer t = BpeTokenizer::from_json_text(input, "fuzz.json");
        exercise(t, "hello world 123 <|x|> \xC3\xA9");
    } catch (const Error&) {
    }

    // (c) the input spliced into a valid tokenizer.json.
    if (size > 1 && valid) {
        nlohmann::json j = template_json();
        const std::string part(input);  // the whole input, so that it stays valid UTF-8
        switch (data[0] % 4) {
            case 0: j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = part; break;
            case 1: j["added_tokens"].push_back({{"id", 1001}, {"content", part}, {"special", false}, {"lstrip", (data[0] & 4) != 0}, {"rstrip", (data[0] & 8) != 0}}); break;
            case 2: j["model"]["merges"].push_back(part); break;
            case 3: j["model"]["vocab"][part] = 2000; break;
        }
        try {
            const BpeTokenizer t = BpeTokenizer::from_json_text(j.dump(), "fuzz-template.json");
            exercise(t, "hello  world\n 123 <|x|>hell\xC3\xA9 ");
            exercise(t, part);
        } catch (const Error&) {
        }
    }
    return 0;
}

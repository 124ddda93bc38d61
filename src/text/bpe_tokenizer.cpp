// text/bpe_tokenizer.cpp — byte-level BPE tokenizer from a Hugging Face tokenizer.json.
//
// Pipeline (qwen3-architecture.md §4.1): added tokens are matched leftmost-longest on the raw text;
// the segments between them are NFC-normalized, split by the pre-tokenizer regex (PCRE2), mapped
// through the GPT-2 byte table and merged by rank. Decoding maps the bytes back and replaces
// invalid UTF-8 with U+FFFD per maximal subpart.
//
// Speed: tokenizer.json (11 MB for Qwen3) is read with a SAX handler that streams model.vocab and
// model.merges straight into flat arrays; only the small rest becomes a JSON DOM. BPE works on
// ids (the 256 byte ids are precomputed), merges are a flat hash keyed by the pair of ids, and the
// result of each distinct piece is cached, so a typical word costs one hash lookup.
#include "text/bpe_tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "text/bpe_merge.h"
#include "text/byte_level.h"
#include "text/piece_cache.h"
#include "text/pretokenizer.h"
#include "text/string_id_map.h"
#include "text/utf8.h"

namespace autoround {

namespace {

using json = nlohmann::json;

// Ids above this are rejected: no real vocabulary comes close, and it keeps a hostile file from
// making us allocate gigabytes.
constexpr int64_t kMaxTokenId = (int64_t{1} << 22) - 1;

// Pieces up to this many bytes are cached; the cache is dropped when it grows past these sizes.
constexpr std::size_t kCacheMaxPieceBytes = 64;
constexpr std::size_t kCacheMaxEntries = 1u << 18;

// The GPT-2 split pattern that ByteLevel applies when use_regex is true.
constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// ---------------------------------------------------------------------------------------------
// SAX loader: model.vocab and model.merges are streamed into flat storage, the rest is a DOM.

class Loader final : public nlohmann::json_sax<json> {
public:
    explicit Loader(const std::string& label) : label_(label) {}

    json root;
    std::vector<std::pair<std::string, int64_t>> vocab;
    bool vocab_seen = false;
    bool merges_seen = false;
    std::string merge_arena;                        // the merge halves, back to back
    std::vector<std::array<uint32_t, 4>> merges;    // (left off, left len, right off, right len)

    bool null() override { return value(json(nullptr), "null"); }
    bool boolean(bool v) override { return value(json(v), "a boolean"); }
    bool number_integer(number_integer_t v) override {
        if (mode_ == Mode::Vocab) return vocab_id(v);
        return value(json(v), "a number");
    }
    bool number_unsigned(number_unsigned_t v) override {
        if (mode_ == Mode::Vocab) return vocab_id(v > static_cast<uint64_t>(kMaxTokenId) ? kMaxTokenId + 1 : static_cast<int64_t>(v));
        return value(json(v), "a number");
    }
    bool number_float(number_float_t v, const string_t&) override { return value(json(v), "a float"); }
    bool binary(binary_t&) override { fail(label_, ": unexpected binary value"); }

    bool string(string_t& s) override {
        switch (mode_) {
            case Mode::Vocab: fail(label_, ": model.vocab[\"", vkey_, "\"] must be an integer id, not a string");
            case Mode::Merges: {
                const std::size_t sp = s.find(' ');
                if (sp == std::string::npos || sp == 0 || sp + 1 == s.size())
                    fail(label_, ": model.merges[", merges.size(), "] = \"", s, "\" is not of the form \"left right\"");
                merges.push_back({0, 0, 0, 0});
                add_half(std::string_view(s).substr(0, sp), 0);
                add_half(std::string_view(s).substr(sp + 1), 2);
                return true;
            }
            case Mode::MergePair:
                if (pair_count_ >= 2) fail(label_, ": model.merges[", merges.size() - 1, "] has more than two parts");
                add_half(s, pair_count_ * 2);
                ++pair_count_;
                return true;
            case Mode::Dom: break;
        }
        add(json(std::move(s)));
        return true;
    }

    bool start_object(std::size_t) override {
        if (mode_ != Mode::Dom) not_allowed("an object");
        if (at_model_key("vocab")) {
            mode_ = Mode::Vocab;
            vocab_seen = true;
            return true;
        }
        open(json::object());
        return true;
    }
    bool key(string_t& k) override {
        if (mode_ == Mode::Vocab)
            vkey_ = std::move(k);
        else
            stack_.back().key = std::move(k);
        return true;
    }
    bool end_object() override {
        if (mode_ == Mode::Vocab)
            mode_ = Mode::Dom;
        else
            stack_.pop_back();
        return true;
    }
    bool start_array(std::size_t) override {
        if (mode_ == Mode::Merges) {
            mode_ = Mode::MergePair;
            pair_count_ = 0;
            merges.push_back({0, 0, 0, 0});
            return true;
        }
        if (mode_ != Mode::Dom) not_allowed("an array");
        if (at_model_key("merges")) {
            mode_ = Mode::Merges;
            merges_seen = true;
            return true;
        }
        open(json::array());
        return true;
    }
    bool end_array() override {
        if (mode_ == Mode::MergePair) {
            if (pair_count_ != 2) fail(label_, ": model.merges[", merges.size() - 1, "] must have exactly two strings");
            mode_ = Mode::Merges;
        } else if (mode_ == Mode::Merges) {
            mode_ = Mode::Dom;
        } else {
            stack_.pop_back();
        }
        return true;
    }
    bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& ex) override {
        fail(label_, ": invalid JSON near byte ", pos, ": ", ex.what());
    }

private:
    enum class Mode { Dom, Vocab, Merges, MergePair };
    struct Frame {
        json* node;
        std::string key;
    };

    bool at_model_key(const char* name) const {
        return stack_.size() == 2 && stack_[0].node->is_object() && stack_[0].key == "model" &&
               stack_[1].node->is_object() && stack_[1].key == name;
    }
    [[noreturn]] void not_allowed(const char* what) const {
        if (mode_ == Mode::Vocab) fail(label_, ": model.vocab[\"", vkey_, "\"] must be an integer id, not ", what);
        fail(label_, ": model.merges[", merges.size() - (mode_ == Mode::MergePair ? 1 : 0),
             "] must be a \"left right\" string or a [left, right] pair, not ", what);
    }
    bool value(json&& v, const char* what) {
        if (mode_ != Mode::Dom) not_allowed(what);
        add(std::move(v));
        return true;
    }
    bool vocab_id(int64_t id) {
        if (id < 0 || id > kMaxTokenId)
            fail(label_, ": model.vocab[\"", vkey_, "\"] has id ", id, ", outside [0, ", kMaxTokenId, "]");
        vocab.emplace_back(std::move(vkey_), id);
        return true;
    }
    void add_half(std::string_view s, int slot) {  // into merges.back()
        auto& cur = merges.back();
        cur[static_cast<std::size_t>(slot)] = static_cast<uint32_t>(merge_arena.size());
        cur[static_cast<std::size_t>(slot) + 1] = static_cast<uint32_t>(s.size());
        merge_arena.append(s);
    }
    json* add(json&& v) {
        if (stack_.empty()) {
            root = std::move(v);
            return &root;
        }
        json* parent = stack_.back().node;
        if (parent->is_array()) {
            parent->push_back(std::move(v));
            return &parent->back();
        }
        json& slot = (*parent)[stack_.back().key];
        slot = std::move(v);
        return &slot;
    }
    void open(json&& v) {
        if (stack_.size() >= 256) fail(label_, ": JSON nested too deeply");
        json* p = add(std::move(v));
        stack_.push_back({p, {}});
    }

    std::string label_;
    std::vector<Frame> stack_;
    Mode mode_ = Mode::Dom;
    std::string vkey_;
    int pair_count_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Small helpers.

std::string type_of(const json& j) {
    if (j.is_object() && j.contains("type") && j["type"].is_string()) return j["type"].get<std::string>();
    return j.is_null() ? "null" : "(no type)";
}

bool get_bool(const json& obj, const char* key, bool def) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return def;
    return it->is_boolean() ? it->get<bool>() : def;
}

// Unicode White_Space (as Rust's char::is_whitespace, used for added-token lstrip/rstrip).
bool is_white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Decodes the (valid) code point starting at s[i]; returns its length.
std::size_t decode_at(std::string_view s, std::size_t i, uint32_t& cp) {
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    if (p[i] < 0x80) {
        cp = p[i];
        return 1;
    }
    const std::size_t len = p[i] >= 0xF0 ? 4 : p[i] >= 0xE0 ? 3 : 2;
    cp = p[i] & (0x7F >> len);
    for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
    return len;
}

// Start of the code point that ends just before s[i].
std::size_t prev_start(std::string_view s, std::size_t i) {
    do --i;
    while (i > 0 && (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80);
    return i;
}

bool is_word_char(uint32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    return !is_white_space(c);  // approximation: any other non-space, non-ASCII code point
}

// Per-thread buffers reused across encode() calls.
struct EncodeScratch {
    std::string nfc;
    std::vector<int32_t> sym;
    BpeScratch bpe;
};

EncodeScratch& encode_scratch() {
    thread_local EncodeScratch s;
    return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct BpeTokenizer::Impl {
    struct Added {
        std::string content;
        int32_t id;
        bool special, lstrip, rstrip, single_word;
    };

    std::string label;
    std::vector<std::string> vocab_tokens;               // id -> byte-level string (BPE vocab)
    std::vector<uint8_t> has_vocab;                      // id -> 1 if in the BPE vocab
    StringIdMap vocab;                                   // byte-level string -> id
    MergeTable merges;
    std::array<int32_t, 256> byte_ids{};                 // id of each single byte, or -1
    int32_t unk_id = -1;
    bool fuse_unk = false;
    bool ignore_merges = false;

    std::vector<Added> added;
    std::vector<int32_t> added_of_id;                    // id -> index in `added`, or -1
    std::unordered_map<std::string, int32_t> added_by_content;
    std::array<std::vector<int32_t>, 256> added_by_first;  // first byte -> indices, longest first
    int single_first_byte = -1;  // the first byte shared by all added tokens, if there is one

    bool nfc = false;
    std::optional<SplitRegex> split;
    int32_t n_ids = 0;  // max id + 1

    // Piece cache: raw piece bytes -> ids.
    mutable std::mutex cache_mu;
    mutable PieceCache cache{kCacheMaxEntries};

    bool known(int32_t id) const {
        return id >= 0 && id < n_ids && (has_vocab[static_cast<std::size_t>(id)] || added_of_id[static_cast<std::size_t>(id)] >= 0);
    }

    // Appends the raw bytes of token `id` (nothing for a skipped special token).
    void append_token_bytes(int32_t id, bool skip_special, std::string& out) const {
        check(known(id), label, ": token id ", id, " is not in the vocabulary (size ", n_ids, ")");
        const int32_t a = added_of_id[static_cast<std::size_t>(id)];
        if (a >= 0) {
            if (!(skip_special && added[static_cast<std::size_t>(a)].special)) out += added[static_cast<std::size_t>(a)].content;
            return;
        }
        const std::string& tok = vocab_tokens[static_cast<std::size_t>(id)];
        if (!byte_level::decode_append(tok, out)) out += tok;
    }

    // Finds the leftmost-longest added token in text[from..]; returns false if none.
    // [mb, me) is the span consumed (with lstrip/rstrip whitespace), `id` the token.
    bool find_added(std::string_view text, std::size_t from, std::size_t& mb, std::size_t& me, int32_t& id) const {
        if (added.empty()) return false;
        const auto* p = reinterpret_cast<const uint8_t*>(text.data());
        for (std::size_t i = from; i < text.size(); ++i) {
            if (single_first_byte >= 0) {  // usually every added token starts with '<'
                const void* hit = std::memchr(p + i, single_first_byte, text.size() - i);
                if (!hit) return false;
                i = static_cast<std::size_t>(static_cast<const uint8_t*>(hit) - p);
            }
            const auto& cands = added_by_first[p[i]];
            if (cands.empty()) continue;
            for (int32_t ci : cands) {
                const Added& a = added[static_cast<std::size_t>(ci)];
                if (text.compare(i, a.content.size(), a.content) != 0) continue;
                std::size_t b = i, e = i + a.content.size();
                if (a.single_word) {
                    uint32_t c;
                    if (b > 0 && (decode_at(text, prev_start(text, b), c), is_word_char(c))) continue;
                    if (e < text.size() && (decode_at(text, e, c), is_word_char(c))) continue;
                }
                if (a.lstrip) {
                    while (b > from) {
                        uint32_t c;
                        const std::size_t ps = prev_start(text, b);
                        decode_at(text, ps, c);
                        if (!is_white_space(c)) break;
                        b = ps;
                    }
                }
                if (a.rstrip) {
                    while (e < text.size()) {
                        uint32_t c;
                        const std::size_t len = decode_at(text, e, c);
                        if (!is_white_space(c)) break;
                        e += len;
                    }
                }
                mb = b;
                me = e;
                id = a.id;
                return true;
            }
        }
        return false;
    }

    // NFC of `seg`; returns `seg` itself when it is already NFC by the quick test.
    //
    // Code points below U+0300 are all NFC_Quick_Check=Yes with combining class 0, so only runs
    // of non-ASCII bytes that contain a lead byte >= 0xCC (U+0300 and up) can change. An ASCII
    // character is a starter that never composes with what precedes it, so NFC of the whole
    // equals NFC applied to each such run together with the one ASCII character before it (which
    // may compose with a following combining mark), the rest copied unchanged.
    std::string_view normalize(std::string_view seg, std::string& buf) const {
        if (!nfc) return seg;
        const auto* p = reinterpret_cast<const uint8_t*>(seg.data());
        const std::size_t n = seg.size();
        std::size_t i = 0;
        while (i < n && p[i] < 0xCC) ++i;
        if (i == n) return seg;
        buf.clear();
        std::size_t copied = 0;  // seg[0, copied) is in buf
        i = 0;
        while (i < n) {
            if (p[i] < 0x80) {
                ++i;
                continue;
            }
            std::size_t run_end = i;
            bool high = false;
            while (run_end < n && p[run_end] >= 0x80) high |= p[run_end++] >= 0xCC;
            if (high) {
                const std::size_t b = i > copied ? i - 1 : i;  // include the ASCII starter before the run
                buf.append(seg.data() + copied, b - copied);
                nfc_append(seg.substr(b, run_end - b), buf);
                copied = run_end;
            }
            i = run_end;
        }
        buf.append(seg.data() + copied, n - copied);
        return buf;
    }

    void nfc_append(std::string_view s, std::string& out) const {
        utf8proc_uint8_t* res = nullptr;
        const utf8proc_ssize_t len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                                  static_cast<utf8proc_ssize_t>(s.size()), &res,
                                                  static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
        if (len < 0) {
            std::free(res);
            fail(label, ": NFC normalization failed: ", utf8proc_errmsg(len));
        }
        out.append(reinterpret_cast<const char*>(res), static_cast<std::size_t>(len));
        std::free(res);
    }

    void encode_piece(std::string_view piece, std::vector<int32_t>& out, EncodeScratch& s) const {
        const auto* p = reinterpret_cast<const uint8_t*>(piece.data());
        if (piece.size() == 1) {
            const int32_t id = byte_ids[p[0]];
            if (id >= 0)
                out.push_back(id);
            else if (unk_id >= 0)
                out.push_back(unk_id);
            return;
        }
        if (ignore_merges) {
            const int32_t id = vocab.find(byte_level::encode(piece));
            if (id >= 0) {
                out.push_back(id);
                return;
            }
        }
        const bool cacheable = piece.size() <= kCacheMaxPieceBytes;
        const uint64_t h = cacheable ? PieceCache::hash(piece) : 0;
        if (cacheable) {
            std::lock_guard<std::mutex> lock(cache_mu);
            if (cache.find(piece, h, out)) return;
        }
        auto& sym = s.sym;
        sym.clear();
        bool last_unk = false;
        for (std::size_t i = 0; i < piece.size(); ++i) {
            const int32_t id = byte_ids[p[i]];
            if (id >= 0) {
                sym.push_back(id);
                last_unk = false;
            } else if (unk_id >= 0 && !(fuse_unk && last_unk)) {
                sym.push_back(unk_id);
                last_unk = true;
            }
        }
        bpe_merge(merges, sym, s.bpe);
        out.insert(out.end(), sym.begin(), sym.end());
        if (cacheable) {
            std::lock_guard<std::mutex> lock(cache_mu);
            cache.insert(piece, h, sym.data(), sym.size());
        }
    }

    void encode_segment(std::string_view seg, std::vector<int32_t>& out, EncodeScratch& s) const {
        if (seg.empty()) return;
        const std::string_view text = normalize(seg, s.nfc);
        if (split)
            split->for_each_piece(text, [&](std::string_view piece) { encode_piece(piece, out, s); });
        else
            encode_piece(text, out, s);
    }
};

// ---------------------------------------------------------------------------------------------
// Loading.

BpeTokenizer BpeTokenizer::load(const std::filesystem::path& path) {
    std::filesystem::path file = path;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) file = path / "tokenizer.json";
    if (!std::filesystem::exists(file, ec)) {
        if (file != path) fail("tokenizer file not found: ", file.string(), " (the folder ", path.string(), " has no tokenizer.json)");
        fail("tokenizer file not found: ", file.string());
    }
    std::ifstream in(file, std::ios::binary);
    check(in.good(), "cannot open tokenizer file ", file.string());
    std::string text;
    in.seekg(0, std::ios::end);
    const auto size = in.tellg();
    check(size >= 0, "cannot read tokenizer file ", file.string());
    text.resize(static_cast<std::size_t>(size));
    in.seekg(0);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    check(in.good() || in.eof(), "cannot read tokenizer file ", file.string());
    return from_json_text(text, file.string());
}

BpeTokenizer BpeTokenizer::from_json_text(std::string_view json_text, const std::string& label) {
    auto impl = std::make_unique<Impl>();
    Impl& t = *impl;
    t.label = label;

    Loader L(label);
    try {
        json::sax_parse(json_text.begin(), json_text.end(), &L);
    } catch (const nlohmann::json::exception& e) {
        fail(label, ": invalid JSON: ", e.what());
    }
    const json& root = L.root;
    check(root.is_object(), label, ": not a tokenizer.json (the top level is not a JSON object)");
    auto mit = root.find("model");
    check(mit != root.end() && mit->is_object(), label, ": not a tokenizer.json (no \"model\" object)");
    const json& model = *mit;

    // ---- model ----
    if (auto it = model.find("type"); it != model.end()) {
        check(it->is_string(), label, ": model.type must be a string");
        const std::string type = it->get<std::string>();
        check(type == "BPE", label, ": model type is \"", type, "\"; only BPE tokenizers are supported");
    } else {
        check(L.vocab_seen && L.merges_seen, label, ": model has no \"type\" and is not a BPE model (no vocab and merges)");
    }
    check(L.vocab_seen, label, ": model.vocab is missing or is not an object of token -> id");
    check(L.merges_seen, label, ": model.merges is missing or is not an array");
    if (auto it = model.find("dropout"); it != model.end() && !it->is_null())
        check(it->is_number() && it->get<double>() == 0.0, label, ": BPE dropout is not supported");
    check(!get_bool(model, "byte_fallback", false), label, ": BPE byte_fallback is not supported");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        if (auto it = model.find(k); it != model.end() && !it->is_null())
            check(it->is_string() && it->get<std::string>().empty(), label, ": BPE ", k, " is not supported");
    }
    t.fuse_unk = get_bool(model, "fuse_unk", false);
    t.ignore_merges = get_bool(model, "ignore_merges", false);

    // ---- added tokens (parsed before sizing the id space) ----
    int64_t max_id = -1;
    for (const auto& [tok, id] : L.vocab) max_id = std::max(max_id, id);
    if (auto it = root.find("added_tokens"); it != root.end() && !it->is_null()) {
        check(it->is_array(), label, ": added_tokens must be an array");
        for (std::size_t i = 0; i < it->size(); ++i) {
            const json& a = (*it)[i];
            check(a.is_object() && a.contains("id") && a.contains("content") && a["id"].is_number_integer() &&
                      a["content"].is_string(),
                  label, ": added_tokens[", i, "] needs an integer \"id\" and a string \"content\"");
            const int64_t id = a["id"].get<int64_t>();
            check(id >= 0 && id <= kMaxTokenId, label, ": added_tokens[", i, "] has id ", id, ", outside [0, ", kMaxTokenId, "]");
            Impl::Added ad{a["content"].get<std::string>(), static_cast<int32_t>(id), get_bool(a, "special", false),
                           get_bool(a, "lstrip", false), get_bool(a, "rstrip", false), get_bool(a, "single_word", false)};
            check(utf8::find_invalid(ad.content) == std::string_view::npos, label, ": added_tokens[", i, "] is not valid UTF-8");
            max_id = std::max(max_id, id);
            t.added.push_back(std::move(ad));
        }
    }
    t.n_ids = static_cast<int32_t>(max_id + 1);

    // ---- vocab ----
    t.vocab_tokens.resize(static_cast<std::size_t>(t.n_ids));
    t.has_vocab.assign(static_cast<std::size_t>(t.n_ids), 0);
    for (auto& [tok, id] : L.vocab) {
        const auto i = static_cast<std::size_t>(id);
        check(!t.has_vocab[i], label, ": model.vocab gives id ", id, " to both \"", t.vocab_tokens[i], "\" and \"", tok, "\"");
        t.has_vocab[i] = 1;
        t.vocab_tokens[i] = std::move(tok);
    }
    L.vocab.clear();
    L.vocab.shrink_to_fit();
    t.vocab.reserve(static_cast<std::size_t>(t.n_ids));
    {
        // Hash a few entries ahead and prefetch their slots (the table is bigger than L2).
        constexpr std::size_t kAhead = 16;
        std::vector<uint64_t> hashes(t.vocab_tokens.size());
        for (std::size_t i = 0; i < t.vocab_tokens.size(); ++i) hashes[i] = StringIdMap::hash(t.vocab_tokens[i]);
        for (std::size_t i = 0; i < std::min(kAhead, hashes.size()); ++i) t.vocab.prefetch(hashes[i]);
        for (std::size_t i = 0; i < t.vocab_tokens.size(); ++i) {
            if (i + kAhead < hashes.size()) t.vocab.prefetch(hashes[i + kAhead]);
            if (!t.has_vocab[i]) continue;
            check(t.vocab.insert_hashed(t.vocab_tokens[i], hashes[i], static_cast<int32_t>(i)), label, ": model.vocab lists \"", t.vocab_tokens[i], "\" twice");
        }
    }
    for (int b = 0; b < 256; ++b) {
        t.byte_ids[static_cast<std::size_t>(b)] = t.vocab.find(byte_level::byte_to_string(static_cast<uint8_t>(b)));
    }
    if (auto it = model.find("unk_token"); it != model.end() && it->is_string()) {
        t.unk_id = t.vocab.find(it->get<std::string>());
    }

    // ---- merges ----
    // Resolved in batches: hash and prefetch all three strings of a batch first, then look up,
    // so the cache misses of a batch overlap.
    t.merges.reserve(L.merges.size());
    {
        constexpr std::size_t kBatch = 32;
        std::string joined[kBatch];
        uint64_t h[kBatch][3];
        std::string_view sv[kBatch][3];
        int32_t ids[kBatch][3];
        for (std::size_t r0 = 0; r0 < L.merges.size(); r0 += kBatch) {
            const std::size_t nb = std::min(kBatch, L.merges.size() - r0);
            for (std::size_t k = 0; k < nb; ++k) {
                const auto& m = L.merges[r0 + k];
                sv[k][0] = std::string_view(L.merge_arena.data() + m[0], m[1]);
                sv[k][1] = std::string_view(L.merge_arena.data() + m[2], m[3]);
                joined[k].assign(sv[k][0]);
                joined[k].append(sv[k][1]);
                sv[k][2] = joined[k];
                for (int q = 0; q < 3; ++q) {
                    h[k][q] = StringIdMap::hash(sv[k][q]);
                    t.vocab.prefetch(h[k][q]);
                }
            }
            for (std::size_t k = 0; k < nb; ++k) {
                const std::size_t r = r0 + k;
                const std::string_view a = sv[k][0], b = sv[k][1];
                ids[k][0] = t.vocab.find_hashed(a, h[k][0]);
                ids[k][1] = t.vocab.find_hashed(b, h[k][1]);
                check(ids[k][0] >= 0 && ids[k][1] >= 0, label, ": model.merges[", r, "] = (\"", a, "\", \"", b,
                      "\") uses a token that is not in model.vocab");
                ids[k][2] = t.vocab.find_hashed(sv[k][2], h[k][2]);
                check(ids[k][2] >= 0, label, ": model.merges[", r, "] = (\"", a, "\", \"", b, "\") makes \"", sv[k][2],
                      "\", which is not in model.vocab");
                t.merges.prefetch(ids[k][0], ids[k][1]);
            }
            for (std::size_t k = 0; k < nb; ++k)
                t.merges.insert(ids[k][0], ids[k][1], {static_cast<int32_t>(r0 + k), ids[k][2]});
        }
    }

    // ---- added-token lookup ----
    t.added_of_id.assign(static_cast<std::size_t>(t.n_ids), -1);
    for (std::size_t i = 0; i < t.added.size(); ++i) {
        const Impl::Added& a = t.added[i];
        t.added_of_id[static_cast<std::size_t>(a.id)] = static_cast<int32_t>(i);
        t.added_by_content[a.content] = a.id;
        if (!a.content.empty()) t.added_by_first[static_cast<uint8_t>(a.content[0])].push_back(static_cast<int32_t>(i));
    }
    for (int b = 0; b < 256; ++b) {
        if (t.added_by_first[static_cast<std::size_t>(b)].empty()) continue;
        t.single_first_byte = t.single_first_byte == -1 ? b : -2;
    }
    if (t.single_first_byte < 0) t.single_first_byte = -1;
    for (auto& v : t.added_by_first)
        std::stable_sort(v.begin(), v.end(), [&](int32_t x, int32_t y) {
            return t.added[static_cast<std::size_t>(x)].content.size() > t.added[static_cast<std::size_t>(y)].content.size();
        });

    // ---- normalizer ----
    if (auto it = root.find("normalizer"); it != root.end() && !it->is_null()) {
        const std::string type = type_of(*it);
        if (type == "NFC") {
            t.nfc = true;
        } else if (type == "Sequence" && it->contains("normalizers") && (*it)["normalizers"].is_array()) {
            for (const json& n : (*it)["normalizers"]) {
                const std::string nt = type_of(n);
                check(nt == "NFC", label, ": unsupported normalizer \"", nt, "\" (only NFC is implemented)");
                t.nfc = true;
            }
        } else {
            fail(label, ": unsupported normalizer \"", type, "\" (only NFC is implemented)");
        }
    }

    // ---- pre-tokenizer: [Split(regex, Isolated)], ByteLevel ----
    {
        std::vector<const json*> steps;
        auto it = root.find("pre_tokenizer");
        check(it != root.end() && !it->is_null(), label, ": no pre_tokenizer; this engine needs a ByteLevel pre-tokenizer");
        if (type_of(*it) == "Sequence") {
            check(it->contains("pretokenizers") && (*it)["pretokenizers"].is_array(), label,
                  ": pre_tokenizer Sequence without a \"pretokenizers\" array");
            for (const json& p : (*it)["pretokenizers"]) steps.push_back(&p);
        } else {
            steps.push_back(&*it);
        }
        bool byte_level_seen = false;
        std::optional<std::string> pattern;
        for (const json* pj : steps) {
            const json& p = *pj;
            const std::string type = type_of(p);
            if (type == "Split") {
                check(!pattern, label, ": more than one regex split in the pre_tokenizer is not supported");
                check(!byte_level_seen, label, ": a Split after ByteLevel in the pre_tokenizer is not supported");
                check(p.contains("pattern") && p["pattern"].is_object(), label, ": Split pre-tokenizer without a pattern");
                const json& pat = p["pattern"];
                if (pat.contains("Regex") && pat["Regex"].is_string()) {
                    pattern = pat["Regex"].get<std::string>();
                } else if (pat.contains("String") && pat["String"].is_string()) {
                    pattern = "\\Q" + pat["String"].get<std::string>() + "\\E";
                    check(pat["String"].get<std::string>().find("\\E") == std::string::npos, label,
                          ": Split string pattern containing \\E is not supported");
                } else {
                    fail(label, ": Split pre-tokenizer pattern must be {\"Regex\": ...} or {\"String\": ...}");
                }
                const std::string behavior = p.contains("behavior") && p["behavior"].is_string() ? p["behavior"].get<std::string>() : "";
                check(behavior == "Isolated", label, ": Split behavior \"", behavior, "\" is not supported (only Isolated)");
                check(!get_bool(p, "invert", false), label, ": Split with invert=true is not supported");
            } else if (type == "ByteLevel") {
                check(!byte_level_seen, label, ": two ByteLevel pre-tokenizers are not supported");
                byte_level_seen = true;
                check(!get_bool(p, "add_prefix_space", false), label, ": ByteLevel add_prefix_space=true is not supported");
                if (get_bool(p, "use_regex", true)) {
                    check(!pattern, label, ": ByteLevel use_regex=true after a Split is not supported");
                    pattern = kGpt2Pattern;
                }
            } else {
                fail(label, ": unsupported pre-tokenizer \"", type, "\" (supported: Split with Isolated, ByteLevel)");
            }
        }
        check(byte_level_seen, label, ": the pre_tokenizer has no ByteLevel step; only byte-level BPE is supported");
        if (pattern) t.split.emplace(*pattern, label);
    }

    // ---- decoder ----
    if (auto it = root.find("decoder"); it != root.end() && !it->is_null()) {
        const std::string type = type_of(*it);
        check(type == "ByteLevel", label, ": unsupported decoder \"", type, "\" (only ByteLevel is implemented)");
    }

    return BpeTokenizer(std::move(impl));
}

BpeTokenizer::BpeTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

// ---------------------------------------------------------------------------------------------
// Encode / decode.

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
    const Impl& t = *impl_;
    if (const std::size_t bad = utf8::find_invalid(text); bad != std::string_view::npos) {
        std::ostringstream hex;
        hex << std::hex << static_cast<int>(static_cast<uint8_t>(text[bad]));
        fail(t.label, ": cannot encode text: invalid UTF-8 at byte offset ", bad, " (byte 0x", hex.str(), ")");
    }
    EncodeScratch& s = encode_scratch();
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 8);
    std::size_t pos = 0, mb = 0, me = 0;
    int32_t id = -1;
    while (t.find_added(text, pos, mb, me, id)) {
        t.encode_segment(text.substr(pos, mb - pos), out, s);
        out.push_back(id);
        pos = me;
    }
    t.encode_segment(text.substr(pos), out, s);
    return out;
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
    std::string bytes;
    bytes.reserve(ids.size() * 4);
    for (int32_t id : ids) impl_->append_token_bytes(id, skip_special_tokens, bytes);
    std::string out;
    out.reserve(bytes.size());
    utf8::decode_lossy(bytes, out, true);
    return out;
}

const std::string& BpeTokenizer::id_to_token(int32_t id) const {
    const Impl& t = *impl_;
    check(t.known(id), t.label, ": token id ", id, " is not in the vocabulary (size ", t.n_ids, ")");
    const int32_t a = t.added_of_id[static_cast<std::size_t>(id)];
    return a >= 0 ? t.added[static_cast<std::size_t>(a)].content : t.vocab_tokens[static_cast<std::size_t>(id)];
}

std::optional<int32_t> BpeTokenizer::token_to_id(std::string_view token) const {
    const Impl& t = *impl_;
    if (auto it = t.added_by_content.find(std::string(token)); it != t.added_by_content.end()) return it->second;
    if (const int32_t id = t.vocab.find(token); id >= 0) return id;
    return std::nullopt;
}

bool BpeTokenizer::is_special(int32_t id) const {
    const Impl& t = *impl_;
    if (id < 0 || id >= t.n_ids) return false;
    const int32_t a = t.added_of_id[static_cast<std::size_t>(id)];
    return a >= 0 && t.added[static_cast<std::size_t>(a)].special;
}

int32_t BpeTokenizer::vocab_size() const { return impl_->n_ids; }

// ---------------------------------------------------------------------------------------------

StreamingDecoder::StreamingDecoder(const BpeTokenizer& tok, bool skip_special_tokens)
    : tok_(tok), skip_special_(skip_special_tokens) {}

std::string StreamingDecoder::push(int32_t id) {
    tok_.impl_->append_token_bytes(id, skip_special_, pending_);
    std::string out;
    const std::size_t used = utf8::decode_lossy(pending_, out, false);
    pending_.erase(0, used);
    return out;
}

std::string StreamingDecoder::flush() {
    std::string out;
    utf8::decode_lossy(pending_, out, true);
    pending_.clear();
    return out;
}

}  // namespace autoround

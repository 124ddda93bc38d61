// quant/calibration.cpp — builds AutoRound's calibration set from local text/JSONL/JSON files or
// folders (spec §1.4): the --dataset grammar, document loading, the reference tool's seeded
// shuffles (Python random and numpy PCG64, both bit-exact), chat templating, tokenization, concat,
// the length and repetition filters, and the nsamples split among several datasets.
// See calibration.h for the pipeline and the deliberate deviations from the reference tool.
#include "quant/calibration.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "hub/hub_download.h"
#include "hub/hub_settings.h"
#include "io/parquet_reader.h"
#include "io/model_config.h"
#include "text/bpe_tokenizer.h"
#include "text/chat_template.h"

namespace autoround {
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

// ---- small string helpers ----------------------------------------------------------------------

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::vector<std::string> split_on(std::string_view s, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    for (;;) {
        const size_t p = s.find(sep, start);
        out.emplace_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
        if (p == std::string_view::npos) break;
        start = p + 1;
    }
    return out;
}

// Is code point `cp` whitespace for Python's str.isspace()?
bool py_isspace(uint32_t cp) {
    if ((cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20)) return true;
    if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A)) return true;
    return cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Python's str.rstrip() on UTF-8 bytes: removes trailing code points that are whitespace.
void py_rstrip(std::string& s) {
    while (!s.empty()) {
        size_t start = s.size() - 1;
        int cont = 0;
        while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 && cont < 3) --start, ++cont;
        const auto* p = reinterpret_cast<const unsigned char*>(s.data() + start);
        const size_t len = s.size() - start;
        uint32_t cp;
        if (len == 1 && p[0] < 0x80) cp = p[0];
        else if (len == 2 && (p[0] & 0xE0) == 0xC0) cp = ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
        else if (len == 3 && (p[0] & 0xF0) == 0xE0) cp = ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
        else if (len == 4 && (p[0] & 0xF8) == 0xF0)
            cp = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
        else return;  // not a well-formed last code point: leave it to the tokenizer's UTF-8 check
        if (!py_isspace(cp)) return;
        s.resize(start);
    }
}

bool parse_bool_value(const std::string& entry, const std::string& key, const std::optional<std::string>& v) {
    if (!v) return true;  // a bare key means true, as in the reference tool
    const std::string s = lower(trim(*v));
    if (s == "true" || s == "1" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "0" || s == "no" || s == "off") return false;
    fail("--dataset entry '", entry, "': ", key, "=", *v, " is not a boolean (use ", key, "=true or ", key,
         "=false)");
}

// ---- CPython's random.Random: MT19937 with init_by_array seeding --------------------------------

class PyRandom {
public:
    explicit PyRandom(uint64_t seed) {
        // random.seed(int): the absolute value as little-endian 32-bit words (one word for 0).
        uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
        init_by_array(key, key[1] != 0 ? 2 : 1);
    }

    uint32_t next32() {
        static constexpr uint32_t kMag01[2] = {0u, 0x9908B0DFu};
        if (mti_ >= kN) {
            int kk = 0;
            for (; kk < kN - kM; ++kk) {
                const uint32_t y = (mt_[kk] & 0x80000000u) | (mt_[kk + 1] & 0x7FFFFFFFu);
                mt_[kk] = mt_[kk + kM] ^ (y >> 1) ^ kMag01[y & 1u];
            }
            for (; kk < kN - 1; ++kk) {
                const uint32_t y = (mt_[kk] & 0x80000000u) | (mt_[kk + 1] & 0x7FFFFFFFu);
                mt_[kk] = mt_[kk + (kM - kN)] ^ (y >> 1) ^ kMag01[y & 1u];
            }
            const uint32_t y = (mt_[kN - 1] & 0x80000000u) | (mt_[0] & 0x7FFFFFFFu);
            mt_[kN - 1] = mt_[kM - 1] ^ (y >> 1) ^ kMag01[y & 1u];
            mti_ = 0;
        }
        uint32_t y = mt_[mti_++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9D2C5680u;
        y ^= (y << 15) & 0xEFC60000u;
        y ^= y >> 18;
        return y;
    }

    // random.getrandbits(k), 1 <= k <= 64: 32-bit words filled from the least significant one;
    // the last (most significant) word keeps the top bits of its draw.
    uint64_t getrandbits(int k) {
        uint64_t r = 0;
        for (int shift = 0; k > 0; shift += 32, k -= 32) {
            uint32_t w = next32();
            if (k < 32) w >>= (32 - k);
            r |= static_cast<uint64_t>(w) << shift;
        }
        return r;
    }

    // random._randbelow_with_getrandbits(n), n >= 1.
    uint64_t randbelow(uint64_t n) {
        int k = 0;
        for (uint64_t v = n; v; v >>= 1) ++k;
        uint64_t r = getrandbits(k);
        while (r >= n) r = getrandbits(k);
        return r;
    }

private:
    static constexpr int kN = 624, kM = 397;

    void init_genrand(uint32_t s) {
        mt_[0] = s;
        for (int i = 1; i < kN; ++i) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
        mti_ = kN;
    }

    void init_by_array(const uint32_t* key, int len) {
        init_genrand(19650218u);
        int i = 1, j = 0;
        for (int k = std::max(kN, len); k; --k) {
            mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + key[j] + static_cast<uint32_t>(j);
            ++i, ++j;
            if (i >= kN) mt_[0] = mt_[kN - 1], i = 1;
            if (j >= len) j = 0;
        }
        for (int k = kN - 1; k; --k) {
            mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - static_cast<uint32_t>(i);
            ++i;
            if (i >= kN) mt_[0] = mt_[kN - 1], i = 1;
        }
        mt_[0] = 0x80000000u;
    }

    std::array<uint32_t, kN> mt_{};
    int mti_ = kN + 1;
};

// ---- numpy: SeedSequence -> PCG64, Generator.shuffle ---------------------------------------------

using u128 = unsigned __int128;

// numpy.random.SeedSequence(seed).pool (pool_size 4, no spawn key), via its hash-mix constants.
std::array<uint32_t, 4> seed_sequence_pool(uint64_t seed) {
    constexpr uint32_t kInitA = 0x43b0d7e5u, kMultA = 0x931e8875u;
    constexpr uint32_t kMixMultL = 0xca01f9ddu, kMixMultR = 0x4973f715u;
    constexpr int kXShift = 16;
    std::vector<uint32_t> entropy{static_cast<uint32_t>(seed)};  // int -> little-endian uint32 words
    if (seed >> 32) entropy.push_back(static_cast<uint32_t>(seed >> 32));

    uint32_t hash_const = kInitA;
    auto hashmix = [&](uint32_t value) {
        value ^= hash_const;
        hash_const *= kMultA;
        value *= hash_const;
        value ^= value >> kXShift;
        return value;
    };
    auto mix = [&](uint32_t x, uint32_t y) {
        uint32_t r = kMixMultL * x - kMixMultR * y;
        r ^= r >> kXShift;
        return r;
    };
    std::array<uint32_t, 4> pool{};
    for (size_t i = 0; i < pool.size(); ++i) pool[i] = hashmix(i < entropy.size() ? entropy[i] : 0u);
    for (size_t src = 0; src < pool.size(); ++src)
        for (size_t dst = 0; dst < pool.size(); ++dst)
            if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
    for (size_t src = pool.size(); src < entropy.size(); ++src)
        for (size_t dst = 0; dst < pool.size(); ++dst) pool[dst] = mix(pool[dst], hashmix(entropy[src]));
    return pool;
}

// SeedSequence.generate_state(n_words, uint64): 2*n_words uint32 words read as little-endian pairs.
std::vector<uint64_t> seed_sequence_state64(const std::array<uint32_t, 4>& pool, size_t n_words) {
    constexpr uint32_t kInitB = 0x8b51f9ddu, kMultB = 0x58f38dedu;
    uint32_t hash_const = kInitB;
    std::vector<uint32_t> w(2 * n_words);
    for (size_t i = 0; i < w.size(); ++i) {
        uint32_t v = pool[i % pool.size()];
        v ^= hash_const;
        hash_const *= kMultB;
        v *= hash_const;
        v ^= v >> 16;
        w[i] = v;
    }
    std::vector<uint64_t> out(n_words);
    for (size_t i = 0; i < n_words; ++i) out[i] = static_cast<uint64_t>(w[2 * i]) | (static_cast<uint64_t>(w[2 * i + 1]) << 32);
    return out;
}

class NumpyPcg64 {
public:
    explicit NumpyPcg64(uint64_t seed) {
        const auto v = seed_sequence_state64(seed_sequence_pool(seed), 4);
        const u128 initstate = (static_cast<u128>(v[0]) << 64) | v[1];
        const u128 initseq = (static_cast<u128>(v[2]) << 64) | v[3];
        state_ = 0;
        inc_ = (initseq << 1) | 1u;
        step();
        state_ += initstate;
        step();
    }

    uint64_t next64() {  // XSL-RR output of the stepped state
        step();
        const uint64_t x = static_cast<uint64_t>(state_ >> 64) ^ static_cast<uint64_t>(state_);
        const unsigned rot = static_cast<unsigned>(state_ >> 122);
        return (x >> rot) | (x << ((64u - rot) & 63u));
    }

    uint32_t next32() {  // numpy buffers the upper half of a 64-bit draw for the next call
        if (has32_) {
            has32_ = false;
            return buffered_;
        }
        const uint64_t v = next64();
        has32_ = true;
        buffered_ = static_cast<uint32_t>(v >> 32);
        return static_cast<uint32_t>(v);
    }

    // numpy's random_interval(max): uniform in [0, max] by masked rejection.
    uint64_t interval(uint64_t max) {
        if (max == 0) return 0;
        uint64_t mask = max;
        for (int s = 1; s <= 32; s <<= 1) mask |= mask >> s;
        uint64_t value;
        if (max <= 0xFFFFFFFFull) {
            while ((value = (next32() & mask)) > max) {}
        } else {
            while ((value = (next64() & mask)) > max) {}
        }
        return value;
    }

private:
    void step() {
        static const u128 kMult = (static_cast<u128>(0x2360ED051FC65DA4ull) << 64) | 0x4385DF649FCCF645ull;
        state_ = state_ * kMult + inc_;
    }

    u128 state_ = 0, inc_ = 0;
    bool has32_ = false;
    uint32_t buffered_ = 0;
};

// ---- sources --------------------------------------------------------------------------------------

enum class FileKind { Text, Jsonl, Json, Parquet };

FileKind kind_of(const fs::path& p) {
    const std::string ext = lower(p.extension().string());
    if (ext == ".jsonl") return FileKind::Jsonl;
    if (ext == ".json") return FileKind::Json;
    if (ext == ".parquet") return FileKind::Parquet;
    return FileKind::Text;
}

const char* kind_name(FileKind k) {
    switch (k) {
        case FileKind::Jsonl: return "jsonl";
        case FileKind::Json: return "json";
        case FileKind::Parquet: return "parquet";
        default: return "txt";
    }
}

struct Document {
    std::string text;
    uint32_t file = 0;  // index into LoadedSource::files
    size_t line = 0;
};

struct LoadedSource {
    std::vector<std::string> files;
    std::vector<Document> docs;
    std::string summary;  // "jsonl, field 'text'" / "folder of 3 files"
    bool hub = false;     // a Hub dataset: rows as HF datasets loads them, shuffled as Dataset.shuffle
};

std::string read_whole_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    check(static_cast<bool>(in), "cannot open calibration file ", p.string(), " (check that it exists and is readable)");
    std::ostringstream ss;
    ss << in.rdbuf();
    check(!in.bad(), "cannot read calibration file ", p.string(), " (I/O error)");
    return ss.str();
}

// Lines as Python's text-mode file iteration yields them (universal newlines: \n, \r\n and \r end a
// line; a final line without newline counts), with 1-based line numbers.
template <typename Fn>
void for_each_line(const std::string& data, Fn&& fn) {
    size_t start = 0, line = 1;
    const size_t n = data.size();
    while (start < n) {
        size_t end = start;
        while (end < n && data[end] != '\n' && data[end] != '\r') ++end;
        fn(std::string_view(data).substr(start, end - start), line++);
        if (end >= n) break;
        start = end + ((data[end] == '\r' && end + 1 < n && data[end + 1] == '\n') ? 2 : 1);
    }
}

std::string json_text(const ojson& v, const std::string& field, const std::string& where) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object()) {
        const auto it = v.find(field);
        if (it == v.end()) {
            std::string keys;
            for (const auto& [k, _] : v.items()) keys += (keys.empty() ? "" : ", ") + k;
            fail(where, ": no field '", field, "' in this JSON object (its fields: ", keys.empty() ? "none" : keys,
                 "); name the text field with --dataset_field");
        }
        check(it->is_string(), where, ": field '", field, "' is a JSON ", it->type_name(), ", not a string");
        return it->get<std::string>();
    }
    fail(where, ": expected a JSON object with a '", field, "' field (or a JSON string), got a JSON ", v.type_name());
}

// `rstrip`: local files are right-stripped as the reference's local loader does; Hub rows are not
// (HF datasets hands them to the tokenizer as stored).
void load_file(const fs::path& p, const std::string& field, LoadedSource& src, bool rstrip = true) {
    const auto file_index = static_cast<uint32_t>(src.files.size());
    const std::string label = p.string();
    src.files.push_back(label);
    const FileKind kind = kind_of(p);
    auto add = [&](std::string text, size_t line) {
        if (rstrip) py_rstrip(text);
        src.docs.push_back(Document{std::move(text), file_index, line});
    };
    if (kind == FileKind::Parquet) {  // column `field` of every row group; a null row is an empty text
        parquet::StringColumn col = parquet::read_parquet_string_column(p, field);
        for (size_t i = 0; i < col.values.size(); ++i) add(col.values[i] ? std::move(*col.values[i]) : std::string(), i + 1);
        return;
    }
    const std::string data = read_whole_file(p);
    if (kind == FileKind::Text) {
        for_each_line(data, [&](std::string_view l, size_t line) { add(std::string(l), line); });
    } else if (kind == FileKind::Jsonl) {
        for_each_line(data, [&](std::string_view l, size_t line) {
            if (trim(l).empty()) return;  // blank lines hold no record
            const std::string where = label + ":" + std::to_string(line);
            ojson v;
            try {
                v = ojson::parse(l);
            } catch (const nlohmann::json::exception& e) {
                fail(where, ": invalid JSON (", e.what(), "); each line of a .jsonl file must be one JSON object");
            }
            add(json_text(v, field, where), line);
        });
    } else {
        ojson v;
        try {
            v = ojson::parse(data);
        } catch (const nlohmann::json::exception& e) {
            fail(label, ": invalid JSON (", e.what(), ")");
        }
        check(v.is_array() || v.is_object(), label, ": expected a JSON array of documents (or an object of them), got a JSON ",
              v.type_name());
        size_t i = 0;
        for (const auto& el : v) {
            ++i;
            add(json_text(el, field, label + ": element " + std::to_string(i)), i);
        }
    }
}

LoadedSource load_source(const fs::path& p, const std::string& field) {
    LoadedSource src;
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(p, ec)) {
            if (!e.is_regular_file(ec)) continue;
            const std::string name = e.path().filename().string();
            const std::string ext = lower(e.path().extension().string());
            if (name.empty() || name[0] == '.') continue;
            if (ext == ".txt" || ext == ".jsonl" || ext == ".json" || ext == ".parquet") files.push_back(e.path());
        }
        check(!ec, "cannot list calibration folder ", p.string(), ": ", ec.message());
        check(!files.empty(), "calibration folder ", p.string(),
              " holds no .txt, .jsonl or .json file (nor .parquet; files are read in name order, not recursively)");
        std::sort(files.begin(), files.end(),
                  [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });
        for (const auto& f : files) load_file(f, field, src);
        src.summary = "folder of " + std::to_string(files.size()) + " file" + (files.size() == 1 ? "" : "s");
    } else {
        load_file(p, field, src);
        const FileKind k = kind_of(p);
        src.summary = kind_name(k);
        if (k != FileKind::Text) src.summary += ", field '" + field + "'";
        else src.summary += ", one document per line";
    }
    return src;
}

bool is_hub_name(const std::string& name);

// The Hub repo of a dataset name: "org/name" as given; a registered short alias maps to its repo.
std::string hub_repo_of(const std::string& name) {
    static const std::vector<std::pair<std::string, std::string>> aliases = {
        {"pile-10k", "NeelNanda/pile-10k"},         {"pile-val-backup", "swift/pile-val-backup"},
        {"CCI3-HQ", "BAAI/CCI3-HQ"},                {"github-code-clean", "codeparrot/github-code-clean"},
        {"OpenCodeInstruct", "nvidia/OpenCodeInstruct"}, {"opencode-instruct", "nvidia/OpenCodeInstruct"},
        {"ultrachat_200k", "HuggingFaceH4/ultrachat_200k"}, {"Ultra-FineWeb", "openbmb/Ultra-FineWeb"},
        {"new-title-chinese", "madao33/new-title-chinese"},
    };
    for (const auto& [alias, repo] : aliases)
        if (name == alias) return repo;
    return name;
}

// A Hub dataset: its data files for the splits (default train), downloaded into (or read from) the
// Hugging Face cache, read in HF datasets' order (hub_download.h: select_dataset_files).
LoadedSource load_hub_source(const DatasetSpec& spec, const std::string& field, std::vector<std::string>& warnings) {
    const std::string repo = hub_repo_of(spec.name);
    std::vector<fs::path> files;
    try {
        files = hub::resolve_dataset_files(repo, spec.split, hub::hub_settings_from_env());
    } catch (const Error& e) {
        fail("calibration dataset '", spec.name, "' is not a local file or folder, so it was taken as a Hugging Face "
             "dataset: ", e.what());
    }
    if (repo != "NeelNanda/pile-10k" && is_hub_name(spec.name))
        warnings.push_back("calibration dataset '" + spec.name + "': read generically (field '" + field +
                           "' of the split's data files); the reference tool's dataset-specific recipe for it is "
                           "not reproduced");
    LoadedSource src;
    src.hub = true;
    for (const fs::path& f : files) load_file(f, field, src, /*rstrip=*/false);
    src.summary = "Hub dataset " + repo + ", " + std::to_string(files.size()) + " " + kind_name(kind_of(files.front())) +
                  " file" + (files.size() == 1 ? "" : "s") + ", field '" + field + "'";
    return src;
}

bool is_hub_name(const std::string& name) {
    const auto& hub = registered_hub_datasets();
    if (std::find(hub.begin(), hub.end(), name) != hub.end()) return true;
    // The reference tool also resolves "org/pile-10k"-style names by their last component.
    const std::string last = name.substr(name.rfind('/') == std::string::npos ? 0 : name.rfind('/') + 1);
    return !last.empty() && std::find(hub.begin(), hub.end(), last) != hub.end();
}

// ---- per-dataset processing -----------------------------------------------------------------------

struct Sample {
    std::vector<int32_t> ids;
    CalibrationSampleOrigin origin;
};

struct DatasetResult {
    std::vector<Sample> samples;
    std::string name;
    std::string summary;
    size_t n_docs = 0, docs_read = 0, too_short = 0, repetitive = 0, chunks = 0;
    size_t longest = 0;   // most tokens seen in one document (capped at seqlen)
    bool stopped_early = false;
};

struct Context {
    const CalibrationOptions& opt;
    const BpeTokenizer& tok;
    const TokenizerConfig& tcfg;
    std::vector<std::string>& warnings;
    std::unique_ptr<ChatTemplate> chat;  // compiled on first use
    bool warned_system = false;
};

std::optional<int32_t> special_id(const BpeTokenizer& tok, const std::string& token) {
    if (token.empty()) return std::nullopt;
    return tok.token_to_id(token);
}

std::string render_chat(Context& cx, const DatasetSpec& spec, const std::string& text) {
    if (!cx.chat) {
        check(cx.tcfg.chat_template.has_value(), "--dataset entry '", spec.name,
              "': apply_chat_template/system_prompt need a chat template, and the model's tokenizer files have none "
              "(tokenizer_config.json chat_template, chat_template.jinja or chat_template.json)");
        cx.chat = std::make_unique<ChatTemplate>(*cx.tcfg.chat_template);
    }
    auto inputs_for = [&](bool with_system) {
        ChatTemplateInputs in;
        if (with_system) in.messages.push_back(ojson{{"role", "system"}, {"content", *spec.system_prompt}});
        in.messages.push_back(ojson{{"role", "user"}, {"content", text}});
        in.add_generation_prompt = true;
        if (!cx.tcfg.bos_token.empty()) in.extra["bos_token"] = cx.tcfg.bos_token;
        if (!cx.tcfg.eos_token.empty()) in.extra["eos_token"] = cx.tcfg.eos_token;
        if (!cx.tcfg.pad_token.empty()) in.extra["pad_token"] = cx.tcfg.pad_token;
        return in;
    };
    const bool with_system = spec.system_prompt.has_value() && !spec.system_prompt->empty();
    if (!with_system) return cx.chat->render(inputs_for(false));
    try {
        return cx.chat->render(inputs_for(true));
    } catch (const Error& e) {
        if (!cx.warned_system) {
            cx.warnings.push_back("the chat template rejected the system message (" + std::string(e.what()) +
                                  "); rendering the calibration texts without system_prompt, as the reference tool does");
            cx.warned_system = true;
        }
        return cx.chat->render(inputs_for(false));
    }
}

// Processes one dataset entry; stops once `limit` samples have passed the filters.
DatasetResult process_dataset(Context& cx, const DatasetSpec& spec, int index, size_t limit) {
    const int seqlen = cx.opt.seqlen;
    DatasetResult r;
    r.name = spec.name;
    std::error_code ec;
    LoadedSource src = fs::exists(fs::path(spec.name), ec) ? load_source(fs::path(spec.name), cx.opt.dataset_field)
                                                           : load_hub_source(spec, cx.opt.dataset_field, cx.warnings);
    r.n_docs = src.docs.size();
    check(r.n_docs > 0, "calibration dataset '", spec.name, "' is empty: no documents in ",
          src.files.size() == 1 ? src.files[0] : spec.name + " (" + src.summary + ")");
    r.summary = src.summary + ", " + std::to_string(r.n_docs) + " documents, " +
                (spec.shuffle ? "shuffled with seed " + std::to_string(cx.opt.seed) : std::string("file order"));
    if (spec.apply_chat_template)
        r.summary += spec.system_prompt && !spec.system_prompt->empty() ? ", chat template with system prompt"
                                                                        : ", chat template";
    if (spec.concat) r.summary += ", concatenated";

    std::vector<size_t> order;
    if (spec.shuffle) {
        // local files: random.Random(seed).shuffle; Hub datasets: HF Dataset.shuffle(seed) = numpy permutation
        order = src.hub ? numpy_permutation(r.n_docs, cx.opt.seed) : python_random_shuffle_order(r.n_docs, cx.opt.seed);
    } else {
        order.resize(r.n_docs);
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    }

    const bool add_bos = cx.tcfg.add_bos_token;
    const std::optional<int32_t> bos = add_bos ? special_id(cx.tok, cx.tcfg.bos_token) : std::nullopt;
    check(!add_bos || bos.has_value(), "tokenizer_config.json sets add_bos_token but its bos_token '",
          cx.tcfg.bos_token, "' is not in the vocabulary");

    auto origin_of = [&](size_t d) {
        const Document& doc = src.docs[d];
        return CalibrationSampleOrigin{index, src.files[doc.file], d, doc.line};
    };
    // The reference tokenizes with truncation=True, max_length=seqlen (and add_special_tokens).
    auto encode = [&](size_t d) {
        const Document& doc = src.docs[d];
        std::vector<int32_t> ids;
        try {
            if (spec.apply_chat_template) ids = cx.tok.encode(render_chat(cx, spec, doc.text));
            else ids = cx.tok.encode(doc.text);
        } catch (const Error& e) {
            fail(src.files[doc.file], ":", doc.line, ": ", e.what());
        }
        if (bos) ids.insert(ids.begin(), *bos);
        if (ids.size() > static_cast<size_t>(seqlen)) ids.resize(static_cast<size_t>(seqlen));
        r.longest = std::max(r.longest, ids.size());
        return ids;
    };

    if (!spec.concat) {
        for (const size_t d : order) {
            std::vector<int32_t> ids = encode(d);
            ++r.docs_read;
            if (ids.size() < static_cast<size_t>(seqlen)) {
                ++r.too_short;
            } else if (!calibration_sample_ok(ids, seqlen)) {
                ++r.repetitive;
            } else {
                r.samples.push_back(Sample{std::move(ids), origin_of(d)});
                if (r.samples.size() >= limit) break;
            }
        }
    } else {
        // Concatenate documents (each already truncated to seqlen), cut seqlen chunks; a BOS the
        // tokenizer adds is removed from each document and re-inserted at the head of each chunk.
        const size_t content = static_cast<size_t>(seqlen) - (bos ? 1 : 0);
        check(content >= 1, "--seqlen ", seqlen, " leaves no room for text after the BOS token in concat mode");
        std::vector<int32_t> buf;
        buf.reserve(static_cast<size_t>(seqlen));
        if (bos) buf.push_back(*bos);
        const size_t head = buf.size();
        size_t chunk_doc = 0;
        bool done = false;
        for (const size_t d : order) {
            std::vector<int32_t> ids = encode(d);
            ++r.docs_read;
            const size_t from = bos && !ids.empty() && ids.front() == *bos ? 1 : 0;
            for (size_t t = from; t < ids.size(); ++t) {
                if (buf.size() == head) chunk_doc = d;
                buf.push_back(ids[t]);
                if (buf.size() == head + content) {
                    ++r.chunks;
                    if (calibration_sample_ok(buf, seqlen)) {
                        r.samples.push_back(Sample{buf, origin_of(chunk_doc)});
                    } else {
                        ++r.repetitive;
                    }
                    buf.resize(head);
                    if (r.samples.size() >= limit) {
                        done = true;
                        break;
                    }
                }
            }
            if (done) break;
        }
    }
    r.stopped_early = r.docs_read < r.n_docs;
    return r;
}

std::string describe_dataset(const DatasetResult& r, size_t taken, int seqlen, bool concat) {
    std::ostringstream os;
    os << r.name << " (" << r.summary << "): " << taken << " sample" << (taken == 1 ? "" : "s");
    if (r.stopped_early) os << "; read the first " << r.docs_read << " of " << r.n_docs << " documents";
    else os << "; read all " << r.n_docs << " documents";
    if (concat) os << " into " << r.chunks << " chunks of " << seqlen << " tokens, " << r.repetitive << " repetitive";
    else os << ", " << r.too_short << " shorter than " << seqlen << " tokens, " << r.repetitive << " repetitive";
    return os.str();
}

[[noreturn]] void fail_no_samples(const DatasetSpec& spec, const DatasetResult& r, int seqlen) {
    std::ostringstream os;
    os << "calibration dataset '" << spec.name << "' has no sample of " << seqlen << " tokens (--seqlen " << seqlen
       << "): ";
    if (spec.concat) {
        os << "its " << r.n_docs << " documents give " << r.chunks << " chunks of " << seqlen << " tokens";
        if (r.repetitive) os << ", all " << r.repetitive << " dropped as repetitive";
    } else {
        os << "of " << r.n_docs << " documents, the longest has " << r.longest << " tokens";
        if (r.repetitive) os << " (" << r.repetitive << " long enough but dropped as repetitive)";
    }
    os << "; use more or longer text, a lower --seqlen";
    if (!spec.concat) os << ", or '" << spec.name << ":concat=true' to join documents (a .txt file has one document per line)";
    fail(os.str());
}

}  // namespace

// ---- public building blocks ---------------------------------------------------------------------

const std::vector<std::string>& registered_hub_datasets() {
    static const std::vector<std::string> names = {
        "NeelNanda/pile-10k",           "pile-10k",
        "swift/pile-val-backup",        "pile-val-backup",
        "BAAI/CCI3-HQ",                 "CCI3-HQ",
        "codeparrot/github-code-clean", "github-code-clean",
        "nvidia/OpenCodeInstruct",      "OpenCodeInstruct",
        "opencode-instruct",            "HuggingFaceH4/ultrachat_200k",
        "ultrachat_200k",               "openbmb/Ultra-FineWeb",
        "Ultra-FineWeb",                "madao33/new-title-chinese",
        "new-title-chinese",            "mbpp",
        "audiocaps",
    };
    return names;
}

std::vector<DatasetSpec> parse_dataset_spec(std::string_view spec) {
    static const char* kKeys = "num=N, concat[=true|false], apply_chat_template[=true|false], system_prompt=TEXT, "
                               "split=a+b, shuffle[=true|false]";
    check(!trim(spec).empty(), "--dataset is empty; give a .txt/.jsonl/.json file or a folder of them");
    std::vector<DatasetSpec> out;
    for (const std::string& raw_entry : split_on(spec, ',')) {
        const std::string entry = trim(raw_entry);
        check(!entry.empty(), "--dataset '", spec, "' has an empty entry (datasets are separated by single commas)");
        const std::vector<std::string> parts = split_on(entry, ':');
        DatasetSpec d;
        d.name = trim(parts[0]);
        check(!d.name.empty(), "--dataset entry '", entry, "' has no dataset name before its first ':'");
        for (size_t i = 1; i < parts.size(); ++i) {
            const std::string& kv = parts[i];
            const size_t eq = kv.find('=');
            const std::string key = trim(kv.substr(0, eq));
            std::optional<std::string> value;
            if (eq != std::string::npos) value = trim(kv.substr(eq + 1));
            if (key == "num") {
                check(value.has_value() && !value->empty(), "--dataset entry '", entry, "': num needs a value (num=N)");
                int n = 0;
                const char* b = value->data();
                const char* e = b + value->size();
                const auto [p, ec] = std::from_chars(b, e, n);
                check(ec == std::errc() && p == e && n >= 1, "--dataset entry '", entry, "': num=", *value,
                      " is not a positive integer");
                d.num = n;
            } else if (key == "concat") {
                d.concat = parse_bool_value(entry, key, value);
            } else if (key == "apply_chat_template") {
                d.apply_chat_template = parse_bool_value(entry, key, value);
            } else if (key == "system_prompt") {
                check(value.has_value(), "--dataset entry '", entry, "': system_prompt needs a value (system_prompt=TEXT)");
                d.system_prompt = *value;
                d.apply_chat_template = true;  // implies the chat template, as in the reference tool
            } else if (key == "split") {
                check(value.has_value() && !value->empty(), "--dataset entry '", entry, "': split needs a value (split=a+b)");
                d.split.clear();
                for (const std::string& s : split_on(*value, '+')) {
                    check(!trim(s).empty(), "--dataset entry '", entry, "': split=", *value, " has an empty split name");
                    d.split.push_back(trim(s));
                }
            } else if (key == "shuffle") {
                d.shuffle = parse_bool_value(entry, key, value);
            } else {
                fail("--dataset entry '", entry, "': unknown key '", key, "'; valid keys: ", kKeys,
                     " (a path cannot contain ':' or ',')");
            }
        }
        out.push_back(std::move(d));
    }
    return out;
}

bool calibration_sample_ok(std::span<const int32_t> ids, int seqlen) {
    if (seqlen <= 0 || ids.size() < static_cast<size_t>(seqlen)) return false;
    if (seqlen <= 2) return true;
    const auto first = ids.subspan(0, static_cast<size_t>(seqlen));
    const int32_t last = first.back();
    const auto count = std::count(first.begin(), first.end(), last);
    return count <= seqlen / 2;
}

std::vector<size_t> python_random_shuffle_order(size_t n, uint64_t seed) {
    std::vector<size_t> x(n);
    for (size_t i = 0; i < n; ++i) x[i] = i;
    if (n < 2) return x;
    PyRandom rng(seed);
    for (size_t i = n - 1; i >= 1; --i) {
        const size_t j = static_cast<size_t>(rng.randbelow(static_cast<uint64_t>(i) + 1));
        std::swap(x[i], x[j]);
    }
    return x;
}

std::vector<size_t> numpy_permutation(size_t n, uint64_t seed) {
    std::vector<size_t> x(n);
    for (size_t i = 0; i < n; ++i) x[i] = i;
    if (n < 2) return x;
    NumpyPcg64 rng(seed);
    for (size_t i = n - 1; i >= 1; --i) {
        const size_t j = static_cast<size_t>(rng.interval(static_cast<uint64_t>(i)));
        std::swap(x[i], x[j]);
    }
    return x;
}

// ---- the calibration set --------------------------------------------------------------------------

CalibrationSet build_calibration_set(const CalibrationOptions& opt, const BpeTokenizer& tok,
                                     const TokenizerConfig& tcfg) {
    check(opt.nsamples >= 1, "--nsamples must be at least 1, got ", opt.nsamples);
    check(opt.seqlen >= 1, "--seqlen must be at least 1, got ", opt.seqlen);
    check(!opt.dataset_field.empty(), "--dataset_field is empty; name the JSON field that holds the text");
    const std::vector<DatasetSpec> specs = parse_dataset_spec(opt.dataset);
    const size_t nsamples = static_cast<size_t>(opt.nsamples);
    const size_t unlimited = std::numeric_limits<size_t>::max();

    CalibrationSet out;

    // Resolve every entry before reading any: a Hub name or a missing path fails fast.
    for (const DatasetSpec& s : specs) {
        std::error_code ec;
        if (fs::exists(fs::path(s.name), ec)) {
            if (!s.split.empty())
                out.warnings.push_back("--dataset entry '" + s.name +
                                       "': split= applies to Hub datasets only; ignored for a local file or folder");
            continue;
        }
        // not a local path: a registered name or an org/name id is a Hub dataset, downloaded when read
        const std::string ext = lower(fs::path(s.name).extension().string());
        const bool data_ext = ext == ".txt" || ext == ".jsonl" || ext == ".json" || ext == ".parquet";
        if (is_hub_name(s.name) || (!data_ext && hub::looks_like_repo_id(hub_repo_of(s.name)))) continue;
        fail("calibration dataset '", s.name, "' not found: no such file or folder",
             s.name.find('/') == std::string::npos && fs::path(s.name).extension().empty()
                 ? std::string(", and not a registered dataset name")
                 : std::string(),
             " (give a .txt, .jsonl, .json or .parquet file, a folder of them, or a Hub dataset id org/name)");
    }

    Context cx{opt, tok, tcfg, out.warnings, nullptr, false};
    const bool single = specs.size() == 1;
    std::vector<DatasetResult> results;
    results.reserve(specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
        const DatasetSpec& s = specs[i];
        size_t limit = s.num ? static_cast<size_t>(*s.num) : unlimited;
        if (single) limit = std::min(limit, nsamples);
        DatasetResult r = process_dataset(cx, s, static_cast<int>(i), limit);
        if (single && r.samples.empty()) fail_no_samples(s, r, opt.seqlen);
        if (s.num && r.samples.size() < static_cast<size_t>(*s.num) && (!single || r.samples.size() < nsamples))
            out.warnings.push_back("calibration dataset '" + s.name + "': num=" + std::to_string(*s.num) + " but only " +
                                   std::to_string(r.samples.size()) + " samples of " + std::to_string(opt.seqlen) +
                                   " tokens pass the filters; taking " + std::to_string(r.samples.size()));
        results.push_back(std::move(r));
    }

    std::vector<size_t> taken(specs.size(), 0);
    std::vector<Sample> pool;
    bool mixed = false;
    if (single) {
        taken[0] = results[0].samples.size();
        pool = std::move(results[0].samples);
    } else {
        // Allotment (reference: sorted by size ascending, stable; `num` entries take their num;
        // the others split what is left evenly, a short one's shortfall going to the next).
        std::vector<size_t> by_size(specs.size());
        for (size_t i = 0; i < by_size.size(); ++i) by_size[i] = i;
        std::stable_sort(by_size.begin(), by_size.end(), [&](size_t a, size_t b) {
            return results[a].samples.size() < results[b].samples.size();
        });
        size_t reserved = 0, free_entries = 0;
        for (size_t i = 0; i < specs.size(); ++i) {
            if (specs[i].num) reserved += results[i].samples.size();
            else ++free_entries;
        }
        if (reserved > nsamples) reserved = 0;  // as the reference: the others still get their share
        size_t cnt = reserved;
        for (const size_t i : by_size) {
            if (specs[i].num) {
                taken[i] = results[i].samples.size();
            } else {
                const size_t share = (nsamples - std::min(cnt, nsamples)) / free_entries--;
                taken[i] = std::min(share, results[i].samples.size());
                cnt += taken[i];
            }
            if (taken[i] == 0)
                out.warnings.push_back("calibration dataset '" + specs[i].name + "' contributes no sample of " +
                                       std::to_string(opt.seqlen) + " tokens");
        }
        const bool any_shuffle = std::any_of(specs.begin(), specs.end(), [](const DatasetSpec& s) { return s.shuffle; });
        std::vector<Sample> cat;
        if (any_shuffle) {
            // HF datasets: concatenate_datasets(sorted by size).shuffle(seed) = numpy permutation.
            for (const size_t i : by_size)
                for (size_t k = 0; k < taken[i]; ++k) cat.push_back(std::move(results[i].samples[k]));
            const std::vector<size_t> perm = numpy_permutation(cat.size(), opt.seed);
            pool.reserve(cat.size());
            for (const size_t p : perm) pool.push_back(std::move(cat[p]));
            mixed = true;
        } else {
            for (size_t i = 0; i < specs.size(); ++i)
                for (size_t k = 0; k < taken[i]; ++k) pool.push_back(std::move(results[i].samples[k]));
        }
        if (pool.empty()) {
            std::string names;
            for (const auto& s : specs) names += (names.empty() ? "'" : ", '") + s.name + "'";
            fail("calibration datasets ", names, " have no sample of ", opt.seqlen, " tokens (--seqlen ", opt.seqlen,
                 "); use more or longer text, a lower --seqlen, or ':concat=true' to join documents");
        }
    }
    if (pool.size() > nsamples) pool.resize(nsamples);

    if (pool.size() < nsamples) {
        const bool num_limited = single && specs[0].num && pool.size() == static_cast<size_t>(*specs[0].num);
        out.warnings.push_back(
            (num_limited ? "num=" + std::to_string(*specs[0].num) + " limits the calibration set to " +
                               std::to_string(pool.size()) + " samples"
                         : "only " + std::to_string(pool.size()) + " calibration samples of " +
                               std::to_string(opt.seqlen) + " tokens in " + opt.dataset) +
            "; nsamples reduced from " + std::to_string(nsamples) + " to " + std::to_string(pool.size()) +
            " (an insufficient number of samples likely reduces the accuracy of the quantized model)");
    }

    out.samples.reserve(pool.size());
    out.origins.reserve(pool.size());
    for (Sample& s : pool) {
        out.samples.push_back(std::move(s.ids));
        out.origins.push_back(std::move(s.origin));
    }

    std::ostringstream desc;
    desc << out.samples.size() << " calibration samples x " << opt.seqlen << " tokens from ";
    for (size_t i = 0; i < specs.size(); ++i) {
        if (i) desc << "; ";
        desc << describe_dataset(results[i], single ? out.samples.size() : taken[i], opt.seqlen, specs[i].concat);
    }
    if (mixed) desc << "; mixed with seed " << opt.seed;
    out.description = desc.str();
    return out;
}

}  // namespace autoround

// tests/io/test_safetensors.cpp — safetensors reader/writer: the real sharded qwen3-nano
// checkpoint, the F32/I64/F64 reference file, writer round trips (single and sharded, every
// dtype, odd sizes, alignment checked on the raw bytes) and one test per corruption the reader
// must reject with its own message.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>

#include <nlohmann/json.hpp>

#include "core/bf16.h"
#include "io/io_test_util.h"
#include "io/safetensors.h"

using namespace autoround;
using autoround::testio::expect_error;
using autoround::testio::TempDir;
using autoround::testio::read_file;
using autoround::testio::write_file;
namespace fs = std::filesystem;

namespace {

const fs::path kShared = AR_SHARED_DIR;

// u64 header length + header + data.
std::string st_bytes(const std::string& header, const std::string& data = "") {
    std::string out(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    return out + header + data;
}

std::span<const uint8_t> as_span(const std::string& s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

uint64_t read_u64(const std::string& s, size_t at = 0) {
    uint64_t v;
    std::memcpy(&v, s.data() + at, 8);
    return v;
}

std::vector<uint8_t> pattern_bytes(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + 31 * i + 1);
    return v;
}

}  // namespace

// ---- dtype helpers ---------------------------------------------------------------------------

TEST(SafetensorsDType, NamesSizesAndParse) {
    const DType all[] = {DType::BF16, DType::F16, DType::F32, DType::F64, DType::I64,
                         DType::I32,  DType::I16, DType::I8,  DType::U8,  DType::BOOL};
    const size_t sizes[] = {2, 2, 4, 8, 8, 4, 2, 1, 1, 1};
    for (size_t i = 0; i < std::size(all); ++i) {
        EXPECT_EQ(dtype_size(all[i]), sizes[i]);
        EXPECT_EQ(parse_dtype(dtype_name(all[i]), "x"), all[i]);
    }
    expect_error([] { parse_dtype("F8_E4M3", "somewhere.safetensors"); },
                 {"somewhere.safetensors", "unknown dtype 'F8_E4M3'", "supported"});
}

// ---- the real checkpoints -----------------------------------------------------------------

TEST(TensorStore, ReadsShardedQwen3Nano) {
    const fs::path dir = kShared / "models/qwen3-nano";
    const TensorStore store = TensorStore::open(dir);
    EXPECT_EQ(store.files().size(), 3u);
    EXPECT_EQ(store.tensors().size(), 2u + 6u * 11u);  // embed + final norm + 11 per layer
    EXPECT_FALSE(store.has("lm_head.weight"));         // tied embeddings
    EXPECT_EQ(store.metadata().at("format"), "pt");

    const auto& embed = store.get("model.embed_tokens.weight");
    EXPECT_EQ(embed.dtype, DType::BF16);
    EXPECT_EQ(embed.shape, (std::vector<int64_t>{8192, 512}));
    EXPECT_EQ(embed.shape_str(), "[8192, 512]");
    EXPECT_EQ(embed.nbytes, 8192u * 512u * 2u);
    EXPECT_EQ(embed.file.filename(), "model-00001-of-00003.safetensors");

    for (int l = 0; l < 6; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        EXPECT_EQ(store.get(p + "self_attn.q_proj.weight").shape, (std::vector<int64_t>{512, 512}));
        EXPECT_EQ(store.get(p + "self_attn.k_proj.weight").shape, (std::vector<int64_t>{256, 512}));
        EXPECT_EQ(store.get(p + "self_attn.v_proj.weight").shape, (std::vector<int64_t>{256, 512}));
        EXPECT_EQ(store.get(p + "self_attn.o_proj.weight").shape, (std::vector<int64_t>{512, 512}));
        EXPECT_EQ(store.get(p + "self_attn.q_norm.weight").shape, (std::vector<int64_t>{128}));
        EXPECT_EQ(store.get(p + "self_attn.k_norm.weight").shape, (std::vector<int64_t>{128}));
        EXPECT_EQ(store.get(p + "mlp.gate_proj.weight").shape, (std::vector<int64_t>{1280, 512}));
        EXPECT_EQ(store.get(p + "mlp.up_proj.weight").shape, (std::vector<int64_t>{1280, 512}));
        EXPECT_EQ(store.get(p + "mlp.down_proj.weight").shape, (std::vector<int64_t>{512, 1280}));
        EXPECT_EQ(store.get(p + "input_layernorm.weight").shape, (std::vector<int64_t>{512}));
    }
    for (const auto& [name, t] : store.tensors()) EXPECT_EQ(t.dtype, DType::BF16) << name;

    const auto names = store.names();
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));

    // Conversion: bf16 -> f32 is exact, and norm weights are finite, non-trivial values.
    const auto norm = store.load_f32("model.norm.weight");
    ASSERT_EQ(norm.size(), 512u);
    const auto& ni = store.get("model.norm.weight");
    for (size_t i = 0; i < norm.size(); ++i) {
        uint16_t h;
        std::memcpy(&h, ni.data + 2 * i, 2);
        ASSERT_EQ(norm[i], bf16_to_float(h));
        ASSERT_TRUE(std::isfinite(norm[i]));
    }
    std::vector<float> emb(8192 * 512);
    store.load_f32_into("model.embed_tokens.weight", emb);
    double sumsq = 0;
    for (float v : emb) sumsq += double(v) * v;
    EXPECT_GT(sumsq, 0.0);

    expect_error([&] { store.get("lm_head.weight"); }, {"lm_head.weight", "not found", "qwen3-nano"});
    std::vector<float> wrong(10);
    expect_error([&] { store.load_f32_into("model.norm.weight", wrong); }, {"model.norm.weight", "512", "10"});
}

TEST(TensorStore, OpensOneShardFileDirectly) {
    const fs::path f = kShared / "models/qwen3-nano/model-00003-of-00003.safetensors";
    const TensorStore store = TensorStore::open(f);
    EXPECT_EQ(store.files().size(), 1u);
    EXPECT_EQ(store.tensors().size(), 5u);
    EXPECT_TRUE(store.has("model.norm.weight"));
    EXPECT_FALSE(store.has("model.embed_tokens.weight"));
}

TEST(TensorStore, ReadsReferenceF32I64F64) {
    const TensorStore store = TensorStore::open(kShared / "reference/qwen3-nano-text.safetensors");
    EXPECT_EQ(store.tensors().size(), 33u);
    EXPECT_EQ(store.metadata().at("model"), "qwen3-nano");
    EXPECT_EQ(store.metadata().at("dtype"), "float32");

    const auto& ids = store.get("p0_story.input_ids");
    EXPECT_EQ(ids.dtype, DType::I64);
    EXPECT_EQ(ids.shape, (std::vector<int64_t>{16}));
    for (int i = 0; i < 16; ++i) {
        int64_t v;
        std::memcpy(&v, ids.data + 8 * i, 8);
        EXPECT_GE(v, 0);
        EXPECT_LT(v, 8192);
    }
    expect_error([&] { store.load_f32("p0_story.input_ids"); }, {"p0_story.input_ids", "I64"});

    const auto& ppl = store.get("wikitext.ppl");
    EXPECT_EQ(ppl.dtype, DType::F64);
    double d;
    std::memcpy(&d, ppl.data, 8);
    EXPECT_NEAR(d, 142.40072917, 1e-6);
    EXPECT_NEAR(store.load_f32("wikitext.ppl")[0], 142.40072917f, 1e-3f);

    const auto logits = store.load_f32("p0_story.logits");
    EXPECT_EQ(store.get("p0_story.logits").dtype, DType::F32);
    EXPECT_EQ(logits.size(), 16u * 8192u);
    EXPECT_EQ(store.get("p0_story.hidden_after_each_block").shape, (std::vector<int64_t>{6, 16, 512}));
    for (float v : logits) ASSERT_TRUE(std::isfinite(v));
}

// ---- writer -----------------------------------------------------------------------------------

namespace {

struct Spec {
    std::string name;
    DType dt;
    std::vector<int64_t> shape;
};

// Every dtype, with element counts that leave byte sizes not divisible by 8, a scalar and an empty tensor.
std::vector<Spec> all_dtype_specs() {
    return {{"a.bf16", DType::BF16, {3}},     {"b.f16", DType::F16, {5, 1}}, {"c.f32", DType::F32, {3}},
            {"d.f64", DType::F64, {2, 1}},    {"e.i64", DType::I64, {3}},    {"f.i32", DType::I32, {1}},
            {"g.i16", DType::I16, {7}},       {"h.i8", DType::I8, {5}},      {"i.u8", DType::U8, {3, 3}},
            {"j.bool", DType::BOOL, {1}},     {"k.scalar", DType::F32, {}},  {"l.empty", DType::BF16, {0, 4}},
            {"m.after_empty", DType::U8, {2}}};
}

size_t numel_of(const std::vector<int64_t>& s) {
    return std::accumulate(s.begin(), s.end(), size_t{1}, [](size_t a, int64_t b) { return a * size_t(b); });
}

// Checks the raw layout of a written file: header length, "__metadata__" first with format pt,
// space padding, 8-byte aligned offsets and zero padding between tensors.
void check_layout(const fs::path& file) {
    const std::string raw = read_file(file);
    ASSERT_GE(raw.size(), 8u);
    const uint64_t n = read_u64(raw);
    ASSERT_LE(8 + n, raw.size());
    EXPECT_EQ((8 + n) % 8, 0u) << file;
    const std::string header = raw.substr(8, n);
    EXPECT_EQ(header.rfind("{\"__metadata__\":{", 0), 0u) << header;
    EXPECT_NE(header.find("\"format\":\"pt\""), std::string::npos);
    const size_t close = header.find_last_of('}');
    for (size_t i = close + 1; i < header.size(); ++i) EXPECT_EQ(header[i], ' ');
    const auto j = nlohmann::ordered_json::parse(header);
    EXPECT_EQ(j.begin().key(), "__metadata__");
    const size_t data_size = raw.size() - 8 - n;
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (const auto& [k, v] : j.items()) {
        if (k == "__metadata__") continue;
        const uint64_t b = v["data_offsets"][0], e = v["data_offsets"][1];
        EXPECT_EQ(b % 8, 0u) << k;
        spans.push_back({b, e});
    }
    std::sort(spans.begin(), spans.end());
    uint64_t pos = 0;
    for (const auto& [b, e] : spans) {
        for (uint64_t i = pos; i < b; ++i) EXPECT_EQ(raw[8 + n + i], '\0') << "padding byte " << i;
        pos = std::max(pos, e);
    }
    EXPECT_LE(pos, data_size);
}

}  // namespace

TEST(SafetensorsWriter, RoundTripAllDtypesSingleFile) {
    TempDir tmp;
    SafetensorsWriter w;
    std::map<std::string, std::vector<uint8_t>> expect;
    uint8_t seed = 0;
    for (const auto& s : all_dtype_specs()) {
        auto bytes = pattern_bytes(numel_of(s.shape) * dtype_size(s.dt), seed += 17);
        expect[s.name] = bytes;
        w.add(s.name, s.dt, s.shape, bytes);
    }
    w.set_metadata("quantizer", "autoround.cpp");
    const fs::path file = tmp / "out.safetensors";
    w.write_file(file);
    EXPECT_FALSE(fs::exists(tmp / "out.safetensors.tmp"));
    check_layout(file);

    const TensorStore store = TensorStore::open(file);
    EXPECT_EQ(store.metadata().at("format"), "pt");
    EXPECT_EQ(store.metadata().at("quantizer"), "autoround.cpp");
    ASSERT_EQ(store.tensors().size(), all_dtype_specs().size());
    for (const auto& s : all_dtype_specs()) {
        const auto& t = store.get(s.name);
        EXPECT_EQ(t.dtype, s.dt) << s.name;
        EXPECT_EQ(t.shape, s.shape) << s.name;
        ASSERT_EQ(t.nbytes, expect[s.name].size()) << s.name;
        if (t.nbytes) {
            EXPECT_EQ(std::memcmp(t.data, expect[s.name].data(), t.nbytes), 0) << s.name;
        }
    }
    // Tensors are stored in insertion order.
    const auto raw = read_file(file);
    const auto j = nlohmann::ordered_json::parse(raw.substr(8, read_u64(raw)));
    std::vector<std::string> order;
    for (const auto& [k, v] : j.items()) order.push_back(k);
    ASSERT_EQ(order.size(), all_dtype_specs().size() + 1);
    for (size_t i = 0; i < all_dtype_specs().size(); ++i) EXPECT_EQ(order[i + 1], all_dtype_specs()[i].name);
}

TEST(SafetensorsWriter, FloatHelpersConvert) {
    TempDir tmp;
    const std::vector<float> v = {1.0f, -2.5f, 3.14159f, 1e-3f, 65504.0f};
    std::vector<uint8_t> f16(v.size() * 2);
    for (size_t i = 0; i < v.size(); ++i) {
        const uint16_t h = float_to_fp16(v[i]);
        std::memcpy(f16.data() + 2 * i, &h, 2);
    }
    SafetensorsWriter w;
    w.add_f32("f32", {5}, v);
    w.add_bf16_from_f32("bf16", {5}, v);
    w.add("f16", DType::F16, {5}, f16);
    EXPECT_EQ(w.total_bytes(), 20u + 10u + 10u);
    w.write_file(tmp / "m.safetensors");
    const TensorStore store = TensorStore::open(tmp / "m.safetensors");
    const auto a = store.load_f32("f32");
    const auto b = store.load_f32("bf16");
    const auto c = store.load_f32("f16");
    for (size_t i = 0; i < v.size(); ++i) {
        EXPECT_EQ(a[i], v[i]);
        EXPECT_EQ(b[i], round_to_bf16(v[i]));
        EXPECT_EQ(c[i], fp16_to_float(float_to_fp16(v[i])));
    }
}

TEST(SafetensorsWriter, RejectsBadInput) {
    SafetensorsWriter w;
    w.add("x", DType::F32, {2}, std::vector<uint8_t>(8));
    expect_error([&] { w.add("x", DType::F32, {2}, std::vector<uint8_t>(8)); }, {"'x'", "twice"});
    expect_error([&] { w.add("y", DType::F32, {3}, std::vector<uint8_t>(8)); }, {"'y'", "needs 12 bytes", "got 8"});
    expect_error([&] { w.add("z", DType::U8, {-1}, {}); }, {"'z'", "negative"});
    expect_error([&] { w.add("__metadata__", DType::U8, {0}, {}); }, {"reserved"});
    expect_error([&] { w.write_file("/nonexistent-dir-autoround/x.safetensors"); }, {"cannot create"});
}

TEST(SafetensorsWriter, ShardedRoundTrip) {
    TempDir tmp;
    SafetensorsWriter w;
    std::map<std::string, std::vector<uint8_t>> expect;
    // 10 tensors of 100..1000 odd-ish sizes, one bigger than the shard limit.
    for (int i = 0; i < 10; ++i) {
        const int64_t n = i == 6 ? 999 : 37 * (i + 1);
        auto bytes = pattern_bytes(size_t(n) * 2, uint8_t(i));
        const std::string name = "layer." + std::to_string(i) + ".weight";
        expect[name] = bytes;
        w.add(name, DType::BF16, {n}, bytes);
    }
    w.add("tail.u8", DType::U8, {3}, {1, 2, 3});
    expect["tail.u8"] = {1, 2, 3};
    const size_t limit = 600;
    const auto files = w.write_sharded(tmp.path(), limit);
    ASSERT_GE(files.size(), 3u);
    EXPECT_EQ(files.back(), "model.safetensors.index.json");
    const size_t nshards = files.size() - 1;
    for (size_t s = 0; s < nshards; ++s) {
        char want[64];
        std::snprintf(want, sizeof want, "model-%05zu-of-%05zu.safetensors", s + 1, nshards);
        EXPECT_EQ(files[s], want);
        check_layout(tmp / files[s]);
        // Each shard holds at most `limit` bytes of tensors unless it is a single oversized tensor.
        const TensorStore one = TensorStore::open(tmp / files[s]);
        size_t bytes = 0;
        for (const auto& [k, t] : one.tensors()) bytes += t.nbytes;
        if (one.tensors().size() > 1) {
            EXPECT_LE(bytes, limit) << files[s];
        }
    }
    EXPECT_FALSE(fs::exists(tmp / "model.safetensors"));
    for (const auto& e : fs::directory_iterator(tmp.path())) EXPECT_NE(e.path().extension(), ".tmp");

    const auto index = nlohmann::json::parse(read_file(tmp / "model.safetensors.index.json"));
    EXPECT_EQ(index["metadata"]["total_size"].get<size_t>(), w.total_bytes());
    EXPECT_EQ(index["weight_map"].size(), expect.size());

    const TensorStore store = TensorStore::open(tmp.path());
    EXPECT_EQ(store.files().size(), nshards);
    ASSERT_EQ(store.tensors().size(), expect.size());
    for (const auto& [name, bytes] : expect) {
        const auto& t = store.get(name);
        ASSERT_EQ(t.nbytes, bytes.size());
        EXPECT_EQ(std::memcmp(t.data, bytes.data(), bytes.size()), 0) << name;
        EXPECT_EQ(index["weight_map"][name].get<std::string>(), t.file.filename().string());
    }
    // The oversized tensor sits alone in its shard.
    const auto& big = store.get("layer.6.weight");
    EXPECT_EQ(TensorStore::open(big.file).tensors().size(), 1u);

    // Re-exporting as a single file replaces the shards and the index.
    const auto single = w.write_sharded(tmp.path(), size_t(1) << 30);
    ASSERT_EQ(single, std::vector<std::string>{"model.safetensors"});
    EXPECT_FALSE(fs::exists(tmp / "model.safetensors.index.json"));
    EXPECT_FALSE(fs::exists(tmp / files[0]));
    check_layout(tmp / "model.safetensors");
    EXPECT_EQ(TensorStore::open(tmp.path()).tensors().size(), expect.size());
}

// ---- folder errors --------------------------------------------------------------------------

namespace {

// Writes a two-shard checkpoint "a" in shard 1, "b" in shard 2 with a matching index.
void write_two_shards(const fs::path& dir) {
    SafetensorsWriter w1, w2;
    w1.add("a", DType::U8, {1}, {1});
    w2.add("b", DType::U8, {1}, {2});
    w1.write_file(dir / "model-00001-of-00002.safetensors");
    w2.write_file(dir / "model-00002-of-00002.safetensors");
    write_file(dir / "model.safetensors.index.json",
               R"({"metadata": {"total_size": 2}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                   "b": "model-00002-of-00002.safetensors"}})");
}

}  // namespace

TEST(TensorStore, ShardedErrors) {
    {
        TempDir tmp;
        write_two_shards(tmp.path());
        EXPECT_EQ(TensorStore::open(tmp.path()).tensors().size(), 2u);
        // Opening the index path directly also works.
        EXPECT_EQ(TensorStore::open(tmp / "model.safetensors.index.json").tensors().size(), 2u);
        // "./shard" and "shard" name the same file.
        write_file(tmp / "model.safetensors.index.json",
                   R"({"weight_map": {"a": "./model-00001-of-00002.safetensors",
                       "b": "model-00002-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}})");
        expect_error([&] { TensorStore::open(tmp.path()); }, {"tensor 'c'", "does not contain"});
    }
    {
        TempDir tmp;
        write_two_shards(tmp.path());
        fs::remove(tmp / "model-00002-of-00002.safetensors");
        expect_error([&] { TensorStore::open(tmp.path()); },
                     {"model-00002-of-00002.safetensors", "model.safetensors.index.json", "missing"});
    }
    {
        TempDir tmp;
        write_two_shards(tmp.path());
        write_file(tmp / "model.safetensors.index.json",
                   R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                       "b": "model-00002-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}})");
        expect_error([&] { TensorStore::open(tmp.path()); },
                     {"tensor 'c'", "model.safetensors.index.json", "model-00002-of-00002.safetensors",
                      "does not contain"});
    }
    {
        TempDir tmp;
        write_two_shards(tmp.path());
        SafetensorsWriter dup;
        dup.add("a", DType::U8, {1}, {9});
        dup.write_file(tmp / "model-00002-of-00002.safetensors");
        write_file(tmp / "model.safetensors.index.json",
                   R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                       "b": "model-00002-of-00002.safetensors"}})");
        expect_error([&] { TensorStore::open(tmp.path()); },
                     {"'a'", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "both"});
    }
    {
        TempDir tmp;
        write_file(tmp / "model.safetensors.index.json", R"({"metadata": {}})");
        expect_error([&] { TensorStore::open(tmp.path()); }, {"model.safetensors.index.json", "weight_map"});
        write_file(tmp / "model.safetensors.index.json", R"({"weight_map": {"a": "../x.safetensors"}})");
        expect_error([&] { TensorStore::open(tmp.path()); }, {"../x.safetensors", "not a plain file name"});
        write_file(tmp / "model.safetensors.index.json", R"({"weight_map": {"a": 3}})");
        expect_error([&] { TensorStore::open(tmp.path()); }, {"'a'", "shard file name"});
        write_file(tmp / "model.safetensors.index.json", "{\"weight_map\": ");
        expect_error([&] { TensorStore::open(tmp.path()); }, {"model.safetensors.index.json", "invalid JSON"});
    }
    {
        TempDir tmp;
        expect_error([&] { TensorStore::open(tmp.path()); },
                     {tmp.path().string(), "model.safetensors", "model.safetensors.index.json"});
        expect_error([&] { TensorStore::open(tmp / "nope"); }, {"nope", "does not exist"});
    }
    {
        // model.safetensors wins over an index in the same folder.
        TempDir tmp;
        write_two_shards(tmp.path());
        SafetensorsWriter w;
        w.add("only", DType::U8, {1}, {1});
        w.write_file(tmp / "model.safetensors");
        const auto store = TensorStore::open(tmp.path());
        EXPECT_EQ(store.names(), std::vector<std::string>{"only"});
    }
}

// ---- corrupt headers: each case names the file and gives its own message ------------------------

namespace {

struct Corrupt {
    const char* what;
    std::string bytes;
    std::vector<std::string> fragments;
};

std::string with_len(uint64_t n, const std::string& rest) {
    std::string out(8, '\0');
    std::memcpy(out.data(), &n, 8);
    return out + rest;
}

std::vector<Corrupt> corrupt_cases() {
    const std::string d16(16, '\x01');
    return {
        {"short file", std::string("\x05\x00\x00", 3), {"3 bytes", "shorter than the 8-byte"}},
        {"empty file", "", {"0 bytes", "shorter than the 8-byte"}},
        {"header past end", with_len(1000, "{}"), {"header length 1000", "larger than the file"}},
        {"header over 100MB", with_len(200'000'000, "{}"), {"header length 200000000", "100 MB"}},
        {"not JSON", st_bytes("{\"a\": [1, 2"), {"not valid JSON"}},
        {"not UTF-8", st_bytes("{\"\xff\": 1}"), {"not valid JSON"}},
        {"JSON array", st_bytes("[1, 2]"), {"header is a JSON array", "expected an object"}},
        {"entry not object", st_bytes(R"({"w": 5})"), {"tensor 'w'", "expected an object"}},
        {"missing dtype", st_bytes(R"({"w": {"shape": [2], "data_offsets": [0, 8]}})", d16), {"'w'", "no dtype"}},
        {"missing shape", st_bytes(R"({"w": {"dtype": "F32", "data_offsets": [0, 8]}})", d16), {"'w'", "no shape"}},
        {"missing offsets", st_bytes(R"({"w": {"dtype": "F32", "shape": [2]}})", d16), {"'w'", "no data_offsets"}},
        {"dtype not string", st_bytes(R"({"w": {"dtype": 7, "shape": [2], "data_offsets": [0, 8]}})", d16),
         {"'w'", "dtype is a JSON number"}},
        {"shape not array", st_bytes(R"({"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}})", d16),
         {"'w'", "shape is a JSON string"}},
        {"shape float", st_bytes(R"({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})", d16),
         {"'w'", "shape entries must be integers"}},
        {"offsets one element", st_bytes(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", d16),
         {"'w'", "data_offsets must be an array [begin, end]"}},
        {"offsets string", st_bytes(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": ["0", 8]}})", d16),
         {"'w'", "data_offsets begin must be an integer"}},
        {"negative offset", st_bytes(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}})", d16),
         {"'w'", "data_offsets begin is negative"}},
        {"unknown dtype", st_bytes(R"({"w": {"dtype": "F8_E5M2", "shape": [2], "data_offsets": [0, 2]}})", d16),
         {"'w'", "unknown dtype 'F8_E5M2'"}},
        {"negative dim", st_bytes(R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", d16),
         {"'w'", "negative dimension (-2)"}},
        {"offsets past data", st_bytes(R"({"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}})", d16),
         {"'w'", "outside the data section (16 bytes)"}},
        {"begin > end", st_bytes(R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [12, 4]}})", d16),
         {"'w'", "begin 12 > end 4"}},
        {"overlap",
         st_bytes(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", d16),
         {"'a'", "'b'", "overlap"}},
        {"size mismatch", st_bytes(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", d16),
         {"'w'", "needs 12 bytes", "span 8"}},
        {"numel overflow",
         st_bytes(R"({"w": {"dtype": "U8", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", d16),
         {"'w'", "more elements than fit"}},
        {"bytes overflow",
         st_bytes(R"({"w": {"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 0]}})", d16),
         {"'w'", "too large to address"}},
        {"huge dim", st_bytes(R"({"w": {"dtype": "U8", "shape": [18446744073709551615], "data_offsets": [0, 0]}})"),
         {"'w'", "too large"}},
        {"metadata not object", st_bytes(R"({"__metadata__": [1]})"), {"__metadata__ is a JSON array"}},
        {"metadata value not string", st_bytes(R"({"__metadata__": {"format": 1}})"),
         {"__metadata__ value of 'format'", "expected a string"}},
        {"duplicate name",
         st_bytes(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                      "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})", d16),
         {"'w'", "more than once"}},
    };
}

}  // namespace

TEST(SafetensorsCorrupt, EachCaseHasItsOwnError) {
    TempDir tmp;
    int i = 0;
    for (const auto& c : corrupt_cases()) {
        SCOPED_TRACE(c.what);
        const fs::path file = tmp / ("bad" + std::to_string(i++) + ".safetensors");
        write_file(file, c.bytes);
        std::vector<std::string> frags = c.fragments;
        frags.push_back(file.string());  // every message names the file
        try {
            TensorStore::open(file);
            ADD_FAILURE() << "no error for " << c.what;
        } catch (const Error& e) {
            const std::string msg = e.what();
            for (const auto& f : frags) EXPECT_NE(msg.find(f), std::string::npos) << "missing '" << f << "' in: " << msg;
        }
        // The in-memory parser gives the same message with the label it is handed.
        expect_error([&] { parse_safetensors(as_span(c.bytes), "label.safetensors"); }, {"label.safetensors"});
    }
}

TEST(SafetensorsCorrupt, AcceptsGapsEmptyTensorsAndPadding) {
    // Gap between tensors, an empty tensor sharing an offset, and trailing spaces in the header.
    const std::string data(32, '\x02');
    const std::string bytes = st_bytes(R"({"b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]},
        "a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
        "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [16, 16]}}      )", data);
    std::map<std::string, std::string> meta;
    const auto ts = parse_safetensors(as_span(bytes), "ok", &meta);
    ASSERT_EQ(ts.size(), 3u);
    EXPECT_EQ(ts[0].name, "a");  // sorted by offset
    EXPECT_EQ(ts[2].name, "b");
    EXPECT_EQ(ts[2].data, reinterpret_cast<const uint8_t*>(bytes.data()) + 8 + read_u64(bytes) + 16);
    EXPECT_EQ(ts[1].numel(), 0);
    EXPECT_TRUE(meta.empty());

    // A header with only metadata and an empty data section is a valid (empty) file.
    std::map<std::string, std::string> m2;
    EXPECT_TRUE(parse_safetensors(as_span(st_bytes(R"({"__metadata__": {"k": "v"}})")), "x", &m2).empty());
    EXPECT_EQ(m2.at("k"), "v");
}

TEST(SafetensorsCorrupt, ConvertRejectsIntegerAndWrongSize) {
    TensorInfo t;
    t.name = "ids";
    t.dtype = DType::I32;
    t.shape = {2};
    std::vector<float> out(2);
    expect_error([&] { convert_to_f32(t, out); }, {"'ids'", "I32"});
    t.dtype = DType::F32;
    const float v[2] = {1, 2};
    t.data = reinterpret_cast<const uint8_t*>(v);
    t.nbytes = 8;
    std::vector<float> small(1);
    expect_error([&] { convert_to_f32(t, small); }, {"'ids'", "2 elements"});
    convert_to_f32(t, out);
    EXPECT_EQ(out[1], 2.0f);
}

// tests/io/test_gguf.cpp — io/gguf.h: the writer's byte layout (the KV encoding example of
// checkpoint-formats.md §5.1, 32-byte alignment, padded payloads, running offsets), reader round trips of
// every value type, and the reader's refusals of bad files: bad magic / version, counts past EOF, every
// truncation, unknown value and tensor types, arrays of arrays, duplicate keys and names, bad alignment,
// misaligned or out-of-order offsets, n_dims and block-size violations.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "io/io_test_util.h"

using namespace autoround;
using autoround::testio::read_file;
using autoround::testio::TempDir;

namespace {

// Little-endian byte builder for hand-made GGUF images.
struct Bytes {
    std::vector<uint8_t> b;
    template <typename T>
    Bytes& put(T v) {
        const auto* p = reinterpret_cast<const uint8_t*>(&v);
        b.insert(b.end(), p, p + sizeof v);
        return *this;
    }
    Bytes& str(const std::string& s) {
        put<uint64_t>(s.size());
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    Bytes& pad(size_t a) {
        while (b.size() % a) b.push_back(0);
        return *this;
    }
    Bytes& raw(size_t n, uint8_t v) {
        b.insert(b.end(), n, v);
        return *this;
    }
};

struct TensorSpec {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type;
    uint64_t offset;
    size_t nbytes;
};

// A valid two-KV, two-tensor file; `kv` and `tensors` can be altered before building.
struct Image {
    uint32_t version = 3;
    std::string magic = "GGUF";
    std::function<void(Bytes&)> kvs = [](Bytes& o) {
        o.str("general.architecture").put<uint32_t>(8).str("qwen3");
        o.str("qwen3.block_count").put<uint32_t>(4).put<uint32_t>(36);
    };
    uint64_t n_kv = 2;
    std::vector<TensorSpec> tensors = {{"a", {4}, 0, 0, 16}, {"b", {32, 2}, 2, 32, 36}};
    std::optional<uint64_t> n_tensors;

    std::vector<uint8_t> build() const {
        Bytes o;
        o.b.insert(o.b.end(), magic.begin(), magic.end());
        o.put<uint32_t>(version).put<uint64_t>(n_tensors.value_or(tensors.size())).put<uint64_t>(n_kv);
        kvs(o);
        for (const auto& t : tensors) {
            o.str(t.name).put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
            for (uint64_t d : t.ne) o.put<uint64_t>(d);
            o.put<uint32_t>(t.type).put<uint64_t>(t.offset);
        }
        o.pad(32);
        const size_t base = o.b.size();
        for (const auto& t : tensors) {
            o.b.resize(base + t.offset, 0);
            o.raw(t.nbytes, 0x11);
            o.pad(32);
        }
        return o.b;
    }
};

void expect_parse_error(const std::vector<uint8_t>& bytes, const std::string& fragment) {
    try {
        (void)parse_gguf(bytes, "t.gguf");
        ADD_FAILURE() << "expected an error containing '" << fragment << "'";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("t.gguf"), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(Gguf, HandMadeImageParses) {
    const auto bytes = Image{}.build();
    const GgufContents g = parse_gguf(bytes, "t.gguf");
    EXPECT_EQ(g.version, 3u);
    EXPECT_EQ(g.alignment, 32u);
    ASSERT_EQ(g.kv.size(), 2u);
    EXPECT_EQ(g.kv[0].second.str, "qwen3");
    EXPECT_EQ(g.kv[1].second.u, 36u);
    ASSERT_EQ(g.tensors.size(), 2u);
    EXPECT_EQ(g.tensors[1].ne, (std::vector<int64_t>{32, 2}));
    EXPECT_EQ(g.tensors[1].nbytes, 36u);
    EXPECT_EQ(g.data_offset % 32, 0u);
    EXPECT_EQ(g.tensors[1].data, bytes.data() + g.data_offset + 32);
}

TEST(Gguf, BadMagicAndVersion) {
    Image im;
    im.magic = "GGUG";
    expect_parse_error(im.build(), "not a GGUF file");
    expect_parse_error({'G', 'G'}, "not a GGUF file");
    im = Image{};
    im.version = 1;
    expect_parse_error(im.build(), "version 1 is not supported");
    im.version = 4;
    expect_parse_error(im.build(), "version 4 is not supported");
    im.version = 2;  // v2 has the same layout and is accepted
    EXPECT_NO_THROW(parse_gguf(im.build(), "t.gguf"));
}

TEST(Gguf, EveryTruncationIsAnError) {
    const auto bytes = Image{}.build();
    const GgufContents g = parse_gguf(bytes, "t.gguf");
    const size_t min_size = g.data_offset + g.tensors.back().offset + g.tensors.back().nbytes;
    for (size_t n = 0; n < bytes.size(); ++n) {
        std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
        if (n < min_size) {
            EXPECT_THROW(parse_gguf(cut, "t.gguf"), Error) << "prefix of " << n << " bytes";
        } else {
            EXPECT_NO_THROW(parse_gguf(cut, "t.gguf")) << "prefix of " << n << " bytes (only padding missing)";
        }
    }
}

TEST(Gguf, CountsPastEndOfFile) {
    Image im;
    im.n_kv = uint64_t{1} << 60;
    expect_parse_error(im.build(), "metadata entries");
    im = Image{};
    im.n_tensors = uint64_t{1} << 62;
    expect_parse_error(im.build(), "tensors, more than");
    im = Image{};
    im.kvs = [](Bytes& o) {
        o.str("general.architecture").put<uint32_t>(8).put<uint64_t>(uint64_t{1} << 40);  // string length past EOF
        o.str("x").put<uint32_t>(4).put<uint32_t>(1);
    };
    expect_parse_error(im.build(), "claims");
    im.kvs = [](Bytes& o) {
        o.str("tokens").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(uint64_t{1} << 59);  // string array count
        o.str("x").put<uint32_t>(4).put<uint32_t>(1);
    };
    expect_parse_error(im.build(), "claims");
    im.kvs = [](Bytes& o) {
        o.str("ids").put<uint32_t>(9).put<uint32_t>(5).put<uint64_t>(uint64_t{1} << 62);  // int32 array count
        o.str("x").put<uint32_t>(4).put<uint32_t>(1);
    };
    expect_parse_error(im.build(), "claims");
}

TEST(Gguf, UnknownTypes) {
    Image im;
    im.kvs = [](Bytes& o) {
        o.str("general.architecture").put<uint32_t>(13).str("qwen3");
        o.str("x").put<uint32_t>(4).put<uint32_t>(1);
    };
    expect_parse_error(im.build(), "unknown value type 13");
    im.kvs = [](Bytes& o) {
        o.str("arr").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(1);  // array of arrays
        o.str("x").put<uint32_t>(4).put<uint32_t>(1);
    };
    expect_parse_error(im.build(), "array of arrays");
    im = Image{};
    im.tensors[1].type = 99;
    expect_parse_error(im.build(), "unknown ggml type id 99");
    im.tensors[1].type = 4;  // removed Q4_2
    expect_parse_error(im.build(), "unknown ggml type id 4");
}

TEST(Gguf, KeyAndNameRules) {
    Image im;
    im.kvs = [](Bytes& o) {
        o.str("k").put<uint32_t>(4).put<uint32_t>(1);
        o.str("k").put<uint32_t>(4).put<uint32_t>(2);
    };
    expect_parse_error(im.build(), "appears twice");
    im.kvs = [](Bytes& o) {
        o.str("").put<uint32_t>(4).put<uint32_t>(1);
        o.str("k").put<uint32_t>(4).put<uint32_t>(2);
    };
    expect_parse_error(im.build(), "is empty");
    im.kvs = [](Bytes& o) {
        o.str("general.alignment").put<uint32_t>(4).put<uint32_t>(48);
        o.str("k").put<uint32_t>(4).put<uint32_t>(2);
    };
    expect_parse_error(im.build(), "not a power of two");
    im.kvs = [](Bytes& o) {
        o.str("general.alignment").put<uint32_t>(10).put<uint64_t>(32);
        o.str("k").put<uint32_t>(4).put<uint32_t>(2);
    };
    expect_parse_error(im.build(), "must be UINT32");
    im.kvs = [](Bytes& o) {
        o.str("flag").put<uint32_t>(7).put<uint8_t>(2);
        o.str("k").put<uint32_t>(4).put<uint32_t>(2);
    };
    expect_parse_error(im.build(), "BOOL with byte value 2");

    im = Image{};
    im.tensors[1].name = "a";
    expect_parse_error(im.build(), "appears twice");
    im.tensors[1].name = std::string(64, 'x');
    expect_parse_error(im.build(), "at most 63");
    im.tensors[1].name = "b";
    im.tensors[1].ne = {32, 1, 1, 1, 2};
    expect_parse_error(im.build(), "5 dimensions");
    im.tensors[1].ne = {16, 4};  // Q4_0 rows must be whole 32-blocks
    expect_parse_error(im.build(), "not a multiple of the Q4_0 block size 32");
}

TEST(Gguf, OffsetRules) {
    Image im;
    im.tensors[1].offset = 33;
    expect_parse_error(im.build(), "not a multiple of the 32-byte alignment");
    im.tensors[1].offset = 64;
    expect_parse_error(im.build(), "expected 32");
    im = Image{};
    im.tensors[1].nbytes = 10;  // file shorter than the declared Q4_0 [32, 2] payload
    auto b = im.build();
    b.resize(b.size() - 32 + 10);
    expect_parse_error(b, "past the end of the file");
}

TEST(Gguf, WriterLayoutMatchesTheDocExample) {
    TempDir dir;
    GgufWriter w;
    w.set("qwen3.block_count", GgufValue::u32(36));
    w.write(dir / "x.gguf");
    const std::string s = read_file(dir / "x.gguf");
    const std::vector<uint8_t> want = {0x11, 0, 0, 0, 0, 0, 0, 0, 0x71, 0x77, 0x65, 0x6E, 0x33, 0x2E, 0x62, 0x6C, 0x6F,
                                       0x63, 0x6B, 0x5F, 0x63, 0x6F, 0x75, 0x6E, 0x74, 4, 0, 0, 0, 0x24, 0, 0, 0};
    ASSERT_GE(s.size(), 24 + want.size());
    EXPECT_EQ(s.substr(0, 4), "GGUF");
    EXPECT_EQ(std::vector<uint8_t>(s.begin() + 24, s.begin() + 24 + static_cast<std::ptrdiff_t>(want.size())), want);
    EXPECT_EQ(s.size() % 32, 0u);  // zero padding up to the (empty) data section
    EXPECT_FALSE(std::filesystem::exists(dir / "x.gguf.tmp"));
}

TEST(Gguf, WriterReaderRoundTrip) {
    TempDir dir;
    GgufWriter w;
    GgufValue u8; u8.type = GgufValueType::UINT8; u8.u = 200;
    GgufValue i8; i8.type = GgufValueType::INT8; i8.i = -100;
    GgufValue u16; u16.type = GgufValueType::UINT16; u16.u = 60000;
    GgufValue i16; i16.type = GgufValueType::INT16; i16.i = -30000;
    GgufValue u64; u64.type = GgufValueType::UINT64; u64.u = uint64_t{1} << 40;
    GgufValue i64; i64.type = GgufValueType::INT64; i64.i = -(int64_t{1} << 40);
    GgufValue f64; f64.type = GgufValueType::FLOAT64; f64.f = 0.1;
    w.set("a.u8", u8); w.set("a.i8", i8); w.set("a.u16", u16); w.set("a.i16", i16);
    w.set("a.u32", GgufValue::u32(4000000000u));
    w.set("a.i32", GgufValue::i32(-7));
    w.set("a.f32", GgufValue::f32(1e-6f));
    w.set("a.bool", GgufValue::boolean(true));
    w.set("a.str", GgufValue::string("h\xC3\xA9llo"));
    w.set("a.u64", u64); w.set("a.i64", i64); w.set("a.f64", f64);
    w.set("a.strs", GgufValue::string_array({"x", "", "\xC4\xA0the"}));
    w.set("a.ints", GgufValue::i32_array({1, -2, 3}));
    w.set("a.u32", GgufValue::u32(5));  // replaced in place
    std::vector<uint8_t> f32(4 * 5);
    for (size_t i = 0; i < f32.size(); ++i) f32[i] = static_cast<uint8_t>(i);
    w.add_tensor("t.f32", {5}, static_cast<uint32_t>(GgmlType::F32), f32);
    w.add_tensor("t.q8", {64, 3}, static_cast<uint32_t>(GgmlType::Q8_0), [](uint8_t* d, size_t n) {
        for (size_t i = 0; i < n; ++i) d[i] = static_cast<uint8_t>(i * 7);
    });
    w.add_tensor("t.bf16", {3, 2, 2}, static_cast<uint32_t>(GgmlType::BF16), std::vector<uint8_t>(24, 0xAB));
    EXPECT_THROW(w.add_tensor("t.bad", {16}, static_cast<uint32_t>(GgmlType::Q4_0), std::vector<uint8_t>(9)), Error);
    EXPECT_THROW(w.add_tensor("t.f32", {5}, 0, f32), Error);
    w.write(dir / "m.gguf");

    const auto f = GgufFile::open(dir / "m.gguf");
    EXPECT_EQ(f->get_u32("a.u32"), 5u);
    EXPECT_EQ(f->metadata()[4].first, "a.u32");  // kept its position
    EXPECT_EQ(f->get("a.u8").u, 200u);
    EXPECT_EQ(f->get("a.i8").i, -100);
    EXPECT_EQ(f->get("a.u16").u, 60000u);
    EXPECT_EQ(f->get("a.i16").i, -30000);
    EXPECT_EQ(f->get("a.i32").i, -7);
    EXPECT_EQ(f->get_f32("a.f32"), 1e-6f);
    EXPECT_TRUE(f->get_bool("a.bool"));
    EXPECT_EQ(f->get_string("a.str"), "h\xC3\xA9llo");
    EXPECT_EQ(f->get("a.u64").u, uint64_t{1} << 40);
    EXPECT_EQ(f->get("a.i64").i, -(int64_t{1} << 40));
    EXPECT_EQ(f->get("a.f64").f, 0.1);
    EXPECT_EQ(f->get_string_array("a.strs"), (std::vector<std::string>{"x", "", "\xC4\xA0the"}));
    EXPECT_EQ(f->get_i32_array("a.ints"), (std::vector<int32_t>{1, -2, 3}));
    EXPECT_THROW(f->get_string("a.u32"), Error);
    EXPECT_THROW(f->get_u32("a.i32"), Error);  // negative
    EXPECT_THROW(f->get_u32("missing.key"), Error);

    ASSERT_EQ(f->tensors().size(), 3u);
    const GgufTensorInfo& a = f->tensor("t.f32");
    EXPECT_EQ(a.offset, 0u);
    EXPECT_EQ(std::memcmp(a.data, f32.data(), f32.size()), 0);
    const GgufTensorInfo& q = f->tensor("t.q8");
    EXPECT_EQ(q.offset, 32u);
    EXPECT_EQ(q.nbytes, 2u * 34 * 3);
    EXPECT_EQ(q.data[5], static_cast<uint8_t>(35));
    const GgufTensorInfo& b = f->tensor("t.bf16");
    EXPECT_EQ(b.offset, 32u + 224);  // 204 bytes padded to 224
    EXPECT_EQ(b.ne, (std::vector<int64_t>{3, 2, 2}));
    EXPECT_EQ(b.rows(), 4);
    EXPECT_EQ(std::filesystem::file_size(dir / "m.gguf"), f->contents().data_offset + 32 + 224 + 32);
    EXPECT_THROW(f->tensor("nope"), Error);
}

TEST(Gguf, TypeTraits) {
    EXPECT_EQ(ggml_type_traits(12).bytes, 144);
    EXPECT_EQ(ggml_type_traits(14).bytes, 210);
    EXPECT_EQ(ggml_type_traits(13).bytes, 176);
    EXPECT_EQ(ggml_type_traits(30).block, 1);
    EXPECT_EQ(ggml_type_name(8), "Q8_0");
    EXPECT_EQ(ggml_type_name(5), "unknown type 5");
    EXPECT_EQ(ggml_row_bytes(2, 64), 36);
    EXPECT_THROW(ggml_row_bytes(12, 128), Error);
}

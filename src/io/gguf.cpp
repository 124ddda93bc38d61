// io/gguf.cpp — see gguf.h. The reader walks the header with a bounds-checked cursor (every length and
// count is compared with the bytes left before anything is allocated or read), then checks the tensor
// infos against the data section; the writer mirrors it (header, KVs, infos, pad, padded payloads).
#include "io/gguf.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>

#include "core/error.h"
#include "io/safetensors.h"  // MappedFile

namespace autoround {

static_assert(std::endian::native == std::endian::little, "GGUF is little-endian; this code assumes a little-endian host");

namespace {

constexpr const char* kCorrupt = "the file is corrupt or truncated; re-download or re-export it";
constexpr uint64_t kMaxNameBytes = 63;  // GGML_MAX_NAME - 1
constexpr uint32_t kMaxDims = 4;        // GGML_MAX_DIMS

size_t value_type_size(GgufValueType t) {
    switch (t) {
        case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
        case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
        case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
        case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64: return 8;
        case GgufValueType::STRING: case GgufValueType::ARRAY: return 0;
    }
    return 0;
}

bool known_value_type(uint32_t t) { return t <= 12; }

// Bounds-checked little-endian reader over the file image.
class Cursor {
public:
    Cursor(std::span<const uint8_t> b, const std::string& label) : b_(b), label_(label) {}
    size_t pos() const { return pos_; }
    size_t left() const { return b_.size() - pos_; }

    template <typename T>
    T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, b_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    std::string read_string(const std::string& what) {
        const uint64_t n = read<uint64_t>(what.c_str());
        check(n <= left(), label_, ": ", what, " claims ", n, " bytes but only ", left(), " remain at offset ", pos_,
              "; ", kCorrupt);
        std::string s(reinterpret_cast<const char*>(b_.data() + pos_), static_cast<size_t>(n));
        pos_ += static_cast<size_t>(n);
        return s;
    }
    const uint8_t* take(size_t n, const std::string& what) {
        need(n, what.c_str());
        const uint8_t* p = b_.data() + pos_;
        pos_ += n;
        return p;
    }

private:
    void need(size_t n, const char* what) {
        check(n <= left(), label_, ": unexpected end of file reading ", what, " at offset ", pos_, " (", n,
              " bytes needed, ", left(), " left); ", kCorrupt);
    }
    std::span<const uint8_t> b_;
    const std::string& label_;
    size_t pos_ = 0;
};

GgufValue read_scalar(Cursor& c, GgufValueType t, const std::string& what, const std::string& label) {
    GgufValue v;
    v.type = t;
    switch (t) {
        case GgufValueType::UINT8: v.u = c.read<uint8_t>(what.c_str()); break;
        case GgufValueType::INT8: v.i = c.read<int8_t>(what.c_str()); break;
        case GgufValueType::UINT16: v.u = c.read<uint16_t>(what.c_str()); break;
        case GgufValueType::INT16: v.i = c.read<int16_t>(what.c_str()); break;
        case GgufValueType::UINT32: v.u = c.read<uint32_t>(what.c_str()); break;
        case GgufValueType::INT32: v.i = c.read<int32_t>(what.c_str()); break;
        case GgufValueType::FLOAT32: v.f = c.read<float>(what.c_str()); break;
        case GgufValueType::BOOL: {
            const uint8_t b = c.read<uint8_t>(what.c_str());
            check(b <= 1, label, ": ", what, " is a BOOL with byte value ", int(b), " (must be 0 or 1); ", kCorrupt);
            v.u = b;
            break;
        }
        case GgufValueType::STRING: v.str = c.read_string(what); break;
        case GgufValueType::UINT64: v.u = c.read<uint64_t>(what.c_str()); break;
        case GgufValueType::INT64: v.i = c.read<int64_t>(what.c_str()); break;
        case GgufValueType::FLOAT64: v.f = c.read<double>(what.c_str()); break;
        case GgufValueType::ARRAY: fail(label, ": ", what, ": internal error (array read as scalar)");
    }
    return v;
}

GgufValue read_value(Cursor& c, uint32_t type_id, const std::string& key, const std::string& label) {
    const std::string what = "metadata '" + key + "'";
    check(known_value_type(type_id), label, ": ", what, " has unknown value type ", type_id,
          " (known: 0..12, UINT8 .. FLOAT64); ", kCorrupt);
    const auto t = static_cast<GgufValueType>(type_id);
    if (t != GgufValueType::ARRAY) return read_scalar(c, t, what, label);
    GgufValue v;
    v.type = GgufValueType::ARRAY;
    const uint32_t et = c.read<uint32_t>((what + " array element type").c_str());
    check(known_value_type(et), label, ": ", what, " is an array of unknown element type ", et, "; ", kCorrupt);
    check(et != static_cast<uint32_t>(GgufValueType::ARRAY), label, ": ", what,
          " is an array of arrays, which GGUF readers (llama.cpp) refuse; ", kCorrupt);
    v.elem = static_cast<GgufValueType>(et);
    v.count = c.read<uint64_t>((what + " array length").c_str());
    if (v.elem == GgufValueType::STRING) {
        // Each string needs at least its 8-byte length.
        check(v.count <= c.left() / 8, label, ": ", what, " claims ", v.count, " strings but only ", c.left(),
              " bytes remain; ", kCorrupt);
        v.strs.reserve(static_cast<size_t>(v.count));
        for (uint64_t k = 0; k < v.count; ++k) v.strs.push_back(c.read_string(what + "[" + std::to_string(k) + "]"));
    } else {
        const size_t es = value_type_size(v.elem);
        check(v.count <= c.left() / es, label, ": ", what, " claims ", v.count, " elements of ", es, " bytes but only ",
              c.left(), " bytes remain; ", kCorrupt);
        const size_t n = static_cast<size_t>(v.count) * es;
        const uint8_t* p = c.take(n, what);
        v.raw.assign(p, p + n);
        if (v.elem == GgufValueType::BOOL)
            for (size_t k = 0; k < n; ++k)
                check(p[k] <= 1, label, ": ", what, "[", k, "] is a BOOL with byte value ", int(p[k]), "; ", kCorrupt);
    }
    return v;
}

uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Exact integer value of a scalar of any integer type (BOOL excluded); nullopt otherwise.
std::optional<int64_t> as_integer(const GgufValue& v) {
    switch (v.type) {
        case GgufValueType::UINT8: case GgufValueType::UINT16: case GgufValueType::UINT32:
            return static_cast<int64_t>(v.u);
        case GgufValueType::UINT64:
            if (v.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
            return static_cast<int64_t>(v.u);
        case GgufValueType::INT8: case GgufValueType::INT16: case GgufValueType::INT32: case GgufValueType::INT64:
            return v.i;
        default: return std::nullopt;
    }
}

}  // namespace

// ---- values ------------------------------------------------------------------------------------------

std::string_view gguf_value_type_name(GgufValueType t) {
    switch (t) {
        case GgufValueType::UINT8: return "UINT8";
        case GgufValueType::INT8: return "INT8";
        case GgufValueType::UINT16: return "UINT16";
        case GgufValueType::INT16: return "INT16";
        case GgufValueType::UINT32: return "UINT32";
        case GgufValueType::INT32: return "INT32";
        case GgufValueType::FLOAT32: return "FLOAT32";
        case GgufValueType::BOOL: return "BOOL";
        case GgufValueType::STRING: return "STRING";
        case GgufValueType::ARRAY: return "ARRAY";
        case GgufValueType::UINT64: return "UINT64";
        case GgufValueType::INT64: return "INT64";
        case GgufValueType::FLOAT64: return "FLOAT64";
    }
    return "?";
}

GgufValue GgufValue::u32(uint32_t x) { GgufValue v; v.type = GgufValueType::UINT32; v.u = x; return v; }
GgufValue GgufValue::i32(int32_t x) { GgufValue v; v.type = GgufValueType::INT32; v.i = x; return v; }
GgufValue GgufValue::f32(float x) { GgufValue v; v.type = GgufValueType::FLOAT32; v.f = x; return v; }
GgufValue GgufValue::boolean(bool x) { GgufValue v; v.type = GgufValueType::BOOL; v.u = x ? 1 : 0; return v; }
GgufValue GgufValue::string(std::string x) { GgufValue v; v.type = GgufValueType::STRING; v.str = std::move(x); return v; }
GgufValue GgufValue::string_array(std::vector<std::string> x) {
    GgufValue v;
    v.type = GgufValueType::ARRAY;
    v.elem = GgufValueType::STRING;
    v.count = x.size();
    v.strs = std::move(x);
    return v;
}
GgufValue GgufValue::i32_array(const std::vector<int32_t>& x) {
    GgufValue v;
    v.type = GgufValueType::ARRAY;
    v.elem = GgufValueType::INT32;
    v.count = x.size();
    v.raw.resize(x.size() * 4);
    if (!x.empty()) std::memcpy(v.raw.data(), x.data(), v.raw.size());
    return v;
}

// ---- ggml types ----------------------------------------------------------------------------------------

GgmlTypeTraits ggml_type_traits(uint32_t id) {
    // ggml.h / ggml.c type_traits (block size, bytes per block); gaps are ids removed from ggml.
    static const GgmlTypeTraits kTable[] = {
        {"F32", 1, 4},      {"F16", 1, 2},       {"Q4_0", 32, 18},    {"Q4_1", 32, 20},    {nullptr, 0, 0},
        {nullptr, 0, 0},    {"Q5_0", 32, 22},    {"Q5_1", 32, 24},    {"Q8_0", 32, 34},    {"Q8_1", 32, 36},
        {"Q2_K", 256, 84},  {"Q3_K", 256, 110},  {"Q4_K", 256, 144},  {"Q5_K", 256, 176},  {"Q6_K", 256, 210},
        {"Q8_K", 256, 292}, {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74}, {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50},
        {"IQ4_NL", 32, 18}, {"IQ3_S", 256, 110}, {"IQ2_S", 256, 82},  {"IQ4_XS", 256, 136}, {"I8", 1, 1},
        {"I16", 1, 2},      {"I32", 1, 4},       {"I64", 1, 8},       {"F64", 1, 8},       {"IQ1_M", 256, 56},
        {"BF16", 1, 2},     {nullptr, 0, 0},     {nullptr, 0, 0},     {nullptr, 0, 0},     {"TQ1_0", 256, 54},
        {"TQ2_0", 256, 66}, {nullptr, 0, 0},     {nullptr, 0, 0},     {nullptr, 0, 0},     {"MXFP4", 32, 17},
    };
    if (id >= sizeof(kTable) / sizeof(kTable[0])) return {};
    return kTable[id];
}

std::string ggml_type_name(uint32_t id) {
    const GgmlTypeTraits t = ggml_type_traits(id);
    return t.name ? std::string(t.name) : "unknown type " + std::to_string(id);
}

int64_t ggml_row_bytes(uint32_t id, int64_t ne0) {
    const GgmlTypeTraits t = ggml_type_traits(id);
    check(t.name != nullptr, "ggml type id ", id, " is unknown");
    check(ne0 % t.block == 0, "a row of ", ne0, " elements is not a whole number of ", t.name, " blocks (", t.block, ")");
    return ne0 / t.block * t.bytes;
}

int64_t GgufTensorInfo::numel() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    return n;
}
int64_t GgufTensorInfo::rows() const { return ne.empty() || ne[0] == 0 ? 0 : numel() / ne[0]; }
std::string GgufTensorInfo::ne_str() const {
    std::string s = "[";
    for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
}

// ---- parsing -------------------------------------------------------------------------------------------

GgufContents parse_gguf(std::span<const uint8_t> bytes, const std::string& label) {
    GgufContents g;
    Cursor c(bytes, label);
    check(bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0, label,
          ": not a GGUF file (the first 4 bytes are not \"GGUF\"); pass a .gguf model file");
    c.take(4, "magic");
    g.version = c.read<uint32_t>("version");
    check(g.version != 1, label, ": GGUF version 1 is not supported (obsolete format); re-convert the model");
    check(g.version == 2 || g.version == 3, label, ": GGUF version ", g.version,
          " is not supported (only 2 and 3); the file is corrupt or from a newer llama.cpp");
    const uint64_t n_tensors = c.read<uint64_t>("tensor count");
    const uint64_t n_kv = c.read<uint64_t>("metadata count");
    // Each KV needs >= 8 (key length) + 1 (key) + 4 (type) + 1 bytes; each tensor info >= 8+1+4+8+4+8.
    check(n_kv <= c.left() / 14, label, ": header claims ", n_kv, " metadata entries, more than the ", c.left(),
          " remaining bytes can hold; ", kCorrupt);
    check(n_tensors <= c.left() / 33, label, ": header claims ", n_tensors, " tensors, more than the ", c.left(),
          " remaining bytes can hold; ", kCorrupt);

    g.kv.reserve(static_cast<size_t>(n_kv));
    for (uint64_t k = 0; k < n_kv; ++k) {
        std::string key = c.read_string("metadata key #" + std::to_string(k));
        check(!key.empty(), label, ": metadata key #", k, " is empty; ", kCorrupt);
        check(!g.kv_index.count(key), label, ": metadata key '", key, "' appears twice; ", kCorrupt);
        const uint32_t type = c.read<uint32_t>(("type of metadata '" + key + "'").c_str());
        GgufValue v = read_value(c, type, key, label);
        g.kv_index[key] = g.kv.size();
        g.kv.emplace_back(std::move(key), std::move(v));
    }
    if (auto it = g.kv_index.find("general.alignment"); it != g.kv_index.end()) {
        const GgufValue& v = g.kv[it->second].second;
        check(v.type == GgufValueType::UINT32, label, ": general.alignment has type ", gguf_value_type_name(v.type),
              ", must be UINT32; ", kCorrupt);
        check(v.u != 0 && (v.u & (v.u - 1)) == 0, label, ": general.alignment = ", v.u, " is not a power of two; ",
              kCorrupt);
        g.alignment = static_cast<uint32_t>(v.u);
    }

    g.tensors.reserve(static_cast<size_t>(n_tensors));
    uint64_t expected_offset = 0;
    for (uint64_t k = 0; k < n_tensors; ++k) {
        GgufTensorInfo t;
        t.name = c.read_string("name of tensor #" + std::to_string(k));
        const std::string tn = "tensor '" + t.name + "'";
        check(!t.name.empty(), label, ": tensor #", k, " has an empty name; ", kCorrupt);
        check(t.name.size() <= kMaxNameBytes, label, ": ", tn, " has a name of ", t.name.size(),
              " bytes; GGUF allows at most 63; ", kCorrupt);
        check(!g.tensor_index.count(t.name), label, ": ", tn, " appears twice; ", kCorrupt);
        const uint32_t nd = c.read<uint32_t>((tn + " n_dims").c_str());
        check(nd >= 1 && nd <= kMaxDims, label, ": ", tn, " has ", nd, " dimensions; GGUF allows 1 to 4; ", kCorrupt);
        int64_t numel = 1;
        for (uint32_t d = 0; d < nd; ++d) {
            const uint64_t e = c.read<uint64_t>((tn + " ne").c_str());
            check(e <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), label, ": ", tn, " ne[", d, "] = ", e,
                  " is negative as int64; ", kCorrupt);
            const auto ei = static_cast<int64_t>(e);
            check(ei == 0 || numel <= std::numeric_limits<int64_t>::max() / ei, label, ": ", tn,
                  " has too many elements (overflow); ", kCorrupt);
            numel *= ei;
            t.ne.push_back(ei);
        }
        t.type = c.read<uint32_t>((tn + " type").c_str());
        const GgmlTypeTraits tr = ggml_type_traits(t.type);
        check(tr.name != nullptr, label, ": ", tn, " has unknown ggml type id ", t.type,
              "; the file is corrupt or needs a newer reader");
        check(t.ne[0] % tr.block == 0, label, ": ", tn, " ne[0] = ", t.ne[0], " is not a multiple of the ", tr.name,
              " block size ", tr.block, "; ", kCorrupt);
        t.offset = c.read<uint64_t>((tn + " offset").c_str());
        check(t.offset % g.alignment == 0, label, ": ", tn, " data offset ", t.offset, " is not a multiple of the ",
              g.alignment, "-byte alignment; ", kCorrupt);
        check(t.offset == expected_offset, label, ": ", tn, " data offset is ", t.offset, ", expected ", expected_offset,
              " (tensor data must follow the tensor infos in order, each padded to ", g.alignment, " bytes); ", kCorrupt);
        // nbytes = numel / block * bytes, guarded against overflow.
        const uint64_t blocks = static_cast<uint64_t>(numel / tr.block);
        check(blocks <= static_cast<uint64_t>(bytes.size()) / static_cast<uint64_t>(tr.bytes), label, ": ", tn, " ",
              t.ne_str(), " ", tr.name, " needs more bytes than the whole file (", bytes.size(), "); ", kCorrupt);
        t.nbytes = static_cast<size_t>(blocks * static_cast<uint64_t>(tr.bytes));
        expected_offset = pad_to(t.offset + t.nbytes, g.alignment);
        check(expected_offset <= bytes.size(), label, ": ", tn, " ", t.ne_str(), " ", tr.name,
              " ends past the end of the file (", bytes.size(), " bytes); ", kCorrupt);
        g.tensor_index[t.name] = g.tensors.size();
        g.tensors.push_back(std::move(t));
    }

    g.data_offset = pad_to(c.pos(), g.alignment);
    for (GgufTensorInfo& t : g.tensors) {
        const uint64_t end = g.data_offset + t.offset + t.nbytes;  // no overflow: each term <= file size * small
        check(g.data_offset <= bytes.size() && end <= bytes.size(), label, ": tensor '", t.name, "' data [",
              g.data_offset + t.offset, ", ", end, ") lies past the end of the file (", bytes.size(), " bytes); ",
              kCorrupt);
        t.data = bytes.data() + g.data_offset + t.offset;
    }
    return g;
}

// ---- GgufFile ------------------------------------------------------------------------------------------

std::shared_ptr<const GgufFile> GgufFile::open(const std::filesystem::path& path) {
    auto f = std::shared_ptr<GgufFile>(new GgufFile());
    f->path_ = path;
    f->map_ = std::make_shared<MappedFile>(path);
    f->c_ = parse_gguf(f->map_->bytes(), path.string());
    return f;
}

bool GgufFile::has(std::string_view key) const { return c_.kv_index.count(std::string(key)) != 0; }

const GgufValue* GgufFile::find(std::string_view key) const {
    auto it = c_.kv_index.find(std::string(key));
    return it == c_.kv_index.end() ? nullptr : &c_.kv[it->second].second;
}

const GgufValue& GgufFile::get(std::string_view key) const {
    const GgufValue* v = find(key);
    check(v != nullptr, path_.string(), ": GGUF metadata key '", key, "' is missing; the file was not written for ",
          "this model type or is incomplete");
    return *v;
}

std::string GgufFile::get_string(std::string_view key) const {
    const GgufValue& v = get(key);
    check(v.type == GgufValueType::STRING, path_.string(), ": GGUF metadata '", key, "' is ",
          gguf_value_type_name(v.type), ", expected STRING");
    return v.str;
}

uint32_t GgufFile::get_u32(std::string_view key) const {
    const GgufValue& v = get(key);
    const std::optional<int64_t> x = as_integer(v);
    check(x && *x >= 0 && *x <= 0xFFFFFFFFll, path_.string(), ": GGUF metadata '", key, "' is ",
          gguf_value_type_name(v.type), x ? " out of the UINT32 range" : "", ", expected UINT32");
    return static_cast<uint32_t>(*x);
}

float GgufFile::get_f32(std::string_view key) const {
    const GgufValue& v = get(key);
    check(v.type == GgufValueType::FLOAT32 || v.type == GgufValueType::FLOAT64, path_.string(), ": GGUF metadata '",
          key, "' is ", gguf_value_type_name(v.type), ", expected FLOAT32");
    return static_cast<float>(v.f);
}

bool GgufFile::get_bool(std::string_view key) const {
    const GgufValue& v = get(key);
    check(v.type == GgufValueType::BOOL, path_.string(), ": GGUF metadata '", key, "' is ",
          gguf_value_type_name(v.type), ", expected BOOL");
    return v.u != 0;
}

std::optional<uint32_t> GgufFile::opt_u32(std::string_view key) const {
    if (!has(key)) return std::nullopt;
    return get_u32(key);
}

std::optional<std::string> GgufFile::opt_string(std::string_view key) const {
    if (!has(key)) return std::nullopt;
    return get_string(key);
}

const std::vector<std::string>& GgufFile::get_string_array(std::string_view key) const {
    const GgufValue& v = get(key);
    check(v.type == GgufValueType::ARRAY && v.elem == GgufValueType::STRING, path_.string(), ": GGUF metadata '", key,
          "' is ", gguf_value_type_name(v.type), v.type == GgufValueType::ARRAY ? " of " : "",
          v.type == GgufValueType::ARRAY ? gguf_value_type_name(v.elem) : "", ", expected ARRAY of STRING");
    return v.strs;
}

std::vector<int32_t> GgufFile::get_i32_array(std::string_view key) const {
    const GgufValue& v = get(key);
    check(v.type == GgufValueType::ARRAY && v.elem != GgufValueType::STRING && v.elem != GgufValueType::FLOAT32 &&
              v.elem != GgufValueType::FLOAT64 && v.elem != GgufValueType::BOOL,
          path_.string(), ": GGUF metadata '", key, "' is not an integer array (expected ARRAY of INT32)");
    std::vector<int32_t> out(static_cast<size_t>(v.count));
    const size_t es = value_type_size(v.elem);
    for (size_t k = 0; k < out.size(); ++k) {
        GgufValue e;
        e.type = v.elem;
        const uint8_t* p = v.raw.data() + k * es;
        switch (v.elem) {
            case GgufValueType::UINT8: e.u = p[0]; break;
            case GgufValueType::INT8: e.i = static_cast<int8_t>(p[0]); break;
            case GgufValueType::UINT16: { uint16_t x; std::memcpy(&x, p, 2); e.u = x; break; }
            case GgufValueType::INT16: { int16_t x; std::memcpy(&x, p, 2); e.i = x; break; }
            case GgufValueType::UINT32: { uint32_t x; std::memcpy(&x, p, 4); e.u = x; break; }
            case GgufValueType::INT32: { int32_t x; std::memcpy(&x, p, 4); e.i = x; break; }
            case GgufValueType::UINT64: { uint64_t x; std::memcpy(&x, p, 8); e.u = x; break; }
            case GgufValueType::INT64: { int64_t x; std::memcpy(&x, p, 8); e.i = x; break; }
            default: break;
        }
        const std::optional<int64_t> x = as_integer(e);
        check(x && *x >= std::numeric_limits<int32_t>::min() && *x <= std::numeric_limits<int32_t>::max(),
              path_.string(), ": GGUF metadata '", key, "'[", k, "] does not fit INT32");
        out[k] = static_cast<int32_t>(*x);
    }
    return out;
}

bool GgufFile::has_tensor(std::string_view name) const { return c_.tensor_index.count(std::string(name)) != 0; }

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
    auto it = c_.tensor_index.find(std::string(name));
    return it == c_.tensor_index.end() ? nullptr : &c_.tensors[it->second];
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
    const GgufTensorInfo* t = find_tensor(name);
    check(t != nullptr, path_.string(), ": GGUF tensor '", name, "' is missing; the file is incomplete or not a ",
          "model of this architecture");
    return *t;
}

// ---- writing -------------------------------------------------------------------------------------------

namespace {

class Out {
public:
    explicit Out(std::FILE* f, const std::string& label) : f_(f), label_(label) {}
    void bytes(const void* p, size_t n) {
        if (n == 0) return;
        check(std::fwrite(p, 1, n, f_) == n, "cannot write ", label_, ": ", std::strerror(errno));
        pos_ += n;
    }
    template <typename T>
    void put(T v) { bytes(&v, sizeof v); }
    void str(const std::string& s) {
        put<uint64_t>(s.size());
        bytes(s.data(), s.size());
    }
    void pad(uint64_t align) {
        static const uint8_t zeros[256] = {};
        uint64_t n = pad_to(pos_, align) - pos_;
        while (n > 0) {
            const size_t k = static_cast<size_t>(std::min<uint64_t>(n, sizeof zeros));
            bytes(zeros, k);
            n -= k;
        }
    }
    uint64_t pos() const { return pos_; }

private:
    std::FILE* f_;
    const std::string& label_;
    uint64_t pos_ = 0;
};

void write_value(Out& o, const GgufValue& v) {
    switch (v.type) {
        case GgufValueType::UINT8: o.put<uint8_t>(static_cast<uint8_t>(v.u)); break;
        case GgufValueType::INT8: o.put<int8_t>(static_cast<int8_t>(v.i)); break;
        case GgufValueType::UINT16: o.put<uint16_t>(static_cast<uint16_t>(v.u)); break;
        case GgufValueType::INT16: o.put<int16_t>(static_cast<int16_t>(v.i)); break;
        case GgufValueType::UINT32: o.put<uint32_t>(static_cast<uint32_t>(v.u)); break;
        case GgufValueType::INT32: o.put<int32_t>(static_cast<int32_t>(v.i)); break;
        case GgufValueType::FLOAT32: o.put<float>(static_cast<float>(v.f)); break;
        case GgufValueType::BOOL: o.put<uint8_t>(v.u ? 1 : 0); break;
        case GgufValueType::STRING: o.str(v.str); break;
        case GgufValueType::UINT64: o.put<uint64_t>(v.u); break;
        case GgufValueType::INT64: o.put<int64_t>(v.i); break;
        case GgufValueType::FLOAT64: o.put<double>(v.f); break;
        case GgufValueType::ARRAY:
            o.put<uint32_t>(static_cast<uint32_t>(v.elem));
            if (v.elem == GgufValueType::STRING) {
                o.put<uint64_t>(v.strs.size());
                for (const auto& s : v.strs) o.str(s);
            } else {
                o.put<uint64_t>(v.count);
                o.bytes(v.raw.data(), v.raw.size());
            }
            break;
    }
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
    check(!key.empty(), "GgufWriter: empty metadata key");
    if (value.type == GgufValueType::ARRAY) {
        check(value.elem != GgufValueType::ARRAY, "GgufWriter: metadata '", key, "' is an array of arrays");
        if (value.elem == GgufValueType::STRING) value.count = value.strs.size();
        else check(value.raw.size() == value.count * value_type_size(value.elem), "GgufWriter: metadata '", key,
                   "' array bytes do not match its count");
    }
    if (key == "general.alignment") {
        check(value.type == GgufValueType::UINT32 && value.u != 0 && (value.u & (value.u - 1)) == 0,
              "GgufWriter: general.alignment must be a UINT32 power of two");
        alignment_ = static_cast<uint32_t>(value.u);
    }
    if (auto it = kv_index_.find(key); it != kv_index_.end()) {
        kv_[it->second].second = std::move(value);
        return;
    }
    kv_index_[key] = kv_.size();
    kv_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(const std::string& name, std::vector<int64_t> ne, uint32_t type, Producer produce) {
    check(!name.empty() && name.size() <= kMaxNameBytes, "GgufWriter: tensor name '", name,
          "' must be 1 to 63 bytes long");
    check(!tensor_index_.count(name), "GgufWriter: tensor '", name, "' added twice");
    check(!ne.empty() && ne.size() <= kMaxDims, "GgufWriter: tensor '", name, "' must have 1 to 4 dimensions");
    const GgmlTypeTraits tr = ggml_type_traits(type);
    check(tr.name != nullptr, "GgufWriter: tensor '", name, "' has unknown ggml type ", type);
    int64_t numel = 1;
    for (int64_t d : ne) {
        check(d >= 0, "GgufWriter: tensor '", name, "' has a negative dimension");
        numel *= d;
    }
    check(ne[0] % tr.block == 0, "GgufWriter: tensor '", name, "' ne[0] = ", ne[0], " is not a multiple of the ",
          tr.name, " block size ", tr.block);
    const size_t nbytes = static_cast<size_t>(numel / tr.block * tr.bytes);
    tensor_index_[name] = tensors_.size();
    tensors_.push_back({name, std::move(ne), type, nbytes, std::move(produce)});
}

void GgufWriter::add_tensor(const std::string& name, std::vector<int64_t> ne, uint32_t type, std::vector<uint8_t> bytes) {
    const GgmlTypeTraits tr = ggml_type_traits(type);
    int64_t numel = 1;
    for (int64_t d : ne) numel *= d;
    check(tr.name != nullptr && !ne.empty() && ne[0] % tr.block == 0 &&
              static_cast<int64_t>(bytes.size()) == numel / tr.block * tr.bytes,
          "GgufWriter: tensor '", name, "' has ", bytes.size(), " bytes, which does not match its shape and type ",
          ggml_type_name(type));
    auto shared = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
    add_tensor(name, std::move(ne), type, [shared](uint8_t* dst, size_t n) { std::memcpy(dst, shared->data(), n); });
}

void GgufWriter::write(const std::filesystem::path& path) const {
    namespace fs = std::filesystem;
    const fs::path tmp = path.string() + ".tmp";
    const std::string label = tmp.string();
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    check(f != nullptr, "cannot create ", label, ": ", std::strerror(errno));
    struct Guard {
        std::FILE* f;
        fs::path p;
        bool done = false;
        ~Guard() {
            if (f) std::fclose(f);
            if (!done) {
                std::error_code ec;
                fs::remove(p, ec);
            }
        }
    } guard{f, tmp};

    Out o(f, label);
    o.bytes("GGUF", 4);
    o.put<uint32_t>(3);
    o.put<uint64_t>(tensors_.size());
    o.put<uint64_t>(kv_.size());
    for (const auto& [k, v] : kv_) {
        o.str(k);
        o.put<uint32_t>(static_cast<uint32_t>(v.type));
        write_value(o, v);
    }
    uint64_t off = 0;
    for (const Tensor& t : tensors_) {
        o.str(t.name);
        o.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
        for (int64_t d : t.ne) o.put<uint64_t>(static_cast<uint64_t>(d));
        o.put<uint32_t>(t.type);
        o.put<uint64_t>(off);
        off = pad_to(off + t.nbytes, alignment_);
    }
    o.pad(alignment_);
    std::vector<uint8_t> buf;
    for (const Tensor& t : tensors_) {
        buf.assign(t.nbytes, 0);
        t.produce(buf.data(), buf.size());
        o.bytes(buf.data(), buf.size());
        o.pad(alignment_);
    }
    check(std::fflush(f) == 0, "cannot write ", label, ": ", std::strerror(errno));
    const int rc = std::fclose(f);
    guard.f = nullptr;
    check(rc == 0, "cannot write ", label, ": ", std::strerror(errno));
    std::error_code ec;
    fs::rename(tmp, path, ec);
    check(!ec, "cannot rename ", label, " to ", path.string(), ": ", ec.message());
    guard.done = true;
}

}  // namespace autoround

// io/parquet_thrift.cpp — see parquet_thrift.h.
#include "io/parquet_thrift.h"

#include <cstring>

#include "core/error.h"

namespace autoround::parquet {

namespace {

constexpr int kMaxDepth = 32;

enum : uint8_t {
    T_STOP = 0, T_TRUE = 1, T_FALSE = 2, T_BYTE = 3, T_I16 = 4, T_I32 = 5, T_I64 = 6,
    T_DOUBLE = 7, T_BINARY = 8, T_LIST = 9, T_SET = 10, T_MAP = 11, T_STRUCT = 12, T_UUID = 13,
};

}  // namespace

const ThriftValue* ThriftValue::field(int16_t id) const {
    for (const auto& f : fields)
        if (f.id == id) return &f.value;
    return nullptr;
}

void ThriftReader::bad(const std::string& what) const {
    fail(label_, ": corrupt Parquet metadata (Thrift) at byte ", consumed(), ": ", what,
         " — the file is truncated or not a Parquet file; download it again");
}

uint8_t ThriftReader::byte() {
    if (p_ >= end_) bad("unexpected end of data");
    return *p_++;
}

uint64_t ThriftReader::varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        const uint8_t b = byte();
        if (shift == 63 && (b & 0x7e)) bad("varint overflows 64 bits");
        v |= uint64_t(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    bad("varint longer than 10 bytes");
}

int64_t ThriftReader::zigzag() {
    const uint64_t u = varint();
    return static_cast<int64_t>(u >> 1) ^ -static_cast<int64_t>(u & 1);
}

ThriftValue ThriftReader::read_value(uint8_t type, int depth) {
    if (depth > kMaxDepth) bad("nesting deeper than 32 levels");
    ThriftValue v;
    switch (type) {
        case T_TRUE:
        case T_FALSE:
            v.kind = ThriftValue::Kind::Bool;
            v.i = type == T_TRUE;
            return v;
        case T_BYTE:
            v.kind = ThriftValue::Kind::Int;
            v.i = static_cast<int8_t>(byte());
            return v;
        case T_I16:
        case T_I32:
        case T_I64:
            v.kind = ThriftValue::Kind::Int;
            v.i = zigzag();
            return v;
        case T_DOUBLE: {
            if (end_ - p_ < 8) bad("unexpected end of data in a double");
            v.kind = ThriftValue::Kind::Double;
            std::memcpy(&v.d, p_, 8);
            p_ += 8;
            return v;
        }
        case T_UUID:
            if (end_ - p_ < 16) bad("unexpected end of data in a UUID");
            v.kind = ThriftValue::Kind::Binary;
            v.bin = std::string_view(reinterpret_cast<const char*>(p_), 16);
            p_ += 16;
            return v;
        case T_BINARY: {
            const uint64_t n = varint();
            if (n > static_cast<uint64_t>(end_ - p_)) bad("a string runs past the end of the data");
            v.kind = ThriftValue::Kind::Binary;
            v.bin = std::string_view(reinterpret_cast<const char*>(p_), static_cast<size_t>(n));
            p_ += n;
            return v;
        }
        case T_LIST:
        case T_SET: {
            const uint8_t h = byte();
            uint64_t n = h >> 4;
            if (n == 15) n = varint();
            const uint8_t et = h & 0x0f;
            if (n > static_cast<uint64_t>(end_ - p_)) bad("a list claims more elements than there are bytes");
            v.kind = ThriftValue::Kind::List;
            v.items.reserve(static_cast<size_t>(n));
            for (uint64_t k = 0; k < n; ++k) {
                if (et == T_TRUE || et == T_FALSE) {  // booleans in a list: one byte each
                    ThriftValue b;
                    b.kind = ThriftValue::Kind::Bool;
                    b.i = byte() == T_TRUE;
                    v.items.push_back(b);
                } else {
                    v.items.push_back(read_value(et, depth + 1));
                }
            }
            return v;
        }
        case T_MAP: {
            const uint64_t n = varint();
            v.kind = ThriftValue::Kind::Map;
            if (n == 0) return v;
            if (n > static_cast<uint64_t>(end_ - p_)) bad("a map claims more entries than there are bytes");
            const uint8_t kv = byte();
            for (uint64_t k = 0; k < n; ++k) {
                v.items.push_back(read_value(kv >> 4, depth + 1));
                v.items.push_back(read_value(kv & 0x0f, depth + 1));
            }
            return v;
        }
        case T_STRUCT:
            return read_struct_at(depth + 1);
        default:
            bad("unknown Thrift type " + std::to_string(type));
    }
}

ThriftValue ThriftReader::read_struct_at(int depth) {
    if (depth > kMaxDepth) bad("nesting deeper than 32 levels");
    ThriftValue s;
    s.kind = ThriftValue::Kind::Struct;
    int16_t last = 0;
    for (;;) {
        const uint8_t h = byte();
        if (h == T_STOP) return s;
        const uint8_t type = h & 0x0f;
        const uint8_t delta = h >> 4;
        int16_t id;
        if (delta) {
            id = static_cast<int16_t>(last + delta);
        } else {
            const int64_t z = zigzag();
            if (z < INT16_MIN || z > INT16_MAX) bad("field id out of range");
            id = static_cast<int16_t>(z);
        }
        last = id;
        if (s.fields.size() >= 4096) bad("a struct with more than 4096 fields");
        s.fields.push_back(ThriftField{id, read_value(type, depth)});
    }
}

ThriftValue ThriftReader::read_struct() { return read_struct_at(0); }

int64_t thrift_int(const ThriftValue& s, int16_t id, const std::string& label, const char* what) {
    const ThriftValue* v = s.field(id);
    check(v && (v->kind == ThriftValue::Kind::Int || v->kind == ThriftValue::Kind::Bool), label,
          ": corrupt Parquet metadata: ", what, " is missing or not an integer");
    return v->i;
}

int64_t thrift_int_or(const ThriftValue& s, int16_t id, int64_t dflt) {
    const ThriftValue* v = s.field(id);
    return v && (v->kind == ThriftValue::Kind::Int || v->kind == ThriftValue::Kind::Bool) ? v->i : dflt;
}

std::string_view thrift_binary(const ThriftValue& s, int16_t id, const std::string& label, const char* what) {
    const ThriftValue* v = s.field(id);
    check(v && v->kind == ThriftValue::Kind::Binary, label, ": corrupt Parquet metadata: ", what,
          " is missing or not a string");
    return v->bin;
}

const ThriftValue& thrift_struct(const ThriftValue& s, int16_t id, const std::string& label, const char* what) {
    const ThriftValue* v = s.field(id);
    check(v && v->kind == ThriftValue::Kind::Struct, label, ": corrupt Parquet metadata: ", what,
          " is missing or not a struct");
    return *v;
}

const std::vector<ThriftValue>& thrift_list(const ThriftValue& s, int16_t id, const std::string& label,
                                            const char* what) {
    const ThriftValue* v = s.field(id);
    check(v && v->kind == ThriftValue::Kind::List, label, ": corrupt Parquet metadata: ", what,
          " is missing or not a list");
    return v->items;
}

}  // namespace autoround::parquet

// io/parquet_thrift.h — a decoder for the Thrift compact protocol, which Parquet uses for its
// footer (FileMetaData) and every page header (PageHeader).
//
// Why generic: Parquet's metadata structs have dozens of optional fields, most irrelevant to reading
// one string column. Decoding any struct into a small tree (field id -> value) and picking the
// fields we need (parquet_reader.cpp) keeps this file independent of the Parquet schema, and unknown
// or future fields are skipped for free.
//
// Wire format (thrift/doc/specs/thrift-compact-protocol.md): a struct is a sequence of field headers
// `dddd tttt` (field-id delta, type; delta 0 = a zigzag varint i16 id follows), ended by a 0 byte;
// integers are zigzag ULEB128 varints; binary/string = varint length + bytes; list/set = `ssss tttt`
// (size 15 = varint size follows) + elements; map = varint size, `kkkk vvvv`, pairs; double = 8 bytes
// little-endian; booleans are in the type nibble of a field (1 true, 2 false), one byte in lists.
// Untrusted input: every read is bounds-checked, nesting is limited to 32 levels, element counts
// must fit in the remaining bytes; errors throw autoround::Error naming `label`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace autoround::parquet {

struct ThriftField;

struct ThriftValue {
    enum class Kind : uint8_t { Bool, Int, Double, Binary, List, Map, Struct };
    Kind kind = Kind::Int;
    int64_t i = 0;             // Bool (0/1), Int (i8/i16/i32/i64)
    double d = 0;              // Double
    std::string_view bin;      // Binary: points into the decoded buffer
    std::vector<ThriftValue> items;                            // List/Set elements; Map: key, value, key, ...
    std::vector<ThriftField> fields;                           // Struct

    const ThriftValue* field(int16_t id) const;   // nullptr if absent
};

struct ThriftField {
    int16_t id = 0;
    ThriftValue value;
};

class ThriftReader {
public:
    ThriftReader(const uint8_t* data, size_t size, std::string label) : p_(data), end_(data + size), begin_(data),
                                                                         label_(std::move(label)) {}
    // Reads one struct (up to and including its stop byte).
    ThriftValue read_struct();
    size_t consumed() const { return static_cast<size_t>(p_ - begin_); }

private:
    ThriftValue read_value(uint8_t type, int depth);
    ThriftValue read_struct_at(int depth);
    uint8_t byte();
    uint64_t varint();
    int64_t zigzag();
    [[noreturn]] void bad(const std::string& what) const;

    const uint8_t* p_;
    const uint8_t* end_;
    const uint8_t* begin_;
    std::string label_;
};

// Accessors that throw an Error naming `label` and `what` when the field is missing or mistyped.
int64_t thrift_int(const ThriftValue& s, int16_t id, const std::string& label, const char* what);
int64_t thrift_int_or(const ThriftValue& s, int16_t id, int64_t dflt);
std::string_view thrift_binary(const ThriftValue& s, int16_t id, const std::string& label, const char* what);
const ThriftValue& thrift_struct(const ThriftValue& s, int16_t id, const std::string& label, const char* what);
const std::vector<ThriftValue>& thrift_list(const ThriftValue& s, int16_t id, const std::string& label, const char* what);

}  // namespace autoround::parquet

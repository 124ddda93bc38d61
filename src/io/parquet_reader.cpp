// io/parquet_reader.cpp — see parquet_reader.h. Field ids are those of parquet.thrift
// (apache/parquet-format); each struct we read is listed with the ids used.
#include "io/parquet_reader.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/parquet_codecs.h"
#include "io/parquet_thrift.h"

namespace autoround::parquet {

namespace {

// parquet.thrift enums
enum PageType : int64_t { DATA_PAGE = 0, INDEX_PAGE = 1, DICTIONARY_PAGE = 2, DATA_PAGE_V2 = 3 };
enum Encoding : int64_t {
    PLAIN = 0, PLAIN_DICTIONARY = 2, RLE = 3, BIT_PACKED = 4, DELTA_BINARY_PACKED = 5,
    DELTA_LENGTH_BYTE_ARRAY = 6, DELTA_BYTE_ARRAY = 7, RLE_DICTIONARY = 8,
};
constexpr int64_t kByteArray = 6;

const char* encoding_name(int64_t e) {
    switch (e) {
        case PLAIN: return "PLAIN";
        case PLAIN_DICTIONARY: return "PLAIN_DICTIONARY";
        case RLE: return "RLE";
        case BIT_PACKED: return "BIT_PACKED";
        case DELTA_BINARY_PACKED: return "DELTA_BINARY_PACKED";
        case DELTA_LENGTH_BYTE_ARRAY: return "DELTA_LENGTH_BYTE_ARRAY";
        case DELTA_BYTE_ARRAY: return "DELTA_BYTE_ARRAY";
        case RLE_DICTIONARY: return "RLE_DICTIONARY";
        default: return "unknown";
    }
}

const char* type_name(int64_t t) {
    static const char* names[] = {"BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY",
                                  "FIXED_LEN_BYTE_ARRAY"};
    return t >= 0 && t < 8 ? names[t] : "unknown";
}

uint32_t read_u32le(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// A bounds-checked cursor over a byte range; errors name `where`.
struct Cursor {
    const uint8_t* p;
    const uint8_t* end;
    const std::string* where;

    size_t left() const { return static_cast<size_t>(end - p); }
    [[noreturn]] void bad(const char* what) const {
        fail(*where, ": corrupt Parquet page: ", what, " — the file is damaged or truncated; download it again");
    }
    uint8_t byte() {
        if (p >= end) bad("unexpected end of page data");
        return *p++;
    }
    uint32_t u32() {
        if (left() < 4) bad("unexpected end of page data");
        const uint32_t v = read_u32le(p);
        p += 4;
        return v;
    }
    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            const uint8_t b = byte();
            v |= uint64_t(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        bad("varint longer than 64 bits");
    }
    int64_t zigzag() {
        const uint64_t u = varint();
        return static_cast<int64_t>(u >> 1) ^ -static_cast<int64_t>(u & 1);
    }
    std::string_view take(size_t n) {
        if (n > left()) bad("a value runs past the end of the page");
        std::string_view s(reinterpret_cast<const char*>(p), n);
        p += n;
        return s;
    }
};

// The RLE / bit-packed hybrid encoding (definition levels, dictionary indices); no length prefix.
// Decodes exactly `count` values (bit width <= 32) or throws.
void decode_rle_hybrid(Cursor& c, int bit_width, size_t count, std::vector<uint32_t>& out) {
    if (bit_width < 0 || bit_width > 32) c.bad("bit width above 32");
    out.clear();
    out.reserve(std::min<size_t>(count, c.left() * 8 + 64));
    const size_t value_bytes = static_cast<size_t>((bit_width + 7) / 8);
    while (out.size() < count) {
        const uint64_t header = c.varint();
        if (header & 1) {  // bit-packed: (header >> 1) groups of 8 values, LSB first
            const uint64_t groups = header >> 1;
            if (groups == 0) c.bad("an empty bit-packed run");
            if (bit_width > 0 && groups > c.left()) c.bad("a bit-packed run runs past the end of the page");
            const size_t nbytes = static_cast<size_t>(groups) * static_cast<size_t>(bit_width);
            const size_t avail = std::min(nbytes, c.left());  // a final run may be cut after its last value
            const size_t need = count - out.size();
            const size_t nvals = static_cast<size_t>(std::min<uint64_t>(groups, need / 8 + 1)) * 8;
            const uint8_t* base = c.p;
            for (size_t i = 0; i < nvals && out.size() < count; ++i) {
                const size_t bit = i * static_cast<size_t>(bit_width);
                if (bit + static_cast<size_t>(bit_width) > avail * 8) c.bad("a bit-packed run runs past the end of the page");
                uint64_t v = 0;
                for (int b = 0; b < bit_width; ++b) {
                    const size_t k = bit + static_cast<size_t>(b);
                    v |= uint64_t((base[k >> 3] >> (k & 7)) & 1) << b;
                }
                out.push_back(static_cast<uint32_t>(v));
            }
            c.p += avail;
        } else {  // RLE run: (header >> 1) repeats of one little-endian value
            const uint64_t run = header >> 1;
            if (run == 0) c.bad("an empty RLE run");
            uint64_t v = 0;
            for (size_t b = 0; b < value_bytes; ++b) v |= uint64_t(c.byte()) << (8 * b);
            if (bit_width < 32 && (v >> bit_width)) c.bad("an RLE value wider than its bit width");
            const size_t n = static_cast<size_t>(std::min<uint64_t>(run, count - out.size()));
            out.insert(out.end(), n, static_cast<uint32_t>(v));
        }
    }
}

// DELTA_BINARY_PACKED integers (used for the lengths of DELTA_LENGTH_BYTE_ARRAY).
std::vector<int64_t> decode_delta_binary_packed(Cursor& c, size_t max_count) {
    const uint64_t block_size = c.varint();
    const uint64_t miniblocks = c.varint();
    const uint64_t total = c.varint();
    int64_t value = c.zigzag();
    if (block_size == 0 || block_size % 128 != 0 || miniblocks == 0 || block_size % miniblocks != 0 ||
        (block_size / miniblocks) % 32 != 0 || block_size > (1u << 20))
        c.bad("invalid DELTA_BINARY_PACKED header");
    if (total > max_count) c.bad("DELTA_BINARY_PACKED holds more values than the page");
    const uint64_t per_mini = block_size / miniblocks;
    std::vector<int64_t> out;
    out.reserve(static_cast<size_t>(total));
    if (total > 0) out.push_back(value);
    while (out.size() < total) {
        const int64_t min_delta = c.zigzag();
        std::vector<uint8_t> widths(static_cast<size_t>(miniblocks));
        for (auto& w : widths) {
            w = c.byte();
            if (w > 64) c.bad("DELTA_BINARY_PACKED bit width above 64");
        }
        for (uint64_t m = 0; m < miniblocks && out.size() < total; ++m) {
            const int w = widths[static_cast<size_t>(m)];
            const size_t nbytes = static_cast<size_t>(per_mini) * static_cast<size_t>(w) / 8;
            if (nbytes > c.left()) c.bad("a DELTA_BINARY_PACKED miniblock runs past the end of the page");
            const uint8_t* base = c.p;
            for (uint64_t i = 0; i < per_mini && out.size() < total; ++i) {
                uint64_t d = 0;
                for (int b = 0; b < w; ++b) {
                    const size_t k = static_cast<size_t>(i) * static_cast<size_t>(w) + static_cast<size_t>(b);
                    d |= uint64_t((base[k >> 3] >> (k & 7)) & 1) << b;
                }
                value = static_cast<int64_t>(static_cast<uint64_t>(value) + static_cast<uint64_t>(min_delta) + d);
                out.push_back(value);
            }
            c.p += nbytes;
        }
    }
    return out;
}

struct Schema {
    std::vector<ColumnInfo> leaves;
};

void walk_schema(const std::vector<ThriftValue>& els, size_t& i, const std::string& prefix, int def, int rep,
                 int depth, Schema& out, const std::string& label) {
    check(depth < 64 && i < els.size(), label, ": corrupt Parquet schema (tree deeper than the element list)");
    const ThriftValue& e = els[i++];
    check(e.kind == ThriftValue::Kind::Struct, label, ": corrupt Parquet schema element");
    const std::string name(thrift_binary(e, 4, label, "SchemaElement.name"));
    const int64_t repetition = thrift_int_or(e, 3, 0);
    if (depth > 0) {
        if (repetition == 1) ++def;
        if (repetition == 2) ++def, ++rep;
    }
    const std::string path = depth == 0 ? "" : (prefix.empty() ? name : prefix + "." + name);
    const int64_t children = thrift_int_or(e, 5, 0);
    if (children <= 0) {
        if (depth == 0) return;  // an empty schema
        ColumnInfo c;
        c.name = path;
        c.physical_type = thrift_int_or(e, 1, -1);
        c.max_def = def;
        c.max_rep = rep;
        out.leaves.push_back(c);
        return;
    }
    check(static_cast<uint64_t>(children) <= els.size(), label, ": corrupt Parquet schema (", children, " children)");
    for (int64_t k = 0; k < children; ++k) walk_schema(els, i, path, def, rep, depth + 1, out, label);
}

struct Footer {
    ThriftValue meta;
    Schema schema;
    size_t data_end = 0;  // where the footer starts (column chunks lie before it)
};

Footer read_footer(std::span<const uint8_t> file, const std::string& label) {
    check(file.size() >= 12, label, ": not a Parquet file (", file.size(), " bytes; too short)");
    check(std::memcmp(file.data(), "PAR1", 4) == 0, label, ": not a Parquet file (no PAR1 magic at the start)");
    check(std::memcmp(file.data() + file.size() - 4, "PAR1", 4) == 0, label,
          ": truncated Parquet file (no PAR1 magic at the end; download it again)");
    const uint32_t len = read_u32le(file.data() + file.size() - 8);
    check(len > 0 && len <= file.size() - 12, label, ": corrupt Parquet footer (metadata length ", len, " for a ",
          file.size(), "-byte file)");
    Footer f;
    f.data_end = file.size() - 8 - len;
    ThriftReader r(file.data() + f.data_end, len, label);
    f.meta = r.read_struct();
    const auto& schema = thrift_list(f.meta, 2, label, "FileMetaData.schema");
    check(!schema.empty(), label, ": the Parquet schema is empty");
    size_t i = 0;
    walk_schema(schema, i, "", 0, 0, 0, f.schema, label);
    return f;
}

// One column chunk's pages -> values appended to `out`.
class ChunkReader {
public:
    ChunkReader(std::span<const uint8_t> file, const ColumnInfo& col, const std::string& where, StringColumn& out,
                size_t& budget)
        : file_(file), col_(col), where_(where), out_(out), budget_(budget) {}

    void read(const ThriftValue& meta, size_t data_end) {
        const int64_t type = thrift_int(meta, 1, where_, "ColumnMetaData.type");
        check(type == kByteArray, where_, ": column '", col_.name, "' holds ", type_name(type),
              " values, not strings (BYTE_ARRAY); pick the text column with --dataset_field");
        codec_ = thrift_int(meta, 4, where_, "ColumnMetaData.codec");
        const int64_t num_values = thrift_int(meta, 5, where_, "ColumnMetaData.num_values");
        const int64_t csize = thrift_int(meta, 7, where_, "ColumnMetaData.total_compressed_size");
        const int64_t data_off = thrift_int(meta, 9, where_, "ColumnMetaData.data_page_offset");
        const int64_t dict_off = thrift_int_or(meta, 11, -1);
        const int64_t start = dict_off > 0 && dict_off < data_off ? dict_off : data_off;
        check(num_values >= 0 && csize >= 0 && start >= 4 && static_cast<uint64_t>(start) <= data_end &&
                  static_cast<uint64_t>(csize) <= data_end - static_cast<uint64_t>(start),
              where_, ": corrupt Parquet column chunk (offset ", start, ", ", csize, " bytes, outside the file's ",
              data_end, " data bytes)");
        const uint8_t* p = file_.data() + start;
        const uint8_t* end = p + csize;
        int64_t values = 0;
        int page = 0;
        while (values < num_values) {
            check(p < end, where_, ": the column chunk ends after ", values, " of ", num_values,
                  " values (truncated or corrupt file)");
            page_where_ = where_ + ", page " + std::to_string(page++);
            ThriftReader tr(p, static_cast<size_t>(end - p), page_where_);
            const ThriftValue h = tr.read_struct();
            p += tr.consumed();
            const int64_t ptype = thrift_int(h, 1, page_where_, "PageHeader.type");
            const int64_t usize = thrift_int(h, 2, page_where_, "PageHeader.uncompressed_page_size");
            const int64_t psize = thrift_int(h, 3, page_where_, "PageHeader.compressed_page_size");
            check(psize >= 0 && usize >= 0 && psize <= end - p, page_where_, ": corrupt page size ", psize,
                  " (the column chunk has ", end - p, " bytes left)");
            const uint8_t* body = p;
            p += psize;
            if (ptype == DICTIONARY_PAGE) {
                read_dictionary(h, body, static_cast<size_t>(psize), static_cast<size_t>(usize));
            } else if (ptype == DATA_PAGE) {
                values += read_data_page_v1(h, body, static_cast<size_t>(psize), static_cast<size_t>(usize));
            } else if (ptype == DATA_PAGE_V2) {
                values += read_data_page_v2(h, body, static_cast<size_t>(psize), static_cast<size_t>(usize));
            }  // INDEX_PAGE and unknown page types carry no values: skipped
            check(values <= num_values, page_where_, ": more values than the column chunk declares");
        }
    }

private:
    void spend(size_t bytes) {
        check(bytes <= budget_, where_, ": the decoded column would exceed the memory limit (corrupt file, or a "
                                        "column far larger than a calibration set needs)");
        budget_ -= bytes;
    }

    void read_dictionary(const ThriftValue& h, const uint8_t* body, size_t n, size_t usize) {
        const ThriftValue& dh = thrift_struct(h, 7, page_where_, "PageHeader.dictionary_page_header");
        const int64_t count = thrift_int(dh, 1, page_where_, "DictionaryPageHeader.num_values");
        const int64_t enc = thrift_int_or(dh, 2, PLAIN);
        check(enc == PLAIN || enc == PLAIN_DICTIONARY, page_where_, ": dictionary encoded as ", encoding_name(enc),
              " (expected PLAIN)");
        dict_storage_ = decompress_page(codec_, body, n, usize, page_where_);
        Cursor c{reinterpret_cast<const uint8_t*>(dict_storage_.data()),
                 reinterpret_cast<const uint8_t*>(dict_storage_.data()) + dict_storage_.size(), &page_where_};
        check(count >= 0 && static_cast<uint64_t>(count) <= dict_storage_.size() / 4, page_where_,
              ": corrupt dictionary page (", count, " values in ", dict_storage_.size(), " bytes)");
        dict_.clear();
        dict_.reserve(static_cast<size_t>(count));
        for (int64_t i = 0; i < count; ++i) dict_.push_back(c.take(c.u32()));
        has_dict_ = true;
    }

    // Definition levels -> which of `count` rows are present; returns the number present.
    size_t read_levels(Cursor& c, size_t count) {
        present_.assign(count, 1);
        if (col_.max_def == 0) return count;
        decode_rle_hybrid(c, 1, count, levels_);
        size_t n = 0;
        for (size_t i = 0; i < count; ++i) {
            if (levels_[i] > 1) c.bad("a definition level above the column's maximum");
            present_[i] = static_cast<uint8_t>(levels_[i] == 1);
            n += present_[i];
        }
        return n;
    }

    void emit_values(Cursor& c, int64_t encoding, size_t count, size_t present) {
        std::vector<std::string_view> vals;
        vals.reserve(present);
        if (encoding == PLAIN) {
            for (size_t i = 0; i < present; ++i) vals.push_back(c.take(c.u32()));
        } else if (encoding == PLAIN_DICTIONARY || encoding == RLE_DICTIONARY) {
            check(has_dict_, page_where_, ": dictionary-encoded page without a dictionary page (corrupt file)");
            if (present > 0) {
                const int bw = c.byte();
                decode_rle_hybrid(c, bw, present, levels_);
                for (const uint32_t idx : levels_) {
                    if (idx >= dict_.size()) c.bad("a dictionary index past the end of the dictionary");
                    vals.push_back(dict_[idx]);
                }
            }
        } else if (encoding == DELTA_LENGTH_BYTE_ARRAY) {
            const std::vector<int64_t> lens = decode_delta_binary_packed(c, present);
            if (lens.size() != present) c.bad("DELTA_LENGTH_BYTE_ARRAY holds a different number of values");
            for (const int64_t l : lens) {
                if (l < 0) c.bad("a negative string length");
                vals.push_back(c.take(static_cast<size_t>(l)));
            }
        } else {
            fail(page_where_, ": column '", col_.name, "' uses the ", encoding_name(encoding), " encoding (", encoding,
                 "), which this reader does not support; re-save the file with pyarrow's defaults");
        }
        size_t k = 0;
        for (size_t i = 0; i < count; ++i) {
            if (present_[i]) {
                spend(vals[k].size() + 32);
                out_.values.emplace_back(std::string(vals[k++]));
            } else {
                spend(32);
                out_.values.emplace_back(std::nullopt);
            }
        }
    }

    int64_t read_data_page_v1(const ThriftValue& h, const uint8_t* body, size_t n, size_t usize) {
        const ThriftValue& dh = thrift_struct(h, 5, page_where_, "PageHeader.data_page_header");
        const int64_t count = thrift_int(dh, 1, page_where_, "DataPageHeader.num_values");
        const int64_t enc = thrift_int(dh, 2, page_where_, "DataPageHeader.encoding");
        const int64_t def_enc = thrift_int_or(dh, 3, RLE);
        check(count >= 0 && static_cast<uint64_t>(count) <= usize * 8 + 8, page_where_, ": corrupt page: ", count,
              " values in ", usize, " bytes");
        const std::string page = decompress_page(codec_, body, n, usize, page_where_);
        Cursor c{reinterpret_cast<const uint8_t*>(page.data()), reinterpret_cast<const uint8_t*>(page.data()) + page.size(),
                 &page_where_};
        size_t present = static_cast<size_t>(count);
        if (col_.max_def > 0) {
            check(def_enc == RLE, page_where_, ": definition levels encoded as ", encoding_name(def_enc),
                  " are not supported (expected RLE)");
            const uint32_t len = c.u32();
            if (len > c.left()) c.bad("the definition levels run past the end of the page");
            Cursor lc{c.p, c.p + len, &page_where_};
            present = read_levels(lc, static_cast<size_t>(count));
            c.p += len;
        } else {
            present_.assign(static_cast<size_t>(count), 1);
        }
        emit_values(c, enc, static_cast<size_t>(count), present);
        return count;
    }

    int64_t read_data_page_v2(const ThriftValue& h, const uint8_t* body, size_t n, size_t usize) {
        const ThriftValue& dh = thrift_struct(h, 8, page_where_, "PageHeader.data_page_header_v2");
        const int64_t count = thrift_int(dh, 1, page_where_, "DataPageHeaderV2.num_values");
        const int64_t nulls = thrift_int(dh, 2, page_where_, "DataPageHeaderV2.num_nulls");
        const int64_t enc = thrift_int(dh, 4, page_where_, "DataPageHeaderV2.encoding");
        const int64_t def_len = thrift_int(dh, 5, page_where_, "DataPageHeaderV2.definition_levels_byte_length");
        const int64_t rep_len = thrift_int(dh, 6, page_where_, "DataPageHeaderV2.repetition_levels_byte_length");
        const bool compressed = thrift_int_or(dh, 7, 1) != 0;
        check(count >= 0 && nulls >= 0 && nulls <= count && def_len >= 0 && rep_len >= 0 &&
                  static_cast<uint64_t>(def_len) + static_cast<uint64_t>(rep_len) <= n &&
                  static_cast<uint64_t>(def_len) + static_cast<uint64_t>(rep_len) <= usize &&
                  static_cast<uint64_t>(count) <= usize * 8 + 8,
              page_where_, ": corrupt DATA_PAGE_V2 header");
        check(rep_len == 0 || col_.max_rep == 0, page_where_, ": repeated columns are not supported");
        const size_t lev = static_cast<size_t>(def_len + rep_len);
        Cursor lc{body + rep_len, body + lev, &page_where_};
        size_t present = static_cast<size_t>(count);
        if (col_.max_def > 0) present = read_levels(lc, static_cast<size_t>(count));
        else present_.assign(static_cast<size_t>(count), 1);
        check(present == static_cast<size_t>(count - nulls), page_where_, ": the page declares ", nulls,
              " nulls but its definition levels give ", static_cast<size_t>(count) - present);
        std::string values;
        if (compressed && codec_ != UNCOMPRESSED)
            values = decompress_page(codec_, body + lev, n - lev, usize - lev, page_where_);
        else
            values = decompress_page(UNCOMPRESSED, body + lev, n - lev, n - lev, page_where_);
        Cursor c{reinterpret_cast<const uint8_t*>(values.data()),
                 reinterpret_cast<const uint8_t*>(values.data()) + values.size(), &page_where_};
        emit_values(c, enc, static_cast<size_t>(count), present);
        return count;
    }

    std::span<const uint8_t> file_;
    const ColumnInfo& col_;
    std::string where_, page_where_;
    StringColumn& out_;
    size_t& budget_;
    int64_t codec_ = UNCOMPRESSED;
    std::string dict_storage_;
    std::vector<std::string_view> dict_;
    bool has_dict_ = false;
    std::vector<uint8_t> present_;
    std::vector<uint32_t> levels_;
};

}  // namespace

std::vector<ColumnInfo> parquet_columns(std::span<const uint8_t> file, const std::string& label) {
    return read_footer(file, label).schema.leaves;
}

StringColumn read_parquet_string_column(std::span<const uint8_t> file, const std::string& column,
                                        const std::string& label, size_t max_output_bytes) {
    const Footer f = read_footer(file, label);
    const auto& leaves = f.schema.leaves;
    const auto it = std::find_if(leaves.begin(), leaves.end(), [&](const ColumnInfo& c) { return c.name == column; });
    if (it == leaves.end()) {
        std::string names;
        for (const auto& c : leaves) names += (names.empty() ? "" : ", ") + c.name;
        fail(label, ": no column '", column, "' in this Parquet file (its columns: ", names.empty() ? "none" : names,
             "); name the text column with --dataset_field");
    }
    const size_t col_index = static_cast<size_t>(it - leaves.begin());
    check(it->max_rep == 0 && it->name.find('.') == std::string::npos, label, ": column '", column,
          "' is nested or repeated; only top-level string columns can be read");

    StringColumn out;
    out.num_rows = thrift_int(f.meta, 3, label, "FileMetaData.num_rows");
    size_t budget = max_output_bytes;
    const ThriftValue* rgs = f.meta.field(4);
    if (!rgs) return out;  // no row groups: an empty file
    check(rgs->kind == ThriftValue::Kind::List, label, ": corrupt Parquet metadata: row_groups is not a list");
    for (size_t g = 0; g < rgs->items.size(); ++g) {
        const std::string where = label + ", row group " + std::to_string(g);
        const ThriftValue& rg = rgs->items[g];
        check(rg.kind == ThriftValue::Kind::Struct, where, ": corrupt row group");
        const auto& cols = thrift_list(rg, 1, where, "RowGroup.columns");
        check(col_index < cols.size() && cols[col_index].kind == ThriftValue::Kind::Struct, where,
              ": the row group has ", cols.size(), " column chunks, fewer than the schema's ", leaves.size());
        const ThriftValue& cc = cols[col_index];
        const ThriftValue* path = cc.field(1);
        check(!path || path->kind != ThriftValue::Kind::Binary || path->bin.empty(), where,
              ": the column chunk lives in another file (", path ? std::string(path->bin) : "", "); not supported");
        const ThriftValue& meta = thrift_struct(cc, 3, where, "ColumnChunk.meta_data");
        const int64_t rows = thrift_int(rg, 3, where, "RowGroup.num_rows");
        const size_t before = out.values.size();
        ChunkReader(file, *it, where + ", column '" + column + "'", out, budget).read(meta, f.data_end);
        check(static_cast<int64_t>(out.values.size() - before) == rows, where, ": column '", column, "' has ",
              out.values.size() - before, " values but the row group has ", rows, " rows (corrupt file)");
    }
    return out;
}

StringColumn read_parquet_string_column(const std::filesystem::path& path, const std::string& column) {
    std::ifstream f(path, std::ios::binary);
    check(static_cast<bool>(f), "cannot open ", path.string(), " (check that it exists and is readable)");
    std::ostringstream ss;
    ss << f.rdbuf();
    check(!f.bad(), "cannot read ", path.string(), " (I/O error)");
    const std::string data = ss.str();
    return read_parquet_string_column(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()), column, path.string());
}

}  // namespace autoround::parquet

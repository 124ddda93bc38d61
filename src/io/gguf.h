// io/gguf.h — llama.cpp GGUF v3 files: a validating mmap reader and a streaming writer.
//
// Why: GGUF is how quantized models reach llama.cpp / Ollama (docs/checkpoint-formats.md §5). The reader
// is used on files we did not write (downloads, other tools), so — as for safetensors — every count,
// length, type and offset is checked against the file before a pointer into the mapping is handed out,
// and every failure names the file, the key or tensor at fault, and says what to do. The writer emits
// exactly the layout llama.cpp's gguf.cpp requires, through "<path>.tmp" renamed into place.
//
// File layout (§5.1, little-endian):
//   "GGUF" | u32 version (2 or 3; 1 is refused) | u64 tensor_count | u64 kv_count
//   | kv_count × (string key, u32 value_type, value) | tensor_count × (string name, u32 n_dims,
//   u64 ne[n_dims], u32 ggml_type, u64 offset) | zero pad to ALIGNMENT | tensor data, each tensor
//   zero-padded to ALIGNMENT.
//   string = u64 byte length + bytes; array = u32 element type + u64 count + elements (no arrays of arrays).
//   ALIGNMENT = general.alignment (UINT32, power of two) or 32. Offsets are relative to the data start and
//   must be the running sum of the padded sizes in tensor-info order (llama.cpp refuses anything else).
//   ne[0] is the innermost (contiguous) dimension: an HF weight [N, K] has ne = [K, N].
//
// Tensor types: this header knows the block size and byte size of every ggml type id (to size and
// validate any GGUF); which types can be *dequantized* is export/gguf_blocks.h's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace autoround {

class MappedFile;

// ---- value types of the metadata -------------------------------------------------------------------

enum class GgufValueType : uint32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
    STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
std::string_view gguf_value_type_name(GgufValueType t);  // "UINT32", ...

// One metadata value. Scalars keep their declared type; numbers are also readable through the typed
// getters below when the conversion is exact. Arrays hold either strings or raw little-endian numbers.
struct GgufValue {
    GgufValueType type = GgufValueType::UINT32;
    GgufValueType elem = GgufValueType::UINT8;  // element type when type == ARRAY
    uint64_t u = 0;                    // UINT8/16/32/64, BOOL (0/1)
    int64_t i = 0;                     // INT8/16/32/64
    double f = 0.0;                    // FLOAT32/64
    std::string str;                   // STRING
    std::vector<std::string> strs;     // ARRAY of STRING
    std::vector<uint8_t> raw;          // ARRAY of numbers/bools: count × element size bytes, little-endian
    uint64_t count = 0;                // ARRAY element count

    static GgufValue u32(uint32_t v);
    static GgufValue i32(int32_t v);
    static GgufValue f32(float v);
    static GgufValue boolean(bool v);
    static GgufValue string(std::string v);
    static GgufValue string_array(std::vector<std::string> v);
    static GgufValue i32_array(const std::vector<int32_t>& v);
};

// ---- ggml tensor types -----------------------------------------------------------------------------

// ggml_type ids (ggml.h). Only these names are needed by name; any id the table below knows is accepted.
enum class GgmlType : uint32_t {
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};

struct GgmlTypeTraits {
    const char* name = nullptr;   // "Q4_K", ...; nullptr for ids that do not exist (removed or unknown)
    int64_t block = 0;            // elements per block
    int64_t bytes = 0;            // bytes per block
};
// Traits of a ggml type id; name == nullptr when the id is unknown.
GgmlTypeTraits ggml_type_traits(uint32_t type_id);
std::string ggml_type_name(uint32_t type_id);  // "Q4_K", or "unknown type <id>"
// Bytes of a row of ne0 elements (ne0 must be a multiple of the block size).
int64_t ggml_row_bytes(uint32_t type_id, int64_t ne0);

// ---- reading -----------------------------------------------------------------------------------------

struct GgufTensorInfo {
    std::string name;
    std::vector<int64_t> ne;       // innermost first, 1..4 dims
    uint32_t type = 0;             // ggml_type id
    uint64_t offset = 0;           // relative to the data start
    const uint8_t* data = nullptr; // into the mapping
    size_t nbytes = 0;             // unpadded

    int64_t numel() const;
    int64_t rows() const;          // numel / ne[0]
    std::string ne_str() const;    // "[512, 8192]" (ne order)
};

// Parses and validates a whole GGUF image. `label` names it in errors. Pointers in the result point into
// `bytes`. Throws Error on: bad magic, version other than 2/3, counts that cannot fit in the file, strings /
// arrays past the end, unknown value types, arrays of arrays, duplicate or empty keys, general.alignment
// that is not a UINT32 power of two, tensor names empty / longer than 63 bytes / duplicate, n_dims outside
// 1..4, negative or overflowing dims, unknown ggml types, ne[0] not a multiple of the block size,
// offsets that are misaligned or not the running sum of padded sizes, and tensor data past the end.
struct GgufContents {
    uint32_t version = 3;
    uint32_t alignment = 32;
    std::vector<std::pair<std::string, GgufValue>> kv;     // file order
    std::map<std::string, size_t> kv_index;                 // key -> position in kv
    std::vector<GgufTensorInfo> tensors;                    // file order
    std::map<std::string, size_t> tensor_index;             // name -> position in tensors
    uint64_t data_offset = 0;                               // absolute offset of the data section
};
GgufContents parse_gguf(std::span<const uint8_t> bytes, const std::string& label);

// A mapped GGUF file with typed metadata access. Errors name the file and the key.
class GgufFile {
public:
    static std::shared_ptr<const GgufFile> open(const std::filesystem::path& path);

    const std::filesystem::path& path() const { return path_; }
    const GgufContents& contents() const { return c_; }
    const std::vector<GgufTensorInfo>& tensors() const { return c_.tensors; }
    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return c_.kv; }

    bool has(std::string_view key) const;
    const GgufValue* find(std::string_view key) const;    // nullptr when absent
    const GgufValue& get(std::string_view key) const;     // throws naming the key and the file
    // Typed getters: throw when the key is missing or has another type (named in the message).
    std::string get_string(std::string_view key) const;
    uint32_t get_u32(std::string_view key) const;         // UINT32 (also accepts exact UINT8/16/64, INT*)
    float get_f32(std::string_view key) const;            // FLOAT32 (also FLOAT64)
    bool get_bool(std::string_view key) const;
    std::optional<uint32_t> opt_u32(std::string_view key) const;
    std::optional<std::string> opt_string(std::string_view key) const;
    const std::vector<std::string>& get_string_array(std::string_view key) const;
    std::vector<int32_t> get_i32_array(std::string_view key) const;  // INT32 (or exact other int) array

    bool has_tensor(std::string_view name) const;
    const GgufTensorInfo* find_tensor(std::string_view name) const;
    const GgufTensorInfo& tensor(std::string_view name) const;  // throws naming the tensor and the file

private:
    std::filesystem::path path_;
    std::shared_ptr<MappedFile> map_;
    GgufContents c_;
};

// ---- writing -----------------------------------------------------------------------------------------

// Collects metadata and tensor descriptions, then writes the file in one pass. Tensor payloads are
// produced on demand (one tensor in memory at a time), so multi-GB models stream to disk.
class GgufWriter {
public:
    // Fills exactly `nbytes` bytes (the unpadded size of the tensor) at `dst`.
    using Producer = std::function<void(uint8_t* dst, size_t nbytes)>;

    void set(const std::string& key, GgufValue value);   // replaces an existing key, keeps its position
    // `ne` innermost first; ne[0] must be a multiple of the type's block; names <= 63 bytes, unique.
    void add_tensor(const std::string& name, std::vector<int64_t> ne, uint32_t type, Producer produce);
    void add_tensor(const std::string& name, std::vector<int64_t> ne, uint32_t type, std::vector<uint8_t> bytes);
    size_t tensor_count() const { return tensors_.size(); }

    // Writes `path` + ".tmp" and renames it into place; removes the temp file on failure.
    void write(const std::filesystem::path& path) const;

private:
    struct Tensor {
        std::string name;
        std::vector<int64_t> ne;
        uint32_t type;
        size_t nbytes;
        Producer produce;
    };
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::map<std::string, size_t> kv_index_;
    std::vector<Tensor> tensors_;
    std::map<std::string, size_t> tensor_index_;
    uint32_t alignment_ = 32;
};

}  // namespace autoround

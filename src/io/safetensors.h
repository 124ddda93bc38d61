// io/safetensors.h — safetensors checkpoints: mmap reader (single file or sharded), writer.
//
// File layout: u64 little-endian header length N, N bytes of JSON header
// {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data section; offsets are relative to the data section start.
// The reader validates every header: N within the file, valid JSON, known dtype, offsets inside
// the data section, begin <= end, no overlapping tensors, numel(shape) * dtype size == end - begin.
// Every error names the file and tensor at fault.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace autoround {

enum class DType { BF16, F16, F32, F64, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType dt);
std::string_view dtype_name(DType dt);            // "BF16", "F32", ... as in safetensors
DType parse_dtype(std::string_view name, const std::string& where);  // throws Error naming `where`

// A tensor inside a mapped file. `data` points into the mapping (lives as long as its file).
struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    const uint8_t* data = nullptr;
    size_t nbytes = 0;
    std::filesystem::path file;   // the .safetensors file that holds it

    int64_t numel() const;
    std::string shape_str() const;  // "[4096, 2560]"
};

// Parses and validates a header. `bytes` is the whole file; `label` names it in errors.
// Returns the tensors in file order (sorted by offset) and fills `metadata`.
std::vector<TensorInfo> parse_safetensors(std::span<const uint8_t> bytes, const std::string& label,
                                          std::map<std::string, std::string>* metadata = nullptr);

// Read-only memory map of a whole file (the data stays on disk until touched).
class MappedFile {
public:
    explicit MappedFile(const std::filesystem::path& path);  // throws Error (missing, unreadable)
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    std::span<const uint8_t> bytes() const { return {data_, size_}; }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

// All tensors of a checkpoint: one `model.safetensors`, a sharded set listed by
// `model.safetensors.index.json` (missing shards and tensors mapped to absent files are errors),
// or a single explicit .safetensors path.
class TensorStore {
public:
    static TensorStore open(const std::filesystem::path& dir_or_file);

    bool has(const std::string& name) const;
    const TensorInfo& get(const std::string& name) const;  // throws Error naming the tensor and dir
    std::vector<std::string> names() const;                 // sorted
    const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
    const std::vector<std::filesystem::path>& files() const { return files_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

    // Converts any floating dtype (BF16/F16/F32/F64) to float32; throws for integer dtypes.
    std::vector<float> load_f32(const std::string& name) const;
    // Copies into `out` (size must equal numel); same conversion rules as load_f32.
    void load_f32_into(const std::string& name, std::span<float> out) const;

private:
    std::vector<std::shared_ptr<MappedFile>> maps_;
    std::vector<std::filesystem::path> files_;
    std::map<std::string, TensorInfo> tensors_;
    std::map<std::string, std::string> metadata_;
    std::filesystem::path source_;  // what open() was given; named in errors
};

// Converts a tensor's raw bytes to float32 (BF16/F16/F32/F64).
void convert_to_f32(const TensorInfo& t, std::span<float> out);

// Writer: collects tensors (copies or borrowed bytes) and writes safetensors files with
// header {"__metadata__": {"format": "pt", ...}}, header padded with spaces to a multiple of 8,
// tensors in insertion order, each data offset 8-byte aligned.
class SafetensorsWriter {
public:
    void add(const std::string& name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes);
    void add_f32(const std::string& name, std::vector<int64_t> shape, std::span<const float> values);
    void add_bf16_from_f32(const std::string& name, std::vector<int64_t> shape, std::span<const float> values);
    void set_metadata(const std::string& key, const std::string& value);
    size_t total_bytes() const;

    // One file. Written to `path` + ".tmp" then renamed into place.
    void write_file(const std::filesystem::path& path) const;
    // Splits into shards of at most `max_shard_bytes` (a single larger tensor gets its own shard):
    // one shard -> `model.safetensors`; several -> `model-0000k-of-0000n.safetensors` plus
    // `model.safetensors.index.json` {"metadata": {"total_size": N}, "weight_map": {..}}.
    // Returns the written file names (shards in order, then the index if one was written).
    // Files of an earlier export with these names that the new export does not use are removed.
    std::vector<std::string> write_sharded(const std::filesystem::path& dir, size_t max_shard_bytes,
                                           const std::string& prefix = "model") const;

private:
    struct Entry {
        std::string name;
        DType dtype;
        std::vector<int64_t> shape;
        std::vector<uint8_t> bytes;
    };
    std::vector<Entry> entries_;
    std::map<std::string, size_t> index_;  // name -> position in entries_ (rejects duplicates)
    std::map<std::string, std::string> metadata_{{"format", "pt"}};

    void write_entries(const std::filesystem::path& path, const std::vector<size_t>& which) const;
};

}  // namespace autoround

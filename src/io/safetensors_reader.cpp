// io/safetensors_reader.cpp — safetensors reading: header validation, mmap, sharded checkpoints.
//
// Why: every tensor the program touches comes through here, from files we did not write.
// A header is untrusted input, so parse_safetensors() checks everything before a pointer into
// the mapping is handed out (lengths, JSON shape, dtype, dims, offsets, overlaps, sizes with
// overflow guards), and each failure says which file and tensor are at fault and what to do.
// TensorStore adds the folder logic: model.safetensors, or model.safetensors.index.json with
// its shards, or a single explicit file.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/bf16.h"
#include "core/error.h"
#include "io/model_config.h"  // read_json_file

namespace autoround {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; this reader assumes a little-endian host");

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // same limit as the reference implementation
constexpr const char* kCorrupt = "the file is corrupt or truncated; re-download or re-export it";

using json = nlohmann::json;

const char* json_type(const json& v) { return v.type_name(); }

std::string squote(const std::string& s) { return "'" + s + "'"; }

// Reads a JSON integer as a non-negative uint64; fails with a message naming `what`.
uint64_t read_offset(const json& v, const std::string& label, const std::string& name, const char* what) {
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_number_integer()) {
        const int64_t x = v.get<int64_t>();
        check(x >= 0, label, ": tensor ", squote(name), ": ", what, " is negative (", x, "); ", kCorrupt);
        return static_cast<uint64_t>(x);
    }
    fail(label, ": tensor ", squote(name), ": ", what, " must be an integer, got ", json_type(v), "; ",
         kCorrupt);
}

}  // namespace

// ---- dtypes ---------------------------------------------------------------------------------

size_t dtype_size(DType dt) {
    switch (dt) {
        case DType::BF16: return 2;
        case DType::F16: return 2;
        case DType::F32: return 4;
        case DType::F64: return 8;
        case DType::I64: return 8;
        case DType::I32: return 4;
        case DType::I16: return 2;
        case DType::I8: return 1;
        case DType::U8: return 1;
        case DType::BOOL: return 1;
    }
    fail("internal error: invalid DType value ", static_cast<int>(dt));
}

std::string_view dtype_name(DType dt) {
    switch (dt) {
        case DType::BF16: return "BF16";
        case DType::F16: return "F16";
        case DType::F32: return "F32";
        case DType::F64: return "F64";
        case DType::I64: return "I64";
        case DType::I32: return "I32";
        case DType::I16: return "I16";
        case DType::I8: return "I8";
        case DType::U8: return "U8";
        case DType::BOOL: return "BOOL";
    }
    fail("internal error: invalid DType value ", static_cast<int>(dt));
}

DType parse_dtype(std::string_view name, const std::string& where) {
    static constexpr DType all[] = {DType::BF16, DType::F16, DType::F32, DType::F64, DType::I64,
                                    DType::I32,  DType::I16, DType::I8,  DType::U8,  DType::BOOL};
    for (DType d : all)
        if (dtype_name(d) == name) return d;
    fail(where, ": unknown dtype '", name,
         "'; supported: BF16, F16, F32, F64, I64, I32, I16, I8, U8, BOOL (convert the checkpoint to one "
         "of these, e.g. with safetensors in Python)");
}

static bool is_float_dtype(DType dt) {
    return dt == DType::BF16 || dt == DType::F16 || dt == DType::F32 || dt == DType::F64;
}

// ---- TensorInfo ---------------------------------------------------------------------------------

int64_t TensorInfo::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

std::string TensorInfo::shape_str() const {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

// ---- header parsing -------------------------------------------------------------------------

std::vector<TensorInfo> parse_safetensors(std::span<const uint8_t> bytes, const std::string& label,
                                          std::map<std::string, std::string>* metadata) {
    check(bytes.size() >= 8, label, ": file is ", bytes.size(),
          " bytes, shorter than the 8-byte safetensors header length; ", kCorrupt);
    uint64_t header_len = 0;
    std::memcpy(&header_len, bytes.data(), 8);
    check(header_len <= kMaxHeaderBytes, label, ": header length ", header_len,
          " is larger than the 100 MB limit; this is not a safetensors file or ", kCorrupt);
    check(header_len <= bytes.size() - 8, label, ": header length ", header_len,
          " is larger than the file (", bytes.size(), " bytes); ", kCorrupt);

    const char* hbegin = reinterpret_cast<const char*>(bytes.data() + 8);
    const char* hend = hbegin + header_len;

    // Duplicate top-level keys would silently overwrite each other in the DOM; catch them here.
    std::set<std::string> top_keys;
    std::string duplicate;
    auto cb = [&](int depth, json::parse_event_t ev, json& parsed) {
        if (ev == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
            const auto& k = parsed.get_ref<const std::string&>();
            if (!top_keys.insert(k).second && duplicate.empty()) duplicate = k;
        }
        return true;
    };
    json header;
    try {
        header = json::parse(hbegin, hend, cb, /*allow_exceptions=*/true);
    } catch (const json::parse_error& e) {
        fail(label, ": header is not valid JSON (", e.what(), "); ", kCorrupt);
    }
    check(header.is_object(), label, ": header is a JSON ", json_type(header), ", expected an object; ",
          kCorrupt);
    check(duplicate.empty(), label, ": header lists ", squote(duplicate), " more than once; ", kCorrupt);

    const uint64_t data_size = bytes.size() - 8 - header_len;
    const uint8_t* data = bytes.data() + 8 + header_len;

    struct Span {
        uint64_t begin, end;
        size_t index;
    };
    std::vector<TensorInfo> out;
    std::vector<Span> spans;
    out.reserve(header.size());
    spans.reserve(header.size());

    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") {
            check(entry.is_object(), label, ": __metadata__ is a JSON ", json_type(entry),
                  ", expected an object of string to string; ", kCorrupt);
            for (const auto& [k, v] : entry.items()) {
                check(v.is_string(), label, ": __metadata__ value of ", squote(k), " is a JSON ",
                      json_type(v), ", expected a string; ", kCorrupt);
                if (metadata) (*metadata)[k] = v.get<std::string>();
            }
            continue;
        }
        const std::string where = label + ": tensor " + squote(name);
        check(entry.is_object(), where, " is a JSON ", json_type(entry),
              ", expected an object with dtype, shape and data_offsets; ", kCorrupt);
        const auto dt_it = entry.find("dtype");
        const auto sh_it = entry.find("shape");
        const auto of_it = entry.find("data_offsets");
        check(dt_it != entry.end(), where, " has no dtype; ", kCorrupt);
        check(sh_it != entry.end(), where, " has no shape; ", kCorrupt);
        check(of_it != entry.end(), where, " has no data_offsets; ", kCorrupt);
        check(dt_it->is_string(), where, ": dtype is a JSON ", json_type(*dt_it), ", expected a string; ",
              kCorrupt);
        check(sh_it->is_array(), where, ": shape is a JSON ", json_type(*sh_it),
              ", expected an array of integers; ", kCorrupt);
        check(of_it->is_array() && of_it->size() == 2, where, ": data_offsets must be an array [begin, end], got ",
              of_it->is_array() ? "an array of " + std::to_string(of_it->size()) + " elements"
                                 : std::string("a JSON ") + json_type(*of_it),
              "; ", kCorrupt);

        TensorInfo t;
        t.name = name;
        t.file = label;
        t.dtype = parse_dtype(dt_it->get_ref<const std::string&>(), where);

        uint64_t numel = 1;
        for (const auto& d : *sh_it) {
            int64_t dim = 0;
            if (d.is_number_unsigned()) {
                const uint64_t u = d.get<uint64_t>();
                check(u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where, ": dimension ",
                      u, " is too large; ", kCorrupt);
                dim = static_cast<int64_t>(u);
            } else if (d.is_number_integer()) {
                dim = d.get<int64_t>();
            } else {
                fail(where, ": shape entries must be integers, got a JSON ", json_type(d), "; ", kCorrupt);
            }
            check(dim >= 0, where, ": shape has a negative dimension (", dim, "); ", kCorrupt);
            t.shape.push_back(dim);
            uint64_t next = 0;
            check(!__builtin_mul_overflow(numel, static_cast<uint64_t>(dim), &next) &&
                      next <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
                  where, ": shape ", t.shape_str(), "... has more elements than fit in 63 bits; ", kCorrupt);
            numel = next;
        }
        uint64_t expect_bytes = 0;
        check(!__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(t.dtype)), &expect_bytes), where,
              ": shape ", t.shape_str(), " of ", dtype_name(t.dtype), " is too large to address; ", kCorrupt);

        const uint64_t begin = read_offset((*of_it)[0], label, name, "data_offsets begin");
        const uint64_t end = read_offset((*of_it)[1], label, name, "data_offsets end");
        check(begin <= end, where, ": data_offsets begin ", begin, " > end ", end, "; ", kCorrupt);
        check(end <= data_size, where, ": data_offsets [", begin, ", ", end,
              "] lie outside the data section (", data_size, " bytes); ", kCorrupt);
        check(end - begin == expect_bytes, where, ": shape ", t.shape_str(), " of ", dtype_name(t.dtype),
              " needs ", expect_bytes, " bytes but data_offsets [", begin, ", ", end, "] span ", end - begin,
              "; ", kCorrupt);
        t.data = data + begin;
        t.nbytes = static_cast<size_t>(end - begin);
        spans.push_back({begin, end, out.size()});
        out.push_back(std::move(t));
    }

    // Overlap check in offset order; empty tensors occupy no bytes and cannot overlap.
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    uint64_t covered_end = 0;
    size_t covered_by = 0;
    bool any = false;
    for (const Span& s : spans) {
        if (s.begin == s.end) continue;
        if (any && s.begin < covered_end) {
            fail(label, ": tensors ", squote(out[covered_by].name), " and ", squote(out[s.index].name),
                 " overlap in the data section; ", kCorrupt);
        }
        if (!any || s.end > covered_end) {
            covered_end = s.end;
            covered_by = s.index;
        }
        any = true;
    }

    std::vector<TensorInfo> sorted;
    sorted.reserve(out.size());
    for (const Span& s : spans) sorted.push_back(std::move(out[s.index]));
    return sorted;
}

// ---- MappedFile -------------------------------------------------------------------------------

MappedFile::MappedFile(const std::filesystem::path& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        fail("cannot open ", path.string(), ": ", std::strerror(err),
             err == ENOENT ? " (check the path)" : " (check the file permissions)");
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        fail("cannot stat ", path.string(), ": ", std::strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(path.string(), " is not a regular file; pass a .safetensors file or a model folder");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            fail("cannot memory-map ", path.string(), " (", size_, " bytes): ", std::strerror(err));
        }
        data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);  // the mapping stays valid after the descriptor is closed
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

// ---- conversion -------------------------------------------------------------------------------

void convert_to_f32(const TensorInfo& t, std::span<float> out) {
    check(is_float_dtype(t.dtype), "tensor '", t.name, "' in ", t.file.string(), " has dtype ",
          dtype_name(t.dtype), "; only BF16/F16/F32/F64 convert to float32");
    const int64_t n = t.numel();
    check(static_cast<int64_t>(out.size()) == n, "tensor '", t.name, "' in ", t.file.string(), " has ", n,
          " elements ", t.shape_str(), " but the destination holds ", out.size());
    check(t.nbytes == static_cast<size_t>(n) * dtype_size(t.dtype), "tensor '", t.name, "' in ",
          t.file.string(), ": byte size ", t.nbytes, " does not match shape ", t.shape_str());
    // Data offsets need not be aligned, so every load goes through memcpy.
    const uint8_t* src = t.data;
    float* dst = out.data();
    switch (t.dtype) {
        case DType::F32:
            if (n) std::memcpy(dst, src, static_cast<size_t>(n) * 4);
            break;
        case DType::BF16:
#pragma omp parallel for schedule(static) if (n > (1 << 20))
            for (int64_t i = 0; i < n; ++i) {
                uint16_t h;
                std::memcpy(&h, src + 2 * i, 2);
                dst[i] = bf16_to_float(h);
            }
            break;
        case DType::F16:
#pragma omp parallel for schedule(static) if (n > (1 << 20))
            for (int64_t i = 0; i < n; ++i) {
                uint16_t h;
                std::memcpy(&h, src + 2 * i, 2);
                dst[i] = fp16_to_float(h);
            }
            break;
        case DType::F64:
            for (int64_t i = 0; i < n; ++i) {
                double d;
                std::memcpy(&d, src + 8 * i, 8);
                dst[i] = static_cast<float>(d);
            }
            break;
        default:
            break;  // unreachable: checked above
    }
}

// ---- TensorStore ------------------------------------------------------------------------------

namespace {

// Adds the tensors of one mapped file; duplicates across files are errors.
void add_file_tensors(std::map<std::string, TensorInfo>& tensors, std::vector<TensorInfo> infos,
                      const std::filesystem::path& file) {
    for (auto& t : infos) {
        t.file = file;
        auto [it, inserted] = tensors.emplace(t.name, t);
        if (!inserted) {
            fail("tensor '", t.name, "' appears in both ", it->second.file.string(), " and ", file.string(),
                 "; a checkpoint must store each tensor once (remove the stale shard or re-export)");
        }
    }
}

bool ends_with(const std::string& s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

TensorStore TensorStore::open(const std::filesystem::path& dir_or_file) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status st = fs::status(dir_or_file, ec);
    check(fs::exists(st), dir_or_file.string(),
          " does not exist; pass a model folder (with model.safetensors or model.safetensors.index.json) or "
          "a .safetensors file");

    TensorStore store;
    auto open_single = [&](const fs::path& file) {
        auto map = std::make_shared<MappedFile>(file);
        std::map<std::string, std::string> meta;
        auto infos = parse_safetensors(map->bytes(), file.string(), &meta);
        add_file_tensors(store.tensors_, std::move(infos), file);
        for (auto& [k, v] : meta) store.metadata_.emplace(k, v);
        store.maps_.push_back(std::move(map));
        store.files_.push_back(file);
    };

    auto open_index = [&](const fs::path& index_path) {
        const json index = read_json_file(index_path);
        const std::string il = index_path.string();
        check(index.is_object(), il, ": expected a JSON object with a weight_map; re-download the index");
        const auto wm = index.find("weight_map");
        check(wm != index.end(), il, ": no weight_map; re-download the index");
        check(wm->is_object(), il, ": weight_map is a JSON ", wm->type_name(),
              ", expected an object of tensor name to shard file");
        const fs::path dir = index_path.parent_path();
        std::vector<std::string> shards;  // in order of first appearance
        std::set<std::string> seen;
        for (const auto& [name, shard] : wm->items()) {
            check(shard.is_string(), il, ": weight_map entry for '", name, "' is a JSON ", shard.type_name(),
                  ", expected a shard file name");
            const std::string& s = shard.get_ref<const std::string&>();
            const fs::path sp(s);
            bool safe = !s.empty() && sp.is_relative();
            for (const auto& part : sp) safe = safe && part != "..";
            check(safe, il, ": weight_map entry for '", name, "' names shard '", s,
                  "', which is not a plain file name inside the model folder");
            const std::string norm = sp.lexically_normal().string();  // "./a" and "a" are one shard
            if (seen.insert(norm).second) shards.push_back(norm);
        }
        for (const auto& s : shards) {
            const fs::path file = dir / s;
            check(fs::is_regular_file(file), "shard ", file.string(), " listed in ", il,
                  " is missing; re-download the checkpoint (all shards are needed)");
            open_single(file);
        }
        for (const auto& [name, shard] : wm->items()) {
            const fs::path file = dir / fs::path(shard.get<std::string>()).lexically_normal();
            const auto it = store.tensors_.find(name);
            check(it != store.tensors_.end() && it->second.file == file, "tensor '", name, "' is listed in ", il,
                  " for shard ", file.string(), " but that shard does not contain it",
                  it != store.tensors_.end() ? " (it is in " + it->second.file.string() + ")" : std::string(),
                  "; the index and shards do not match, re-download the checkpoint");
        }
    };

    if (fs::is_directory(st)) {
        store.source_ = dir_or_file;
        const fs::path single = dir_or_file / "model.safetensors";
        const fs::path index = dir_or_file / "model.safetensors.index.json";
        if (fs::exists(single)) {
            open_single(single);
        } else if (fs::exists(index)) {
            open_index(index);
        } else {
            std::string found;
            for (const auto& e : fs::directory_iterator(dir_or_file, ec)) {
                if (e.path().extension() == ".safetensors") found += " " + e.path().filename().string();
            }
            fail(dir_or_file.string(), " holds neither model.safetensors nor model.safetensors.index.json",
                 found.empty() ? std::string("; expected a Hugging Face model folder with safetensors weights")
                               : "; it has" + found + " (pass one of these files directly)");
        }
    } else {
        store.source_ = dir_or_file;
        if (ends_with(dir_or_file.filename().string(), ".index.json")) {
            open_index(dir_or_file);
        } else {
            open_single(dir_or_file);
        }
    }
    return store;
}

bool TensorStore::has(const std::string& name) const { return tensors_.count(name) != 0; }

const TensorInfo& TensorStore::get(const std::string& name) const {
    const auto it = tensors_.find(name);
    if (it != tensors_.end()) return it->second;
    fail("tensor '", name, "' not found in ", source_.string(), " (", tensors_.size(),
         " tensors); the checkpoint does not match the expected model architecture");
}

std::vector<std::string> TensorStore::names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& [k, v] : tensors_) out.push_back(k);
    return out;
}

std::vector<float> TensorStore::load_f32(const std::string& name) const {
    const TensorInfo& t = get(name);
    check(is_float_dtype(t.dtype), "tensor '", name, "' in ", t.file.string(), " has dtype ", dtype_name(t.dtype),
          "; load_f32 needs BF16/F16/F32/F64");
    std::vector<float> out(static_cast<size_t>(t.numel()));
    convert_to_f32(t, out);
    return out;
}

void TensorStore::load_f32_into(const std::string& name, std::span<float> out) const {
    convert_to_f32(get(name), out);
}

}  // namespace autoround

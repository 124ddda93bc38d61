// io/safetensors_writer.cpp — SafetensorsWriter: single files and sharded checkpoints.
//
// Why: quantized checkpoints must load in Hugging Face tools and in our own reader. The header
// starts with "__metadata__" ({"format": "pt", ...}), then tensors in insertion order; it is
// padded with spaces so the data section starts 8-byte aligned, and every tensor's data offset
// is 8-byte aligned (zero padding between tensors). Files are written to "<path>.tmp", synced
// and renamed, so a crash never leaves a half-written file under the final name.
#include "io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "core/bf16.h"
#include "core/error.h"

namespace autoround {

namespace {

using ojson = nlohmann::ordered_json;

constexpr size_t kAlign = 8;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// POSIX file written with full-write loops, fsync'd and renamed into place on commit().
class AtomicFile {
public:
    explicit AtomicFile(std::filesystem::path path) : path_(std::move(path)), tmp_(path_.string() + ".tmp") {
        fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0) {
            const int err = errno;
            fail("cannot create ", tmp_.string(), ": ", std::strerror(err),
                 " (check that the output folder exists and is writable)");
        }
    }
    ~AtomicFile() {
        if (fd_ >= 0) {
            ::close(fd_);
            std::error_code ec;
            std::filesystem::remove(tmp_, ec);
        }
    }
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, size_t n) {
        const char* p = static_cast<const char*>(data);
        while (n > 0) {
            const ssize_t w = ::write(fd_, p, n > (1u << 30) ? (1u << 30) : n);
            if (w < 0) {
                if (errno == EINTR) continue;
                const int err = errno;
                fail("cannot write ", tmp_.string(), ": ", std::strerror(err), " (is the disk full?)");
            }
            p += w;
            n -= static_cast<size_t>(w);
        }
    }
    void write_zeros(size_t n) {
        static const char zeros[kAlign] = {};
        while (n > 0) {
            const size_t k = n < kAlign ? n : kAlign;
            write(zeros, k);
            n -= k;
        }
    }
    void commit() {
        if (::fsync(fd_) != 0) {
            const int err = errno;
            fail("cannot flush ", tmp_.string(), ": ", std::strerror(err), " (is the disk full?)");
        }
        const int rc = ::close(fd_);
        fd_ = -1;
        if (rc != 0) {
            const int err = errno;
            std::error_code ec;
            std::filesystem::remove(tmp_, ec);
            fail("cannot close ", tmp_.string(), ": ", std::strerror(err));
        }
        std::error_code ec;
        std::filesystem::rename(tmp_, path_, ec);
        if (ec) {
            std::filesystem::remove(tmp_, ec);
            fail("cannot rename ", tmp_.string(), " to ", path_.string(), ": ", ec.message());
        }
    }

private:
    std::filesystem::path path_, tmp_;
    int fd_ = -1;
};

// "<prefix>-ddddd-of-ddddd.safetensors"
bool is_shard_name(const std::string& fn, const std::string& prefix) {
    const std::string pattern = "-#####-of-#####.safetensors";
    if (fn.size() != prefix.size() + pattern.size() || fn.compare(0, prefix.size(), prefix) != 0) return false;
    for (size_t i = 0; i < pattern.size(); ++i) {
        const char c = fn[prefix.size() + i];
        if (pattern[i] == '#' ? (c < '0' || c > '9') : c != pattern[i]) return false;
    }
    return true;
}

void write_text_file(const std::filesystem::path& path, const std::string& text) {
    AtomicFile f(path);
    f.write(text.data(), text.size());
    f.commit();
}

}  // namespace

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                            std::vector<uint8_t> bytes) {
    check(!name.empty(), "SafetensorsWriter: a tensor needs a non-empty name");
    check(name != "__metadata__", "SafetensorsWriter: '__metadata__' is reserved and cannot name a tensor");
    check(!index_.count(name), "SafetensorsWriter: tensor '", name, "' was added twice; names must be unique");
    uint64_t numel = 1;
    for (int64_t d : shape) {
        check(d >= 0, "SafetensorsWriter: tensor '", name, "' has a negative dimension ", d);
        check(!__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel), "SafetensorsWriter: tensor '",
              name, "' has too many elements");
    }
    uint64_t expect = 0;
    check(!__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(dtype)), &expect) &&
              expect == bytes.size(),
          "SafetensorsWriter: tensor '", name, "' of ", dtype_name(dtype), " with ", numel, " elements needs ",
          expect, " bytes, got ", bytes.size());
    index_.emplace(name, entries_.size());
    entries_.push_back(Entry{name, dtype, std::move(shape), std::move(bytes)});
}

void SafetensorsWriter::add_f32(const std::string& name, std::vector<int64_t> shape, std::span<const float> values) {
    std::vector<uint8_t> bytes(values.size() * sizeof(float));
    if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    add(name, DType::F32, std::move(shape), std::move(bytes));
}

void SafetensorsWriter::add_bf16_from_f32(const std::string& name, std::vector<int64_t> shape,
                                          std::span<const float> values) {
    std::vector<uint8_t> bytes(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t h = float_to_bf16(values[i]);
        std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
    add(name, DType::BF16, std::move(shape), std::move(bytes));
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

size_t SafetensorsWriter::total_bytes() const {
    size_t n = 0;
    for (const auto& e : entries_) n += e.bytes.size();
    return n;
}

void SafetensorsWriter::write_entries(const std::filesystem::path& path, const std::vector<size_t>& which) const {
    ojson header = ojson::object();
    ojson meta = ojson::object();
    for (const auto& [k, v] : metadata_) meta[k] = v;
    header["__metadata__"] = std::move(meta);
    size_t offset = 0;
    for (size_t i : which) {
        const Entry& e = entries_[i];
        ojson t = ojson::object();
        t["dtype"] = std::string(dtype_name(e.dtype));
        t["shape"] = e.shape;
        t["data_offsets"] = {offset, offset + e.bytes.size()};
        header[e.name] = std::move(t);
        offset = align_up(offset + e.bytes.size());
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& ex) {
        fail("cannot write ", path.string(), ": a tensor name or metadata entry is not valid UTF-8 (", ex.what(), ")");
    }
    text.append(align_up(8 + text.size()) - 8 - text.size(), ' ');

    AtomicFile f(path);
    const uint64_t n = text.size();
    f.write(&n, 8);
    f.write(text.data(), text.size());
    size_t pos = 0;
    for (size_t i : which) {
        const Entry& e = entries_[i];
        f.write(e.bytes.data(), e.bytes.size());
        pos += e.bytes.size();
        f.write_zeros(align_up(pos) - pos);
        pos = align_up(pos);
    }
    f.commit();
}

void SafetensorsWriter::write_file(const std::filesystem::path& path) const {
    std::vector<size_t> all(entries_.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    write_entries(path, all);
}

std::vector<std::string> SafetensorsWriter::write_sharded(const std::filesystem::path& dir, size_t max_shard_bytes,
                                                          const std::string& prefix) const {
    namespace fs = std::filesystem;
    check(max_shard_bytes > 0, "SafetensorsWriter: max shard size must be positive");
    check(!prefix.empty() && prefix.find('/') == std::string::npos,
          "SafetensorsWriter: shard prefix '", prefix, "' must be a plain file name");
    std::error_code ec;
    fs::create_directories(dir, ec);
    check(!ec, "cannot create output folder ", dir.string(), ": ", ec.message());

    // Greedy split in insertion order; a tensor larger than the limit gets a shard of its own.
    std::vector<std::vector<size_t>> shards;
    size_t cur = 0;
    for (size_t i = 0; i < entries_.size(); ++i) {
        const size_t sz = entries_[i].bytes.size();
        if (shards.empty() || (!shards.back().empty() && cur + sz > max_shard_bytes)) {
            shards.emplace_back();
            cur = 0;
        }
        shards.back().push_back(i);
        cur += sz;
    }
    if (shards.empty()) shards.emplace_back();

    const std::string single = prefix + ".safetensors";
    const std::string index_name = prefix + ".safetensors.index.json";
    // Files of an earlier export with our names would shadow or confuse the new one: remove them.
    std::set<std::string> stale;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string fn = e.path().filename().string();
        if (fn == single || fn == index_name || is_shard_name(fn, prefix)) stale.insert(fn);
    }

    std::vector<std::string> written;
    if (shards.size() == 1) {
        write_entries(dir / single, shards[0]);
        written.push_back(single);
    } else {
        const size_t n = shards.size();
        check(n <= 99999, "SafetensorsWriter: ", n, " shards is too many; raise the max shard size");
        nlohmann::json weight_map = nlohmann::json::object();  // sorted by tensor name, as in transformers
        for (size_t s = 0; s < n; ++s) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "-%05zu-of-%05zu.safetensors", s + 1, n);
            const std::string name = prefix + buf;
            write_entries(dir / name, shards[s]);
            for (size_t i : shards[s]) weight_map[entries_[i].name] = name;
            written.push_back(name);
        }
        nlohmann::json index;
        index["metadata"] = {{"total_size", total_bytes()}};
        index["weight_map"] = std::move(weight_map);
        std::string text;
        try {
            text = index.dump(2) + "\n";
        } catch (const nlohmann::json::exception& ex) {
            fail("cannot write ", (dir / index_name).string(), ": a tensor name is not valid UTF-8 (", ex.what(), ")");
        }
        write_text_file(dir / index_name, text);
        written.push_back(index_name);
    }
    for (const auto& fn : written) stale.erase(fn);
    for (const auto& fn : stale) fs::remove(dir / fn, ec);
    return written;
}

}  // namespace autoround

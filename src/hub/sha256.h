// hub/sha256.h — streaming SHA-256 (OpenSSL's libcrypto) for checking LFS downloads against their
// ETag (the content's SHA-256 for LFS/Xet files: protocol doc §2.2) and for the oids of uploads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace autoround::hub {

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    void update(const void* data, size_t n);
    std::string hex_digest();   // finishes; 64 lower-case hex digits

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view data);
// Hashes bytes [0, limit) of a file (the whole file by default); errors name the file.
std::string sha256_file(const std::filesystem::path& path, uint64_t limit = UINT64_MAX);
// Feeds bytes [0, limit) of a file into `h` (used to resume a hash over a partial download).
void sha256_update_from_file(Sha256& h, const std::filesystem::path& path, uint64_t limit);

}  // namespace autoround::hub

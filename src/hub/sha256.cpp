// hub/sha256.cpp — see sha256.h.
#include "hub/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <vector>

#include "core/error.h"

namespace autoround::hub {

struct Sha256::Impl {
    EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
    impl_->ctx = EVP_MD_CTX_new();
    check(impl_->ctx != nullptr && EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) == 1,
          "cannot initialise SHA-256 (libcrypto)");
}

Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256::update(const void* data, size_t n) {
    if (n) check(EVP_DigestUpdate(impl_->ctx, data, n) == 1, "SHA-256 update failed");
}

std::string Sha256::hex_digest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    check(EVP_DigestFinal_ex(impl_->ctx, md, &len) == 1, "SHA-256 final failed");
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out.push_back(hex[md[i] >> 4]);
        out.push_back(hex[md[i] & 15]);
    }
    return out;
}

std::string sha256_hex(std::string_view data) {
    Sha256 h;
    h.update(data.data(), data.size());
    return h.hex_digest();
}

void sha256_update_from_file(Sha256& h, const std::filesystem::path& path, uint64_t limit) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    check(f != nullptr, "cannot open ", path.string(), " to hash it");
    std::vector<char> buf(1 << 20);
    uint64_t left = limit;
    while (left > 0) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), left));
        const size_t got = std::fread(buf.data(), 1, want, f);
        if (got == 0) break;
        h.update(buf.data(), got);
        left -= got;
    }
    const bool err = std::ferror(f) != 0;
    std::fclose(f);
    check(!err, "error reading ", path.string(), " to hash it");
}

std::string sha256_file(const std::filesystem::path& path, uint64_t limit) {
    Sha256 h;
    sha256_update_from_file(h, path, limit);
    return h.hex_digest();
}

}  // namespace autoround::hub

// tests/text/reference_safetensors.h — a minimal safetensors reader for the tokenizer tests.
//
// Why: the WikiText token ids to compare against live in shared/reference/qwen3-nano-text.safetensors.
// The tokenizer tests must not depend on src/io (developed concurrently), so this reads just what
// they need: the 8-byte little-endian header length, the JSON header, and one I64 tensor.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace autoround::test {

inline std::vector<int64_t> read_safetensors_i64(const std::string& path, const std::string& name) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    unsigned char len_bytes[8];
    in.read(reinterpret_cast<char*>(len_bytes), 8);
    if (!in) throw std::runtime_error(path + ": too short for a safetensors header");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[i];
    if (header_len > (100u << 20)) throw std::runtime_error(path + ": header length is implausible");
    std::string header(header_len, '\0');
    in.read(header.data(), static_cast<std::streamsize>(header_len));
    if (!in) throw std::runtime_error(path + ": truncated header");
    const nlohmann::json h = nlohmann::json::parse(header);
    if (!h.contains(name)) throw std::runtime_error(path + ": no tensor " + name);
    const auto& t = h[name];
    if (t["dtype"] != "I64") throw std::runtime_error(path + ": tensor " + name + " is not I64");
    const uint64_t begin = t["data_offsets"][0].get<uint64_t>(), end = t["data_offsets"][1].get<uint64_t>();
    if (end < begin || (end - begin) % 8 != 0) throw std::runtime_error(path + ": bad data_offsets for " + name);
    std::vector<int64_t> out((end - begin) / 8);
    in.seekg(static_cast<std::streamoff>(8 + header_len + begin));
    std::vector<unsigned char> raw(end - begin);
    in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
    if (!in) throw std::runtime_error(path + ": truncated data for " + name);
    for (std::size_t i = 0; i < out.size(); ++i) {
        uint64_t v = 0;
        for (int b = 7; b >= 0; --b) v = (v << 8) | raw[i * 8 + static_cast<std::size_t>(b)];
        out[i] = static_cast<int64_t>(v);
    }
    return out;
}

}  // namespace autoround::test

// text/byte_level.h — the GPT-2 byte <-> unicode map used by byte-level BPE (ByteLevel
// pre-tokenizer and decoder in Hugging Face tokenizers).
//
// Why: byte-level vocabularies store every token as a string of "printable" code points, one per
// byte: bytes 0x21–0x7E, 0xA1–0xAC and 0xAE–0xFF map to themselves and the other 68 bytes map, in
// increasing order, to U+0100..U+0143 (space -> 'Ġ' U+0120, '\n' -> 'Ċ' U+010A). Encoding maps
// a piece's UTF-8 bytes through this table; decoding reverses it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace autoround::byte_level {

// Code point that byte `b` maps to.
uint32_t byte_to_codepoint(uint8_t b);

// Byte that code point `cp` stands for, or -1 if `cp` is not in the map.
int codepoint_to_byte(uint32_t cp);

// The UTF-8 string (1 or 2 bytes) of byte_to_codepoint(b).
const std::string& byte_to_string(uint8_t b);

// Maps raw bytes to their byte-level string (e.g. " hi" -> "Ġhi").
std::string encode(std::string_view bytes);

// Maps a byte-level string back to raw bytes, appending to `out`. Returns false (and appends
// nothing) if `s` holds a code point outside the map or is not valid UTF-8; Hugging Face's
// ByteLevel decoder then keeps the token's own bytes, which the caller does.
bool decode_append(std::string_view s, std::string& out);

}  // namespace autoround::byte_level

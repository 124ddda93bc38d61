// text/utf8.h — strict UTF-8 validation and lossy decoding for the tokenizer.
//
// Why: encode() must reject invalid UTF-8 and say where it is; decode() must turn arbitrary
// byte sequences (byte-level BPE tokens can split a character) into valid UTF-8 exactly the way
// Python's bytes.decode("utf-8", errors="replace") and Rust's String::from_utf8_lossy do: each
// *maximal subpart* of an ill-formed sequence becomes one U+FFFD (Unicode §3.9, "U+FFFD
// substitution of maximal subparts"). The streaming decoder needs the same scanner to know how
// many trailing bytes are a still-incomplete (but so far valid) sequence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace autoround::utf8 {

// Returns the byte offset of the first ill-formed byte, or npos if `s` is valid UTF-8
// (no overlongs, no surrogates, nothing above U+10FFFF).
std::size_t find_invalid(std::string_view s);

// Appends `in` to `out`, replacing each maximal ill-formed subpart by U+FFFD (EF BF BD).
// If `final` is false, a trailing sequence that is valid so far but incomplete is not consumed.
// Returns the number of bytes of `in` consumed (== in.size() when final).
std::size_t decode_lossy(std::string_view in, std::string& out, bool final = true);

// Appends the UTF-8 encoding of code point `cp` (must be a valid scalar value).
void append_codepoint(std::string& out, uint32_t cp);

}  // namespace autoround::utf8

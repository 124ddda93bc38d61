// text/jinja/pystr.h — Python str semantics on UTF-8 std::strings, for the Jinja interpreter.
//
// Templates index, slice, strip, split and case-map strings the way Python does: by code point,
// with Python's notion of whitespace and printable characters. These helpers keep the bytes
// in UTF-8 and decode only where code points matter. Case mapping uses utf8proc (simple,
// one-to-one mappings; Python's few one-to-many mappings such as 'ß'.upper() are not reproduced).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace autoround::jinja::pystr {

std::u32string decode(std::string_view s);  // invalid bytes become U+FFFD
std::string encode(std::u32string_view s);
void append_utf8(std::string& out, char32_t cp);
size_t length(std::string_view s);  // in code points

bool is_space(char32_t c);  // Python str.isspace()
std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string title(std::string_view s);       // str.title()
std::string capitalize(std::string_view s);  // str.capitalize()

// str.strip/lstrip/rstrip; chars == nullptr strips whitespace.
std::string strip(std::string_view s, const std::string* chars, bool left, bool right);
// str.split(sep, maxsplit); sep == nullptr splits on runs of whitespace. Throws on an empty sep.
std::vector<std::string> split(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count);
int64_t find(std::string_view s, std::string_view sub, bool reverse);  // code-point index or -1
int64_t count(std::string_view s, std::string_view sub);

std::string repr(std::string_view s);  // Python repr(str), quotes included
// Appends s as a JSON string literal the way Python's json.dumps does.
void json_quote(std::string& out, std::string_view s, bool ensure_ascii);

}  // namespace autoround::jinja::pystr

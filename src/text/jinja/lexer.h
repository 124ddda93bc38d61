// text/jinja/lexer.h — splits a Jinja template into data and tag tokens.
//
// Whitespace handling follows jinja2's lexer under transformers' settings: newlines normalised to
// \n, one trailing newline dropped, trim_blocks (a newline right after a block or comment tag is
// removed), lstrip_blocks (spaces and tabs before a block or comment tag at the start of a line are
// removed), the '-' / '+' modifiers on tags, comments skipped and {% raw %} bodies kept as data.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace autoround::jinja {

enum class Tok { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };

struct Token {
    Tok type;
    std::string text;  // Data: the text; Name/Op: the spelling; String: the unescaped value
    int64_t ival = 0;
    double fval = 0;
    int line = 1, col = 1;
};

std::vector<Token> tokenize(std::string_view source);

// Throws Error("template syntax error at line L, column C: message").
[[noreturn]] void syntax_error(int line, int col, const std::string& message);

}  // namespace autoround::jinja

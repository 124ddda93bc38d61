// text/jinja/parser.h — builds the syntax tree from tokens with jinja2's grammar and operator
// precedence (ternary < or < and < not < comparisons < + - < ~ < * / // % < ** < unary, filters, tests).
#pragma once

#include <string_view>

#include "text/jinja/ast.h"

namespace autoround::jinja {

// Parses a whole template. Throws Error with line/column on syntax errors, on unknown tags and on
// unknown filters or tests outside conditional blocks (as jinja2's compiler does).
Body parse_template(std::string_view source);

}  // namespace autoround::jinja

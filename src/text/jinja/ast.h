// text/jinja/ast.h — the syntax tree the parser builds and the interpreter walks.
//
// Two node types keep the tree small: Expr (expressions) and Stmt (template statements). Each
// kind uses a documented subset of the fields; unused fields stay empty.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja/value.h"

namespace autoround::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
using KwArgs = std::vector<std::pair<std::string, ExprPtr>>;

struct Expr {
    enum class Kind {
        Literal,   // value
        Name,      // name
        List,      // args = items
        Tuple,     // args = items
        Dict,      // args = key0, value0, key1, value1, ...
        GetAttr,   // args[0].name
        GetItem,   // args[0][args[1]]
        Slice,     // args[0][args[1]:args[2]:args[3]] (null = omitted)
        Call,      // args[0](args[1..], kwargs)
        Filter,    // args[0] | name(args[1..], kwargs); args[0] is null in {% filter %} / {% set %} blocks
        Test,      // args[0] is name(args[1..], kwargs)
        Neg,       // -args[0]
        Pos,       // +args[0]
        Binary,    // args[0] name args[1]; name is + - * / // % ** ~
        Compare,   // args[0] ops[0] args[1] ops[1] args[2] ... (chained, Python style)
        And,       // args[0] and args[1]
        Or,        // args[0] or args[1]
        Not,       // not args[0]
        Cond,      // args[0] if args[1] else args[2] (args[2] null when there is no else)
    };
    Kind kind;
    int line = 0, col = 0;
    Value value;
    std::string name;
    std::vector<ExprPtr> args;
    std::vector<std::string> ops;
    KwArgs kwargs;
    bool soft = false;  // Filter/Test inside an if/ternary: an unknown name fails only when evaluated
    int depth = 1;      // height of this subtree; the parser bounds it
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
    enum class Kind {
        Text,         // text (literal template data)
        Output,       // {{ expr }}
        If,           // branches: (condition, body)...; a final else has a null condition
        For,          // for targets in expr [if cond]: body [else: else_body]
        Set,          // set targets = expr; with attr_target: set targets[0].targets[1] = expr
        SetBlock,     // set targets[0] | filters: body
        Macro,        // macro name(params): body
        CallBlock,    // call(params) expr: body — body becomes `caller`
        FilterBlock,  // filter filters: body
        With,         // with params (name = expr): body
        Break,
        Continue,
        Generation,   // transformers' {% generation %}: renders its body unchanged
    };
    Kind kind;
    int line = 0, col = 0;
    std::string text;  // Text data; Macro name
    ExprPtr expr, cond;
    std::vector<std::string> targets;
    bool attr_target = false;
    std::vector<std::pair<ExprPtr, Body>> branches;
    Body body, else_body;
    KwArgs params;  // Macro/CallBlock parameters (default or null); With assignments
    std::vector<ExprPtr> filters;  // SetBlock/FilterBlock: Filter exprs with a null input
};

}  // namespace autoround::jinja

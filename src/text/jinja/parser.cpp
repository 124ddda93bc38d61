// text/jinja/parser.cpp — recursive-descent parser following jinja2 3.1's parser.py grammar.
#include "text/jinja/parser.h"

#include <algorithm>

#include "core/error.h"
#include "text/jinja/builtins.h"
#include "text/jinja/lexer.h"

namespace autoround::jinja {
namespace {

using EK = Expr::Kind;
using SK = Stmt::Kind;

class Parser {
public:
    explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

    Body parse_all() {
        Body body = parse_body({});
        for (const Expr* e : unknown_)  // jinja2's compiler rejects unknown filters/tests outside if blocks
            if (!e->soft)
                syntax_error(e->line, e->col, std::string("no ") + (e->kind == EK::Filter ? "filter" : "test") +
                                                  " named '" + e->name + "'");
        return body;
    }

private:
    std::vector<Token> t_;
    size_t i_ = 0;
    int depth_ = 0, soft_ = 0, loops_ = 0;
    std::vector<const Expr*> unknown_;

    // ---- token helpers ------------------------------------------------------------------
    const Token& cur() const { return t_[i_]; }
    const Token& peek() const { return t_[std::min(i_ + 1, t_.size() - 1)]; }
    const Token& advance() {  // returns the consumed token (tokens never move: the vector is fixed)
        const Token& t = t_[i_];
        if (i_ + 1 < t_.size()) ++i_;
        return t;
    }
    bool is_op(const char* op) const { return cur().type == Tok::Op && cur().text == op; }
    bool is_name(const char* n) const { return cur().type == Tok::Name && cur().text == n; }
    bool skip_op(const char* op) { return is_op(op) ? (advance(), true) : false; }
    bool skip_name(const char* n) { return is_name(n) ? (advance(), true) : false; }
    [[noreturn]] void error(const Token& t, const std::string& msg) { syntax_error(t.line, t.col, msg); }

    static std::string describe(const Token& t) {
        switch (t.type) {
            case Tok::Name: case Tok::Op: return "'" + t.text + "'";
            case Tok::String: return "string";
            case Tok::Int: return "integer";
            case Tok::Float: return "float";
            case Tok::Data: return "template data";
            case Tok::VarBegin: return "begin of print statement";
            case Tok::VarEnd: return "end of print statement";
            case Tok::BlockBegin: return "begin of statement block";
            case Tok::BlockEnd: return "end of statement block";
            case Tok::Eof: return "end of template";
        }
        return "token";
    }
    void expect_op(const char* op) {
        if (!skip_op(op)) error(cur(), std::string("expected '") + op + "', got " + describe(cur()));
    }
    std::string expect_name() {
        if (cur().type != Tok::Name) error(cur(), "expected a name, got " + describe(cur()));
        return advance().text;
    }
    void expect_block_end() {
        if (cur().type != Tok::BlockEnd) error(cur(), "expected end of statement block, got " + describe(cur()));
        advance();
    }

    struct Nest {  // bounds recursion so hostile input cannot overflow the stack
        Parser& p;
        Nest(Parser& parser, const Token& at) : p(parser) {
            if (++p.depth_ > 150) p.error(at, "template nested too deeply");
        }
        ~Nest() { --p.depth_; }
    };

    ExprPtr node(EK kind, const Token& at) {
        auto e = std::make_unique<Expr>();
        e->kind = kind;
        e->line = at.line;
        e->col = at.col;
        return e;
    }
    StmtPtr stmt(SK kind, const Token& at) {
        auto s = std::make_unique<Stmt>();
        s->kind = kind;
        s->line = at.line;
        s->col = at.col;
        return s;
    }
    // Sets e's subtree height; chains such as a.b.c... or x|f|f... are built in loops, so the
    // height is bounded here (the evaluator and destructors recurse over it).
    ExprPtr finish(ExprPtr e) {
        for (auto& a : e->args)
            if (a) e->depth = std::max(e->depth, a->depth + 1);
        for (auto& [_, a] : e->kwargs) e->depth = std::max(e->depth, a->depth + 1);
        if (e->depth > 120) syntax_error(e->line, e->col, "expression nested too deeply");
        return e;
    }
    static void mark_soft(Expr& e) {
        if (e.kind == EK::Filter || e.kind == EK::Test) e.soft = true;
        for (auto& a : e.args)
            if (a) mark_soft(*a);
        for (auto& [_, a] : e.kwargs) mark_soft(*a);
    }

    // ---- statements ---------------------------------------------------------------------
    // Parses until EOF (end_tags empty) or a {% tag %} named in end_tags; then cur() is that name.
    Body parse_body(const std::vector<std::string>& end_tags) {
        Body body;
        while (true) {
            const Token& t = cur();
            if (t.type == Tok::Eof) {
                if (end_tags.empty()) return body;
                std::string want;
                for (auto& tag : end_tags) want += (want.empty() ? "'" : " or '") + tag + "'";
                error(t, "unexpected end of template, expected " + want);
            } else if (t.type == Tok::Data) {
                auto s = stmt(SK::Text, t);
                s->text = advance().text;
                body.push_back(std::move(s));
            } else if (t.type == Tok::VarBegin) {
                auto s = stmt(SK::Output, advance());
                s->expr = parse_tuple(true, {}, false);
                if (cur().type != Tok::VarEnd) error(cur(), "expected end of print statement, got " + describe(cur()));
                advance();
                body.push_back(std::move(s));
            } else if (t.type == Tok::BlockBegin) {
                const Token& name = peek();
                if (name.type != Tok::Name) error(name, "expected a statement name, got " + describe(name));
                advance();
                if (std::find(end_tags.begin(), end_tags.end(), name.text) != end_tags.end()) return body;
                body.push_back(parse_statement());
            } else {
                error(t, "unexpected " + describe(t));
            }
        }
    }

    // Consumes the closing tag name that parse_body stopped at, and the block end.
    std::string close_tag() {
        std::string name = advance().text;
        expect_block_end();
        return name;
    }

    StmtPtr parse_statement() {
        Nest nest(*this, cur());
        const Token& tag = advance();
        const std::string& k = tag.text;
        if (k == "if") return parse_if(tag);
        if (k == "for") return parse_for(tag);
        if (k == "set") return parse_set(tag);
        if (k == "macro" || k == "call") return parse_macro(tag, k == "call");
        if (k == "filter" || k == "with" || k == "generation") {
            auto s = stmt(k == "filter" ? SK::FilterBlock : k == "with" ? SK::With : SK::Generation, tag);
            if (k == "filter") {
                do s->filters.push_back(parse_filter(nullptr)); while (skip_op("|"));
            } else if (k == "with") {
                while (cur().type != Tok::BlockEnd) {
                    if (!s->params.empty()) expect_op(",");
                    std::string name = expect_name();
                    expect_op("=");
                    s->params.emplace_back(name, parse_expression(true));
                }
            }
            expect_block_end();
            int saved = soft_;
            soft_ = k == "generation" ? soft_ : 0;
            s->body = parse_body({"end" + k});
            soft_ = saved;
            close_tag();
            return s;
        }
        if (k == "break" || k == "continue") {
            if (loops_ == 0) error(tag, "'" + k + "' outside loop");
            expect_block_end();
            return stmt(k == "break" ? SK::Break : SK::Continue, tag);
        }
        if (k == "include" || k == "extends" || k == "import" || k == "from" || k == "block")
            error(tag, "'" + k + "' is not supported (chat templates are single files)");
        error(tag, "unknown tag '" + k + "'");
    }

    StmtPtr parse_if(const Token& tag) {
        auto s = stmt(SK::If, tag);
        ++soft_;
        while (true) {
            ExprPtr cond = parse_tuple(false, {}, false);
            expect_block_end();
            Body body = parse_body({"elif", "else", "endif"});
            s->branches.emplace_back(std::move(cond), std::move(body));
            std::string end = advance().text;
            if (end == "elif") continue;
            if (end == "else") {
                expect_block_end();
                s->branches.emplace_back(nullptr, parse_body({"endif"}));
                advance();
            }
            break;
        }
        expect_block_end();
        --soft_;
        return s;
    }

    std::vector<std::string> parse_target_names() {
        std::vector<std::string> names;
        bool paren = skip_op("(");
        do names.push_back(expect_name()); while (skip_op(","));
        if (paren) expect_op(")");
        return names;
    }

    StmtPtr parse_for(const Token& tag) {
        auto s = stmt(SK::For, tag);
        s->targets = parse_target_names();
        if (!skip_name("in")) error(cur(), "expected 'in', got " + describe(cur()));
        s->expr = parse_tuple(false, {"recursive"}, false);
        if (skip_name("if")) s->cond = parse_expression(true);
        if (is_name("recursive")) error(cur(), "recursive for loops are not supported");
        expect_block_end();
        int saved = soft_;
        soft_ = 0;
        ++loops_;
        s->body = parse_body({"endfor", "else"});
        --loops_;
        if (advance().text == "else") {
            expect_block_end();
            s->else_body = parse_body({"endfor"});
            advance();
        }
        soft_ = saved;
        expect_block_end();
        return s;
    }

    StmtPtr parse_set(const Token& tag) {
        auto s = stmt(SK::Set, tag);
        if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == ".") {
            s->targets.push_back(advance().text);
            advance();
            s->targets.push_back(expect_name());
            s->attr_target = true;
        } else {
            s->targets = parse_target_names();
        }
        if (skip_op("=")) {
            s->expr = parse_tuple(true, {}, false);
            expect_block_end();
            return s;
        }
        if (s->attr_target || s->targets.size() != 1) error(cur(), "expected '=' in set statement");
        s->kind = SK::SetBlock;
        while (skip_op("|")) s->filters.push_back(parse_filter(nullptr));
        expect_block_end();
        s->body = parse_body({"endset"});
        close_tag();
        return s;
    }

    StmtPtr parse_macro(const Token& tag, bool is_call) {
        auto s = stmt(is_call ? SK::CallBlock : SK::Macro, tag);
        if (!is_call) s->text = expect_name();
        if (!is_call || is_op("(")) {
            expect_op("(");
            while (!is_op(")")) {
                if (!s->params.empty()) expect_op(",");
                if (is_op(")")) break;
                const Token& at = cur();
                std::string name = expect_name();
                ExprPtr def = skip_op("=") ? parse_expression(true) : nullptr;
                if (!def && !s->params.empty() && s->params.back().second)
                    error(at, "non-default argument follows default argument");
                s->params.emplace_back(name, std::move(def));
            }
            advance();
        }
        if (is_call) {
            s->expr = parse_expression(true);
            if (s->expr->kind != EK::Call) error(tag, "expected a call expression after 'call'");
        }
        expect_block_end();
        int saved_soft = soft_, saved_loops = loops_;
        soft_ = loops_ = 0;
        s->body = parse_body({is_call ? "endcall" : "endmacro"});
        soft_ = saved_soft;
        loops_ = saved_loops;
        close_tag();
        return s;
    }

    // ---- expressions --------------------------------------------------------------------
    ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

    bool is_tuple_end(const std::vector<std::string>& extra_end) const {
        if (cur().type == Tok::VarEnd || cur().type == Tok::BlockEnd || is_op(")")) return true;
        return cur().type == Tok::Name && std::find(extra_end.begin(), extra_end.end(), cur().text) != extra_end.end();
    }

    ExprPtr parse_tuple(bool with_condexpr, const std::vector<std::string>& extra_end, bool explicit_parens) {
        const Token& start = cur();
        std::vector<ExprPtr> items;
        bool is_tuple = false;
        while (true) {
            if (!items.empty()) expect_op(",");
            if (is_tuple_end(extra_end)) break;
            items.push_back(parse_expression(with_condexpr));
            if (!is_op(",")) break;
            is_tuple = true;
        }
        if (!is_tuple) {
            if (!items.empty()) return std::move(items[0]);
            if (!explicit_parens) error(cur(), "expected an expression, got " + describe(cur()));
        }
        auto e = node(EK::Tuple, start);
        e->args = std::move(items);
        return finish(std::move(e));
    }

    ExprPtr parse_condexpr() {
        Nest nest(*this, cur());
        ExprPtr e = parse_or();
        while (is_name("if")) {
            auto c = node(EK::Cond, advance());
            ExprPtr cond = parse_or();
            ExprPtr other = skip_name("else") ? parse_condexpr() : nullptr;
            c->args.push_back(std::move(e));
            c->args.push_back(std::move(cond));
            c->args.push_back(std::move(other));
            mark_soft(*c);
            e = finish(std::move(c));
        }
        return e;
    }

    ExprPtr binary(EK kind, const Token& at, ExprPtr a, ExprPtr b, std::string op = {}) {
        auto e = node(kind, at);
        e->name = std::move(op);
        e->args.push_back(std::move(a));
        e->args.push_back(std::move(b));
        return finish(std::move(e));
    }

    ExprPtr parse_or() {
        ExprPtr e = parse_and();
        while (is_name("or")) {
            const Token& t = advance();
            e = binary(EK::Or, t, std::move(e), parse_and());
        }
        return e;
    }
    ExprPtr parse_and() {
        ExprPtr e = parse_not();
        while (is_name("and")) {
            const Token& t = advance();
            e = binary(EK::And, t, std::move(e), parse_not());
        }
        return e;
    }
    ExprPtr parse_not() {
        if (!is_name("not")) return parse_compare();
        Nest nest(*this, cur());
        auto e = node(EK::Not, advance());
        e->args.push_back(parse_not());
        return finish(std::move(e));
    }
    ExprPtr parse_compare() {
        const Token& start = cur();
        ExprPtr first = parse_math1();
        auto e = node(EK::Compare, start);
        e->args.push_back(std::move(first));
        while (true) {
            static const char* cmp[] = {"==", "!=", "<", ">", "<=", ">="};
            std::string op;
            for (const char* c : cmp)
                if (is_op(c)) op = c;
            if (!op.empty()) advance();
            else if (skip_name("in")) op = "in";
            else if (is_name("not") && peek().type == Tok::Name && peek().text == "in") { advance(); advance(); op = "notin"; }
            else break;
            e->ops.push_back(op);
            e->args.push_back(parse_math1());
        }
        return e->ops.empty() ? std::move(e->args[0]) : finish(std::move(e));
    }
    template <typename Next>
    ExprPtr parse_binary_level(std::initializer_list<const char*> ops, Next next) {
        ExprPtr e = (this->*next)();
        while (true) {
            const char* hit = nullptr;
            for (const char* op : ops)
                if (is_op(op)) hit = op;
            if (!hit) return e;
            const Token& t = advance();
            e = binary(EK::Binary, t, std::move(e), (this->*next)(), hit);
        }
    }
    ExprPtr parse_math1() { return parse_binary_level({"+", "-"}, &Parser::parse_concat); }
    ExprPtr parse_concat() { return parse_binary_level({"~"}, &Parser::parse_math2); }
    ExprPtr parse_math2() { return parse_binary_level({"*", "/", "//", "%"}, &Parser::parse_pow); }
    ExprPtr parse_pow() { return parse_binary_level({"**"}, &Parser::parse_unary_filtered); }
    ExprPtr parse_unary_filtered() { return parse_unary(true); }

    ExprPtr parse_unary(bool with_filter) {
        Nest nest(*this, cur());
        ExprPtr e;
        if (is_op("-") || is_op("+")) {
            EK kind = is_op("-") ? EK::Neg : EK::Pos;
            e = node(kind, advance());
            e->args.push_back(parse_unary(false));
            e = finish(std::move(e));
        } else {
            e = parse_primary();
        }
        e = parse_postfix(std::move(e));
        if (with_filter) e = parse_filter_expr(std::move(e));
        return e;
    }

    ExprPtr parse_primary() {
        const Token& t = cur();
        if (t.type == Tok::Name) {
            advance();
            auto e = node(EK::Literal, t);
            if (t.text == "true" || t.text == "True") e->value = Value(true);
            else if (t.text == "false" || t.text == "False") e->value = Value(false);
            else if (t.text == "none" || t.text == "None") e->value = Value::none();
            else { e->kind = EK::Name; e->name = t.text; }
            return e;
        }
        if (t.type == Tok::String) {
            std::string s;
            while (cur().type == Tok::String) s += advance().text;
            auto e = node(EK::Literal, t);
            e->value = Value(std::move(s));
            return e;
        }
        if (t.type == Tok::Int || t.type == Tok::Float) {
            advance();
            auto e = node(EK::Literal, t);
            e->value = t.type == Tok::Int ? Value(t.ival) : Value(t.fval);
            return e;
        }
        if (skip_op("(")) {
            ExprPtr e = parse_tuple(true, {}, true);
            expect_op(")");
            return e;
        }
        if (is_op("[") || is_op("{")) {
            bool dict = is_op("{");
            auto e = node(dict ? EK::Dict : EK::List, advance());
            const char* close = dict ? "}" : "]";
            while (!is_op(close)) {
                if (!e->args.empty()) expect_op(",");
                if (is_op(close)) break;
                e->args.push_back(parse_expression(true));
                if (dict) {
                    expect_op(":");
                    e->args.push_back(parse_expression(true));
                }
            }
            advance();
            return finish(std::move(e));
        }
        error(t, "unexpected " + describe(t));
    }

    ExprPtr parse_postfix(ExprPtr e) {
        while (is_op(".") || is_op("[") || is_op("(")) {
            if (is_op("(")) e = parse_call(std::move(e));
            else e = parse_subscript(std::move(e));
        }
        return e;
    }

    ExprPtr parse_filter_expr(ExprPtr e) {
        while (true) {
            if (is_op("|")) { advance(); e = parse_filter(std::move(e)); }
            else if (is_name("is")) e = parse_test(std::move(e));
            else if (is_op("(")) e = parse_call(std::move(e));
            else return e;
        }
    }

    ExprPtr parse_subscript(ExprPtr obj) {
        const Token& t = advance();
        if (t.text == ".") {
            const Token& a = cur();
            if (a.type == Tok::Name) {
                auto e = node(EK::GetAttr, a);
                e->name = advance().text;
                e->args.push_back(std::move(obj));
                return finish(std::move(e));
            }
            if (a.type != Tok::Int) error(a, "expected name or number after '.'");
            auto e = node(EK::GetItem, advance());
            auto key = node(EK::Literal, a);
            key->value = Value(a.ival);
            e->args.push_back(std::move(obj));
            e->args.push_back(std::move(key));
            return finish(std::move(e));
        }
        ExprPtr start, stop, step;
        bool is_slice = is_op(":");
        if (!is_slice) {
            start = parse_expression(true);
            is_slice = is_op(":");
        }
        if (is_slice) {
            advance();
            if (!is_op("]") && !is_op(",") && !is_op(":")) stop = parse_expression(true);
            if (skip_op(":") && !is_op("]") && !is_op(",")) step = parse_expression(true);
        }
        if (is_op(",")) error(cur(), "tuple subscripts are not supported");
        expect_op("]");
        auto e = node(is_slice ? EK::Slice : EK::GetItem, t);
        e->args.push_back(std::move(obj));
        e->args.push_back(std::move(start));
        if (is_slice) {
            e->args.push_back(std::move(stop));
            e->args.push_back(std::move(step));
        }
        return finish(std::move(e));
    }

    void parse_call_args(Expr& e) {
        advance();  // '('
        bool need_comma = false;
        while (!is_op(")")) {
            if (need_comma) {
                expect_op(",");
                if (is_op(")")) break;
            }
            if (is_op("*") || is_op("**")) error(cur(), "*args and **kwargs in calls are not supported");
            if (cur().type == Tok::Name && peek().type == Tok::Op && peek().text == "=") {
                std::string key = advance().text;
                advance();
                e.kwargs.emplace_back(key, parse_expression(true));
            } else {
                if (!e.kwargs.empty()) error(cur(), "positional argument follows keyword argument");
                e.args.push_back(parse_expression(true));
            }
            need_comma = true;
        }
        advance();
    }

    ExprPtr parse_call(ExprPtr callee) {
        auto e = node(EK::Call, cur());
        e->args.push_back(std::move(callee));
        parse_call_args(*e);
        return finish(std::move(e));
    }

    std::string parse_dotted_name() {
        std::string name = expect_name();
        while (skip_op(".")) name += "." + expect_name();
        return name;
    }

    ExprPtr parse_filter(ExprPtr input) {
        auto e = node(EK::Filter, cur());
        e->name = parse_dotted_name();
        e->args.push_back(std::move(input));
        if (is_op("(")) parse_call_args(*e);
        e->soft = soft_ > 0;
        if (!has_filter(e->name)) unknown_.push_back(e.get());
        return finish(std::move(e));
    }

    ExprPtr parse_test(ExprPtr input) {
        const Token& is = advance();
        bool negated = skip_name("not");
        auto e = node(EK::Test, cur());
        e->name = parse_dotted_name();
        e->args.push_back(std::move(input));
        Tok ty = cur().type;
        if (is_op("(")) {
            parse_call_args(*e);
        } else if ((ty == Tok::Name || ty == Tok::String || ty == Tok::Int || ty == Tok::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
            if (is_name("is")) error(cur(), "You cannot chain multiple tests with is");
            e->args.push_back(parse_postfix(parse_primary()));
        }
        e->soft = soft_ > 0;
        if (!has_test(e->name)) unknown_.push_back(e.get());
        if (!negated) return finish(std::move(e));
        auto n = node(EK::Not, is);
        n->args.push_back(finish(std::move(e)));
        return finish(std::move(n));
    }
};

}  // namespace

Body parse_template(std::string_view source) { return Parser(tokenize(source)).parse_all(); }

}  // namespace autoround::jinja

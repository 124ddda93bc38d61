// text/jinja/interpreter.cpp — statement execution and expression evaluation (see interpreter.h).
#include "text/jinja/interpreter.h"

#include "core/error.h"
#include "text/jinja/builtins.h"

namespace autoround::jinja {

using EK = Expr::Kind;
using SK = Stmt::Kind;

const Value* Frame::lookup(const std::string& name) const {
    for (const Frame* f = this; f; f = f->parent.get())
        for (auto& [k, v] : f->vars)
            if (k == name) return &v;
    return nullptr;
}

void Frame::set(const std::string& name, Value value) {
    for (auto& [k, v] : vars)
        if (k == name) { v = std::move(value); return; }
    vars.emplace_back(name, std::move(value));
}

struct Interpreter::Guard {
    Interpreter& in;
    explicit Guard(Interpreter& i) : in(i) {
        charge(1);
        if (++in.depth_ > in.limits_.max_depth) {
            --in.depth_;
            fail("template recursion too deep (more than ", in.limits_.max_depth, " nested evaluations)");
        }
    }
    ~Guard() { --in.depth_; }
};

std::string Interpreter::render(const Body& body, const Dict& variables) {
    BudgetScope budget(limits_.max_steps);
    auto globals = std::make_shared<Frame>();
    for (auto& [k, v] : make_globals().entries) globals->set(k.str(), v);
    globals->set("namespace", Value::function("namespace", [this](CallArgs& a) {
        auto ns = std::make_shared<Object>();
        ns->type = "Namespace";
        ns->mutable_attrs = true;
        if (!a.pos.empty()) {
            check(a.pos[0].is(Value::Kind::Dict), "TypeError: namespace() positional argument must be a mapping");
            for (auto& [k, v] : a.pos[0].dict().entries) ns->set_attr(to_str(k), v);
        }
        for (auto& [k, v] : a.kw) ns->set_attr(k, v);
        cleanups_.push_back([w = std::weak_ptr<Object>(ns)] {
            if (auto p = w.lock()) p->attrs.entries.clear();
        });
        return Value(ns);
    }));
    root_ = std::make_shared<Frame>();
    root_->parent = globals;
    for (auto& [k, v] : variables.entries) root_->set(to_str(k), v);
    struct Cleanup {
        Interpreter& in;
        ~Cleanup() {
            for (auto& c : in.cleanups_) c();
            in.cleanups_.clear();
            in.root_.reset();
        }
    } cleanup{*this};
    std::string out;
    exec(body, root_, out);
    return out;
}

void Interpreter::append(std::string& out, const std::string& text) {
    out += text;
    charge(text.size() / 64);
    if (out.size() > limits_.max_output) fail("template output larger than ", limits_.max_output, " bytes");
}

// ---- statements -------------------------------------------------------------------------------

Interpreter::Flow Interpreter::exec(const Body& body, const FramePtr& f, std::string& out) {
    for (auto& s : body) {
        Flow flow = exec_stmt(*s, f, out);
        if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
}

void Interpreter::bind(Frame& f, const std::vector<std::string>& targets, const Value& v) {
    if (targets.size() == 1) return f.set(targets[0], v);
    List items = iterate(v);
    check(items.size() == targets.size(), "ValueError: ", items.size() < targets.size() ? "not enough" : "too many",
          " values to unpack (expected ", targets.size(), ")");
    for (size_t i = 0; i < targets.size(); ++i) f.set(targets[i], items[i]);
}

// Renders a body in its own frame and applies {% set x | f %} / {% filter f %} filters.
std::string Interpreter::capture(const Body& body, const FramePtr& parent, const std::vector<ExprPtr>& filters) {
    auto f = std::make_shared<Frame>();
    f->parent = parent;
    std::string text;
    exec(body, f, text);
    Value v(std::move(text));
    for (auto& flt : filters) {
        CallArgs args = eval_args(*flt, parent, 1);
        v = apply_filter(flt->name, v, args);
    }
    return to_str(v);
}

Interpreter::Flow Interpreter::exec_stmt(const Stmt& s, const FramePtr& f, std::string& out) {
    try {
        return run_stmt(s, f, out);
    } catch (const TemplateError&) {
        throw;
    } catch (const Error& e) {
        throw TemplateError(std::string(e.what()) + " (template line " + std::to_string(s.line) + ")");
    }
}

Interpreter::Flow Interpreter::run_stmt(const Stmt& s, const FramePtr& f, std::string& out) {
    Guard guard(*this);
    switch (s.kind) {
        case SK::Text: append(out, s.text); return Flow::Normal;
        case SK::Output: append(out, to_str(eval(*s.expr, f))); return Flow::Normal;
        case SK::If:
            for (auto& [cond, body] : s.branches)
                if (!cond || truthy(eval(*cond, f))) return exec(body, f, out);
            return Flow::Normal;
        case SK::For: return exec_for(s, f, out);
        case SK::Set: {
            Value v = eval(*s.expr, f);
            if (!s.attr_target) {
                bind(*f, s.targets, v);
                return Flow::Normal;
            }
            const Value* ns = f->lookup(s.targets[0]);
            check(ns && ns->is(Value::Kind::Object) && ns->object().mutable_attrs,
                  "cannot assign attribute on non-namespace object '", s.targets[0], "'");
            ns->object().set_attr(s.targets[1], v);
            return Flow::Normal;
        }
        case SK::SetBlock: f->set(s.targets[0], Value(capture(s.body, f, s.filters))); return Flow::Normal;
        case SK::FilterBlock: append(out, capture(s.body, f, s.filters)); return Flow::Normal;
        case SK::Macro: f->set(s.text, make_macro(s, f)); return Flow::Normal;
        case SK::CallBlock: {
            std::weak_ptr<Frame> closure = f;
            Value caller = Value::function("caller", [this, &s, closure](CallArgs& a) { return call_macro(s, closure, a); });
            append(out, to_str(eval_call(*s.expr, f, &caller)));
            return Flow::Normal;
        }
        case SK::With: {
            auto inner = std::make_shared<Frame>();
            inner->parent = f;
            for (auto& [name, e] : s.params) inner->set(name, eval(*e, f));
            return exec(s.body, inner, out);
        }
        case SK::Generation: return exec(s.body, f, out);
        case SK::Break: return Flow::Break;
        case SK::Continue: return Flow::Continue;
    }
    return Flow::Normal;
}

Interpreter::Flow Interpreter::exec_for(const Stmt& s, const FramePtr& f, std::string& out) {
    Value seq = eval(*s.expr, f);
    check(!seq.is_none(), "TypeError: 'NoneType' object is not iterable");
    List items = iterate(seq);
    if (s.cond) {  // `for x in xs if cond`: filtered before loop.index/length are computed
        List kept;
        for (auto& item : items) {
            auto tf = std::make_shared<Frame>();
            tf->parent = f;
            bind(*tf, s.targets, item);
            if (truthy(eval(*s.cond, tf))) kept.push_back(item);
        }
        items = std::move(kept);
    }
    if (items.empty()) {
        auto ef = std::make_shared<Frame>();
        ef->parent = f;
        exec(s.else_body, ef, out);
        return Flow::Normal;
    }
    const int64_t n = static_cast<int64_t>(items.size());
    auto index = std::make_shared<int64_t>(0);
    Value cycle = Value::function("cycle", [index](CallArgs& a) {
        check(!a.pos.empty(), "TypeError: no items for cycling given");
        return a.pos[size_t(*index % int64_t(a.pos.size()))];
    });
    auto last_changed = std::make_shared<std::pair<bool, Value>>(false, Value());
    cleanups_.push_back([w = std::weak_ptr<std::pair<bool, Value>>(last_changed)] {
        if (auto p = w.lock()) p->second = Value();
    });
    Value changed = Value::function("changed", [last_changed](CallArgs& a) {
        Value now(a.pos, true);
        if (last_changed->first && equals(last_changed->second, now)) return Value(false);
        *last_changed = {true, now};
        return Value(true);
    });
    static const char* const names[] = {"index", "index0", "revindex", "revindex0", "first", "last", "length",
                                        "previtem", "nextitem", "depth", "depth0", "cycle", "changed"};
    static const std::vector<Value> keys(std::begin(names), std::end(names));  // shared, immutable
    for (int64_t i = 0; i < n; ++i) {
        *index = i;
        charge(8);
        auto loop = std::make_shared<Object>();
        loop->type = "LoopContext";
        Value vals[] = {i + 1, i, n - i, n - i - 1, i == 0, i == n - 1, n,
                        i > 0 ? items[size_t(i - 1)] : Value::undefined("there is no previous item"),
                        i + 1 < n ? items[size_t(i + 1)] : Value::undefined("there is no next item"),
                        1, 0, cycle, changed};
        loop->depth = 1 + std::max(vals[7].nesting(), vals[8].nesting());
        loop->attrs.entries.reserve(keys.size());
        for (size_t k = 0; k < keys.size(); ++k) loop->attrs.entries.emplace_back(keys[k], std::move(vals[k]));
        auto lf = std::make_shared<Frame>();
        lf->parent = f;
        bind(*lf, s.targets, items[size_t(i)]);
        lf->set("loop", Value(loop));
        if (exec(s.body, lf, out) == Flow::Break) break;
    }
    return Flow::Normal;
}

Value Interpreter::make_macro(const Stmt& m, const FramePtr& f) {
    std::weak_ptr<Frame> closure = f;
    return Value::function(m.text, [this, &m, closure](CallArgs& a) { return call_macro(m, closure, a); });
}

// Binds parameters (positional, then keyword, then defaults evaluated in the new frame), collects
// extra arguments in `varargs` / `kwargs`, passes `caller` through, and renders the body.
Value Interpreter::call_macro(const Stmt& m, const std::weak_ptr<Frame>& closure, CallArgs& args) {
    Guard guard(*this);
    auto f = std::make_shared<Frame>();
    f->parent = closure.lock();
    if (!f->parent) f->parent = root_;
    for (size_t i = 0; i < m.params.size(); ++i) {
        auto& [name, def] = m.params[i];
        const Value* v = args.get(i, name);
        f->set(name, v ? *v : def ? eval(*def, f) : Value::undefined("parameter '" + name + "' was not provided"));
    }
    List varargs;
    for (size_t i = m.params.size(); i < args.pos.size(); ++i) varargs.push_back(args.pos[i]);
    Dict kwargs;
    for (auto& [k, v] : args.kw) {
        bool is_param = false;
        for (auto& p : m.params) is_param = is_param || p.first == k;
        if (k == "caller") f->set("caller", v);
        else if (!is_param) kwargs.set(Value(k), v);
    }
    f->set("varargs", Value(std::move(varargs), true));
    f->set("kwargs", Value(std::move(kwargs)));
    std::string out;
    exec(m.body, f, out);
    return Value(std::move(out));
}

// ---- expressions ------------------------------------------------------------------------------

CallArgs Interpreter::eval_args(const Expr& e, const FramePtr& f, size_t first) {
    CallArgs a;
    for (size_t i = first; i < e.args.size(); ++i) a.pos.push_back(eval(*e.args[i], f));
    for (auto& [k, x] : e.kwargs) a.kw.emplace_back(k, eval(*x, f));
    return a;
}

Value Interpreter::eval_call(const Expr& e, const FramePtr& f, const Value* caller) {
    const Expr& callee = *e.args[0];
    Value obj, fn;
    bool method = callee.kind == EK::GetAttr;
    if (method) obj = eval(*callee.args[0], f);
    else fn = eval(callee, f);
    CallArgs args = eval_args(e, f, 1);
    if (caller) args.kw.emplace_back("caller", *caller);
    if (method) {
        Value out;
        if (!obj.is_undefined() && call_method(obj, callee.name, args, out)) return out;
        fn = get_attr(obj, callee.name);
    }
    if (fn.is_undefined()) raise_undefined(fn);
    check(fn.is(Value::Kind::Function), "TypeError: '", type_name(fn), "' object is not callable");
    return fn.function().fn(args);
}

Value Interpreter::eval(const Expr& e, const FramePtr& f) {
    Guard guard(*this);
    switch (e.kind) {
        case EK::Literal: return e.value;
        case EK::Name: {
            const Value* v = f->lookup(e.name);
            return v ? *v : Value::undefined("'" + e.name + "' is undefined");
        }
        case EK::List: case EK::Tuple: {
            List items;
            for (auto& a : e.args) items.push_back(eval(*a, f));
            return Value(std::move(items), e.kind == EK::Tuple);
        }
        case EK::Dict: {
            Dict d;
            for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
                Value k = eval(*e.args[i], f);
                check(!k.is(Value::Kind::List) || k.is_tuple(), "TypeError: unhashable type: 'list'");
                check(!k.is(Value::Kind::Dict), "TypeError: unhashable type: 'dict'");
                d.set(std::move(k), eval(*e.args[i + 1], f));
            }
            return Value(std::move(d));
        }
        case EK::GetAttr: return get_attr(eval(*e.args[0], f), e.name);
        case EK::GetItem: {
            Value obj = eval(*e.args[0], f);
            return get_item(obj, eval(*e.args[1], f));
        }
        case EK::Slice: {
            Value obj = eval(*e.args[0], f);
            Value parts[3];
            for (int i = 0; i < 3; ++i)
                if (e.args[size_t(i) + 1]) parts[i] = eval(*e.args[size_t(i) + 1], f);
            return slice(obj, e.args[1] ? &parts[0] : nullptr, e.args[2] ? &parts[1] : nullptr, e.args[3] ? &parts[2] : nullptr);
        }
        case EK::Call: return eval_call(e, f, nullptr);
        case EK::Filter: {
            Value input = eval(*e.args[0], f);
            CallArgs args = eval_args(e, f, 1);
            return apply_filter(e.name, input, args);
        }
        case EK::Test: {
            Value input = eval(*e.args[0], f);
            CallArgs args = eval_args(e, f, 1);
            return apply_test(e.name, input, args);
        }
        case EK::Neg: return negate(eval(*e.args[0], f));
        case EK::Pos: {
            Value v = eval(*e.args[0], f);
            if (v.is_undefined()) raise_undefined(v);
            check(v.is_number(), "TypeError: bad operand type for unary +: '", type_name(v), "'");
            return v.is(Value::Kind::Bool) ? Value(v.as_int()) : v;
        }
        case EK::Binary: {
            Value a = eval(*e.args[0], f);
            return binary_op(e.name, a, eval(*e.args[1], f));
        }
        case EK::Compare: {
            Value left = eval(*e.args[0], f);
            for (size_t i = 0; i < e.ops.size(); ++i) {
                Value right = eval(*e.args[i + 1], f);
                const std::string& op = e.ops[i];
                bool ok = op == "==" ? equals(left, right)
                        : op == "!=" ? !equals(left, right)
                        : op == "<" ? less(left, right)
                        : op == ">" ? less(right, left)
                        : op == "<=" ? less(left, right) || equals(left, right)
                        : op == ">=" ? less(right, left) || equals(left, right)
                        : op == "in" ? contains(right, left)
                        : !contains(right, left);
                if (!ok) return false;
                left = std::move(right);
            }
            return true;
        }
        case EK::And: {
            Value a = eval(*e.args[0], f);
            return truthy(a) ? eval(*e.args[1], f) : a;
        }
        case EK::Or: {
            Value a = eval(*e.args[0], f);
            return truthy(a) ? a : eval(*e.args[1], f);
        }
        case EK::Not: return !truthy(eval(*e.args[0], f));
        case EK::Cond:
            if (truthy(eval(*e.args[1], f))) return eval(*e.args[0], f);
            if (e.args[2]) return eval(*e.args[2], f);
            return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
    return Value();
}

}  // namespace autoround::jinja

// text/jinja/value.cpp — Python semantics for jinja::Value: str()/repr(), ==, <, arithmetic,
// json.dumps, plus the render budget that bounds time and memory.
#include "text/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "text/jinja/pystr.h"

namespace autoround::jinja {

// ---- construction -------------------------------------------------------------------------

Value::Value(std::string s) {
    if (s.size() > kMaxStringBytes) fail("string longer than ", kMaxStringBytes, " bytes");
    charge(s.size() / 64);
    v_ = std::make_shared<const std::string>(std::move(s));
}
int Value::nesting() const {
    switch (kind()) {
        case Kind::List: return std::get<std::shared_ptr<const ListBox>>(v_)->depth;
        case Kind::Dict: return dict().depth;
        case Kind::Object: return object().depth;
        default: return 0;
    }
}
static int checked_depth(int child_depth) {
    if (child_depth + 1 > kMaxValueDepth) fail("value nested more than ", kMaxValueDepth, " levels deep");
    return child_depth + 1;
}
Value::Value(List items, bool tuple) {
    charge(items.size() / 8);
    int d = 0;
    for (auto& x : items) d = std::max(d, x.nesting());
    v_ = std::make_shared<const ListBox>(ListBox{std::move(items), tuple, checked_depth(d)});
}
Value::Value(Dict d) {
    int depth = 0;
    for (auto& [k, x] : d.entries) depth = std::max({depth, k.nesting(), x.nesting()});
    d.depth = checked_depth(depth);
    v_ = std::make_shared<const Dict>(std::move(d));
}
Value Value::function(std::string name, Function fn) {
    Value v;
    v.v_ = std::make_shared<const FunctionBox>(FunctionBox{std::move(name), std::move(fn)});
    return v;
}

int64_t Value::as_int() const { return is(Kind::Bool) ? int64_t(as_bool()) : std::get<int64_t>(v_); }
double Value::as_double() const { return is(Kind::Float) ? std::get<double>(v_) : double(as_int()); }

const Value* Dict::find(const Value& key) const {
    for (auto& [k, v] : entries)
        if (equals(k, key)) return &v;
    return nullptr;
}
const Value* Dict::find(const std::string& key) const {
    for (auto& [k, v] : entries)
        if (k.is_string() && k.str() == key) return &v;
    return nullptr;
}
void Dict::set(Value key, Value value) {
    for (auto& [k, v] : entries)
        if (equals(k, key)) { v = std::move(value); return; }
    entries.emplace_back(std::move(key), std::move(value));
}

void Object::set_attr(const std::string& name, Value value) {
    depth = std::max(depth, checked_depth(value.nesting()));
    attrs.set(Value(name), std::move(value));
}

const Value* CallArgs::get(size_t i, const std::string& name) const {
    if (i < pos.size()) return &pos[i];
    for (auto& [k, v] : kw)
        if (k == name) return &v;
    return nullptr;
}
Value CallArgs::get_or(size_t i, const std::string& name, Value fallback) const {
    const Value* v = get(i, name);
    return v ? *v : fallback;
}
const Value& CallArgs::arg(size_t i, const std::string& name) const {
    static const Value missing = Value::undefined("missing argument");
    const Value* v = get(i, name);
    return v ? *v : missing;
}
bool CallArgs::flag(size_t i, const std::string& name, bool fallback) const {
    const Value* v = get(i, name);
    return v ? truthy(*v) : fallback;
}
int64_t CallArgs::integer(size_t i, const std::string& name, int64_t fallback) const {
    const Value* v = get(i, name);
    if (!v || v->is_none()) return fallback;
    check(v->is(Value::Kind::Int) || v->is(Value::Kind::Bool), "TypeError: '", name, "' must be an integer, not ", type_name(*v));
    return v->as_int();
}
std::string CallArgs::string(size_t i, const std::string& name, const std::string& fallback) const {
    const Value* v = get(i, name);
    return v && !v->is_undefined() ? to_str(*v) : fallback;
}
const std::string& expect_str(const Value& v, const char* what) {
    check(v.is_string(), "TypeError: ", what, " must be str, not ", type_name(v));
    return v.str();
}

// ---- budget ---------------------------------------------------------------------------------

static thread_local uint64_t g_budget = std::numeric_limits<uint64_t>::max();
void charge(uint64_t cost) {
    if (cost >= g_budget) fail("template rendering exceeded its work budget (runaway loop or output?)");
    g_budget -= cost;
}
BudgetScope::BudgetScope(uint64_t steps) : saved_(g_budget) { g_budget = steps; }
BudgetScope::~BudgetScope() { g_budget = saved_; }

// ---- str / repr -----------------------------------------------------------------------------

const char* type_name(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined: return "Undefined";
        case Value::Kind::None: return "NoneType";
        case Value::Kind::Bool: return "bool";
        case Value::Kind::Int: return "int";
        case Value::Kind::Float: return "float";
        case Value::Kind::String: return "str";
        case Value::Kind::List: return v.is_tuple() ? "tuple" : "list";
        case Value::Kind::Dict: return "dict";
        case Value::Kind::Function: return "function";
        case Value::Kind::Object: return v.object().type.c_str();
    }
    return "object";
}

void raise_undefined(const Value& v) { throw Error(v.undefined_hint()); }

bool truthy(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined: case Value::Kind::None: return false;
        case Value::Kind::Bool: return v.as_bool();
        case Value::Kind::Int: return v.as_int() != 0;
        case Value::Kind::Float: return v.as_double() != 0.0;
        case Value::Kind::String: return !v.str().empty();
        case Value::Kind::List: return !v.items().empty();
        case Value::Kind::Dict: return !v.dict().entries.empty();
        default: return true;
    }
}

std::string format_float(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    std::string sci(buf, res.ptr);  // "-d.ddde+XX": shortest round-trip digits
    bool neg = sci[0] == '-';
    size_t e = sci.find('e');
    std::string digits;
    for (size_t i = neg; i < e; ++i)
        if (sci[i] != '.') digits += sci[i];
    int exp = std::stoi(sci.substr(e + 1));
    std::string out = neg ? "-" : "";
    if (exp < -4 || exp >= 16) {  // Python's repr switches to exponent notation outside [1e-4, 1e16)
        out += digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        char eb[16];
        std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
        return out + eb;
    }
    if (exp < 0) return out + "0." + std::string(size_t(-exp - 1), '0') + digits;
    if (digits.size() <= size_t(exp) + 1) return out + digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
    return out + digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
}

static void check_size(const std::string& s) {
    if (s.size() > kMaxStringBytes) fail("string longer than ", kMaxStringBytes, " bytes");
}

static void append_repr(std::string& out, const Value& v, int depth = 0);
static void append_dict_repr(std::string& out, const Dict& d, int depth) {
    out += '{';
    bool first = true;
    for (auto& [k, val] : d.entries) {
        if (!first) out += ", ";
        first = false;
        append_repr(out, k, depth + 1);
        out += ": ";
        append_repr(out, val, depth + 1);
    }
    out += '}';
}

static void append_repr(std::string& out, const Value& v, int depth) {
    check_size(out);
    charge(1);
    if (depth > 2 * kMaxValueDepth) fail("RecursionError: value nested too deeply to print");
    switch (v.kind()) {
        case Value::Kind::String: out += pystr::repr(v.str()); return;
        case Value::Kind::Undefined: out += "Undefined"; return;
        case Value::Kind::List: {
            out += v.is_tuple() ? '(' : '[';
            const List& items = v.items();
            for (size_t i = 0; i < items.size(); ++i) {
                if (i) out += ", ";
                append_repr(out, items[i], depth + 1);
            }
            if (v.is_tuple() && items.size() == 1) out += ',';
            out += v.is_tuple() ? ')' : ']';
            return;
        }
        case Value::Kind::Dict: append_dict_repr(out, v.dict(), depth); return;
        case Value::Kind::Object:
            if (v.object().type == "LoopContext") {
                out += to_str(v);
            } else {
                out += "<" + v.object().type + " ";
                append_dict_repr(out, v.object().attrs, depth + 1);
                out += ">";
            }
            return;
        default: out += to_str(v);
    }
}

std::string repr(const Value& v) {
    std::string out;
    append_repr(out, v);
    return out;
}

std::string to_str(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::Undefined: return "";
        case Value::Kind::None: return "None";
        case Value::Kind::Bool: return v.as_bool() ? "True" : "False";
        case Value::Kind::Int: return std::to_string(v.as_int());
        case Value::Kind::Float: return format_float(v.as_double());
        case Value::Kind::String: return v.str();
        case Value::Kind::Function: return "<function " + v.function().name + ">";
        case Value::Kind::Object: {
            const Object& o = v.object();
            if (o.type != "LoopContext") return repr(v);
            return "<LoopContext " + to_str(*o.attrs.find(std::string("index"))) + "/" +
                   to_str(*o.attrs.find(std::string("length"))) + ">";
        }
        default: return repr(v);
    }
}

// ---- comparisons ----------------------------------------------------------------------------

static bool is_intlike(const Value& v) { return v.is(Value::Kind::Int) || v.is(Value::Kind::Bool); }

bool equals(const Value& a, const Value& b) {
    if (a.is_number() && b.is_number()) {
        if (is_intlike(a) && is_intlike(b)) return a.as_int() == b.as_int();
        return a.as_double() == b.as_double();
    }
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case Value::Kind::Undefined: case Value::Kind::None: return true;
        case Value::Kind::String: return a.str() == b.str();
        case Value::Kind::List: {
            if (a.is_tuple() != b.is_tuple() || a.items().size() != b.items().size()) return false;
            for (size_t i = 0; i < a.items().size(); ++i)
                if (!equals(a.items()[i], b.items()[i])) return false;
            return true;
        }
        case Value::Kind::Dict: {
            if (a.dict().entries.size() != b.dict().entries.size()) return false;
            for (auto& [k, v] : a.dict().entries) {
                const Value* other = b.dict().find(k);
                if (!other || !equals(v, *other)) return false;
            }
            return true;
        }
        case Value::Kind::Function: return &a.function() == &b.function();
        case Value::Kind::Object: return &a.object() == &b.object();
        default: return false;
    }
}

bool less(const Value& a, const Value& b) {
    if (a.is_undefined()) raise_undefined(a);
    if (b.is_undefined()) raise_undefined(b);
    if (a.is_number() && b.is_number()) {
        if (is_intlike(a) && is_intlike(b)) return a.as_int() < b.as_int();
        return a.as_double() < b.as_double();
    }
    if (a.is_string() && b.is_string()) return a.str() < b.str();
    if (a.is(Value::Kind::List) && b.is(Value::Kind::List) && a.is_tuple() == b.is_tuple()) {
        const List &x = a.items(), &y = b.items();
        for (size_t i = 0; i < x.size() && i < y.size(); ++i)
            if (!equals(x[i], y[i])) return less(x[i], y[i]);
        return x.size() < y.size();
    }
    fail("TypeError: '<' not supported between instances of '", type_name(a), "' and '", type_name(b), "'");
}

bool contains(const Value& container, const Value& item) {
    switch (container.kind()) {
        case Value::Kind::String:
            check(item.is_string(), "TypeError: 'in <string>' requires string as left operand, not ", type_name(item));
            return container.str().find(item.str()) != std::string::npos;
        case Value::Kind::List:
            for (auto& x : container.items())
                if (equals(x, item)) return true;
            return false;
        case Value::Kind::Dict: return container.dict().find(item) != nullptr;
        case Value::Kind::Undefined: return false;
        default: fail("TypeError: argument of type '", type_name(container), "' is not iterable");
    }
}

List iterate(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::List: return v.items();
        case Value::Kind::Dict: {
            List keys;
            for (auto& [k, _] : v.dict().entries) keys.push_back(k);
            return keys;
        }
        case Value::Kind::String: {
            List chars;
            for (char32_t c : pystr::decode(v.str())) {
                std::string s;
                pystr::append_utf8(s, c);
                chars.emplace_back(std::move(s));
            }
            return chars;
        }
        case Value::Kind::Undefined: return {};
        default: fail("TypeError: '", type_name(v), "' object is not iterable");
    }
}

int64_t length(const Value& v) {
    switch (v.kind()) {
        case Value::Kind::String: return static_cast<int64_t>(pystr::length(v.str()));
        case Value::Kind::List: return static_cast<int64_t>(v.items().size());
        case Value::Kind::Dict: return static_cast<int64_t>(v.dict().entries.size());
        case Value::Kind::Undefined: return 0;
        default: fail("TypeError: object of type '", type_name(v), "' has no len()");
    }
}

// ---- arithmetic -----------------------------------------------------------------------------

[[noreturn]] static void bad_operands(const std::string& op, const Value& a, const Value& b) {
    fail("TypeError: unsupported operand type(s) for ", op, ": '", type_name(a), "' and '", type_name(b), "'");
}

static void check_overflow(bool overflow) {
    if (overflow) fail("integer overflow in template arithmetic");
}

static Value repeat(const Value& seq, int64_t n) {
    n = std::max<int64_t>(n, 0);
    if (seq.is_string()) {
        if (n && seq.str().size() * uint64_t(n) > kMaxStringBytes) fail("string longer than ", kMaxStringBytes, " bytes");
        std::string out;
        for (int64_t i = 0; i < n; ++i) out += seq.str();
        return Value(std::move(out));
    }
    if (n && seq.items().size() * uint64_t(n) > (uint64_t(1) << 24)) fail("list too long");
    List out;
    for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
    return Value(std::move(out), seq.is_tuple());
}

static Value percent_format(const std::string& fmt, const Value& args);

Value binary_op(const std::string& op, const Value& a, const Value& b) {
    if (op == "~") {
        std::string s = to_str(a), t = to_str(b);
        if (s.size() + t.size() > kMaxStringBytes) fail("string longer than ", kMaxStringBytes, " bytes");
        return Value(s + t);
    }
    if (a.is_undefined()) raise_undefined(a);
    if (b.is_undefined()) raise_undefined(b);
    bool ints = is_intlike(a) && is_intlike(b), nums = a.is_number() && b.is_number();
    int64_t x = is_intlike(a) ? a.as_int() : 0, y = is_intlike(b) ? b.as_int() : 0;
    double fx = nums ? a.as_double() : 0, fy = nums ? b.as_double() : 0;
    int64_t r = 0;
    if (op == "+") {
        if (ints) return check_overflow(__builtin_add_overflow(x, y, &r)), r;
        if (nums) return fx + fy;
        if (a.is_string() && b.is_string()) {
            if (a.str().size() + b.str().size() > kMaxStringBytes) fail("string longer than ", kMaxStringBytes, " bytes");
            return Value(a.str() + b.str());
        }
        if (a.is(Value::Kind::List) && b.is(Value::Kind::List) && a.is_tuple() == b.is_tuple()) {
            List out = a.items();
            out.insert(out.end(), b.items().begin(), b.items().end());
            return Value(std::move(out), a.is_tuple());
        }
    } else if (op == "-") {
        if (ints) return check_overflow(__builtin_sub_overflow(x, y, &r)), r;
        if (nums) return fx - fy;
    } else if (op == "*") {
        if (ints) return check_overflow(__builtin_mul_overflow(x, y, &r)), r;
        if (nums) return fx * fy;
        if ((a.is_string() || a.is(Value::Kind::List)) && is_intlike(b)) return repeat(a, b.as_int());
        if ((b.is_string() || b.is(Value::Kind::List)) && is_intlike(a)) return repeat(b, a.as_int());
    } else if (op == "/") {
        if (nums) {
            check(fy != 0.0, "ZeroDivisionError: division by zero");
            return fx / fy;
        }
    } else if (op == "//" || op == "%") {
        if (nums) check(fy != 0.0, "ZeroDivisionError: integer division or modulo by zero");
        if (ints) {
            if (y == -1) {
                if (op == "%") return int64_t(0);
                check_overflow(x == std::numeric_limits<int64_t>::min());
                return -x;
            }
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) { q -= 1; m += y; }
            return op == "%" ? m : q;
        }
        if (nums) {  // Python's float divmod
            double m = std::fmod(fx, fy), d = (fx - m) / fy;
            if (m != 0 && ((m < 0) != (fy < 0))) { m += fy; d -= 1.0; }
            if (op == "%") return m;
            double fd = std::floor(d);
            return d - fd > 0.5 ? fd + 1.0 : fd;
        }
        if (op == "%" && a.is_string()) return percent_format(a.str(), b);
    } else if (op == "**") {
        if (ints && y >= 0) {
            int64_t result = 1, base = x;
            for (int64_t e = y; e > 0; e >>= 1) {
                if (e & 1) check_overflow(__builtin_mul_overflow(result, base, &result));
                if (e > 1) check_overflow(__builtin_mul_overflow(base, base, &base));
            }
            return result;
        }
        if (nums) {
            check(!(fx == 0.0 && fy < 0), "ZeroDivisionError: 0.0 cannot be raised to a negative power");
            return std::pow(fx, fy);
        }
    }
    bad_operands(op, a, b);
}

Value negate(const Value& v) {
    if (v.is_undefined()) raise_undefined(v);
    if (is_intlike(v)) {
        check(v.as_int() != std::numeric_limits<int64_t>::min(), "integer overflow in template arithmetic");
        return -v.as_int();
    }
    if (v.is(Value::Kind::Float)) return -v.as_double();
    fail("TypeError: bad operand type for unary -: '", type_name(v), "'");
}

// printf-style `'%s and %d' % (a, b)`: flags -0+ space, width, precision; s r d i f F x X o c %.
static Value percent_format(const std::string& fmt, const Value& args) {
    List list = args.is(Value::Kind::List) && args.is_tuple() ? args.items() : List{args};
    size_t next = 0;
    std::string out;
    for (size_t i = 0; i < fmt.size(); ++i) {
        if (fmt[i] != '%') { out += fmt[i]; continue; }
        size_t j = i + 1;
        const Value* named = nullptr;  // %(key)s takes the value from a mapping argument
        if (j < fmt.size() && fmt[j] == '(') {
            size_t close = fmt.find(')', j);
            check(close != std::string::npos, "ValueError: incomplete format key");
            check(args.is(Value::Kind::Dict), "TypeError: format requires a mapping");
            named = args.dict().find(fmt.substr(j + 1, close - j - 1));
            check(named != nullptr, "KeyError: '", fmt.substr(j + 1, close - j - 1), "'");
            j = close + 1;
        }
        std::string spec = "%";
        while (j < fmt.size() && std::string("-0+ #").find(fmt[j]) != std::string::npos) spec += fmt[j++];
        while (j < fmt.size() && (std::isdigit(static_cast<unsigned char>(fmt[j])) || fmt[j] == '.')) spec += fmt[j++];
        check(j < fmt.size(), "ValueError: incomplete format");
        char conv = fmt[j];
        i = j;
        if (conv == '%') { out += '%'; continue; }
        check(named || next < list.size(), "TypeError: not enough arguments for format string");
        const Value& v = named ? *named : list[next++];
        char buf[512];
        if (spec.size() > 8) fail("ValueError: format spec too long");
        if (conv == 's' || conv == 'r') {
            std::string s = conv == 's' ? to_str(v) : repr(v);
            int width = 0;
            size_t k = 1;
            bool left = false;
            while (k < spec.size() && !std::isdigit(static_cast<unsigned char>(spec[k])) && spec[k] != '.') left |= spec[k++] == '-';
            while (k < spec.size() && std::isdigit(static_cast<unsigned char>(spec[k]))) width = width * 10 + (spec[k++] - '0');
            if (k < spec.size() && spec[k] == '.') s = pystr::encode(pystr::decode(s).substr(0, std::stoul("0" + spec.substr(k + 1))));
            int pad = width - static_cast<int>(pystr::length(s));
            if (pad > 0) s = left ? s + std::string(size_t(pad), ' ') : std::string(size_t(pad), ' ') + s;
            out += s;
        } else if (conv == 'd' || conv == 'i' || conv == 'x' || conv == 'X' || conv == 'o' || conv == 'c') {
            check(v.is_number(), "TypeError: %", conv, " format: a number is required, not ", type_name(v));
            long long n = is_intlike(v) ? v.as_int() : static_cast<long long>(v.as_double());
            if (conv == 'c') { pystr::append_utf8(out, static_cast<char32_t>(n)); continue; }
            std::snprintf(buf, sizeof buf, (spec + "ll" + (conv == 'i' ? 'd' : conv)).c_str(), n);
            out += buf;
        } else if (std::string("fFeEgG").find(conv) != std::string::npos) {
            check(v.is_number(), "TypeError: must be real number, not ", type_name(v));
            std::snprintf(buf, sizeof buf, (spec + conv).c_str(), v.as_double());
            out += buf;
        } else {
            fail("ValueError: unsupported format character '", conv, "'");
        }
    }
    check(next == list.size() || args.is(Value::Kind::Dict), "TypeError: not all arguments converted during string formatting");
    return Value(std::move(out));
}

// ---- JSON -----------------------------------------------------------------------------------

static void append_json(std::string& out, const Value& v, const JsonOptions& o, int depth) {
    check_size(out);
    charge(1);
    if (depth > 500) fail("ValueError: structure too deeply nested for tojson");
    auto newline = [&](int d) {
        if (!o.has_indent) return;
        out += '\n';
        for (int i = 0; i < d; ++i) out += o.indent;
    };
    switch (v.kind()) {
        case Value::Kind::None: out += "null"; return;
        case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
        case Value::Kind::Int: out += std::to_string(v.as_int()); return;
        case Value::Kind::Float: {
            double d = v.as_double();
            out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity") : format_float(d);
            return;
        }
        case Value::Kind::String: pystr::json_quote(out, v.str(), o.ensure_ascii); return;
        case Value::Kind::List: {
            if (v.items().empty()) { out += "[]"; return; }
            out += '[';
            for (size_t i = 0; i < v.items().size(); ++i) {
                if (i) out += o.item_sep;
                newline(depth + 1);
                append_json(out, v.items()[i], o, depth + 1);
            }
            newline(depth);
            out += ']';
            return;
        }
        case Value::Kind::Dict: {
            if (v.dict().entries.empty()) { out += "{}"; return; }
            std::vector<std::pair<std::string, const Value*>> entries;
            for (auto& [k, val] : v.dict().entries) {
                std::string key;
                if (k.is_string()) key = k.str();
                else if (k.is_none()) key = "null";
                else if (k.is(Value::Kind::Bool)) key = k.as_bool() ? "true" : "false";
                else if (k.is(Value::Kind::Int) || k.is(Value::Kind::Float)) append_json(key, k, o, depth);
                else fail("TypeError: keys must be str, int, float, bool or None, not ", type_name(k));
                entries.emplace_back(std::move(key), &val);
            }
            if (o.sort_keys)
                std::stable_sort(entries.begin(), entries.end(), [](auto& x, auto& y) { return x.first < y.first; });
            out += '{';
            for (size_t i = 0; i < entries.size(); ++i) {
                if (i) out += o.item_sep;
                newline(depth + 1);
                pystr::json_quote(out, entries[i].first, o.ensure_ascii);
                out += o.key_sep;
                append_json(out, *entries[i].second, o, depth + 1);
            }
            newline(depth);
            out += '}';
            return;
        }
        default: fail("TypeError: Object of type ", type_name(v), " is not JSON serializable");
    }
}

std::string to_json(const Value& v, const JsonOptions& options) {
    std::string out;
    append_json(out, v, options, 0);
    return out;
}

Value from_json(const nlohmann::ordered_json& j) {
    switch (j.type()) {
        case nlohmann::ordered_json::value_t::null: return Value::none();
        case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
        case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<int64_t>());
        case nlohmann::ordered_json::value_t::number_unsigned: {
            uint64_t u = j.get<uint64_t>();
            return u <= uint64_t(std::numeric_limits<int64_t>::max()) ? Value(int64_t(u)) : Value(double(u));
        }
        case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
        case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
        case nlohmann::ordered_json::value_t::array: {
            List items;
            for (auto& x : j) items.push_back(from_json(x));
            return Value(std::move(items));
        }
        case nlohmann::ordered_json::value_t::object: {
            Dict d;
            for (auto& [k, x] : j.items()) d.entries.emplace_back(Value(k), from_json(x));
            return Value(std::move(d));
        }
        default: fail("chat template input: unsupported JSON value (binary/discarded)");
    }
}

}  // namespace autoround::jinja

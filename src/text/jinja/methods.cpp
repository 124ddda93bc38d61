// text/jinja/methods.cpp — what `obj.name` and `obj[key]` reach: the methods of Python's str, list
// and dict (the read-only ones: the sandbox makes mutators unsafe), jinja2's attribute/item lookup
// with its fallbacks, slicing, and the globals of transformers' chat-template environment.
#include <algorithm>
#include <ctime>
#include <limits>

#include <utf8proc.h>

#include "core/error.h"
#include "text/jinja/builtins.h"
#include "text/jinja/pystr.h"

namespace autoround::jinja {
namespace {

using Kind = Value::Kind;

// ---- methods ------------------------------------------------------------------------------

bool is_method(const Value& obj, const std::string& name) {
    static const char* str_methods[] = {"upper", "lower", "title", "capitalize", "strip", "lstrip", "rstrip",
                                        "split", "rsplit", "splitlines", "startswith", "endswith", "replace",
                                        "find", "rfind", "index", "count", "join", "format", "isdigit",
                                        "isalpha", "isalnum", "isspace", "islower", "isupper", "removeprefix",
                                        "removesuffix"};
    static const char* list_methods[] = {"index", "count"};
    static const char* dict_methods[] = {"get", "items", "keys", "values"};
    auto in = [&](auto& table) {
        for (const char* m : table)
            if (name == m) return true;
        return false;
    };
    return obj.is_string() ? in(str_methods) : obj.is(Kind::List) ? in(list_methods) : obj.is(Kind::Dict) ? in(dict_methods) : false;
}

bool is_unsafe_method(const Value& obj, const std::string& name) {  // ImmutableSandboxedEnvironment
    static const char* mutators[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear",
                                     "popitem", "setdefault", "update"};
    if (!obj.is(Kind::List) && !obj.is(Kind::Dict)) return false;
    for (const char* m : mutators)
        if (name == m) return true;
    return false;
}

// str.format with {} / {0} / {name} fields and !s / !r conversions (no format specs).
std::string str_format(const std::string& fmt, CallArgs& a) {
    std::string out;
    size_t auto_index = 0;
    for (size_t i = 0; i < fmt.size(); ++i) {
        char c = fmt[i];
        if ((c == '{' || c == '}') && i + 1 < fmt.size() && fmt[i + 1] == c) { out += c; ++i; continue; }
        if (c == '}') fail("ValueError: Single '}' encountered in format string");
        if (c != '{') { out += c; continue; }
        size_t close = fmt.find('}', i);
        check(close != std::string::npos, "ValueError: Single '{' encountered in format string");
        std::string field = fmt.substr(i + 1, close - i - 1);
        i = close;
        char conv = 's';
        if (field.size() >= 2 && field[field.size() - 2] == '!') { conv = field.back(); field.resize(field.size() - 2); }
        check(field.find(':') == std::string::npos, "str.format specs (':...') are not supported");
        const Value* v;
        if (field.empty()) v = a.get(auto_index++, "\x01");
        else if (field.find_first_not_of("0123456789") == std::string::npos && field.size() < 9) v = a.get(std::stoul(field), "\x01");
        else v = a.get(size_t(-1), field);
        check(v != nullptr, "IndexError/KeyError: replacement field '{", field, "}' has no argument");
        out += conv == 'r' ? repr(*v) : to_str(*v);
    }
    return out;
}

bool str_predicate(const std::string& s, int which) {
    std::u32string u = pystr::decode(s);
    if (u.empty()) return false;
    bool any_cased = false;
    for (char32_t c : u) {
        auto cat = utf8proc_category(int32_t(c));
        bool alpha = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
        bool digit = cat == UTF8PROC_CATEGORY_ND;
        switch (which) {
            case 0: if (!digit) return false; break;
            case 1: if (!alpha) return false; break;
            case 2: if (!alpha && !digit && cat != UTF8PROC_CATEGORY_NL && cat != UTF8PROC_CATEGORY_NO) return false; break;
            case 3: if (!pystr::is_space(c)) return false; break;
            case 4: if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LT) return false; any_cased |= cat == UTF8PROC_CATEGORY_LL; break;
            case 5: if (cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT) return false; any_cased |= cat == UTF8PROC_CATEGORY_LU; break;
        }
    }
    return which < 4 || any_cased;
}

bool affix_match(const std::string& s, const Value& affix, bool prefix) {
    List options = affix.is(Kind::List) ? affix.items() : List{affix};
    for (auto& o : options) {
        std::string x = expect_str(o, prefix ? "startswith argument" : "endswith argument");
        if (x.size() <= s.size() && s.compare(prefix ? 0 : s.size() - x.size(), x.size(), x) == 0) return true;
    }
    return false;
}

Value str_method(const std::string& s, const std::string& name, CallArgs& a) {
    auto opt_str = [&](size_t i, const char* n, std::string& holder) -> const std::string* {
        const Value* v = a.get(i, n);
        if (!v || v->is_none()) return nullptr;
        holder = expect_str(*v, n);
        return &holder;
    };
    std::string h;
    if (name == "upper") return pystr::upper(s);
    if (name == "lower") return pystr::lower(s);
    if (name == "title") return pystr::title(s);
    if (name == "capitalize") return pystr::capitalize(s);
    if (name == "strip" || name == "lstrip" || name == "rstrip")
        return pystr::strip(s, opt_str(0, "chars", h), name != "rstrip", name != "lstrip");
    if (name == "split" || name == "rsplit") {
        List out;
        const std::string* sep = opt_str(0, "sep", h);
        int64_t maxsplit = a.integer(1, "maxsplit", -1);
        for (auto& p : name == "split" ? pystr::split(s, sep, maxsplit) : pystr::rsplit(s, sep, maxsplit)) out.emplace_back(p);
        return Value(std::move(out));
    }
    if (name == "splitlines") {
        List out;
        for (auto& p : pystr::splitlines(s, a.flag(0, "keepends"))) out.emplace_back(p);
        return Value(std::move(out));
    }
    if (name == "startswith" || name == "endswith") return affix_match(s, a.arg(0, "prefix"), name == "startswith");
    if (name == "replace") {
        std::string out = pystr::replace(s, expect_str(a.arg(0, "old"), "old"), expect_str(a.arg(1, "new"), "new"), a.integer(2, "count", -1));
        if (out.size() > kMaxStringBytes) fail("string longer than ", kMaxStringBytes, " bytes");
        return out;
    }
    if (name == "find" || name == "rfind" || name == "index") {
        int64_t r = pystr::find(s, expect_str(a.arg(0, "sub"), "sub"), name == "rfind");
        check(r >= 0 || name != "index", "ValueError: substring not found");
        return r;
    }
    if (name == "count") return pystr::count(s, expect_str(a.arg(0, "sub"), "sub"));
    if (name == "join") {
        std::string out;
        bool first = true;
        for (auto& x : iterate(a.arg(0, "iterable"))) {
            if (!first) out += s;
            first = false;
            out += expect_str(x, "sequence item");
            if (out.size() > kMaxStringBytes) fail("string longer than ", kMaxStringBytes, " bytes");
        }
        return out;
    }
    if (name == "format") return str_format(s, a);
    if (name == "removeprefix" || name == "removesuffix") {
        std::string x = expect_str(a.arg(0, name == "removeprefix" ? "prefix" : "suffix"), "affix");
        if (name == "removeprefix") return s.compare(0, x.size(), x) == 0 ? s.substr(x.size()) : s;
        return x.size() <= s.size() && s.compare(s.size() - x.size(), x.size(), x) == 0 ? s.substr(0, s.size() - x.size()) : s;
    }
    static const char* preds[] = {"isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper"};
    for (int i = 0; i < 6; ++i)
        if (name == preds[i]) return str_predicate(s, i);
    fail("AttributeError: 'str' object has no attribute '", name, "'");
}

Value make_bound(const Value& obj, const std::string& name) {
    return Value::function(name, [obj, name](CallArgs& a) {
        Value out;
        call_method(obj, name, a, out);
        return out;
    });
}

}  // namespace

bool call_method(const Value& obj, const std::string& name, CallArgs& args, Value& out) {
    if (!is_method(obj, name)) return false;
    if (obj.is_string()) {
        out = str_method(obj.str(), name, args);
    } else if (obj.is(Kind::List)) {
        const Value& x = args.arg(0, "value");
        const List& items = obj.items();
        if (name == "count") {
            out = int64_t(std::count_if(items.begin(), items.end(), [&](const Value& y) { return equals(x, y); }));
        } else {
            auto it = std::find_if(items.begin(), items.end(), [&](const Value& y) { return equals(x, y); });
            check(it != items.end(), "ValueError: ", repr(x), " is not in list");
            out = int64_t(it - items.begin());
        }
    } else {
        const Dict& d = obj.dict();
        if (name == "get") {
            const Value* v = d.find(args.arg(0, "key"));
            out = v ? *v : args.get_or(1, "default", Value::none());
        } else {
            List items;
            for (auto& [k, v] : d.entries) items.push_back(name == "keys" ? k : name == "values" ? v : Value(List{k, v}, true));
            out = Value(std::move(items));
        }
    }
    return true;
}

Value get_attr(const Value& obj, const std::string& name) {
    if (obj.is_undefined()) raise_undefined(obj);
    if (is_method(obj, name)) return make_bound(obj, name);
    if (is_unsafe_method(obj, name))
        return Value::undefined("access to attribute '" + name + "' of '" + type_name(obj) + "' object is unsafe.");
    if (obj.is(Kind::Dict)) {
        const Value* v = obj.dict().find(name);
        if (v) return *v;
    } else if (obj.is(Kind::Object)) {
        const Value* v = obj.object().attrs.find(name);
        if (v) return *v;
    }
    std::string msg = obj.is_none() ? "'None" : std::string("'") + type_name(obj) + " object";
    msg.append("' has no attribute '").append(name).append("'");
    return Value::undefined(std::move(msg));
}

Value get_item(const Value& obj, const Value& key) {
    if (obj.is_undefined()) raise_undefined(obj);
    bool int_key = key.is(Kind::Int) || key.is(Kind::Bool);
    if ((obj.is(Kind::List) || obj.is_string()) && int_key) {
        int64_t n = length(obj), i = key.as_int();
        if (i < 0) i += n;
        if (i >= 0 && i < n) {
            if (obj.is(Kind::List)) return obj.items()[size_t(i)];
            std::string ch;
            pystr::append_utf8(ch, pystr::decode(obj.str())[size_t(i)]);
            return ch;
        }
    } else if (obj.is(Kind::Dict)) {
        const Value* v = obj.dict().find(key);
        if (v) return *v;
    }
    if (key.is_string()) return get_attr(obj, key.str());
    return Value::undefined(std::string("'") + type_name(obj) + " object' has no element " + repr(key));
}

Value slice(const Value& obj, const Value* start, const Value* stop, const Value* step) {
    if (obj.is_undefined()) raise_undefined(obj);
    // jinja2 compiles slices to plain Python subscription: no Undefined fallback here.
    check(obj.is_string() || obj.is(Kind::List), "TypeError: '", type_name(obj), "' object is not subscriptable");
    auto index = [](const Value* v, int64_t fallback) {
        if (!v || v->is_none()) return fallback;
        check(v->is(Kind::Int) || v->is(Kind::Bool), "TypeError: slice indices must be integers or None");
        return v->as_int();
    };
    int64_t n = length(obj), st = index(step, 1);
    check(st != 0, "ValueError: slice step cannot be zero");
    st = std::max<int64_t>(st, -std::numeric_limits<int64_t>::max());
    auto clamp = [&](int64_t i) {  // Python's PySlice_AdjustIndices
        if (i < 0) return std::max<int64_t>(i + n, st < 0 ? -1 : 0);
        return i >= n ? (st < 0 ? n - 1 : n) : i;
    };
    int64_t b = start && !start->is_none() ? clamp(index(start, 0)) : (st < 0 ? n - 1 : 0);
    int64_t e = stop && !stop->is_none() ? clamp(index(stop, 0)) : (st < 0 ? -1 : n);
    std::vector<size_t> picks;
    for (int64_t i = b; st > 0 ? i < e : i > e; i += st) {
        picks.push_back(size_t(i));
        if (st > 0 ? e - i <= st : i - e <= -st) break;  // also keeps i + st from overflowing
    }
    if (obj.is_string()) {
        std::u32string u = pystr::decode(obj.str()), r;
        for (size_t i : picks) r.push_back(u[i]);
        return pystr::encode(r);
    }
    List out;
    for (size_t i : picks) out.push_back(obj.items()[i]);
    return Value(std::move(out), obj.is_tuple());
}

Dict make_globals() {
    Dict g;
    g.set("range", Value::function("range", [](CallArgs& a) {
        int64_t start = 0, stop, step = 1;
        for (auto& v : a.pos) check(v.is(Kind::Int) || v.is(Kind::Bool), "TypeError: range() arguments must be integers");
        check(!a.pos.empty() && a.pos.size() <= 3, "TypeError: range expected 1 to 3 integer arguments");
        if (a.pos.size() == 1) stop = a.pos[0].as_int();
        else { start = a.pos[0].as_int(); stop = a.pos[1].as_int(); }
        if (a.pos.size() == 3) step = a.pos[2].as_int();
        check(step != 0, "ValueError: range() arg 3 must not be zero");
        long double count = std::ceil((static_cast<long double>(stop) - start) / step);
        check(count <= 100000, "OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
        List out;
        for (int64_t i = 0; i < int64_t(count); ++i) out.emplace_back(start + i * step);
        return Value(std::move(out));
    }));
    g.set("dict", Value::function("dict", [](CallArgs& a) {
        Dict d;
        if (!a.pos.empty()) {
            check(a.pos[0].is(Kind::Dict), "TypeError: dict() positional argument must be a mapping");
            d = a.pos[0].dict();
        }
        for (auto& [k, v] : a.kw) d.set(Value(k), v);
        return Value(std::move(d));
    }));
    g.set("joiner", Value::function("joiner", [](CallArgs& a) {
        auto used = std::make_shared<bool>(false);
        std::string sep = a.string(0, "sep", ", ");
        return Value::function("joiner", [used, sep](CallArgs&) {
            bool first = !*used;
            *used = true;
            return Value(first ? std::string() : sep);
        });
    }));
    g.set("raise_exception", Value::function("raise_exception", [](CallArgs& a) -> Value {
        throw TemplateError(a.string(0, "message"));
    }));
    g.set("strftime_now", Value::function("strftime_now", [](CallArgs& a) {
        std::time_t now = std::time(nullptr);
        std::tm tm{};
        localtime_r(&now, &tm);
        char buf[256];
        std::string fmt = a.string(0, "format");
        size_t n = fmt.empty() ? 0 : std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
        return Value(std::string(buf, n));
    }));
    return g;
}

}  // namespace autoround::jinja

// text/jinja/filters.cpp — jinja2's filters (with transformers' tojson) and tests, each matched
// against jinja2 3.1 behaviour; filters that return generators in jinja2 return lists here.
#include "text/jinja/builtins.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <unordered_set>

#include <utf8proc.h>

#include "core/error.h"
#include "text/jinja/pystr.h"

namespace autoround::jinja {
namespace {

using Kind = Value::Kind;
using FilterFn = Value (*)(const Value&, CallArgs&);
using TestFn = bool (*)(const Value&, CallArgs&);

// ---- helpers ------------------------------------------------------------------------------

// Stable merge sort that tolerates inconsistent comparators (NaN) and comparators that throw.
template <typename T, typename Less>
void merge_sort(std::vector<T>& v, Less less) {
    if (v.size() < 2) return;
    std::vector<T> right(v.begin() + static_cast<long>(v.size() / 2), v.end());
    std::vector<T> left(v.begin(), v.begin() + static_cast<long>(v.size() / 2));
    merge_sort(left, less);
    merge_sort(right, less);
    size_t i = 0, j = 0, k = 0;
    while (i < left.size() && j < right.size()) v[k++] = less(right[j], left[i]) ? right[j++] : left[i++];
    while (i < left.size()) v[k++] = left[i++];
    while (j < right.size()) v[k++] = right[j++];
    charge(v.size());
}

// jinja2's attribute getter: "a.b.0" looks up each part with item-first semantics.
Value attr_path(const Value& obj, const std::string& path) {
    Value cur = obj;
    const std::string dot = ".";
    for (const std::string& part : pystr::split(path, &dot, -1)) {
        bool digits = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos && part.size() < 18;
        cur = get_item(cur, digits ? Value(int64_t(std::stoll(part))) : Value(part));
    }
    return cur;
}

// Sort / unique / min / max key: the attribute(s), lower-cased unless case_sensitive.
Value sort_key(const Value& item, const std::string& attribute, bool case_sensitive) {
    auto fold = [&](Value v) { return !case_sensitive && v.is_string() ? Value(pystr::lower(v.str())) : v; };
    if (attribute.empty()) return fold(item);
    if (attribute.find(',') == std::string::npos) return fold(attr_path(item, attribute));
    List keys;
    const std::string comma = ",";
    for (auto& part : pystr::split(attribute, &comma, -1)) {
        std::string name = pystr::strip(part, nullptr, true, true);
        if (!name.empty()) keys.push_back(fold(attr_path(item, name)));
    }
    return Value(std::move(keys), true);
}

bool parse_py_int(std::string s, int base, int64_t& out) {
    s = pystr::strip(s, nullptr, true, true);
    bool neg = false;
    size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i + 1 < s.size() && s[i] == '0') {
        char p = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i + 1])));
        int pb = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
        if (pb && (base == 0 || base == pb)) { base = pb; i += 2; if (i < s.size() && s[i] == '_') ++i; }
    }
    if (base == 0) base = 10;
    if (base < 2 || base > 36 || i >= s.size()) return false;
    uint64_t v = 0;
    bool last_digit = false;
    for (; i < s.size(); ++i) {
        char c = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
        if (c == '_' && last_digit) { last_digit = false; continue; }
        int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (c >= 'a' && c <= 'z') ? c - 'a' + 10 : 99;
        if (d >= base) return false;
        if (v > (uint64_t(1) << 62)) return false;
        v = v * uint64_t(base) + uint64_t(d);
        last_digit = true;
    }
    if (!last_digit || v > uint64_t(std::numeric_limits<int64_t>::max())) return false;
    out = neg ? -int64_t(v) : int64_t(v);
    return true;
}

bool parse_py_float(std::string s, double& out) {
    s = pystr::strip(s, nullptr, true, true);
    std::string clean;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '_' && i > 0 && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i - 1])) &&
            std::isdigit(static_cast<unsigned char>(s[i + 1])))
            continue;
        clean += s[i];
    }
    std::string low = pystr::lower(clean);
    if (clean.empty() || low.find('x') != std::string::npos || low.find('_') != std::string::npos) return false;
    char* end = nullptr;
    out = std::strtod(clean.c_str(), &end);
    return end == clean.c_str() + clean.size();
}

// ---- filters ------------------------------------------------------------------------------

Value f_abs(const Value& v, CallArgs&) {
    if (v.is(Kind::Float)) return std::fabs(v.as_double());
    check(v.is_number(), "TypeError: bad operand type for abs(): '", type_name(v), "'");
    return v.as_int() < 0 ? negate(Value(v.as_int())) : Value(v.as_int());
}
Value f_attr(const Value& v, CallArgs& a) {
    std::string name = a.string(0, "name");
    if (v.is(Kind::Object)) {
        const Value* x = v.object().attrs.find(name);
        return x ? *x : Value::undefined("'" + v.object().type + "' has no attribute '" + name + "'");
    }
    if (v.is_undefined()) raise_undefined(v);
    if (v.is_string() || v.is(Kind::List) || v.is(Kind::Dict)) {
        Value bound = get_attr(v, name);
        if (bound.is(Kind::Function)) return bound;
    }
    return Value::undefined(std::string("'") + type_name(v) + " object' has no attribute '" + name + "'");
}
Value f_batch(const Value& v, CallArgs& a) {
    int64_t n = a.integer(0, "linecount", 1);
    check(n > 0 && n <= (int64_t(1) << 20), "ValueError: batch size must be in [1, 2^20]");
    const Value* fill = a.get(1, "fill_with");
    List out, cur;
    for (auto& x : iterate(v)) {
        cur.push_back(x);
        if (int64_t(cur.size()) == n) { out.emplace_back(std::move(cur)); cur.clear(); }
    }
    if (!cur.empty()) {
        while (fill && int64_t(cur.size()) < n) cur.push_back(*fill);
        out.emplace_back(std::move(cur));
    }
    return Value(std::move(out));
}
Value f_capitalize(const Value& v, CallArgs&) { return pystr::capitalize(to_str(v)); }
Value f_length(const Value& v, CallArgs&) { return length(v); }
Value f_default(const Value& v, CallArgs& a) {
    if (v.is_undefined() || (a.flag(1, "boolean") && !truthy(v))) return a.has(0, "default_value") ? a.arg(0, "default_value") : Value("");
    return v;
}
Value f_dictsort(const Value& v, CallArgs& a) {
    check(v.is(Kind::Dict), "TypeError: dictsort requires a mapping, not ", type_name(v));
    bool cs = a.flag(0, "case_sensitive");
    std::string by = a.string(1, "by", "key");
    check(by == "key" || by == "value", "FilterArgumentError: You can only sort by either \"key\" or \"value\"");
    size_t pos = by == "key" ? 0 : 1;
    List items;
    for (auto& [k, x] : v.dict().entries) items.emplace_back(List{k, x}, true);
    merge_sort(items, [&](const Value& x, const Value& y) {
        return less(sort_key(x.items()[pos], "", cs), sort_key(y.items()[pos], "", cs));
    });
    if (a.flag(2, "reverse")) std::reverse(items.begin(), items.end());
    return Value(std::move(items));
}
Value f_escape(const Value& v, CallArgs&) {
    std::string out;
    for (char c : to_str(v)) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}
Value f_first(const Value& v, CallArgs&) {
    List items = iterate(v);
    return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}
Value f_last(const Value& v, CallArgs&) {
    List items = iterate(v);
    return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}
Value f_float(const Value& v, CallArgs& a) {
    Value fallback = a.has(0, "default") ? a.arg(0, "default") : Value(0.0);
    if (v.is_number()) return v.as_double();
    double d;
    if (v.is_string() && parse_py_float(v.str(), d)) return d;
    return fallback;
}
Value f_format(const Value& v, CallArgs& a) {
    check(a.pos.empty() || a.kw.empty(), "FilterArgumentError: can't handle positional and keyword arguments at the same time");
    if (!a.kw.empty()) {
        Dict d;
        for (auto& [k, x] : a.kw) d.set(Value(k), x);
        return binary_op("%", Value(to_str(v)), Value(std::move(d)));
    }
    return binary_op("%", Value(to_str(v)), Value(a.pos, true));
}
Value f_indent(const Value& v, CallArgs& a) {
    if (v.is_undefined()) raise_undefined(v);
    expect_str(v, "indent input");  // jinja2 appends "\n" to the value itself
    const Value* w = a.get(0, "width");
    std::string ind = w && w->is_string() ? w->str() : std::string(size_t(std::max<int64_t>(0, a.integer(0, "width", 4))), ' ');
    check(ind.size() < 4096, "indent width too large");
    std::vector<std::string> lines = pystr::splitlines(to_str(v) + "\n", false);
    std::string out;
    if (a.flag(2, "blank")) {
        for (size_t i = 0; i < lines.size(); ++i) out += (i ? "\n" + ind : "") + lines[i];
    } else {
        for (size_t i = 0; i < lines.size(); ++i) out += i == 0 ? lines[i] : "\n" + (lines[i].empty() ? "" : ind + lines[i]);
    }
    return a.flag(1, "first") ? ind + out : out;
}
Value f_int(const Value& v, CallArgs& a) {
    Value fallback = a.has(0, "default") ? a.arg(0, "default") : Value(0);
    int64_t base = a.integer(1, "base", 10), n;
    double d;
    if (v.is(Kind::Int) || v.is(Kind::Bool)) return v.as_int();
    if (v.is(Kind::Float)) d = v.as_double();
    else if (v.is_string() && parse_py_int(v.str(), int(base), n)) return n;
    else if (!(v.is_string() && parse_py_float(v.str(), d))) return fallback;
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return int64_t(d);
}
Value f_items(const Value& v, CallArgs&) {
    if (v.is_undefined()) return Value(List{});
    check(v.is(Kind::Dict), "Can only get item pairs from a mapping.");
    List out;
    for (auto& [k, x] : v.dict().entries) out.emplace_back(List{k, x}, true);
    return Value(std::move(out));
}
Value f_join(const Value& v, CallArgs& a) {
    std::string sep = a.string(0, "d"), attribute = a.string(1, "attribute"), out;
    bool first = true;
    for (auto& x : iterate(v)) {
        if (!first) out += sep;
        first = false;
        out += to_str(attribute.empty() ? x : attr_path(x, attribute));
        if (out.size() > kMaxStringBytes) fail("string longer than ", kMaxStringBytes, " bytes");
    }
    return Value(std::move(out));
}
Value f_list(const Value& v, CallArgs&) { return Value(iterate(v)); }
Value f_lower(const Value& v, CallArgs&) { return pystr::lower(to_str(v)); }
Value f_upper(const Value& v, CallArgs&) { return pystr::upper(to_str(v)); }
Value f_map(const Value& v, CallArgs& a) {
    List out;
    if (a.pos.empty()) {
        std::string attribute = a.string(0, "attribute");
        check(!attribute.empty(), "map() requires a filter name or attribute=");
        const Value* fallback = a.get(99, "default");
        for (auto& x : iterate(v)) {
            Value r = attr_path(x, attribute);
            out.push_back(r.is_undefined() && fallback ? *fallback : r);
        }
        return Value(std::move(out));
    }
    std::string name = expect_str(a.pos[0], "map filter name");
    CallArgs rest{List(a.pos.begin() + 1, a.pos.end()), a.kw};
    for (auto& x : iterate(v)) out.push_back(apply_filter(name, x, rest));
    return Value(std::move(out));
}
Value min_max(const Value& v, CallArgs& a, bool want_max) {
    bool cs = a.flag(0, "case_sensitive");
    std::string attribute = a.string(1, "attribute");
    List items = iterate(v);
    if (items.empty()) return Value::undefined(std::string("No aggregated item, sequence was empty."));
    size_t best = 0;
    for (size_t i = 1; i < items.size(); ++i) {
        Value ki = sort_key(items[i], attribute, cs), kb = sort_key(items[best], attribute, cs);
        if (want_max ? less(kb, ki) : less(ki, kb)) best = i;
    }
    return items[best];
}
Value f_max(const Value& v, CallArgs& a) { return min_max(v, a, true); }
Value f_min(const Value& v, CallArgs& a) { return min_max(v, a, false); }
Value select_impl(const Value& v, CallArgs& a, bool by_attr, bool keep) {
    size_t off = by_attr ? 1 : 0;
    std::string attribute = by_attr ? a.string(0, "attr") : std::string();
    List out;
    for (auto& x : iterate(v)) {
        Value item = by_attr ? attr_path(x, attribute) : x;
        bool ok;
        if (a.pos.size() > off) {
            CallArgs rest{List(a.pos.begin() + static_cast<long>(off) + 1, a.pos.end()), a.kw};
            ok = apply_test(expect_str(a.pos[off], "test name"), item, rest);
        } else {
            ok = truthy(item);
        }
        if (ok == keep) out.push_back(x);
    }
    return Value(std::move(out));
}
Value f_select(const Value& v, CallArgs& a) { return select_impl(v, a, false, true); }
Value f_reject(const Value& v, CallArgs& a) { return select_impl(v, a, false, false); }
Value f_selectattr(const Value& v, CallArgs& a) { return select_impl(v, a, true, true); }
Value f_rejectattr(const Value& v, CallArgs& a) { return select_impl(v, a, true, false); }
Value f_replace(const Value& v, CallArgs& a) {
    std::string s = to_str(v), out = pystr::replace(s, a.string(0, "old"), a.string(1, "new"), a.integer(2, "count", -1));
    if (out.size() > kMaxStringBytes) fail("string longer than ", kMaxStringBytes, " bytes");
    return out;
}
Value f_reverse(const Value& v, CallArgs&) {
    if (v.is_string()) {
        std::u32string u = pystr::decode(v.str());
        std::reverse(u.begin(), u.end());
        return pystr::encode(u);
    }
    List items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value(std::move(items));
}
Value f_round(const Value& v, CallArgs& a) {
    int64_t precision = a.integer(0, "precision", 0);
    std::string method = a.string(1, "method", "common");
    check(method == "common" || method == "ceil" || method == "floor", "FilterArgumentError: method must be common, ceil or floor");
    check(v.is_number(), "TypeError: type ", type_name(v), " doesn't define __round__ method");
    if (method == "common" && !v.is(Kind::Float)) return v.as_int();
    double x = v.as_double(), scale = std::pow(10.0, double(precision));
    if (method == "ceil") return std::ceil(x * scale) / scale;
    if (method == "floor") return std::floor(x * scale) / scale;
    if (!std::isfinite(x)) return x;
    if (precision < 0) return std::nearbyint(x * scale) / scale;
    char buf[512];  // correctly rounded decimal (round-half-even on the exact binary value), like Python
    std::snprintf(buf, sizeof buf, "%.*f", int(std::min<int64_t>(precision, 340)), x);
    return std::strtod(buf, nullptr);
}
Value f_safe(const Value& v, CallArgs&) { return to_str(v); }
Value f_sort(const Value& v, CallArgs& a) {
    bool rev = a.flag(0, "reverse"), cs = a.flag(1, "case_sensitive");
    std::string attribute = a.string(2, "attribute");
    List items = iterate(v);
    std::vector<std::pair<Value, Value>> keyed;
    for (auto& x : items) keyed.emplace_back(sort_key(x, attribute, cs), x);
    merge_sort(keyed, [&](const auto& x, const auto& y) { return rev ? less(y.first, x.first) : less(x.first, y.first); });
    List out;
    for (auto& [_, x] : keyed) out.push_back(x);
    return Value(std::move(out));
}
Value f_string(const Value& v, CallArgs&) { return to_str(v); }
Value f_sum(const Value& v, CallArgs& a) {
    std::string attribute = a.string(0, "attribute");
    Value total = a.get_or(1, "start", Value(0));
    for (auto& x : iterate(v)) total = binary_op("+", total, attribute.empty() ? x : attr_path(x, attribute));
    return total;
}
Value f_title(const Value& v, CallArgs&) {  // jinja2: capitalise after whitespace and -([{<
    std::u32string u = pystr::decode(to_str(v));
    bool start = true;
    for (char32_t& c : u) {
        bool delim = pystr::is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
        if (delim) { start = true; continue; }
        c = static_cast<char32_t>(start ? utf8proc_toupper(int32_t(c)) : utf8proc_tolower(int32_t(c)));
        start = false;
    }
    return pystr::encode(u);
}
Value f_tojson(const Value& v, CallArgs& a) {  // transformers: tojson(x, ensure_ascii, indent, separators, sort_keys)
    JsonOptions o;
    o.ensure_ascii = a.flag(0, "ensure_ascii");
    const Value* indent = a.get(1, "indent");
    if (indent && !indent->is_none() && !indent->is_undefined()) {
        o.has_indent = true;
        if (indent->is_string()) o.indent = indent->str();
        else o.indent = std::string(size_t(std::clamp<int64_t>(a.integer(1, "indent", 0), 0, 4096)), ' ');
        o.item_sep = ",";
    }
    const Value* seps = a.get(2, "separators");
    if (seps && !seps->is_none() && !seps->is_undefined()) {
        List s = iterate(*seps);
        check(s.size() == 2, "ValueError: separators must be a pair of strings");
        o.item_sep = expect_str(s[0], "item separator");
        o.key_sep = expect_str(s[1], "key separator");
    }
    o.sort_keys = a.flag(3, "sort_keys");
    return to_json(v, o);
}
Value f_trim(const Value& v, CallArgs& a) {
    const Value* chars = a.get(0, "chars");
    std::string c = chars && chars->is_string() ? chars->str() : std::string();
    return pystr::strip(to_str(v), chars && chars->is_string() ? &c : nullptr, true, true);
}
Value f_unique(const Value& v, CallArgs& a) {
    bool cs = a.flag(0, "case_sensitive");
    std::string attribute = a.string(1, "attribute");
    List out, seen;  // string keys are hashed, other keys compared one by one
    std::unordered_set<std::string> seen_strings;
    for (auto& x : iterate(v)) {
        Value k = sort_key(x, attribute, cs);
        bool dup = false;
        if (k.is_string()) {
            dup = !seen_strings.insert(k.str()).second;
        } else {
            charge(seen.size());
            for (auto& s : seen) dup = dup || equals(s, k);
            if (!dup) seen.push_back(k);
        }
        if (!dup) out.push_back(x);
    }
    return Value(std::move(out));
}
Value f_wordcount(const Value& v, CallArgs&) { return int64_t(pystr::split(to_str(v), nullptr, -1).size()); }

const std::map<std::string, FilterFn>& filters() {
    static const std::map<std::string, FilterFn> m = {
        {"abs", f_abs}, {"attr", f_attr}, {"batch", f_batch}, {"capitalize", f_capitalize}, {"count", f_length},
        {"d", f_default}, {"default", f_default}, {"dictsort", f_dictsort}, {"e", f_escape}, {"escape", f_escape},
        {"first", f_first}, {"float", f_float}, {"format", f_format}, {"indent", f_indent}, {"int", f_int},
        {"items", f_items}, {"join", f_join}, {"last", f_last}, {"length", f_length}, {"list", f_list},
        {"lower", f_lower}, {"map", f_map}, {"max", f_max}, {"min", f_min}, {"reject", f_reject},
        {"rejectattr", f_rejectattr}, {"replace", f_replace}, {"reverse", f_reverse}, {"round", f_round},
        {"safe", f_safe}, {"select", f_select}, {"selectattr", f_selectattr}, {"sort", f_sort},
        {"string", f_string}, {"sum", f_sum}, {"title", f_title}, {"tojson", f_tojson}, {"trim", f_trim},
        {"unique", f_unique}, {"upper", f_upper}, {"wordcount", f_wordcount},
    };
    return m;
}

// ---- tests --------------------------------------------------------------------------------

bool t_defined(const Value& v, CallArgs&) { return !v.is_undefined(); }
bool t_undefined(const Value& v, CallArgs&) { return v.is_undefined(); }
bool t_none(const Value& v, CallArgs&) { return v.is_none(); }
bool t_boolean(const Value& v, CallArgs&) { return v.is(Kind::Bool); }
bool t_true(const Value& v, CallArgs&) { return v.is(Kind::Bool) && v.as_bool(); }
bool t_false(const Value& v, CallArgs&) { return v.is(Kind::Bool) && !v.as_bool(); }
bool t_integer(const Value& v, CallArgs&) { return v.is(Kind::Int); }
bool t_float(const Value& v, CallArgs&) { return v.is(Kind::Float); }
bool t_number(const Value& v, CallArgs&) { return v.is_number(); }
bool t_string(const Value& v, CallArgs&) { return v.is_string(); }
bool t_mapping(const Value& v, CallArgs&) { return v.is(Kind::Dict); }
bool t_iterable(const Value& v, CallArgs&) { return v.is_string() || v.is(Kind::List) || v.is(Kind::Dict) || v.is_undefined(); }
bool t_callable(const Value& v, CallArgs&) { return v.is(Kind::Function); }
bool t_escaped(const Value&, CallArgs&) { return false; }
bool t_odd(const Value& v, CallArgs&) { return equals(binary_op("%", v, Value(2)), Value(1)); }
bool t_even(const Value& v, CallArgs&) { return equals(binary_op("%", v, Value(2)), Value(0)); }
bool t_divisibleby(const Value& v, CallArgs& a) { return equals(binary_op("%", v, a.arg(0, "num")), Value(0)); }
bool t_eq(const Value& v, CallArgs& a) { return equals(v, a.arg(0, "other")); }
bool t_ne(const Value& v, CallArgs& a) { return !equals(v, a.arg(0, "other")); }
bool t_lt(const Value& v, CallArgs& a) { return less(v, a.arg(0, "other")); }
bool t_gt(const Value& v, CallArgs& a) { return less(a.arg(0, "other"), v); }
bool t_le(const Value& v, CallArgs& a) { return !less(a.arg(0, "other"), v); }
bool t_ge(const Value& v, CallArgs& a) { return !less(v, a.arg(0, "other")); }
bool t_in(const Value& v, CallArgs& a) { return contains(a.arg(0, "seq"), v); }
bool t_sameas(const Value& v, CallArgs& a) {  // Python `is`, approximated: containers and Undefined are distinct
    const Value& o = a.arg(0, "other");
    if (v.kind() != o.kind() || v.is(Kind::List) || v.is(Kind::Dict) || v.is_undefined()) return false;
    return equals(v, o);
}
bool t_lower(const Value& v, CallArgs&) { std::string s = to_str(v); return pystr::lower(s) == s && pystr::upper(s) != s; }
bool t_upper(const Value& v, CallArgs&) { std::string s = to_str(v); return pystr::upper(s) == s && pystr::lower(s) != s; }
bool t_filter(const Value& v, CallArgs&) { return v.is_string() && has_filter(v.str()); }
bool t_test(const Value& v, CallArgs&) { return v.is_string() && has_test(v.str()); }
bool t_sequence(const Value& v, CallArgs& a) { return t_iterable(v, a); }

const std::map<std::string, TestFn>& tests() {
    static const std::map<std::string, TestFn> m = {
        {"defined", t_defined}, {"undefined", t_undefined}, {"none", t_none}, {"boolean", t_boolean},
        {"true", t_true}, {"false", t_false}, {"integer", t_integer}, {"float", t_float}, {"number", t_number},
        {"string", t_string}, {"mapping", t_mapping}, {"iterable", t_iterable}, {"sequence", t_sequence},
        {"callable", t_callable}, {"escaped", t_escaped}, {"odd", t_odd}, {"even", t_even},
        {"divisibleby", t_divisibleby}, {"eq", t_eq}, {"equalto", t_eq}, {"==", t_eq}, {"ne", t_ne}, {"!=", t_ne},
        {"lt", t_lt}, {"lessthan", t_lt}, {"<", t_lt}, {"le", t_le}, {"<=", t_le}, {"gt", t_gt},
        {"greaterthan", t_gt}, {">", t_gt}, {"ge", t_ge}, {">=", t_ge}, {"in", t_in}, {"sameas", t_sameas},
        {"lower", t_lower}, {"upper", t_upper}, {"filter", t_filter}, {"test", t_test},
    };
    return m;
}

}  // namespace

// ---- public entry points ----------------------------------------------------------------------

bool has_filter(const std::string& name) { return filters().count(name) > 0; }
bool has_test(const std::string& name) { return tests().count(name) > 0; }

Value apply_filter(const std::string& name, const Value& input, CallArgs& args) {
    auto it = filters().find(name);
    if (it == filters().end()) fail("no filter named '", name, "'");
    return it->second(input, args);
}

bool apply_test(const std::string& name, const Value& input, CallArgs& args) {
    auto it = tests().find(name);
    if (it == tests().end()) fail("no test named '", name, "'");
    return it->second(input, args);
}

}  // namespace autoround::jinja

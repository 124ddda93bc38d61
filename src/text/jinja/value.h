// text/jinja/value.h — the runtime value of the Jinja interpreter.
//
// Python's data model reduced to what chat templates touch: None, bool, int (int64, overflow is
// an error), float, str (UTF-8), list/tuple, insertion-ordered dict, callables (builtins, macros,
// bound methods), objects with attributes (namespace(), the loop variable) and jinja2's default
// Undefined. Strings and containers are shared and immutable once built (transformers renders in
// an ImmutableSandboxedEnvironment); only namespace objects are mutable. The free functions give
// Python-compatible str()/repr(), truthiness, ==, <, arithmetic and json.dumps.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace autoround::jinja {

class Value;
struct Dict;
struct Object;
struct CallArgs;
using List = std::vector<Value>;
using Function = std::function<Value(CallArgs&)>;

struct Undefined {
    std::string hint;  // the message raised when the value is used ("'x' is undefined")
};
struct NoneType {};
struct ListBox {
    List items;
    bool tuple = false;
    int depth = 1;  // nesting depth of lists/dicts, bounded (deep values would overflow the stack)
};
struct FunctionBox {
    std::string name;
    Function fn;
};

class Value {
public:
    enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Function, Object };

    Value() : v_(Undefined{}) {}
    Value(bool b) : v_(b) {}
    Value(int i) : v_(static_cast<int64_t>(i)) {}
    Value(int64_t i) : v_(i) {}
    Value(size_t i) : v_(static_cast<int64_t>(i)) {}
    Value(double d) : v_(d) {}
    Value(std::string s);
    Value(const char* s) : Value(std::string(s)) {}
    Value(List items, bool tuple = false);
    Value(Dict d);
    Value(std::shared_ptr<Object> o) : v_(std::move(o)) {}
    static Value undefined(std::string hint) { Value v; v.v_ = Undefined{std::move(hint)}; return v; }
    static Value none() { Value v; v.v_ = NoneType{}; return v; }
    static Value function(std::string name, Function fn);

    Kind kind() const { return static_cast<Kind>(v_.index()); }
    bool is(Kind k) const { return kind() == k; }
    bool is_undefined() const { return is(Kind::Undefined); }
    bool is_none() const { return is(Kind::None); }
    bool is_string() const { return is(Kind::String); }
    bool is_number() const { return is(Kind::Int) || is(Kind::Float) || is(Kind::Bool); }

    bool as_bool() const { return std::get<bool>(v_); }
    int64_t as_int() const;  // Int or Bool
    double as_double() const;  // Int, Float or Bool
    const std::string& str() const { return *std::get<std::shared_ptr<const std::string>>(v_); }
    const List& items() const { return std::get<std::shared_ptr<const ListBox>>(v_)->items; }
    bool is_tuple() const { return std::get<std::shared_ptr<const ListBox>>(v_)->tuple; }
    const Dict& dict() const { return *std::get<std::shared_ptr<const Dict>>(v_); }
    const FunctionBox& function() const { return *std::get<std::shared_ptr<const FunctionBox>>(v_); }
    Object& object() const { return *std::get<std::shared_ptr<Object>>(v_); }
    const std::string& undefined_hint() const { return std::get<Undefined>(v_).hint; }
    int nesting() const;  // list/dict/object nesting depth, 0 for scalars

private:
    std::variant<Undefined, NoneType, bool, int64_t, double, std::shared_ptr<const std::string>,
                 std::shared_ptr<const ListBox>, std::shared_ptr<const Dict>, std::shared_ptr<const FunctionBox>,
                 std::shared_ptr<Object>>
        v_;
};

// An insertion-ordered mapping (Python dict); lookups are linear, chat-template dicts are small.
struct Dict {
    std::vector<std::pair<Value, Value>> entries;
    int depth = 1;  // set when wrapped in a Value
    const Value* find(const Value& key) const;
    const Value* find(const std::string& key) const;
    void set(Value key, Value value);
};

// namespace() objects (mutable) and the loop variable: attributes only, not a mapping.
struct Object {
    std::string type;  // "Namespace", "LoopContext"
    Dict attrs;
    bool mutable_attrs = false;
    int depth = 1;  // an upper bound of the nesting below it (see kMaxValueDepth)
    void set_attr(const std::string& name, Value value);  // keeps depth bounded
};

struct CallArgs {
    std::vector<Value> pos;
    std::vector<std::pair<std::string, Value>> kw;
    // Positional argument i, else keyword `name`, else nullptr.
    const Value* get(size_t i, const std::string& name) const;
    Value get_or(size_t i, const std::string& name, Value fallback) const;
    bool has(size_t i, const std::string& name) const { return get(i, name) != nullptr; }
    const Value& arg(size_t i, const std::string& name) const;  // Undefined when missing
    bool flag(size_t i, const std::string& name, bool fallback = false) const;  // truthiness
    int64_t integer(size_t i, const std::string& name, int64_t fallback) const;  // None: fallback
    std::string string(size_t i, const std::string& name, const std::string& fallback = {}) const;  // str()
};
const std::string& expect_str(const Value& v, const char* what);  // TypeError unless v is a str

// Python semantics.
const char* type_name(const Value& v);
[[noreturn]] void raise_undefined(const Value& v);  // throws Error with the Undefined's hint
bool truthy(const Value& v);
std::string to_str(const Value& v);  // str(v); Undefined prints as ""
std::string repr(const Value& v);
std::string format_float(double d);  // float.__repr__
bool equals(const Value& a, const Value& b);
bool less(const Value& a, const Value& b);  // a < b; TypeError for unorderable types
bool contains(const Value& container, const Value& item);  // `item in container`
Value binary_op(const std::string& op, const Value& a, const Value& b);  // + - * / // % ** ~
Value negate(const Value& v);
List iterate(const Value& v);  // list(v): list/tuple items, dict keys, str code points
int64_t length(const Value& v);  // len(v)

struct JsonOptions {
    bool ensure_ascii = false;
    std::string indent;  // used when has_indent
    bool has_indent = false;
    std::string item_sep = ", ", key_sep = ": ";
    bool sort_keys = false;
};
std::string to_json(const Value& v, const JsonOptions& options);  // json.dumps
Value from_json(const nlohmann::ordered_json& j);

// Render budget: every evaluation step and every byte built charges it; when it runs out the
// render throws Error. This keeps hostile templates (fuzzing) from hanging or eating memory.
void charge(uint64_t cost);
class BudgetScope {
public:
    explicit BudgetScope(uint64_t steps);
    ~BudgetScope();
    BudgetScope(const BudgetScope&) = delete;
    BudgetScope& operator=(const BudgetScope&) = delete;

private:
    uint64_t saved_;
};
inline constexpr size_t kMaxStringBytes = size_t(64) << 20;
inline constexpr int kMaxValueDepth = 200;

}  // namespace autoround::jinja

// text/jinja/builtins.h — what templates can call: filters, tests, the methods of str/list/dict,
// attribute and item lookup with jinja2's fallbacks, and the global functions transformers provides
// (range, dict, namespace, joiner, raise_exception, strftime_now).
#pragma once

#include <string>

#include "core/error.h"
#include "text/jinja/value.h"

namespace autoround::jinja {

// An error whose message is final: raised by the template's raise_exception('msg'), or already
// tagged with the template line by the interpreter. Other runtime errors get " (template line N)".
class TemplateError : public Error {
public:
    using Error::Error;
};

bool has_filter(const std::string& name);
bool has_test(const std::string& name);
Value apply_filter(const std::string& name, const Value& input, CallArgs& args);
bool apply_test(const std::string& name, const Value& input, CallArgs& args);

// obj.name: a bound method of str/list/dict first, then the key (dicts) or attribute (objects);
// Undefined when missing. Raises if obj itself is Undefined.
Value get_attr(const Value& obj, const std::string& name);
// obj[key]: the item first, then the attribute for string keys; Undefined when missing.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] on str/list/tuple, Python semantics; null pointers for omitted parts.
Value slice(const Value& obj, const Value* start, const Value* stop, const Value* step);
// True and sets `out` if obj has a method `name` (str, list and dict methods).
bool call_method(const Value& obj, const std::string& name, CallArgs& args, Value& out);

Dict make_globals();

}  // namespace autoround::jinja

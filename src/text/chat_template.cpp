// text/chat_template.cpp — ChatTemplate on top of the Jinja interpreter in text/jinja/.
//
// Mirrors transformers' apply_chat_template: the template sees `messages`, `tools` (None when not
// given), `documents` (None), `add_generation_prompt` and every key of `extra` (special tokens,
// enable_thinking, ...), plus the globals raise_exception / strftime_now.
#include "text/chat_template.h"

#include "text/jinja/interpreter.h"
#include "text/jinja/parser.h"

namespace autoround {

struct ChatTemplate::Impl {
    jinja::Body body;
};

ChatTemplate::ChatTemplate(std::string source) : impl_(std::make_unique<Impl>()) {
    impl_->body = jinja::parse_template(source);
}
ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

std::string ChatTemplate::render(const ChatTemplateInputs& inputs) const {
    jinja::Dict vars;
    vars.set("messages", jinja::from_json(inputs.messages));
    vars.set("tools", jinja::from_json(inputs.tools));
    vars.set("documents", jinja::Value::none());
    vars.set("add_generation_prompt", jinja::Value(inputs.add_generation_prompt));
    if (inputs.extra.is_object())
        for (auto& [k, v] : inputs.extra.items()) vars.set(jinja::Value(k), jinja::from_json(v));
    return jinja::Interpreter().render(impl_->body, vars);
}

}  // namespace autoround

// text/chat_template.h — renders a model's Jinja2 chat template (Qwen3, Qwen3-Instruct-2507,
// Qwen3-VL) to the prompt string, byte-for-byte as Python jinja2 with transformers' settings
// (trim_blocks, lstrip_blocks, raise_exception, tojson with ensure_ascii=False...).
//
// The inputs are nlohmann::ordered_json so that dict key order survives into the output (tool
// schemas are printed with tojson in the order given, as Python dicts keep insertion order).
// A plain nlohmann::json converts implicitly, with its keys in sorted order.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace autoround {

struct ChatTemplateInputs {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();  // [{role, content (string or parts list), ...}]
    nlohmann::ordered_json tools;                                       // null or array
    bool add_generation_prompt = true;
    nlohmann::ordered_json extra = nlohmann::ordered_json::object();    // extra variables (enable_thinking, bos_token, ...)
};

// Compiles once, renders many times. Template syntax errors throw Error with line/column;
// raise_exception('msg') in the template throws Error("msg").
class ChatTemplate {
public:
    explicit ChatTemplate(std::string source);
    ~ChatTemplate();
    ChatTemplate(ChatTemplate&&) noexcept;
    ChatTemplate& operator=(ChatTemplate&&) noexcept;
    std::string render(const ChatTemplateInputs& inputs) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace autoround

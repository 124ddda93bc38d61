// text/chat_template.h — renders a model's Jinja2 chat template (Qwen3, Qwen3-Instruct-2507,
// Qwen3-VL) to the prompt string, byte-for-byte as Python jinja2 with transformers' settings
// (trim_blocks, lstrip_blocks, raise_exception, tojson with ensure_ascii=False...).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace autoround {

struct ChatTemplateInputs {
    nlohmann::json messages = nlohmann::json::array();  // [{role, content (string or parts list), ...}]
    nlohmann::json tools;                               // null or array
    bool add_generation_prompt = true;
    nlohmann::json extra = nlohmann::json::object();    // extra variables (enable_thinking, bos_token, ...)
};

// Compiles once, renders many times. Template syntax errors throw Error with line/column.
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

// fuzz/fuzz_chat_template.cpp — libFuzzer target for the Jinja chat-template engine.
//
// Why: chat templates come from downloaded checkpoints, so the lexer, parser and interpreter must
// survive any bytes: no crash, no hang, no unbounded memory (the engine bounds nesting, recursion,
// work and output size and throws Error instead). Each input is used two ways:
//   (a) compiled as a template and rendered with a fixed conversation (system/user/assistant,
//       reasoning_content, tool calls, tools, content parts) and a few extra variables;
//   (b) used as message content and tool argument text, rendered through a fixed template that
//       pushes the string through Python string methods, slicing, filters and tojson.
// autoround::Error is the expected way to reject bad input; anything else aborts. Rendering goes
// through the engine directly (as ChatTemplate::render does) with a smaller work budget than the
// default, so that runaway templates are cut off in milliseconds rather than seconds.
// Build: cmake -DAUTOROUND_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang ...
// Run:   ./fuzz_chat_template -max_len=4096 -timeout=10
#include <algorithm>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/jinja/interpreter.h"
#include "text/jinja/parser.h"

namespace {

using ojson = nlohmann::ordered_json;
namespace jinja = autoround::jinja;

std::string render(const jinja::Body& body, const ojson& messages, const ojson& tools, const ojson& extra) {
    jinja::Dict vars;  // the variables ChatTemplate::render provides
    vars.set("messages", jinja::from_json(messages));
    vars.set("tools", jinja::from_json(tools));
    vars.set("documents", jinja::Value::none());
    vars.set("add_generation_prompt", jinja::Value(true));
    for (auto& [k, v] : extra.items()) vars.set(jinja::Value(k), jinja::from_json(v));
    jinja::RenderLimits limits;
    limits.max_steps = 300'000;
    limits.max_output = size_t(1) << 20;
    return jinja::Interpreter(limits).render(body, vars);
}

struct Fixed {
    ojson messages, tools, extra;
};

const Fixed& fixed_inputs() {
    static const Fixed in = [] {
        Fixed x;
        x.messages = ojson::parse(R"([
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Hi <think>x</think> 東京 🙂"},
            {"role": "assistant", "content": "", "reasoning_content": "think",
             "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"a": [1, 2.5, null, true]}}}]},
            {"role": "tool", "content": "{\"ok\": 1}"},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what?"}]}
        ])");
        x.tools = ojson::parse(R"([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])");
        x.extra = ojson::parse(R"({"enable_thinking": false, "bos_token": "<s>", "n": 3, "f": 0.5, "none": null})");
        return x;
    }();
    return in;
}

const jinja::Body& string_template() {
    static const jinja::Body t = jinja::parse_template(
        "{%- for m in messages %}{%- set c = m.content %}"
        "{{- c.split('</think>')[-1].lstrip('\\n') }}|{{ c.split()|join(',') }}|{{ c[::-1] }}|{{ c[1:-1:2] }}"
        "|{{ c|tojson }}|{{ c|tojson(ensure_ascii=true) }}|{{ c.strip('ab') }}|{{ c.title() }}|{{ c|title }}"
        "|{{ c.upper() }}|{{ c|capitalize }}|{{ c|indent(2, true) }}|{{ c.replace('a', 'bb') }}|{{ c|length }}"
        "|{{ c.find('x') }}|{{ c.count('a') }}|{{ c.startswith('<') }}|{{ c.rsplit(' ', 1) }}|{{ c.splitlines() }}"
        "|{{ [c] }}|{{ c|list|unique|sort|join }}|{{ c|int }}|{{ c|float }}|{{ c|wordcount }}|{{ c|e }}"
        "{%- for t in m.tool_calls or [] %}{{ t.function.arguments|tojson(indent=1) }}{% endfor %}"
        "{%- endfor %}");
    return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    try {  // (a) the input as a template
        const Fixed& in = fixed_inputs();
        render(jinja::parse_template(text), in.messages, in.tools, in.extra);
    } catch (const autoround::Error&) {
    }
    try {  // (b) the input as content (its first KiB: the string template does ~30 passes over it)
        text.resize(std::min<size_t>(text.size(), 1024));
        ojson messages = ojson::array({ojson{{"role", "user"}, {"content", text}}});
        messages.push_back(ojson{{"role", "assistant"}, {"content", text},
                                 {"tool_calls", ojson::array({ojson{{"function", {{"name", "f"}, {"arguments", {{"q", text}}}}}}})}});
        render(string_template(), messages, nullptr, ojson::object());
    } catch (const autoround::Error&) {
    }
    return 0;
}

// tests/text/test_chat_template.cpp — the Jinja chat-template engine against Python jinja2.
//
// Replays tests/text/chat_template_cases.json (written by scripts/gen_chat_template_expected.py
// with jinja2 under transformers' settings): every case must render byte for byte, or throw
// autoround::Error where Python raised (with jinja2's line number for syntax errors and the exact
// message for raise_exception). A few direct tests cover limits and the API itself.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "text/chat_template.h"

namespace autoround {
namespace {

using ojson = nlohmann::ordered_json;

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error("cannot open " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

struct Case {
    std::string name;
    ojson data;  // one entry of "cases", with "template_ref" resolved into "template"
};

std::vector<Case> load_cases() {
    std::vector<Case> cases;
    try {
        ojson all = ojson::parse(read_file(std::string(AR_SOURCE_DIR) + "/tests/text/chat_template_cases.json"));
        for (auto& c : all["cases"]) {
            if (c.contains("template_ref")) c["template"] = all["templates"][c["template_ref"].get<std::string>()];
            cases.push_back({c["name"].get<std::string>(), c});
        }
    } catch (const std::exception&) {
        // Reported by ChatTemplateCases.FileLoads.
    }
    return cases;
}

std::string template_source(const ojson& c) {
    if (c.contains("template")) return c["template"].get<std::string>();
    std::string path = std::string(AR_SHARED_DIR) + "/" + c["template_path"].get<std::string>();
    std::string text = read_file(path);
    if (path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0)
        return ojson::parse(text)["chat_template"].get<std::string>();
    return text;
}

ChatTemplateInputs inputs_of(const ojson& c) {
    ChatTemplateInputs in;
    in.messages = c["messages"];
    if (c.contains("tools")) in.tools = c["tools"];
    in.add_generation_prompt = c.value("add_generation_prompt", true);
    if (c.contains("extra")) in.extra = c["extra"];
    return in;
}

class ChatTemplateCase : public testing::TestWithParam<Case> {};

TEST_P(ChatTemplateCase, MatchesJinja2) {
    const ojson& c = GetParam().data;
    std::string source = template_source(c);
    if (!c.value("error", false)) {
        ChatTemplate tmpl(source);
        EXPECT_EQ(tmpl.render(inputs_of(c)), c["expected"].get<std::string>());
        return;
    }
    try {
        ChatTemplate tmpl(source);
        tmpl.render(inputs_of(c));
        FAIL() << "expected an error";
    } catch (const Error& e) {
        std::string what = e.what();
        if (c.contains("line")) {
            EXPECT_NE(what.find("line " + std::to_string(c["line"].get<int>()) + ","), std::string::npos) << what;
        }
        if (c.contains("message")) {
            EXPECT_EQ(what, c["message"].get<std::string>());
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Jinja2, ChatTemplateCase, testing::ValuesIn(load_cases()),
                         [](const testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(ChatTemplateCases, FileLoads) { EXPECT_GE(load_cases().size(), 60u); }

TEST(ChatTemplate, CompilesOnceRendersMany) {
    ChatTemplate t("{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}{% if add_generation_prompt %}>{% endif %}");
    ChatTemplateInputs in;
    in.messages = ojson::parse(R"([{"role": "user", "content": "a"}])");
    EXPECT_EQ(t.render(in), "user:a;>");
    in.add_generation_prompt = false;
    in.messages.push_back(ojson{{"role", "assistant"}, {"content", "b"}});
    EXPECT_EQ(t.render(in), "user:a;assistant:b;");
    ChatTemplate moved = std::move(t);
    EXPECT_EQ(moved.render(in), "user:a;assistant:b;");
}

TEST(ChatTemplate, PlainJsonInputsConvert) {
    ChatTemplate t("{{ tools[0]|tojson }}|{{ bos_token }}");
    ChatTemplateInputs in;
    nlohmann::json tools = nlohmann::json::parse(R"([{"b": 1, "a": 2}])");
    in.tools = tools;  // nlohmann::json has sorted keys
    in.extra["bos_token"] = "<s>";
    EXPECT_EQ(t.render(in), "{\"a\": 2, \"b\": 1}|<s>");
}

TEST(ChatTemplate, SyntaxErrorHasLineAndColumn) {
    try {
        ChatTemplate t("line 1\nline 2 {{ 'a' + }}");
        FAIL() << "expected a syntax error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("line 2, column 17"), std::string::npos) << e.what();
    }
}

TEST(ChatTemplate, RuntimeErrorsNameTheLine) {
    ChatTemplate t("a\n{% for m in messages %}\n{{ m.content + 1 }}{% endfor %}");
    ChatTemplateInputs in;
    in.messages = ojson::parse(R"([{"role": "user", "content": "x"}])");
    try {
        t.render(in);
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("(template line 3)"), std::string::npos) << e.what();
    }
}

TEST(ChatTemplate, RunawayTemplatesAreStopped) {
    ChatTemplateInputs in;
    for (const char* src : {
             "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}",
             "{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
             "{% macro m(n) %}{{ m(n) }}{{ m(n) }}{% endmacro %}{{ m(1) }}",
             "{{ 2 ** 64 }}",
             "{{ 'x' * 1000000000 }}",
         }) {
        ChatTemplate t(src);
        EXPECT_THROW(t.render(in), Error) << src;
    }
    std::string deep(400, '(');
    EXPECT_THROW(ChatTemplate("{{ " + deep + " }}"), Error);
    std::string chain = "{{ x";
    for (int i = 0; i < 1000; ++i) chain += ".a";
    EXPECT_THROW(ChatTemplate(chain + " }}"), Error);
}

TEST(ChatTemplate, NamespaceCyclesDoNotLeak) {
    // Rendered under ASan/LSan in the sanitizer build: a namespace holding itself must be freed.
    ChatTemplate t("{% set ns = namespace() %}{% set ns.self = ns %}{% macro m() %}{% endmacro %}{% set ns.m = m %}"
                   "{% for x in [1] %}{{ loop.changed(loop) }}{% set ns.l = loop %}{% endfor %}ok");
    EXPECT_EQ(t.render({}), "Trueok");
}

}  // namespace
}  // namespace autoround

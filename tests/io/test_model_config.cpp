// tests/io/test_model_config.cpp — config.json (both styles, all supported families, rejected
// features), generation_config.json and tokenizer_config.json (+ chat_template.jinja/.json),
// read from the real nano models and from variants written into temp folders.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/io_test_util.h"
#include "io/model_config.h"

using namespace autoround;
using autoround::testio::expect_error;
using autoround::testio::TempDir;
using autoround::testio::read_file;
using autoround::testio::write_file;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const fs::path kShared = AR_SHARED_DIR;

// A minimal older-style Qwen2 config.
json qwen2_config() {
    return json{{"architectures", {"Qwen2ForCausalLM"}},
                {"model_type", "qwen2"},
                {"hidden_size", 896},
                {"intermediate_size", 4864},
                {"num_hidden_layers", 24},
                {"num_attention_heads", 14},
                {"num_key_value_heads", 2},
                {"vocab_size", 151936},
                {"max_position_embeddings", 32768},
                {"rms_norm_eps", 1e-6},
                {"rope_theta", 1000000.0},
                {"rope_scaling", nullptr},
                {"sliding_window", 32768},
                {"use_sliding_window", false},
                {"tie_word_embeddings", true},
                {"torch_dtype", "bfloat16"},
                {"bos_token_id", 151643},
                {"eos_token_id", 151643}};
}

json llama_config() {
    return json{{"architectures", {"LlamaForCausalLM"}},
                {"hidden_size", 2048},
                {"intermediate_size", 8192},
                {"num_hidden_layers", 16},
                {"num_attention_heads", 32},
                {"num_key_value_heads", 8},
                {"head_dim", 64},
                {"vocab_size", 128256},
                {"rms_norm_eps", 1e-5},
                {"rope_theta", 500000.0},
                {"rope_scaling",
                 {{"factor", 32.0},
                  {"high_freq_factor", 4.0},
                  {"low_freq_factor", 1.0},
                  {"original_max_position_embeddings", 8192},
                  {"rope_type", "llama3"}}},
                {"max_position_embeddings", 131072},
                {"torch_dtype", "bfloat16"},
                {"bos_token_id", 128000},
                {"eos_token_id", {128001, 128008, 128009}}};
}

ModelConfig from_dir(const json& j) {
    TempDir tmp;
    write_file(tmp / "config.json", j.dump(2));
    return load_model_config(tmp.path());
}

}  // namespace

// ---- config.json ------------------------------------------------------------------------------

TEST(ModelConfig, RealQwen3NanoNewStyle) {
    const ModelConfig c = load_model_config(kShared / "models/qwen3-nano");
    EXPECT_EQ(c.architecture, "Qwen3ForCausalLM");
    EXPECT_EQ(c.family, ArchFamily::Qwen3);
    EXPECT_EQ(c.family_name(), "Qwen3");
    EXPECT_EQ(c.model_type, "qwen3");
    EXPECT_EQ(c.vocab_size, 8192);
    EXPECT_EQ(c.hidden_size, 512);
    EXPECT_EQ(c.intermediate_size, 1280);
    EXPECT_EQ(c.num_hidden_layers, 6);
    EXPECT_EQ(c.num_attention_heads, 4);
    EXPECT_EQ(c.num_key_value_heads, 2);
    EXPECT_EQ(c.head_dim, 128);
    EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-6f);
    EXPECT_EQ(c.rope.type, "default");
    EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
    EXPECT_EQ(c.max_position_embeddings, 4096);
    EXPECT_TRUE(c.tie_word_embeddings);
    EXPECT_FALSE(c.attention_bias);
    EXPECT_TRUE(c.qk_norm);
    EXPECT_EQ(c.hidden_act, "silu");
    EXPECT_EQ(c.dtype, "bfloat16");
    EXPECT_EQ(c.bos_token_id, 8166);
    EXPECT_EQ(c.eos_token_ids, std::vector<int>{8168});
}

TEST(ModelConfig, Qwen2OlderStyle) {
    const ModelConfig c = parse_model_config(qwen2_config(), "q2/config.json");
    EXPECT_EQ(c.family, ArchFamily::Qwen2);
    EXPECT_EQ(c.head_dim, 64);  // 896 / 14
    EXPECT_TRUE(c.attention_bias);
    EXPECT_FALSE(c.qk_norm);
    EXPECT_EQ(c.rope.type, "default");
    EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
    EXPECT_EQ(c.dtype, "bfloat16");
    EXPECT_EQ(c.eos_token_ids, std::vector<int>{151643});

    json j = qwen2_config();
    j.erase("num_key_value_heads");
    j.erase("torch_dtype");
    j["dtype"] = "float32";
    const ModelConfig d = parse_model_config(j, "q2");
    EXPECT_EQ(d.num_key_value_heads, 14);
    EXPECT_EQ(d.dtype, "float32");
}

TEST(ModelConfig, LlamaRopeScaling) {
    const ModelConfig c = from_dir(llama_config());
    EXPECT_EQ(c.family, ArchFamily::Llama);
    EXPECT_EQ(c.family_name(), "Llama");
    EXPECT_FALSE(c.attention_bias);
    EXPECT_FALSE(c.qk_norm);
    EXPECT_EQ(c.head_dim, 64);
    EXPECT_EQ(c.rope.type, "llama3");
    EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
    EXPECT_DOUBLE_EQ(c.rope.factor, 32.0);
    EXPECT_DOUBLE_EQ(c.rope.low_freq_factor, 1.0);
    EXPECT_DOUBLE_EQ(c.rope.high_freq_factor, 4.0);
    EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
    EXPECT_EQ(c.eos_token_ids, (std::vector<int>{128001, 128008, 128009}));
    EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);

    json lin = llama_config();
    lin["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
    lin["attention_bias"] = true;
    const ModelConfig l = parse_model_config(lin, "lin");
    EXPECT_EQ(l.rope.type, "linear");
    EXPECT_DOUBLE_EQ(l.rope.factor, 2.0);
    EXPECT_TRUE(l.attention_bias);

    // New style: rope_parameters holds theta and the scaling.
    json nw = llama_config();
    nw.erase("rope_scaling");
    nw.erase("rope_theta");
    nw["rope_parameters"] = {{"rope_type", "linear"}, {"rope_theta", 10000.0}, {"factor", 4}};
    const ModelConfig n = parse_model_config(nw, "new");
    EXPECT_EQ(n.rope.type, "linear");
    EXPECT_DOUBLE_EQ(n.rope.theta, 10000.0);
    EXPECT_DOUBLE_EQ(n.rope.factor, 4.0);

    json mis = llama_config();
    mis["architectures"] = {"MistralForCausalLM"};
    mis["sliding_window"] = nullptr;
    EXPECT_EQ(parse_model_config(mis, "m").family, ArchFamily::Llama);
}

TEST(ModelConfig, RejectsUnsupportedRope) {
    for (const char* type : {"yarn", "dynamic", "longrope"}) {
        json j = llama_config();
        j["rope_scaling"] = {{"rope_type", type}, {"factor", 4.0}, {"original_max_position_embeddings", 4096}};
        expect_error([&] { parse_model_config(j, "dir/config.json"); },
                     {std::string("unsupported RoPE type '") + type + "'", "dir/config.json", "rope_scaling",
                      "supported: default, linear, llama3"});
        json n = qwen2_config();
        n.erase("rope_theta");
        n["rope_parameters"] = {{"rope_type", type}, {"rope_theta", 1e6}, {"factor", 4.0}};
        expect_error([&] { parse_model_config(n, "dir/config.json"); },
                     {std::string("unsupported RoPE type '") + type + "'", "rope_parameters"});
    }
    json j = llama_config();
    j["rope_scaling"].erase("low_freq_factor");
    expect_error([&] { parse_model_config(j, "c.json"); }, {"c.json", "llama3 needs", "low_freq_factor"});
    j = llama_config();
    j["rope_scaling"] = {{"type", "linear"}};
    expect_error([&] { parse_model_config(j, "c.json"); }, {"c.json", "linear", "factor"});
}

TEST(ModelConfig, UnsupportedArchitecture) {
    EXPECT_TRUE(load_model_config(kShared / "models/qwen3-vl-nano").vision_language);  // Qwen3-VL is supported
    json j = qwen2_config();
    j["architectures"] = {"GPT2LMHeadModel"};
    expect_error([&] { parse_model_config(j, "x/config.json"); },
                 {"unsupported architecture GPT2LMHeadModel in x/config.json", "supported: Qwen3ForCausalLM"});
    j.erase("architectures");
    j["model_type"] = "gpt2";
    expect_error([&] { parse_model_config(j, "x/config.json"); }, {"x/config.json", "architectures"});
    j["model_type"] = "qwen3";
    EXPECT_EQ(parse_model_config(j, "x").family, ArchFamily::Qwen3);
    j["architectures"] = 5;
    expect_error([&] { parse_model_config(j, "x/config.json"); }, {"x/config.json", "'architectures'"});
}

TEST(ModelConfig, MissingAndMistypedFields) {
    for (const char* field : {"hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
                              "intermediate_size"}) {
        json j = qwen2_config();
        j.erase(field);
        expect_error([&] { parse_model_config(j, "m/config.json"); },
                     {std::string("required field '") + field + "' is missing", "m/config.json"});
        j[field] = "512";
        expect_error([&] { parse_model_config(j, "m/config.json"); },
                     {std::string("field '") + field + "' must be an integer, got a JSON string", "m/config.json"});
        j[field] = 0;
        expect_error([&] { parse_model_config(j, "m/config.json"); }, {field, "must be positive"});
    }
    struct Bad {
        const char* field;
        json value;
        const char* expect;
    };
    const Bad bads[] = {
        {"num_key_value_heads", "2", "'num_key_value_heads' must be an integer"},
        {"head_dim", true, "'head_dim' must be an integer"},
        {"rms_norm_eps", "1e-6", "'rms_norm_eps' must be a number"},
        {"tie_word_embeddings", 1, "'tie_word_embeddings' must be true or false"},
        {"rope_theta", "big", "'rope_theta' must be a number"},
        {"rope_scaling", 3, "'rope_scaling' must be an object"},
        {"eos_token_id", "x", "'eos_token_id' must be an integer or a list of integers"},
        {"eos_token_id", json::array({1, "x"}), "'eos_token_id' must be an integer or a list"},
        {"bos_token_id", 1.5, "'bos_token_id' must be an integer"},
        {"hidden_size", 1e12, "'hidden_size' = 1000000000000 is out of range"},
        {"torch_dtype", 16, "'torch_dtype' must be a string"},
        {"num_key_value_heads", 3, "must be a multiple of num_key_value_heads (3)"},
        {"layer_types", json::array({"full_attention", "sliding_attention"}), "layer type 'sliding_attention'"},
    };
    for (const auto& b : bads) {
        SCOPED_TRACE(b.field);
        json j = qwen2_config();
        j[b.field] = b.value;
        expect_error([&] { parse_model_config(j, "m/config.json"); }, {b.expect, "m/config.json"});
    }
    json j = qwen2_config();
    j["num_attention_heads"] = 7;
    j["num_key_value_heads"] = 7;
    j["hidden_size"] = 900;
    expect_error([&] { parse_model_config(j, "m"); }, {"not divisible by num_attention_heads"});
    j["head_dim"] = 128;  // explicit head_dim makes it fine
    EXPECT_EQ(parse_model_config(j, "m").head_dim, 128);
    j["hidden_size"] = 4096.0;  // integral floats are accepted
    EXPECT_EQ(parse_model_config(j, "m").hidden_size, 4096);

    expect_error([] { parse_model_config(json::array(), "arr.json"); }, {"arr.json", "expected a JSON object"});
    json nullfield = qwen2_config();
    nullfield["vocab_size"] = nullptr;
    expect_error([&] { parse_model_config(nullfield, "m"); }, {"'vocab_size' is null"});
}

TEST(ModelConfig, SlidingWindowRejected) {
    json j = qwen2_config();
    j["use_sliding_window"] = true;
    expect_error([&] { parse_model_config(j, "sw/config.json"); },
                 {"sw/config.json", "sliding-window attention", "not supported"});
    j["sliding_window"] = nullptr;  // enabled without a window: no effect
    EXPECT_NO_THROW(parse_model_config(j, "sw"));
    json m = llama_config();
    m["architectures"] = {"MistralForCausalLM"};
    m["max_position_embeddings"] = 32768;
    m["sliding_window"] = 4096;
    expect_error([&] { parse_model_config(m, "mistral/config.json"); }, {"sliding_window 4096", "not supported"});
}

TEST(ModelConfig, FileErrors) {
    TempDir tmp;
    expect_error([&] { load_model_config(tmp.path()); }, {"no config.json", tmp.path().string()});
    write_file(tmp / "config.json", "{\n  \"hidden_size\": 12,\n  oops\n}");
    expect_error([&] { load_model_config(tmp.path()); }, {"config.json", "invalid JSON at line 3"});
    expect_error([&] { read_json_file(tmp / "absent.json"); }, {"file not found", "absent.json"});
}

// ---- generation_config.json ------------------------------------------------------------------

TEST(GenerationConfig, RealAndVariants) {
    const GenerationConfig g = load_generation_config(kShared / "models/qwen3-nano");
    EXPECT_TRUE(g.do_sample);
    EXPECT_FLOAT_EQ(g.temperature, 0.7f);
    EXPECT_FLOAT_EQ(g.top_p, 0.8f);
    EXPECT_EQ(g.top_k, 20);
    EXPECT_FLOAT_EQ(g.repetition_penalty, 1.0f);
    EXPECT_EQ(g.eos_token_ids, (std::vector<int>{8168, 8166}));
    EXPECT_EQ(g.bos_token_id, 8166);
    EXPECT_EQ(g.pad_token_id, 8166);
    EXPECT_FALSE(g.max_new_tokens.has_value());

    const GenerationConfig h = parse_generation_config(
        json{{"eos_token_id", 2}, {"max_new_tokens", 128}, {"repetition_penalty", 1.1}, {"top_k", nullptr}},
        "gen");
    EXPECT_EQ(h.eos_token_ids, std::vector<int>{2});
    EXPECT_EQ(h.max_new_tokens, 128);
    EXPECT_FLOAT_EQ(h.repetition_penalty, 1.1f);
    EXPECT_EQ(h.top_k, 50);
    EXPECT_FALSE(h.do_sample);

    expect_error([] { parse_generation_config(json{{"temperature", "hot"}}, "g/generation_config.json"); },
                 {"'temperature' must be a number", "g/generation_config.json"});
    expect_error([] { parse_generation_config(json{{"do_sample", 1}}, "g.json"); }, {"'do_sample' must be true or false"});
    expect_error([] { parse_generation_config(json{{"top_p", 1.5}}, "g.json"); }, {"top_p must be in (0, 1]"});
    expect_error([] { parse_generation_config(json{{"top_k", -1}}, "g.json"); }, {"top_k must be >= 0"});
    expect_error([] { parse_generation_config(json{{"eos_token_id", json::object()}}, "g.json"); },
                 {"'eos_token_id'"});

    // A missing file gives defaults with EOS/BOS from config.json.
    TempDir tmp;
    write_file(tmp / "config.json", qwen2_config().dump());
    const GenerationConfig d = load_generation_config(tmp.path());
    EXPECT_FALSE(d.do_sample);
    EXPECT_EQ(d.top_k, 50);
    EXPECT_EQ(d.eos_token_ids, std::vector<int>{151643});
    EXPECT_EQ(d.bos_token_id, 151643);
    TempDir empty;
    EXPECT_TRUE(load_generation_config(empty.path()).eos_token_ids.empty());
}

// ---- tokenizer_config.json --------------------------------------------------------------------

TEST(TokenizerConfig, RealModels) {
    const TokenizerConfig t = load_tokenizer_config(kShared / "models/qwen3-nano");
    ASSERT_TRUE(t.chat_template.has_value());
    EXPECT_EQ(t.chat_template->rfind("{%- if tools %}", 0), 0u);
    EXPECT_EQ(t.eos_token, "<|im_end|>");
    EXPECT_EQ(t.bos_token, "");
    EXPECT_EQ(t.pad_token, "<|endoftext|>");
    EXPECT_FALSE(t.add_bos_token);
    EXPECT_EQ(t.tokenizer_class, "Qwen2Tokenizer");

    const fs::path vl = kShared / "models/qwen3-vl-nano";
    const TokenizerConfig v = load_tokenizer_config(vl);
    ASSERT_TRUE(v.chat_template.has_value());
    EXPECT_EQ(*v.chat_template, read_file(vl / "chat_template.jinja"));
}

TEST(TokenizerConfig, Variants) {
    const json listed = {
        {"chat_template", {{{"name", "tool_use"}, {"template", "TOOLS"}}, {{"name", "default"}, {"template", "DEF"}}}},
        {"eos_token", {{"__type", "AddedToken"}, {"content", "</s>"}, {"lstrip", false}}},
        {"bos_token", "<s>"},
        {"pad_token", nullptr},
        {"add_bos_token", true},
        {"tokenizer_class", "LlamaTokenizer"}};
    const TokenizerConfig t = parse_tokenizer_config(listed, "tc");
    EXPECT_EQ(t.chat_template, "DEF");
    EXPECT_EQ(t.eos_token, "</s>");
    EXPECT_EQ(t.bos_token, "<s>");
    EXPECT_EQ(t.pad_token, "");
    EXPECT_TRUE(t.add_bos_token);
    EXPECT_EQ(t.tokenizer_class, "LlamaTokenizer");

    const TokenizerConfig none = parse_tokenizer_config(
        json{{"chat_template", {{{"name", "tool_use"}, {"template", "T"}}}}}, "tc");
    EXPECT_FALSE(none.chat_template.has_value());
    EXPECT_FALSE(parse_tokenizer_config(json::object(), "tc").chat_template.has_value());

    expect_error([] { parse_tokenizer_config(json{{"eos_token", 5}}, "t/tokenizer_config.json"); },
                 {"'eos_token'", "t/tokenizer_config.json"});
    expect_error([] { parse_tokenizer_config(json{{"eos_token", {{"content", 1}}}}, "t.json"); }, {"'eos_token'"});
    expect_error([] { parse_tokenizer_config(json{{"chat_template", 5}}, "t.json"); }, {"'chat_template'"});
    expect_error([] { parse_tokenizer_config(json{{"chat_template", {{{"name", "x"}}}}}, "t.json"); },
                 {"'chat_template'", "'template'"});
    expect_error([] { parse_tokenizer_config(json{{"add_bos_token", "yes"}}, "t.json"); }, {"'add_bos_token'"});
}

TEST(TokenizerConfig, TemplateFilesTakePrecedence) {
    TempDir tmp;
    write_file(tmp / "tokenizer_config.json", json{{"chat_template", "FROM_CONFIG"}, {"eos_token", "E"}}.dump());
    EXPECT_EQ(load_tokenizer_config(tmp.path()).chat_template, "FROM_CONFIG");

    write_file(tmp / "chat_template.json", json{{"chat_template", "FROM_JSON"}}.dump());
    EXPECT_EQ(load_tokenizer_config(tmp.path()).chat_template, "FROM_JSON");

    write_file(tmp / "chat_template.jinja", "FROM_JINJA {{ x }}\n");
    const TokenizerConfig t = load_tokenizer_config(tmp.path());
    EXPECT_EQ(t.chat_template, "FROM_JINJA {{ x }}\n");
    EXPECT_EQ(t.eos_token, "E");

    TempDir bad;
    write_file(bad / "chat_template.json", "[1]");
    expect_error([&] { load_tokenizer_config(bad.path()); }, {"chat_template.json", "expected an object"});

    TempDir nothing;
    const TokenizerConfig n = load_tokenizer_config(nothing.path());
    EXPECT_FALSE(n.chat_template.has_value());
    EXPECT_EQ(n.eos_token, "");
}

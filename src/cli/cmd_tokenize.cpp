// cli/cmd_tokenize.cpp — `autoround tokenize`: token ids of a text (space-separated, or JSON). --model may
// be a Hub id (cli/model_source.h); only the tokenizer files are downloaded for it.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/model_source.h"
#include "core/error.h"
#include "text/bpe_tokenizer.h"

namespace autoround::cli {

void add_tokenize_command(CLI::App& root) {
    struct Args { std::string model, text, file; bool json = false, decode = false; };
    auto a = std::make_shared<Args>();
    CLI::App* c = root.add_subcommand("tokenize", "Print the token ids of a text");
    c->add_option("--model", a->model, "Model folder (or any folder with tokenizer.json, or the file), or a Hub id")
        ->required();
    auto* t = c->add_option("--text", a->text, "Text to tokenize");
    auto* f = c->add_option("--file", a->file, "File to tokenize")->check(CLI::ExistingFile);
    t->excludes(f);
    c->add_flag("--json", a->json, "Print a JSON array");
    c->add_flag("--decode", a->decode, "Also print the decoded text on a second line (round trip check)");
    c->callback([a] {
        const BpeTokenizer tok = BpeTokenizer::load(tokenizer_json_arg(a->model));  // folder, file or Hub id
        const std::string text = a->file.empty() ? a->text : read_text_file(a->file);
        const std::vector<int32_t> ids = tok.encode(text);
        if (a->json) {
            std::printf("%s\n", nlohmann::json(ids).dump().c_str());
        } else {
            std::string line;
            for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
            std::printf("%s\n", line.c_str());
        }
        if (a->decode) std::printf("%s\n", tok.decode(ids).c_str());
    });
}

}  // namespace autoround::cli

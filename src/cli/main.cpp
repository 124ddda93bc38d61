// cli/main.cpp — entry point of the single `autoround` binary.
//
// Subcommands (one file each in cli/): generate, eval, info, tokenize, init-model, devices, quantize, push.
// A --model that is not a local folder may be a Hugging Face id (org/name[@rev]); --token goes with it.
// Every library error surfaces as "error: <message>" on stderr with exit status 1; command-line
// usage errors print the problem and the usage with a non-zero status.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "cli/common.h"
#include "core/error.h"

int main(int argc, char** argv) {
    CLI::App app{"autoround — AutoRound weight-only quantization and inference for Qwen3 models (C++/CUDA)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "autoround 0.1.0");
    // A scalar option given twice keeps the last value, as Python's argparse (and auto-round's CLI) does.
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    autoround::cli::add_generate_command(app);
    autoround::cli::add_eval_command(app);
    autoround::cli::add_info_command(app);
    autoround::cli::add_tokenize_command(app);
    autoround::cli::add_init_model_command(app);
    autoround::cli::add_devices_command(app);
    autoround::cli::add_quantize_command(app);
    autoround::cli::add_push_command(app);
    // --token (Hugging Face Hub) on every subcommand that takes a --model, which may be a Hub id.
    auto token = std::make_shared<std::string>();
    std::function<void(CLI::App*)> add_token = [&](CLI::App* a) {
        for (CLI::App* sub : a->get_subcommands({})) {
            if (sub->get_option_no_throw("--model") && !sub->get_option_no_throw("--token"))
                sub->add_option("--token", *token, "Hugging Face token for a Hub --model/--dataset (default: HF_TOKEN)")
                    ->each([](const std::string& t) { autoround::cli::set_hub_token(t); });
            add_token(sub);
        }
    };
    add_token(&app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const autoround::Error& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "error: out of memory\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}

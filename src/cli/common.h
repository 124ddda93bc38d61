// cli/common.h — small helpers shared by the subcommands (one subcommand per file in cli/).
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <string>

namespace autoround::cli {

// Each subcommand file defines one of these; main.cpp calls them all.
void add_generate_command(CLI::App& root);
void add_eval_command(CLI::App& root);
void add_info_command(CLI::App& root);
void add_tokenize_command(CLI::App& root);
void add_init_model_command(CLI::App& root);
void add_devices_command(CLI::App& root);
void add_quantize_command(CLI::App& root);

// Reads a whole file (binary); errors name the file.
std::string read_text_file(const std::filesystem::path& path);
// Checks that `dir` is a model folder (exists, has config.json); errors say what to pass instead.
std::filesystem::path model_dir_arg(const std::string& arg);
// Applies --threads (0 = all cores).
void set_threads(int n);

}  // namespace autoround::cli

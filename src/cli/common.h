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
void add_push_command(CLI::App& root);

// Reads a whole file (binary); errors name the file.
std::string read_text_file(const std::filesystem::path& path);
// Checks that `dir` is a model folder (exists, has config.json); errors say what to pass instead.
// An argument that is not a local folder but a Hub id is resolved by resolve_model_arg().
std::filesystem::path model_dir_arg(const std::string& arg);
// --model: a local folder wins; otherwise `org/name[@revision]` is resolved through the Hugging Face
// cache (downloading the config, weights and tokenizer files if missing; HF_HUB_OFFLINE=1: cache only).
std::filesystem::path resolve_model_arg(const std::string& arg);
// --token for Hub downloads/uploads (else HF_TOKEN or the token file); never printed.
void set_hub_token(const std::string& token);
// Applies --threads (0 = all cores).
void set_threads(int n);
// --device: cpu, cuda / cuda:0 / 0 (auto-round's spellings), auto = cuda when a GPU is visible. Returns "cpu" or
// "cuda"; errors (unknown spelling, cuda without a usable GPU or without a CUDA build) say what to pass instead.
std::string resolve_device(const std::string& flag);

}  // namespace autoround::cli

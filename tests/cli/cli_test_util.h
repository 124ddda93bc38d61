// tests/cli/cli_test_util.h — runs the built `autoround` binary for the CLI end-to-end tests: its exit
// status and everything it printed (stdout + stderr), with the status of a signal-killed run as 128 + signal.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <memory>
#include <string>

namespace cli_test {

inline const std::string kBin = std::string(AR_BINARY_DIR) + "/autoround";

struct Result {
    int status;
    std::string out;  // stdout + stderr
};

// `[env] autoround <args>` through the shell (args may hold redirections or quotes; env: "VAR=value ...").
inline Result run(const std::string& args, const std::string& env = "") {
    const std::string cmd = env + (env.empty() ? "" : " ") + kBin + " " + args + " 2>&1";
    std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
    std::string out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p.get())) > 0) out.append(buf.data(), n);
    const int raw = pclose(p.release());
    return {WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw), out};
}

}  // namespace cli_test

// tests/hub/fake_hub.h — starts tests/hub/fake_hub_server.py (a local Hugging Face Hub stand-in)
// on 127.0.0.1 for one test, with its own temp root (repos, control.json, requests.jsonl) and
// HF cache folder; stops it in the destructor. Test-only.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "hub/hub_settings.h"

namespace autoround::test {

class FakeHub {
public:
    explicit FakeHub(const std::string& name) {
        namespace fs = std::filesystem;
        root_ = fs::temp_directory_path() / ("ar_fakehub_" + name + "_" + std::to_string(::getpid()));
        fs::remove_all(root_);
        fs::create_directories(root_ / "srv");
        fs::create_directories(root_ / "cache");
        const std::string script = std::string(AR_SOURCE_DIR) + "/tests/hub/fake_hub_server.py";
        const std::string port_file = (root_ / "port").string();
        const std::string srv = (root_ / "srv").string();
        pid_ = ::fork();
        if (pid_ == 0) {
            ::execlp("python3", "python3", script.c_str(), "--root", srv.c_str(), "--port-file", port_file.c_str(),
                     static_cast<char*>(nullptr));
            ::_exit(127);
        }
        for (int i = 0; i < 200 && port_ == 0; ++i) {
            std::ifstream f(port_file);
            if (f) f >> port_;
            if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
    }
    ~FakeHub() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int st = 0;
            ::waitpid(pid_, &st, 0);
        }
        std::error_code ec;
        std::filesystem::remove_all(root_, ec);
    }
    FakeHub(const FakeHub&) = delete;
    FakeHub& operator=(const FakeHub&) = delete;

    bool ok() const { return port_ != 0; }
    int port() const { return port_; }
    std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::filesystem::path srv() const { return root_ / "srv"; }
    std::filesystem::path cache() const { return root_ / "cache"; }
    std::filesystem::path root() const { return root_; }

    // Adds a file to a repo ("models" or "datasets", "org/name", "path/in/repo").
    void put(const std::string& kind, const std::string& repo, const std::string& path, const std::string& bytes) const {
        const auto p = srv() / kind / repo / path;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << bytes;
    }
    void control(const nlohmann::json& j) const { std::ofstream(srv() / "control.json") << j.dump(); }
    void clear_log() const { std::filesystem::remove(srv() / "requests.jsonl"); }
    std::vector<nlohmann::json> requests() const {
        std::vector<nlohmann::json> out;
        std::ifstream f(srv() / "requests.jsonl");
        std::string line;
        while (std::getline(f, line))
            if (!line.empty()) out.push_back(nlohmann::json::parse(line));
        return out;
    }

    hub::HubSettings settings() const {
        hub::HubSettings s;
        s.endpoint = endpoint();
        s.cache_dir = cache();
        s.max_retries = 2;
        s.retry_base_delay_s = 0.01;
        s.etag_timeout_s = 5;
        s.download_timeout_s = 5;
        s.progress = false;
        s.max_workers = 4;
        return s;
    }

private:
    std::filesystem::path root_;
    pid_t pid_ = -1;
    int port_ = 0;
};

inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace autoround::test

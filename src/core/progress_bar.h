// core/progress_bar.h — a terminal progress bar with rate and ETA for long work (stderr).
// Redraws at most every 100 ms; prints a plain line per update when stderr is not a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace autoround {

class ProgressBar {
public:
    ProgressBar(std::string label, int64_t total, std::string unit = "it");
    // Advances to `done` (absolute) and redraws; `note` is shown after the bar (e.g. "loss 0.012").
    void update(int64_t done, const std::string& note = "");
    void finish(const std::string& note = "");

    static std::string format_duration(double seconds);  // "1h02m", "3m05s", "12.3s"

private:
    void draw(bool force);
    std::string label_, unit_, note_;
    int64_t total_, done_ = 0;
    std::chrono::steady_clock::time_point start_, last_draw_;
    bool tty_, finished_ = false;
};

}  // namespace autoround

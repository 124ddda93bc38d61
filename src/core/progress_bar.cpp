// core/progress_bar.cpp — see progress_bar.h.
#include "core/progress_bar.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace autoround {

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total),
      start_(std::chrono::steady_clock::now()), last_draw_(start_), tty_(isatty(2) != 0) {}

std::string ProgressBar::format_duration(double s) {
    char buf[32];
    if (!std::isfinite(s) || s < 0) return "?";
    if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
    else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
    else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
    return buf;
}

void ProgressBar::update(int64_t done, const std::string& note) {
    done_ = done;
    note_ = note;
    draw(done_ >= total_);
}

void ProgressBar::finish(const std::string& note) {
    if (finished_) return;
    if (!note.empty()) note_ = note;
    done_ = total_;
    draw(true);
    if (tty_) std::fputc('\n', stderr);
    finished_ = true;
}

void ProgressBar::draw(bool force) {
    const auto now = std::chrono::steady_clock::now();
    const double since_last = std::chrono::duration<double>(now - last_draw_).count();
    if (!force && since_last < (tty_ ? 0.1 : 5.0)) return;
    last_draw_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double frac = total_ > 0 ? double(done_) / double(total_) : 1.0;
    const double rate = elapsed > 0 ? double(done_) / elapsed : 0.0;
    const double eta = rate > 0 ? double(total_ - done_) / rate : NAN;
    constexpr int width = 30;
    const int filled = static_cast<int>(frac * width);
    std::string bar(filled, '#');
    bar.append(width - filled, '.');
    std::fprintf(stderr, "%s%s [%s] %lld/%lld %s (%.1f %s/s, %s, ETA %s)%s%s%s", tty_ ? "\r" : "",
                 label_.c_str(), bar.c_str(), (long long)done_, (long long)total_, "", rate,
                 unit_.c_str(), format_duration(elapsed).c_str(), format_duration(eta).c_str(),
                 note_.empty() ? "" : " ", note_.c_str(), tty_ ? "\033[K" : "\n");
    std::fflush(stderr);
}

}  // namespace autoround

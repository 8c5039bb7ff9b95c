// SPDX-License-Identifier: Apache-2.0
#include "cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

namespace keyport::cli {
namespace {

// A handler can only reach a global; lock-free atomics are safe to use from one.
std::atomic<std::atomic<bool>*> g_cancel_flag{nullptr};
static_assert(std::atomic<bool>::is_always_lock_free);
static_assert(std::atomic<std::atomic<bool>*>::is_always_lock_free);

extern "C" void on_cancel_signal(int) {
  if (std::atomic<bool>* flag = g_cancel_flag.load()) {
    flag->store(true);
  }
}

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Result<ProgressMode> parse_progress_mode(std::string_view text) {
  if (text == "auto") {
    return ProgressMode::kAuto;
  }
  if (text == "bar") {
    return ProgressMode::kBar;
  }
  if (text == "plain") {
    return ProgressMode::kPlain;
  }
  if (text == "none") {
    return ProgressMode::kNone;
  }
  return make_error(ErrorCode::kInvalidArgument, "--progress: auto, bar, plain or none");
}

ProgressDisplay::ProgressDisplay(ProgressMode mode, std::string unit,
                                 std::optional<std::int64_t> start)
    : m_mode(mode), m_unit(std::move(unit)), m_started_at(seconds_now()), m_start(start) {
  if (m_mode == ProgressMode::kAuto) {
    m_mode = ::isatty(STDERR_FILENO) ? ProgressMode::kBar : ProgressMode::kNone;
  }
}

void ProgressDisplay::update(const ProgressCounts& p) {
  if (m_mode == ProgressMode::kNone || p.total <= 0) {
    return;
  }
  const std::int64_t step = std::max<std::int64_t>(1, p.total / 10);
  if (!m_start) {
    m_start = p.done;
  } else if (!m_last_step) {
    m_last_step = *m_start / step;  // the count before this display began had its line
  }
  const double elapsed = seconds_now() - m_started_at;
  const double rate = elapsed > 0 ? static_cast<double>(p.done - *m_start) / elapsed : 0;
  const double eta = rate > 0 ? static_cast<double>(p.total - p.finished) / rate : 0;
  const char* unit = m_unit.c_str();
  char line[200];
  if (m_mode == ProgressMode::kBar) {
    const int width = 30;
    const int fill = static_cast<int>(width * std::min(p.done, p.total) / p.total);
    std::snprintf(line, sizeof line, "\r[%-*s] %lld/%lld %s  %lld failed  %.0f %s/s  ETA %.0fs ",
                  width, std::string(static_cast<std::size_t>(fill), '#').c_str(),
                  static_cast<long long>(p.done), static_cast<long long>(p.total), unit,
                  static_cast<long long>(p.failed), rate, unit, eta);
    std::cerr << line << std::flush;
    m_drawn = true;
    return;
  }
  if (p.done / step != m_last_step || p.finished >= p.total) {
    m_last_step = p.done / step;
    std::snprintf(line, sizeof line, "progress: %lld/%lld %s, %lld failed, %.0f %s/s",
                  static_cast<long long>(p.done), static_cast<long long>(p.total), unit,
                  static_cast<long long>(p.failed), rate, unit);
    std::cerr << line << std::endl;
  }
}

void ProgressDisplay::finish() {
  if (m_drawn) {
    std::cerr << "\n";
    m_drawn = false;
  }
}

CancelOnSignal::CancelOnSignal(std::atomic<bool>& flag) {
  g_cancel_flag.store(&flag);
  struct sigaction sa {};
  sa.sa_handler = on_cancel_signal;
  sa.sa_flags = SA_RESTART;  // as signal(2) installs it: blocked I/O resumes, the work polls
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &m_int);
  ::sigaction(SIGTERM, &sa, &m_term);
}

CancelOnSignal::~CancelOnSignal() {
  ::sigaction(SIGINT, &m_int, nullptr);
  ::sigaction(SIGTERM, &m_term, nullptr);
  g_cancel_flag.store(nullptr);
}

}  // namespace keyport::cli

// SPDX-License-Identifier: Apache-2.0
// Progress of a long command on stderr (`byok export` batches, `migrate run|verify`): a bar
// redrawn in place on a terminal or a line per 10 %, and Ctrl-C as a request to stop cleanly.
#pragma once

#include <atomic>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace keyport::cli {

// --progress: auto (a bar when stderr is a terminal, else nothing), bar, plain, none.
enum class ProgressMode { kAuto, kBar, kPlain, kNone };
// kInvalidArgument "--progress: auto, bar, plain or none" for anything else.
Result<ProgressMode> parse_progress_mode(std::string_view text);

struct ProgressCounts {
  std::int64_t done = 0;  // shown as done/total
  std::int64_t failed = 0;
  std::int64_t total = 0;
  // Items with an outcome: `done` for a caller that counts failures in it, done + failed for one
  // that does not. The ETA and the last plain line go by it.
  std::int64_t finished = 0;
};

class ProgressDisplay {
 public:
  // `unit` names the items ("keys", "items"). `start` is the count done before this display began
  // when the caller knows it (a line is printed at each 10 % step after it, and the rate counts
  // from it); without it the first update is the start (the work of earlier runs does not count
  // in the rate) and prints a line.
  ProgressDisplay(ProgressMode mode, std::string unit,
                  std::optional<std::int64_t> start = std::nullopt);
  void update(const ProgressCounts& counts);
  // Ends a drawn bar's line.
  void finish();

 private:
  ProgressMode m_mode;
  std::string m_unit;
  double m_started_at;
  std::optional<std::int64_t> m_start;
  std::optional<std::int64_t> m_last_step;
  bool m_drawn = false;
};

// SIGINT and SIGTERM set `flag` (which the running work polls) while this object lives; the
// handlers that were installed before come back when it goes. One at a time per process.
class CancelOnSignal {
 public:
  explicit CancelOnSignal(std::atomic<bool>& flag);
  ~CancelOnSignal();
  CancelOnSignal(const CancelOnSignal&) = delete;
  CancelOnSignal& operator=(const CancelOnSignal&) = delete;

 private:
  struct sigaction m_int {};
  struct sigaction m_term {};
};

}  // namespace keyport::cli

// SPDX-License-Identifier: Apache-2.0
// cli/progress.h: --progress parsing, the plain lines of `byok export` (failures counted in done,
// a start count given) and of `migrate run` (failures apart, the first update is the start), and
// the scoped SIGINT/SIGTERM handler (sets the flag, then gives the old handlers back).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/progress.h"

using namespace keyport;
using namespace keyport::cli;

namespace {

// Captures std::cerr for its lifetime.
class CaptureCerr {
 public:
  CaptureCerr() : m_old(std::cerr.rdbuf(m_out.rdbuf())) {}
  ~CaptureCerr() { std::cerr.rdbuf(m_old); }
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::istringstream in(m_out.str());
    std::string line;
    while (std::getline(in, line)) {
      // The rate depends on the clock: keep the counts.
      out.push_back(line.substr(0, line.rfind(", ")));
    }
    return out;
  }
  std::string text() const { return m_out.str(); }

 private:
  std::ostringstream m_out;
  std::streambuf* m_old;
};

volatile std::sig_atomic_t g_previous_handler_calls = 0;
extern "C" void previous_handler(int) {
  g_previous_handler_calls = g_previous_handler_calls + 1;
}

}  // namespace

TEST_CASE("the progress option takes auto, bar, plain and none only", "[unit][progress]") {
  CHECK(*parse_progress_mode("auto") == ProgressMode::kAuto);
  CHECK(*parse_progress_mode("bar") == ProgressMode::kBar);
  CHECK(*parse_progress_mode("plain") == ProgressMode::kPlain);
  CHECK(*parse_progress_mode("none") == ProgressMode::kNone);
  for (const char* bad : {"", "Plain", "quiet", "bar "}) {
    auto m = parse_progress_mode(bad);
    REQUIRE_FALSE(m.has_value());
    CHECK(m.error().code() == ErrorCode::kInvalidArgument);
    CHECK(m.error().message() == "--progress: auto, bar, plain or none");
  }
}

TEST_CASE("plain progress prints a line per 10 % step after the start count and the last one",
          "[unit][progress]") {
  CaptureCerr cap;
  {
    // byok export: 25 items, 3 manifest lines failed before the batch (done counts failures).
    ProgressDisplay p(ProgressMode::kPlain, "keys", 3);
    for (std::int64_t done = 4; done <= 25; ++done) {
      p.update({done, done >= 10 ? 4 : 3, 25, done});
    }
    p.finish();
  }
  CHECK(cap.lines() == std::vector<std::string>{
                           "progress: 4/25 keys, 3 failed", "progress: 6/25 keys, 3 failed",
                           "progress: 8/25 keys, 3 failed", "progress: 10/25 keys, 4 failed",
                           "progress: 12/25 keys, 4 failed", "progress: 14/25 keys, 4 failed",
                           "progress: 16/25 keys, 4 failed", "progress: 18/25 keys, 4 failed",
                           "progress: 20/25 keys, 4 failed", "progress: 22/25 keys, 4 failed",
                           "progress: 24/25 keys, 4 failed", "progress: 25/25 keys, 4 failed"});
}

TEST_CASE(
    "without a start count the first update prints, and the last when done and failed fill it",
    "[unit][progress]") {
  CaptureCerr cap;
  {
    // migrate run: 700 items, 100 done by an earlier run, failures apart from done.
    ProgressDisplay p(ProgressMode::kPlain, "items");
    p.update({100, 0, 700, 100});
    p.update({120, 0, 700, 120});  // same 10 % step as 100
    p.update({150, 0, 700, 150});
    p.update({650, 0, 700, 650});
    p.update({690, 10, 700, 700});
    p.finish();
  }
  CHECK(cap.lines() == std::vector<std::string>{"progress: 100/700 items, 0 failed",
                                                "progress: 150/700 items, 0 failed",
                                                "progress: 650/700 items, 0 failed",
                                                "progress: 690/700 items, 10 failed"});
}

TEST_CASE("the bar redraws one line and finish ends it, and none prints nothing",
          "[unit][progress]") {
  CaptureCerr cap;
  {
    ProgressDisplay bar(ProgressMode::kBar, "keys", 0);
    bar.update({1, 0, 2, 1});
    bar.update({2, 1, 2, 2});
    bar.finish();
    ProgressDisplay none(ProgressMode::kNone, "keys", 0);
    none.update({1, 0, 2, 1});
    none.finish();
  }
  const std::string text = cap.text();
  CHECK(text.rfind("\r[###############               ] 1/2 keys  0 failed  ", 0) == 0);
  CHECK(text.find("\r[##############################] 2/2 keys  1 failed  ") != std::string::npos);
  CHECK(text.back() == '\n');
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
}

TEST_CASE("SIGINT and SIGTERM set the flag while the handler lives, then the old handlers return",
          "[unit][progress]") {
  struct sigaction prev {};
  prev.sa_handler = previous_handler;
  sigemptyset(&prev.sa_mask);
  struct sigaction saved_int {
  }, saved_term{};
  REQUIRE(::sigaction(SIGINT, &prev, &saved_int) == 0);
  REQUIRE(::sigaction(SIGTERM, &prev, &saved_term) == 0);
  g_previous_handler_calls = 0;
  std::atomic<bool> cancel{false};
  {
    CancelOnSignal signals(cancel);
    REQUIRE(std::raise(SIGINT) == 0);
    CHECK(cancel.load());
    cancel.store(false);
    REQUIRE(std::raise(SIGTERM) == 0);
    CHECK(cancel.load());
    CHECK(g_previous_handler_calls == 0);
  }
  cancel.store(false);
  REQUIRE(std::raise(SIGINT) == 0);
  REQUIRE(std::raise(SIGTERM) == 0);
  CHECK(g_previous_handler_calls == 2);
  CHECK_FALSE(cancel.load());
  ::sigaction(SIGINT, &saved_int, nullptr);
  ::sigaction(SIGTERM, &saved_term, nullptr);
}

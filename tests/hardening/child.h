// SPDX-License-Identifier: Apache-2.0
// A child process for the hardening tests: spawned with posix_spawn (argv, extra environment,
// working folder, stdout/stderr to files), inspected through /proc/<pid>, stopped by a signal.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace keyport::test {

class Child {
 public:
  // Starts `argv` with this process's environment plus `env` (NAME=VALUE, later ones win), in
  // `cwd`, stdin from /dev/null, stdout and stderr to `cwd`/<stem>.out and .err.
  Child(std::vector<std::string> argv, std::vector<std::string> env,
        const std::filesystem::path& cwd, const std::string& stem);
  ~Child();  // SIGKILL if still running
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return m_pid; }
  // Whether the child has not exited yet (reaps it when it has; wait() then gives its status).
  bool running();
  // Waits until `file` exists while the child runs; false when the child exited first or the hang
  // guard of `seconds` (scaled by test::time_budget) ran out.
  bool wait_for_file(const std::filesystem::path& file, int seconds = 90);
  // Sends `sig` and waits for the exit (a hang guard of `seconds`, scaled by test::time_budget;
  // then SIGKILL). Returns the raw wait status.
  int signal_and_wait(int sig, int seconds = 60);
  // Waits for the exit; the raw wait status, or nullopt after `seconds` (scaled by
  // test::time_budget; the child keeps running).
  std::optional<int> wait(int seconds);
  std::string output() const;  // stdout + stderr so far

  // /proc/<pid>/<name> as bytes (cmdline and environ are NUL-separated); "" if unreadable.
  std::string proc_file(const std::string& name) const;
  // Number of entries in /proc/<pid>/fd.
  std::size_t fd_count() const;
  // VmRSS from /proc/<pid>/status, in KiB (0 if unreadable).
  std::size_t rss_kib() const;
  // The soft and hard "Max core file size" of /proc/<pid>/limits ("0" or "unlimited").
  std::pair<std::string, std::string> core_limit() const;

 private:
  pid_t m_pid = -1;
  std::optional<int> m_status;  // the raw wait status, once reaped
  std::filesystem::path m_out;
  std::filesystem::path m_err;
};

}  // namespace keyport::test

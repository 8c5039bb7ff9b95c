// SPDX-License-Identifier: Apache-2.0
#include "tests/hardening/child.h"

#include "tests/support/support.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace keyport::test {
namespace fs = std::filesystem;

Child::Child(std::vector<std::string> argv, std::vector<std::string> env, const fs::path& cwd,
             const std::string& stem)
    : m_out(cwd / (stem + ".out")), m_err(cwd / (stem + ".err")) {
  std::map<std::string, std::string> vars;
  std::vector<std::string> order;
  auto put = [&](const std::string& kv) {
    const auto eq = kv.find('=');
    const std::string name = kv.substr(0, eq);
    if (vars.count(name) == 0) {
      order.push_back(name);
    }
    vars[name] = kv;
  };
  for (char** e = environ; *e != nullptr; ++e) {
    put(*e);
  }
  for (const auto& kv : env) {
    put(kv);
  }
  std::vector<std::string> env_strings;
  for (const auto& n : order) {
    env_strings.push_back(vars[n]);
  }
  std::vector<char*> av;
  for (auto& a : argv) {
    av.push_back(a.data());
  }
  av.push_back(nullptr);
  std::vector<char*> ev;
  for (auto& e : env_strings) {
    ev.push_back(e.data());
  }
  ev.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, m_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, m_err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  const int rc = ::posix_spawn(&m_pid, av[0], &fa, nullptr, av.data(), ev.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    m_pid = -1;
    throw std::runtime_error("posix_spawn " + argv[0] + " failed: " + std::to_string(rc));
  }
}

Child::~Child() {
  if (m_pid > 0) {
    ::kill(m_pid, SIGKILL);
    int st = 0;
    ::waitpid(m_pid, &st, 0);
  }
}

std::optional<int> Child::wait(int seconds) {
  int st = 0;
  if (m_pid > 0 && wait_until([&] { return ::waitpid(m_pid, &st, WNOHANG) == m_pid; }, seconds)) {
    m_pid = -1;
    m_status = st;
  }
  return m_status;
}

bool Child::running() {
  return !wait(0).has_value();
}

bool Child::wait_for_file(const std::filesystem::path& file, int seconds) {
  bool exists = false;
  wait_until(
      [&] {
        exists = std::filesystem::exists(file);
        return exists || !running();
      },
      seconds, std::chrono::milliseconds(20));
  return exists;
}

int Child::signal_and_wait(int sig, int seconds) {
  if (!running()) {
    return m_status.value_or(-1);
  }
  ::kill(m_pid, sig);
  if (auto st = wait(seconds)) {
    return *st;
  }
  ::kill(m_pid, SIGKILL);
  int st = 0;
  ::waitpid(m_pid, &st, 0);
  m_pid = -1;
  m_status = st;
  return st;
}

std::string Child::output() const {
  std::string all;
  for (const auto& p : {m_out, m_err}) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    all += "--- " + p.filename().string() + "\n" + ss.str();
  }
  return all;
}

std::string Child::proc_file(const std::string& name) const {
  std::ifstream in("/proc/" + std::to_string(m_pid) + "/" + name, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::size_t Child::fd_count() const {
  const std::string dir = "/proc/" + std::to_string(m_pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return 0;
  }
  std::size_t n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') {
      ++n;
    }
  }
  ::closedir(d);
  return n;
}

std::size_t Child::rss_kib() const {
  std::istringstream in(proc_file("status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stoul(line.substr(6));
    }
  }
  return 0;
}

std::pair<std::string, std::string> Child::core_limit() const {
  std::istringstream in(proc_file("limits"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max core file size", 0) == 0) {
      std::istringstream f(line.substr(18));
      std::string soft;
      std::string hard;
      f >> soft >> hard;
      return {soft, hard};
    }
  }
  return {};
}

}  // namespace keyport::test

// SPDX-License-Identifier: Apache-2.0
// Secret hygiene of the keyport process: core dumps are off before any secret is read (RLIMIT_CORE
// 0 and PR_SET_DUMPABLE 0, cli/main.cpp), a PIN from a file never shows in /proc/<pid>/cmdline or
// /proc/<pid>/environ, and a running vault server keeps its token PIN and bearer token out of
// both, and out of a core file when it is killed by a dumping signal.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/hardening/child.h"
#include "tests/support/support.h"

using keyport::test::Child;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
    s.pop_back();
  }
  return s;
}

// Lets this process (and so its children) dump core, as far as the hard limit allows. Returns
// false when the hard limit is 0 (then "keyport lowered it" cannot be observed).
bool allow_core_dumps() {
  rlimit r{};
  ::getrlimit(RLIMIT_CORE, &r);
  r.rlim_cur = r.rlim_max;
  ::setrlimit(RLIMIT_CORE, &r);
  return r.rlim_max != 0;
}

// Whether a process of ours that does nothing to stop it dumps core on SIGQUIT here (the kernel's
// core_pattern and the container decide); the control for the keyport checks.
bool control_dumps_core(const fs::path& parent) {
  const fs::path dir = parent / "control";
  fs::create_directories(dir);
  Child sleeper({"/bin/sleep", "30"}, {}, dir, "control");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const int st = sleeper.signal_and_wait(SIGQUIT);
  return WIFSIGNALED(st) && WCOREDUMP(st);
}

void check_absent(const std::string& haystack, const std::string& secret, const std::string& what) {
  INFO(what);
  REQUIRE(secret.size() >= 4);
  CHECK(haystack.find(secret) == std::string::npos);
}

}  // namespace

TEST_CASE("keyport turns core dumps off before it reads a PIN from a file",
          "[hardening][hygiene]") {
  const bool can_raise = allow_core_dumps();
  const fs::path dir = keyport::test::make_scratch_subdir("hygiene-pin");
  const std::string init =
      (keyport::test::source_dir() / "softhsm-config" / "init-tokens.sh").string() + " " +
      (dir / "hsm").string() + " onprem:1111:5827361";
  std::string log;
  INFO(log);
  REQUIRE(keyport::test::run_command(init, &log) == 0);
  const fs::path fifo = dir / "pin.fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string pin = "5827361";

  Child k({KEYPORT_CLI_BINARY, "key", "list", "--token", "onprem", "--pin-source",
           "file:" + fifo.string(), "--json"},
          {"SOFTHSM2_CONF=" + (dir / "hsm" / "softhsm2.conf").string()}, dir, "keyport");
  // Opening the FIFO for writing succeeds once keyport has opened it to read the PIN: keyport is
  // now at the point where the secret arrives. (Non-blocking, so that a keyport that died first
  // fails the test instead of hanging it.)
  int wfd = -1;
  keyport::test::wait_until(
      [&] {
        wfd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
        return wfd >= 0 || !k.running();
      },
      60);
  INFO(k.output());
  REQUIRE(wfd >= 0);
  REQUIRE(::fcntl(wfd, F_SETFL, 0) == 0);
  const auto limit = k.core_limit();
  const std::string cmdline = k.proc_file("cmdline");
  const std::string environ_text = k.proc_file("environ");
  REQUIRE(::write(wfd, (pin + "\n").data(), pin.size() + 1) ==
          static_cast<ssize_t>(pin.size() + 1));
  ::close(wfd);
  auto st = k.wait(60);
  INFO(k.output());
  REQUIRE(st.has_value());
  CHECK(WIFEXITED(*st));
  CHECK(WEXITSTATUS(*st) == 0);  // the PIN from the FIFO logged in

  CHECK(limit.first == "0");
  CHECK(limit.second == "0");
  if (!can_raise) {
    WARN("this environment's hard core limit is 0: keyport's own setting is not observable");
  }
  REQUIRE(!cmdline.empty());
  check_absent(cmdline, pin, "/proc/<pid>/cmdline");
  check_absent(environ_text, pin, "/proc/<pid>/environ");
}

TEST_CASE("a running vault server keeps its PIN and tokens out of /proc and out of core files",
          "[hardening][hygiene]") {
  const bool can_raise = allow_core_dumps();
  const fs::path dir = keyport::test::make_scratch_subdir("hygiene-serve");
  const fs::path data = dir / "vault";
  Child server(
      {KEYPORT_CLI_BINARY, "vault", "serve", "--data", data.string(), "--listen", "127.0.0.1:0"},
      {}, dir, "serve");
  INFO(server.output());
  REQUIRE(server.wait_for_file(data / "server.json"));
  const std::string pin = slurp(data / "hsm" / "pin");
  const std::string token = slurp(data / "admin.token");
  REQUIRE(pin.size() >= 16);
  REQUIRE(token.size() >= 16);

  check_absent(server.proc_file("cmdline"), pin, "cmdline vs PIN");
  check_absent(server.proc_file("cmdline"), token, "cmdline vs token");
  check_absent(server.proc_file("environ"), pin, "environ vs PIN");
  check_absent(server.proc_file("environ"), token, "environ vs token");
  const auto limit = server.core_limit();
  CHECK(limit.first == "0");
  CHECK(limit.second == "0");

  // SIGQUIT dumps core by default. keyport must not, while a process without protection does.
  const bool control = control_dumps_core(dir);
  const int st = server.signal_and_wait(SIGQUIT);
  REQUIRE(WIFSIGNALED(st));
  REQUIRE(WTERMSIG(st) == SIGQUIT);  // not the hang guard's SIGKILL
  CHECK_FALSE(WCOREDUMP(st));
  if (!control || !can_raise) {
    WARN(
        "core dumps are disabled for every process here (core_pattern or hard limit): the "
        "SIGQUIT check cannot fail in this environment");
  }
  CHECK_FALSE(fs::exists(dir / "core"));
}

// SPDX-License-Identifier: Apache-2.0
#include "tests/support/support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "core/encoding.h"
#include "core/file_io.h"
#include "core/random.h"

namespace keyport::test {
namespace fs = std::filesystem;

namespace {
bool g_created = false;
}

bool scratch_dir_created() {
  return g_created;
}

const fs::path& scratch_dir() {
  static const fs::path dir = [] {
    fs::path p = fs::path(KEYPORT_TEST_TMP) /
                 ("t" + std::to_string(::getpid()) + "-" + hex_encode(random_bytes(4)));
    fs::create_directories(p);
    g_created = true;
    return p;
  }();
  return dir;
}

fs::path make_scratch_subdir(const std::string& stem) {
  fs::path p = scratch_dir() / (stem + "-" + hex_encode(random_bytes(3)));
  fs::create_directories(p);
  return p;
}

fs::path vector_path(const std::string& relative) {
  fs::path p = fs::path(KEYPORT_SOURCE_DIR) / "tests" / "vectors" / relative;
  if (!fs::exists(p)) {
    throw std::runtime_error("test vector " + p.string() +
                             " is missing: vectors live in tests/vectors/ with their provenance");
  }
  return p;
}

Json load_wycheproof(const std::string& file) {
  const fs::path path = vector_path("wycheproof/" + file);
  auto text = read_text_file(path, 64u << 20);
  if (!text)
    throw std::runtime_error(text.error().describe());
  JsonLimits limits;
  limits.max_bytes = 64u << 20;
  auto json = parse_json_strict(*text, limits);
  if (!json)
    throw std::runtime_error(json.error().describe());
  return *json;
}

fs::path source_dir() {
  return KEYPORT_SOURCE_DIR;
}
fs::path binary_dir() {
  return KEYPORT_BINARY_DIR;
}

int run_command(const std::string& command, std::string* out) {
  std::string full = command + " 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  if (pipe == nullptr)
    return -1;
  std::array<char, 4096> buf{};
  std::string captured;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0)
    captured.append(buf.data(), n);
  int status = ::pclose(pipe);
  if (out != nullptr)
    *out = captured;
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

bool contains_bytes(std::span<const std::uint8_t> hay, std::span<const std::uint8_t> needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

double time_scale() {
  static const double scale = [] {
    const std::string v = env("KEYPORT_TEST_TIME_SCALE");
    char* end = nullptr;
    const double d = v.empty() ? 0 : std::strtod(v.c_str(), &end);
    return d > 0 && end != nullptr && *end == '\0' ? d : double{KEYPORT_TEST_TIME_SCALE};
  }();
  return scale;
}

std::chrono::milliseconds time_budget(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * time_scale() * 1000));
}

bool wait_until(const std::function<bool()>& done, double budget_seconds,
                std::chrono::milliseconds every) {
  const auto deadline = std::chrono::steady_clock::now() + time_budget(budget_seconds);
  for (;;) {
    if (done()) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(every);
  }
}

}  // namespace keyport::test

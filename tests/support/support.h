// SPDX-License-Identifier: Apache-2.0
// Test support: per-process scratch folder, paths to vectors, small helpers.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "core/error.h"
#include "core/json.h"

namespace keyport::test {

// This process's scratch folder under build/test-tmp; kept when a test fails, removed otherwise.
const std::filesystem::path& scratch_dir();
// A fresh sub-folder of scratch_dir().
std::filesystem::path make_scratch_subdir(const std::string& stem);

// tests/vectors/<relative>; throws (failing the test) when it is missing.
std::filesystem::path vector_path(const std::string& relative);

// Loads tests/vectors/wycheproof/<file>; throws (failing the test) when it is missing.
Json load_wycheproof(const std::string& file);

std::filesystem::path source_dir();
std::filesystem::path binary_dir();

// Runs a shell command, returns its exit status; output goes to `out` (stdout+stderr) if given.
int run_command(const std::string& command, std::string* out = nullptr);

// True when `needle` occurs in `hay` as a contiguous run of bytes (an empty needle always does).
bool contains_bytes(std::span<const std::uint8_t> hay, std::span<const std::uint8_t> needle);

// Reads an environment variable (empty when unset).
std::string env(const char* name);

// Hang guards. A test waits for a condition, never for a time; the budget only bounds a wait for
// something that normally takes a small part of it. Budgets are multiplied by the build's
// KEYPORT_TEST_TIME_SCALE (3 in sanitizer builds, 1 otherwise; the environment variable of that
// name overrides), so that the same test holds on a fast idle machine and a slow loaded one.
double time_scale();
std::chrono::milliseconds time_budget(double seconds);
// Polls `done` every `every` until it returns true (then true) or the scaled budget of
// `budget_seconds` runs out (then false).
bool wait_until(const std::function<bool()>& done, double budget_seconds,
                std::chrono::milliseconds every = std::chrono::milliseconds(10));

}  // namespace keyport::test

// Catch2 helpers for Result/Status.
#define REQUIRE_OK(expr)                                                        \
  do {                                                                          \
    auto&& keyport_req_ = (expr);                                               \
    INFO((keyport_req_ ? std::string("ok") : keyport_req_.error().describe())); \
    REQUIRE(static_cast<bool>(keyport_req_));                                   \
  } while (false)

#define CHECK_ERROR_CODE(expr, expected_code)              \
  do {                                                     \
    auto&& keyport_chk_ = (expr);                          \
    REQUIRE_FALSE(static_cast<bool>(keyport_chk_));        \
    INFO(keyport_chk_.error().describe());                 \
    CHECK(keyport_chk_.error().code() == (expected_code)); \
  } while (false)

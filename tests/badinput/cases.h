// SPDX-License-Identifier: Apache-2.0
// The bad-input corpus (tests/badinput/cases.json, made by make_cases.py), read by the CLI/REST
// test and the C API test.
#pragma once

#include <catch2/catch.hpp>

#include "core/json.h"
#include "tests/cli/cli_rig.h"
#include "tests/support/support.h"

namespace keyport::test {

// The "cases" array; REQUIREs that the file parses.
inline Json load_badinput_cases() {
  auto doc = parse_json_strict(cli::read_text(source_dir() / "tests" / "badinput" / "cases.json"));
  REQUIRE(doc.has_value());
  return (*doc)["cases"];
}

}  // namespace keyport::test

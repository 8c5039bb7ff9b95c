// SPDX-License-Identifier: Apache-2.0
// Catch2 v2 main: runs the session, then removes this process's scratch folder unless a test
// failed (ccache's unittest/main.cpp keeps it for post-mortems the same way).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

#include "tests/support/support.h"

namespace keyport::test {
bool scratch_dir_created();
}

int main(int argc, char* argv[]) {
  Catch::Session session;
  int rc = session.run(argc, argv);
  if (keyport::test::scratch_dir_created()) {
    const auto& dir = keyport::test::scratch_dir();
    if (rc == 0) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    } else {
      std::fprintf(stderr, "keyport tests: kept scratch folder %s\n", dir.c_str());
    }
  }
  return rc;
}

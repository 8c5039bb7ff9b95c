// SPDX-License-Identifier: Apache-2.0
// Target: the .byok linter (byok inspect) without a KEK. Invariants: it never fails or throws,
// its JSON report serialises, and a file the strict reader accepts has no error finding.
// max_len 64 KiB.
#include "byok/byok_file.h"
#include "byok/lint.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(64 * 1024);
  auto report = keyport::byok::inspect_byok(keyport::fuzz::input(data, size), {});
  auto json = report.to_json();
  KEYPORT_FUZZ_CHECK(!keyport::dump_json(json).empty());
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (keyport::byok::ByokFile::parse(text))
    KEYPORT_FUZZ_CHECK(report.reader_accepts);
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// Target: strict JSON. Invariants: the strict and the lenient scan agree (strict accepts exactly
// the documents the lenient scan reads without duplicates, with the same value), and an accepted
// document dumps and parses back to itself. max_len 64 KiB.
#include "core/json.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(64 * 1024);
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto strict = keyport::parse_json_strict(text);
  auto scan = keyport::scan_json(text);
  KEYPORT_FUZZ_CHECK(strict.has_value() == (scan.doc.has_value() && scan.duplicates.empty()));
  if (!strict)
    return 0;
  KEYPORT_FUZZ_CHECK(*strict == *scan.doc);
  auto again = keyport::parse_json_strict(keyport::dump_json(*strict));
  KEYPORT_FUZZ_CHECK(again.has_value() && *again == *strict);
  return 0;
}

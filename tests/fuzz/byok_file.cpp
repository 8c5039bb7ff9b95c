// SPDX-License-Identifier: Apache-2.0
// Target: the strict .byok reader. Invariant: whatever it accepts, it writes back and reads again
// to the same value. max_len 64 KiB (real files are a few KiB; the reader bounds JSON at 1 MiB).
#include "byok/byok_file.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(64 * 1024);
  using keyport::byok::ByokFile;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto file = ByokFile::parse(text);
  if (!file)
    return 0;
  auto again = ByokFile::parse(file->to_json());
  KEYPORT_FUZZ_CHECK(again.has_value());
  KEYPORT_FUZZ_CHECK(again->kid == file->kid && again->enc == file->enc && again->alg == file->alg);
  KEYPORT_FUZZ_CHECK(again->ciphertext == file->ciphertext && again->generator == file->generator);
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// Target: the C API's entry points that read untrusted bytes (include/keyport/keyport.h), through
// libkeyport.a: kp_byok_inspect of the input as a .byok file, the input as the KEK of an inspect
// and of kp_wrap_key_file (KEK loading), and the input as a key file to wrap. Invariants: every
// call returns a kp_status; a failure always comes with a kp_error of the same status and a
// message; an inspect always makes a report whose counts match its JSON; nothing leaks (ASan).
// max_len 64 KiB.
#include <cstring>
#include <string>

#include "keyport/keyport.h"
#include "tests/fuzz/fuzz.h"

namespace {

constexpr const char* kKid =
    "https://fuzz.managedhsm.azure.net/keys/kek/0123456789abcdef0123456789abcdef";

void check_failure(kp_status st, kp_error* err) {
  if (st == KP_OK) {
    KEYPORT_FUZZ_CHECK(err == nullptr);
    return;
  }
  KEYPORT_FUZZ_CHECK(err != nullptr);
  KEYPORT_FUZZ_CHECK(kp_error_status(err) == st);
  KEYPORT_FUZZ_CHECK(std::strlen(kp_error_message(err)) > 0);
  kp_error_free(err);
}

void inspect(const std::uint8_t* file, std::size_t file_len, const std::uint8_t* kek,
             std::size_t kek_len) {
  kp_error* err = nullptr;
  char* report = nullptr;
  std::size_t errors = 0;
  std::size_t warnings = 0;
  std::size_t infos = 0;
  const kp_status st =
      kp_byok_inspect(file, file_len, kek, kek_len, &report, &errors, &warnings, &infos, &err);
  if (st == KP_OK) {
    KEYPORT_FUZZ_CHECK(report != nullptr);
    const std::string text(report);
    KEYPORT_FUZZ_CHECK(text.find("\"counts\":{\"error\":" + std::to_string(errors)) !=
                       std::string::npos);
  }
  kp_free(report);
  check_failure(st, err);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(64 * 1024);
  inspect(data, size, nullptr, 0);
  const std::string file = "{\"schema_version\":\"1.0.0\",\"header\":{\"kid\":\"" +
                           std::string(kKid) +
                           "\",\"alg\":\"dir\",\"enc\":\"CKM_RSA_AES_KEY_WRAP\"},\"ciphertext\":"
                           "\"AAAA\",\"generator\":\"fuzz\"}";
  inspect(reinterpret_cast<const std::uint8_t*>(file.data()), file.size(), data, size);

  const std::uint8_t aes[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
  kp_error* err = nullptr;
  kp_byok* b = nullptr;
  kp_status st = kp_wrap_key_file(aes, sizeof aes, nullptr, data, size, kKid, nullptr, &b, &err);
  if (st == KP_OK) {
    std::size_t len = 0;
    kp_error* e2 = nullptr;
    KEYPORT_FUZZ_CHECK(kp_byok_copy(b, nullptr, 0, &len, &e2) == KP_ERR_BAD_INPUT && len > 0);
    kp_error_free(e2);
  }
  kp_byok_free(b);
  check_failure(st, err);

  // The input as a key file, wrapped to a KEK that is always valid (the first seed's JWK is not
  // needed: a refusal before the KEK is read is fine too).
  err = nullptr;
  b = nullptr;
  st = kp_wrap_key_file(data, size, nullptr, nullptr, 0, kKid, nullptr, &b, &err);
  kp_byok_free(b);
  KEYPORT_FUZZ_CHECK(st != KP_OK);  // no KEK: always refused
  check_failure(st, err);
  return 0;
}

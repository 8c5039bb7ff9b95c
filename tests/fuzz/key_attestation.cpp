// SPDX-License-Identifier: Apache-2.0
// Target: the SIMULATED key attestation verifier (vault/attestation.h verify_key_attestation), the
// parser `keyport vault verify-attestation` runs on a bundle file a user hands it.
//
// Input: a KeyBundle JSON text (the corpus holds bundles a vault made, whose CA is
// data/key-attestation-ca.pem, so mutations reach the certificate, JWS and claim checks).
// Invariants: a bundle that verifies names the kid the report names, its private statement says
// simulated, and only RSA/EC bundles carry a verified public statement; a refusal is
// kAttestationInvalid or kInvalidArgument. max_len 64 KiB (a bundle is about 4 KiB).
#include <fstream>
#include <sstream>
#include <string>

#include "core/json.h"
#include "tests/fuzz/fuzz.h"
#include "vault/attestation.h"

namespace {

const std::string& trust() {
  static const std::string pem = [] {
    std::ifstream in(std::string(KEYPORT_FUZZ_DATA_DIR) + "/key-attestation-ca.pem");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }();
  return pem;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(64 * 1024);
  KEYPORT_FUZZ_CHECK(!trust().empty());
  auto bundle =
      keyport::parse_json_strict(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!bundle) {
    return 0;
  }
  auto report = keyport::vault::verify_key_attestation(*bundle, trust());
  if (!report) {
    KEYPORT_FUZZ_CHECK(report.error().code() == keyport::ErrorCode::kAttestationInvalid ||
                       report.error().code() == keyport::ErrorCode::kInvalidArgument);
    return 0;
  }
  KEYPORT_FUZZ_CHECK(report->kid == (*bundle)["key"]["kid"].get<std::string>());
  KEYPORT_FUZZ_CHECK(report->private_statement.value("simulated", false) == true);
  const std::string kty = (*bundle)["key"].value("kty", "");
  KEYPORT_FUZZ_CHECK(report->public_statement.has_value() == (kty.rfind("oct", 0) != 0));
  return 0;
}

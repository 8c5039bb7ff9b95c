// SPDX-License-Identifier: Apache-2.0
// Mechanism self-tests: what a module's mechanisms do, proven with known answers before keyport
// trusts them for a .byok, not read from their codes. The same code means different things in
// different modules: CKM_AES_KEY_WRAP_PAD (0x210A) is RFC 5649 in SoftHSM 2.6 but RFC 3394 over
// PKCS#7-padded data in NSS softoken and in PKCS#11 3.0; vendors give RFC 5649 their own codes.
//
// Every test runs on session objects only (CKA_TOKEN false), made from values the test knows, and
// destroys them on every path:
// - each listed RFC 5649 candidate (CKM_AES_KEY_WRAP_KWP, Thales Luna's CKM_AES_KWP, AWS
//   CloudHSM's CKM_CLOUDHSM_AES_KEY_WRAP_ZERO_PAD, CKM_AES_KEY_WRAP_PAD) wraps a 32-byte key to
//   the Wycheproof answer, wraps RFC 5649's 20-byte example to the RFC's answer (a module that
//   zero-pads to a multiple of 8 first, as SoftHSM 2.6.1 does, fails only this one), and unwraps
//   the RFC's answer back to the 20 bytes;
// - RSA-OAEP with SHA-1, SHA-256 and SHA-384 unwraps Wycheproof's ciphertext under its test key
//   (imported as a session pair; a module that refuses imported private keys gets a generated
//   pair and only the round trip) to Wycheproof's answer, and wraps a known AES key under the
//   same pair and unwraps it back;
// - CKM_RSA_AES_KEY_WRAP (when listed) wraps a known AES key for each hash, and the result is
//   taken apart with RSA-OAEP and the proven RFC 5649 mechanism: its format is checked, not only
//   that it round-trips.
// Results are kept per module, slot and token for the life of the process.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "core/algorithms.h"
#include "core/error.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"

namespace keyport::p11 {

enum class Verdict {
  kNotRun,      // not attempted (the mechanism is not listed, or an earlier step failed)
  kPassed,      // the module gave the known answer
  kFailed,      // the module answered, wrongly
  kRefused,     // the module refused the mechanism or its parameters
  kNeedsLogin,  // the test needs private session keys and the session is not logged in
  kError,       // the test could not run (the module failed otherwise; see detail)
};
std::string_view to_string(Verdict v);

// An RFC 5649 candidate mechanism and what its tests found.
struct KwpTest {
  CK_MECHANISM_TYPE mechanism = 0;
  Verdict wrap_multiple_of_8 = Verdict::kNotRun;  // 32-byte key (Wycheproof AES-KWP tcId 167)
  Verdict wrap_any_length = Verdict::kNotRun;     // 20-byte key (RFC 5649 §6, first example)
  Verdict unwrap = Verdict::kNotRun;              // the RFC's answer back to the 20 bytes
  std::string detail;                             // what went wrong, when something did

  // RFC 5649 for every length.
  bool exact() const {
    return wrap_multiple_of_8 == Verdict::kPassed && wrap_any_length == Verdict::kPassed &&
           unwrap == Verdict::kPassed;
  }
  // RFC 5649 for lengths that are multiples of 8 (other lengths zero-padded first).
  bool usable() const {
    return wrap_multiple_of_8 == Verdict::kPassed && unwrap == Verdict::kPassed;
  }
};

struct HashTest {
  Verdict oaep = Verdict::kNotRun;    // CKM_RSA_PKCS_OAEP wrap + unwrap round trip
  Verdict native = Verdict::kNotRun;  // CKM_RSA_AES_KEY_WRAP output taken apart
  std::string detail;
};

struct SelfTestReport {
  std::vector<KwpTest> kwp;        // in order of preference
  std::array<HashTest, 3> hashes;  // by index of OaepHash
  bool logged_in = false;          // whether the RSA tests could make private session keys

  // The preferred proven RFC 5649 mechanism: exact first, else usable; nullptr when none.
  const KwpTest* chosen_kwp() const;
  const HashTest& hash(OaepHash h) const { return hashes[static_cast<int>(h)]; }
};

// The RFC 5649 candidate codes keyport tries, in order of preference, with where each comes from.
struct KwpCandidate {
  CK_MECHANISM_TYPE mechanism;
  const char* name;
  const char* source;
};
const std::vector<KwpCandidate>& kwp_candidates();

// Runs the tests the module's mechanism list allows (once per module, slot and token in this
// process; a result that needed a login and did not have one is run again when the session is
// logged in). `logged_in`: whether the session is logged in as user (private session keys may be
// made).
Result<SelfTestReport> run_self_tests(const Session& session, const TokenInfo& token,
                                      const std::vector<MechanismInfo>& mechanisms, bool logged_in);

}  // namespace keyport::p11

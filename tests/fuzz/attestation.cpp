// SPDX-License-Identifier: Apache-2.0
// Target: attestation tokens (skr/jws.h, skr/attestation.h) against one fixed trusted authority
// (tests/fuzz/data/attestation-trusted-authorities.json: keyport's simulated authority, made once
// for this corpus) at a fixed time, 1800000000, so the corpus' tokens (issued 60 s before) verify.
// Invariants: the verifier accepts only what the compact-JWS parser accepts, whose signature
// verifies with the authority key, whose "iss" is the authority and whose runtime key is an RSA
// key of at least 2048 bits; verification is deterministic; a parsed JWS keeps its parts.
// max_len 80 KiB (the parser's own limit is 64 KiB, so its size refusal is exercised too).
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/json.h"
#include "skr/attestation.h"
#include "skr/jws.h"
#include "skr/key_resolver.h"
#include "skr/policy.h"
#include "tests/fuzz/fuzz.h"

namespace {

using namespace keyport::skr;

constexpr std::int64_t kNow = 1800000000;

struct Fixture {
  std::shared_ptr<StaticKeyResolver> resolver;
  std::vector<VerificationKey> keys;
  std::string issuer;
  std::optional<AttestationVerifier> verifier;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    std::ifstream in(KEYPORT_FUZZ_DATA_DIR "/attestation-trusted-authorities.json");
    std::stringstream ss;
    ss << in.rdbuf();
    auto doc = keyport::parse_json_strict(ss.str());
    KEYPORT_FUZZ_CHECK(doc.has_value());
    auto resolver = StaticKeyResolver::from_json(*doc);
    KEYPORT_FUZZ_CHECK(resolver.has_value());
    x.resolver = *resolver;
    KEYPORT_FUZZ_CHECK(x.resolver->issuers().size() == 1);
    x.issuer = x.resolver->issuers().front();
    auto keys = x.resolver->keys_for(x.issuer);
    KEYPORT_FUZZ_CHECK(keys.has_value() && !keys->empty());
    x.keys = *keys;
    VerifierOptions options;
    options.clock = [] { return kNow; };
    auto v = AttestationVerifier::create(x.resolver, options);
    KEYPORT_FUZZ_CHECK(v.has_value());
    x.verifier.emplace(std::move(*v));
    return x;
  }();
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(80 * 1024);
  const Fixture& f = fixture();
  std::string_view token(reinterpret_cast<const char*>(data), size);

  auto jws = CompactJws::parse(token);
  bool signature_ok = false;
  if (jws) {
    KEYPORT_FUZZ_CHECK(token.substr(0, jws->signing_input().size()) == jws->signing_input());
    KEYPORT_FUZZ_CHECK(!jws->signature().empty());
    (void)jws->payload_object();
    for (const auto& key : f.keys) {
      if (verify_jws(*jws, key))
        signature_ok = true;
    }
  }

  auto verified = f.verifier->verify(token);
  auto again = f.verifier->verify(token);
  KEYPORT_FUZZ_CHECK(verified.has_value() == again.has_value());
  if (!verified) {
    KEYPORT_FUZZ_CHECK(verified.error().code() == keyport::ErrorCode::kAttestationInvalid);
    KEYPORT_FUZZ_CHECK(again.error().detail() == verified.error().detail());
    return 0;
  }
  KEYPORT_FUZZ_CHECK(jws.has_value() && signature_ok);
  KEYPORT_FUZZ_CHECK(authority_matches(verified->issuer(), f.issuer));
  KEYPORT_FUZZ_CHECK(verified->claims().is_object());
  KEYPORT_FUZZ_CHECK(verified->expires_at() + 60 > kNow);
  const auto& rk = verified->runtime_key();
  KEYPORT_FUZZ_CHECK(rk.public_key.family() == keyport::KeyFamily::kRsa);
  KEYPORT_FUZZ_CHECK(rk.public_key.bits() >= 2048);
  KEYPORT_FUZZ_CHECK(!rk.kid.empty());
  return 0;
}

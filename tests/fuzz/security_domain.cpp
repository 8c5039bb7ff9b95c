// SPDX-License-Identifier: Apache-2.0
// Target: the Managed HSM security domain format (vault/security_domain.h), token-free: what
// `keyport vault security-domain restore-blob` reads from a user's file and what the HSM reads in
// POST /securitydomain/download and /securitydomain/upload. The whole input is read as a security
// domain file, as a restore blob (opened under a fixed master key), as a CertificateSet (when it
// is JSON), as a compact JWE (alg dir, under a fixed 64-byte key), and as Shamir shares (byte 0
// picks the quorum, the rest are little-endian uint16 share values).
// Invariants: an accepted security domain has 1..16 data items with tags of 1..256 characters, a
// quorum of 2..10 and at least that many (at most 10) shares; its share JWEs do not open under a
// CEK that is not theirs. An accepted restore blob has 1..16 data items and does not open under a
// master key that is not its own. An accepted CertificateSet has 3..10 distinct certificates,
// each thumbprint the SHA-256 of its DER, and a quorum of 2..min(10, N). A JWE never opens under
// the wrong key. Every refusal carries a message, and a failure to open is kIntegrityFailure.
// Shares that combine give one byte per share value, and a secret split then combined from any
// quorum of its shares comes back. max_len 320 KiB (above kMaxDocumentBytes, so the size refusal
// is reachable).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "core/json.h"
#include "tests/fuzz/fuzz.h"
#include "vault/security_domain.h"

namespace {

using namespace keyport;
namespace sd = keyport::vault::sd;

SecretBytes fixed_key(std::size_t n, std::uint8_t start) {
  SecretBytes k(n);
  auto b = k.reveal_mut(SecretAccess::unsafe());
  for (std::size_t i = 0; i < n; ++i) {
    b[i] = static_cast<std::uint8_t>(start + i);
  }
  return k;
}

template <typename T>
void check_refusal(const Result<T>& r) {
  KEYPORT_FUZZ_CHECK(!r.error().message().empty());
}

template <typename T>
void check_does_not_open(const Result<T>& r) {
  KEYPORT_FUZZ_CHECK(!r.has_value());
  KEYPORT_FUZZ_CHECK(r.error().code() == ErrorCode::kIntegrityFailure);
  KEYPORT_FUZZ_CHECK(!r.error().message().empty());
}

void check_data(const std::vector<std::pair<std::string, std::string>>& data) {
  KEYPORT_FUZZ_CHECK(!data.empty() && data.size() <= sd::kMaxDataItems);
  for (const auto& [jwe, tag] : data) {
    KEYPORT_FUZZ_CHECK(!tag.empty() && tag.size() <= 256);
  }
}

void check_security_domain(std::string_view text) {
  auto f = sd::parse_security_domain(text);
  if (!f) {
    check_refusal(f);
    return;
  }
  KEYPORT_FUZZ_CHECK(text.size() <= sd::kMaxDocumentBytes);
  check_data(f->data);
  KEYPORT_FUZZ_CHECK(f->required >= sd::kMinQuorum && f->required <= sd::kMaxQuorum);
  KEYPORT_FUZZ_CHECK(f->shares.size() >= f->required && f->shares.size() <= sd::kMaxCertificates);
  // A share's JWE under a CEK that is not its own (the RSA step "succeeds" with a wrong key), and
  // with an RSA step that fails (the decoy path): both the same kIntegrityFailure.
  const SecretBytes wrong_cek = fixed_key(64, 0x40);
  for (const auto& s : f->shares) {
    check_does_not_open(sd::jwe_decrypt_rsa(s.enc_key, [&](std::span<const std::uint8_t>) {
      return Result<SecretBytes>(wrong_cek.clone());
    }));
  }
  check_does_not_open(sd::jwe_decrypt_rsa(
      f->shares.front().enc_key,
      [](std::span<const std::uint8_t>) { return Result<SecretBytes>(integrity_error()); }));
}

void check_restore_blob(std::string_view text) {
  auto b = sd::parse_restore_blob(text);
  if (!b) {
    check_refusal(b);
    return;
  }
  KEYPORT_FUZZ_CHECK(text.size() <= sd::kMaxDocumentBytes);
  check_data(b->data);
  static const SecretBytes master = fixed_key(sd::kMasterKeyBytes, 0x01);
  check_does_not_open(sd::open_restore_blob(*b, master));
}

void check_download_request(std::string_view text) {
  auto json = parse_json_strict(text);
  if (!json) {
    return;
  }
  auto r = sd::parse_download_request(*json);
  if (!r) {
    check_refusal(r);
    KEYPORT_FUZZ_CHECK(r.error().code() == ErrorCode::kInvalidArgument);
    return;
  }
  const std::size_t n = r->recipients.size();
  KEYPORT_FUZZ_CHECK(n >= sd::kMinCertificates && n <= sd::kMaxCertificates);
  KEYPORT_FUZZ_CHECK(r->required >= sd::kMinQuorum && r->required <= sd::kMaxQuorum &&
                     r->required <= n);
  std::set<std::string> seen;
  for (const auto& rec : r->recipients) {
    KEYPORT_FUZZ_CHECK(!rec.cert_der.empty() && !rec.spki_der.empty());
    KEYPORT_FUZZ_CHECK(rec.x5t_s256 == sd::thumbprint_s256(rec.cert_der));
    KEYPORT_FUZZ_CHECK(seen.insert(rec.x5t_s256).second);
  }
}

void check_jwe(std::string_view text) {
  static const SecretBytes key = fixed_key(64, 0x80);
  check_does_not_open(sd::jwe_decrypt_dir(key, text));
}

void check_shamir(std::span<const std::uint8_t> in) {
  if (in.size() < 3) {
    return;
  }
  const unsigned required = 2 + in[0] % 4;  // 2..5
  // Arbitrary share values: combine or refuse, never more than one byte per value.
  const std::size_t values = (in.size() - 1) / 2;
  const std::size_t len = std::min<std::size_t>(values / required, 64);
  if (len != 0) {
    std::vector<std::vector<std::uint16_t>> shares(required);
    for (unsigned i = 0; i < required; ++i) {
      for (std::size_t b = 0; b < len; ++b) {
        const std::size_t at = 1 + 2 * (i * len + b);
        shares[i].push_back(static_cast<std::uint16_t>(in[at] | (in[at + 1] << 8)));
      }
    }
    auto combined = sd::shamir_combine(shares, required);
    if (combined) {
      KEYPORT_FUZZ_CHECK(combined->size() == len);
    } else {
      check_does_not_open(combined);
    }
  }
  // A secret (the input's bytes after the first, at most 32) split to required + 1 shares comes
  // back from the first `required` and from the last `required`.
  const SecretBytes secret(in.subspan(1, std::min<std::size_t>(in.size() - 1, 32)));
  auto split = sd::shamir_split(secret, required + 1, required);
  KEYPORT_FUZZ_CHECK(split.has_value() && split->size() == required + 1);
  const std::span<const std::vector<std::uint16_t>> all(*split);
  for (auto subset : {all.first(required), all.last(required)}) {
    auto back = sd::shamir_combine(subset, required);
    KEYPORT_FUZZ_CHECK(back.has_value() && back->ct_equal(secret));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(320 * 1024);
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_security_domain(text);
  check_restore_blob(text);
  check_download_request(text);
  check_jwe(text);
  check_shamir(keyport::fuzz::input(data, size));
  return 0;
}

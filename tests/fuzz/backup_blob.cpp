// SPDX-License-Identifier: Apache-2.0
// Target: the BackupKey blob (vault/backup_blob.h), token-free: the frame (magic, format, domain,
// length, payload, MAC), the JSON payload, and the backup-domain transfer document of
// `vault init --backup-domain`. The whole input is read three ways: as a frame (bytes), as a
// payload and as a transfer document (text).
// Invariants, frame: an accepted frame has a 36-character lowercase UUID domain, a MAC of 32
// bytes, its signed part and MAC are the input split at the MAC, and backup_signed_part(domain,
// payload) rebuilds the signed part exactly. Payload: an accepted payload has a key name, at
// least one version, no version twice, every wrapped key a multiple of 8 bytes of at least 16;
// writing it again (backup_payload) and parsing that gives the same text once more (a fixed
// point after one round), so what RestoreKey accepts is what BackupKey writes. Transfer: an
// accepted document writes back to a document that parses to the same fields. Refusals carry a
// message. max_len 1 MiB (above kMaxBackupBytes' scale is refused by length alone, tested in
// tests/vault).
#include <algorithm>
#include <string>

#include "tests/fuzz/fuzz.h"
#include "vault/backup_blob.h"

namespace {

using namespace keyport::vault;

void check_frame(std::span<const std::uint8_t> in) {
  auto f = parse_backup_frame(in);
  if (!f) {
    KEYPORT_FUZZ_CHECK(!f.error().message().empty());
    return;
  }
  KEYPORT_FUZZ_CHECK(f->domain.size() == kBackupDomainBytes);
  KEYPORT_FUZZ_CHECK(f->mac.size() == kBackupMacBytes);
  KEYPORT_FUZZ_CHECK(f->signed_part.size() + f->mac.size() == in.size());
  KEYPORT_FUZZ_CHECK(std::equal(f->signed_part.begin(), f->signed_part.end(), in.begin()));
  KEYPORT_FUZZ_CHECK(std::equal(f->mac.begin(), f->mac.end(), in.end() - kBackupMacBytes));
  KEYPORT_FUZZ_CHECK(backup_signed_part(f->domain, f->payload) == f->signed_part);
  // The payload of a well-framed blob is what RestoreKey parses after the MAC check.
  auto p = parse_backup_payload(f->payload);
  KEYPORT_FUZZ_CHECK(p.has_value() || !p.error().message().empty());
}

std::string rewritten(const BackupContents& c) {
  return backup_payload(c.name, c.versions, c.rotation_policy);
}

void check_payload(std::string_view text) {
  auto p = parse_backup_payload(text);
  if (!p) {
    KEYPORT_FUZZ_CHECK(!p.error().message().empty());
    return;
  }
  KEYPORT_FUZZ_CHECK(!p->name.empty());
  KEYPORT_FUZZ_CHECK(!p->versions.empty());
  for (std::size_t i = 0; i < p->versions.size(); ++i) {
    const auto& v = p->versions[i];
    KEYPORT_FUZZ_CHECK(v.record.name == p->name);
    KEYPORT_FUZZ_CHECK(v.record.cka_id.empty());
    KEYPORT_FUZZ_CHECK(v.wrapped.size() >= 16 && v.wrapped.size() % 8 == 0);
    for (std::size_t j = 0; j < i; ++j) {
      KEYPORT_FUZZ_CHECK(p->versions[j].record.version != v.record.version);
    }
  }
  const std::string once = rewritten(*p);
  auto again = parse_backup_payload(once);
  KEYPORT_FUZZ_CHECK(again.has_value());
  KEYPORT_FUZZ_CHECK(again->name == p->name && again->versions.size() == p->versions.size());
  KEYPORT_FUZZ_CHECK(again->rotation_policy.has_value() == p->rotation_policy.has_value());
  KEYPORT_FUZZ_CHECK(rewritten(*again) == once);
}

void check_transfer(std::string_view text) {
  auto t = parse_domain_transfer(text);
  if (!t) {
    KEYPORT_FUZZ_CHECK(!t.error().message().empty());
    return;
  }
  KEYPORT_FUZZ_CHECK(t->domain.size() == kBackupDomainBytes);
  KEYPORT_FUZZ_CHECK(t->transfer_key_sha256.size() == 64);
  auto again = parse_domain_transfer(domain_transfer_json(*t));
  KEYPORT_FUZZ_CHECK(again.has_value());
  KEYPORT_FUZZ_CHECK(again->domain == t->domain && again->enc == t->enc &&
                     again->transfer_key_sha256 == t->transfer_key_sha256 &&
                     again->wrap == t->wrap && again->mac == t->mac);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(1024 * 1024);
  check_frame(keyport::fuzz::input(data, size));
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_payload(text);
  check_transfer(text);
  return 0;
}

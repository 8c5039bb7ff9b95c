// SPDX-License-Identifier: Apache-2.0
// The BackupKey blob (internal to keyport::vault; token-free so that it can be fuzzed). The REST
// answer's `value` is base64url of:
//
//   "KPBK" | format 0x01 | backup domain (36 ASCII bytes, a UUID) | payload length (u32, big
//   endian) | payload (UTF-8 JSON, below) | HMAC-SHA256 (32 bytes) over every byte before it
//
// The HMAC is computed and checked by the backup domain's MAC key inside the vault token; key
// material is in the payload only as C_WrapKey output (CKM_AES_KEY_WRAP_PAD under the domain's
// wrapping key). The payload: {"format": 1, "name", "versions": [ {version, kty, spec, public_jwk,
// key_ops, enabled, nbf?, exp?, created, updated, exportable, tags, release_policy?
// {contentType, data (base64url), immutable}, origin, wrapped (base64url)} ... oldest first ],
// "rotation_policy": null | {policy, created, updated}}. Parsed strictly: unknown or duplicate
// members, wrong types and out-of-range values are refused.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/error.h"
#include "core/json.h"
#include "vault/store.h"

namespace keyport::vault {

inline constexpr std::size_t kBackupMacBytes = 32;
inline constexpr std::size_t kBackupDomainBytes = 36;
// Larger blobs are refused before anything else (a key of 500 versions of RSA-4096 is ~2 MB).
inline constexpr std::size_t kMaxBackupBytes = 4u << 20;

struct BackupFrame {
  std::string domain;  // the backup domain's UUID as written
  Bytes signed_part;   // every byte the MAC covers
  Bytes mac;           // kBackupMacBytes
  std::string payload;
};

// Splits a blob into its parts (no MAC check: the token does that). kFormat when it is not a
// well-formed blob of this format.
Result<BackupFrame> parse_backup_frame(std::span<const std::uint8_t> blob);

// The bytes the MAC covers for `domain` (36 characters) and `payload`.
Bytes backup_signed_part(std::string_view domain, std::string_view payload);

struct BackupVersion {
  KeyVersionRecord record;  // cka_id empty; name from the payload
  Bytes wrapped;
};

struct BackupContents {
  std::string name;
  std::vector<BackupVersion> versions;  // oldest first, at least one
  std::optional<RotationPolicyRecord> rotation_policy;
};

// The payload of a backup of `versions` (oldest first) with their wrapped key material.
std::string backup_payload(const std::string& name, const std::vector<BackupVersion>& versions,
                           const std::optional<RotationPolicyRecord>& policy);

// Parses a payload strictly. kFormat naming the first problem.
Result<BackupContents> parse_backup_payload(std::string_view payload);

// The backup domain's two keys on their way to a joining vault (Vault::export_backup_domain ->
// Vault::finish_backup_domain_join; `keyport vault init --backup-domain`). Each key is the
// in-token RSA-AES transfer wrap (RSA-OAEP || RFC 5649, pkcs11/wrap.h) to the joining vault's
// transfer key. As JSON: {"format": 1, "domain": "<uuid>", "enc": "RSA_AES_KEY_WRAP_256" | ...,
// "transfer_key_sha256": "<64 lowercase hex: SHA-256 of the transfer key's SPKI>", "wrap":
// base64url, "mac": base64url}. Parsed strictly (unknown or duplicate members refused).
inline constexpr std::size_t kMaxDomainTransferBytes = 16384;

struct DomainKeyTransfer {
  std::string domain;
  WrapAlg enc = WrapAlg::kRsaAesKeyWrap256;
  std::string transfer_key_sha256;
  Bytes wrap;  // the AES wrapping key
  Bytes mac;   // the HMAC key
};

std::string domain_transfer_json(const DomainKeyTransfer& t);

// kFormat naming the first problem.
Result<DomainKeyTransfer> parse_domain_transfer(std::string_view text);

}  // namespace keyport::vault

// SPDX-License-Identifier: Apache-2.0
// The offline .byok linter behind `keyport byok inspect`: reads a transfer file leniently, the way
// the tools in the field write it, and reports every defect as a finding with a stable code
// (documented in docs/byok-inspect.md). With the KEK's public key it checks the lengths against
// the modulus; with the KEK's private key (test rigs only) it unwraps the key and checks what the
// vault would receive. inspect_byok() never fails: everything it finds is a finding.
//
// Key material unwrapped for the checks stays in SecretBytes and is wiped before inspect_byok()
// returns; the report holds only public facts (the key type, a public-key fingerprint, an AES
// key check value).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "byok/kid.h"
#include "byok/public_key.h"
#include "core/algorithms.h"
#include "core/json.h"
#include "core/secret.h"

namespace keyport::byok {

enum class Severity { kError, kWarning, kInfo };
std::string_view to_string(Severity severity);  // "error", "warning", "info"

// The finding codes. Stable: scripts match on them, and docs/byok-inspect.md explains each one.
namespace lint_code {
// The file as JSON
inline constexpr std::string_view kJsonSyntax = "BYOK-JSON-SYNTAX";
inline constexpr std::string_view kJsonDuplicate = "BYOK-JSON-DUPLICATE";
inline constexpr std::string_view kJsonBom = "BYOK-JSON-BOM";
inline constexpr std::string_view kNotObject = "BYOK-NOT-OBJECT";
inline constexpr std::string_view kMemberMissing = "BYOK-MEMBER-MISSING";
inline constexpr std::string_view kMemberType = "BYOK-MEMBER-TYPE";
inline constexpr std::string_view kMemberUnknown = "BYOK-MEMBER-UNKNOWN";
// Members
inline constexpr std::string_view kSchemaVersion = "BYOK-SCHEMA-VERSION";
inline constexpr std::string_view kAlg = "BYOK-ALG";
inline constexpr std::string_view kEncUnknown = "BYOK-ENC-UNKNOWN";
inline constexpr std::string_view kEncUndocumented = "BYOK-ENC-UNDOCUMENTED";
inline constexpr std::string_view kKidShape = "BYOK-KID-SHAPE";
inline constexpr std::string_view kKidHttp = "BYOK-KID-HTTP";
inline constexpr std::string_view kKidUnversioned = "BYOK-KID-UNVERSIONED";
inline constexpr std::string_view kKidHostUnknown = "BYOK-KID-HOST-UNKNOWN";
inline constexpr std::string_view kTargetConflict = "BYOK-TARGET-CONFLICT";
inline constexpr std::string_view kGeneratorMissing = "BYOK-GENERATOR-MISSING";
// The ciphertext
inline constexpr std::string_view kCtEncoding = "BYOK-CT-ENCODING";
inline constexpr std::string_view kCtPadding = "BYOK-CT-PADDING";
inline constexpr std::string_view kCtStdB64 = "BYOK-CT-STDB64";
inline constexpr std::string_view kCtShort = "BYOK-CT-SHORT";
inline constexpr std::string_view kKwpLength = "BYOK-KWP-LENGTH";
inline constexpr std::string_view kKwpTarget = "BYOK-KWP-TARGET";
inline constexpr std::string_view kRsaLength = "BYOK-RSA-LENGTH";
inline constexpr std::string_view kKekMismatch = "BYOK-KEK-MISMATCH";
inline constexpr std::string_view kKekUnusable = "BYOK-KEK-UNUSABLE";
// What the KEK's private key shows
inline constexpr std::string_view kUnwrapFailed = "BYOK-UNWRAP-FAILED";
inline constexpr std::string_view kEncMismatch = "BYOK-ENC-MISMATCH";
inline constexpr std::string_view kTransferKeySize = "BYOK-TRANSFER-KEY-SIZE";
inline constexpr std::string_view kPkcs8Invalid = "BYOK-PKCS8-INVALID";
inline constexpr std::string_view kPkcs8TrailingZeros = "BYOK-PKCS8-TRAILING-ZEROS";
inline constexpr std::string_view kPkcs8TrailingBytes = "BYOK-PKCS8-TRAILING-BYTES";
inline constexpr std::string_view kEcNoPubkey = "BYOK-EC-NO-PUBKEY";
inline constexpr std::string_view kKeyType = "BYOK-KEY-TYPE";
inline constexpr std::string_view kProfile = "BYOK-PROFILE";
inline constexpr std::string_view kKeyUnchecked = "BYOK-KEY-UNCHECKED";
// keyport's strict reader (ByokFile::parse) refuses the file for a reason no other finding names.
inline constexpr std::string_view kReaderRefuses = "BYOK-READER-REFUSES";
}  // namespace lint_code

// One entry of the catalogue: a code, its usual severity, what it means, what to do.
struct FindingKind {
  std::string_view code;
  Severity severity;
  std::string_view summary;
  std::string_view advice;
};
// Every code inspect_byok() can report, in the order of lint_code.
const std::vector<FindingKind>& finding_catalogue();
// nullptr for an unknown code.
const FindingKind* find_finding_kind(std::string_view code);

struct Finding {
  std::string code;
  Severity severity = Severity::kError;
  std::string message;  // what is wrong in this file
  std::string advice;   // what to do (from the catalogue)
};

struct InspectOptions {
  // The KEK's public key (`--kek`), and the kid its JWK or KeyBundle carried, if any.
  std::optional<PublicKey> kek;
  std::optional<std::string> kek_kid;
  // The KEK's private key (`--kek-private`; test rigs only): any encoding load_key_material()
  // reads without a passphrase (PKCS#8 or PKCS#1, PEM or DER).
  std::shared_ptr<const SecretBytes> kek_private_der;
  // `--target`: for kid hosts that are not Azure's.
  std::optional<TargetKind> target;
};

// What the unwrapped plaintext holds (only with a private KEK that opens the file).
struct UnwrappedKey {
  std::optional<KeySpec> spec;               // unset when the key type is not one keyport knows
  std::string description;                   // "rsa-2048", "EC prime192v1", "ED25519", "20 bytes"
  std::optional<std::string> public_sha256;  // RSA/EC: hex SHA-256 of the SPKI DER
  std::optional<std::string> aes_kcv;        // AES: first 3 bytes of AES-ECB(key, 0^16), hex
  std::size_t plaintext_bytes = 0;
  std::optional<std::size_t> pkcs8_bytes;  // the DER alone, without trailing bytes
  WrapAlg enc_used = WrapAlg::kRsaAesKeyWrap;
  std::size_t transfer_key_bytes = 0;
};

struct InspectReport {
  std::size_t file_bytes = 0;
  // ByokFile::parse's verdict on the same bytes, and its message when it refuses.
  bool reader_accepts = false;
  std::string reader_message;

  std::optional<std::string> schema_version;
  std::optional<std::string> kid;
  std::optional<KeyId> kid_info;  // when kid parses (a versioned or unversioned identifier)
  std::optional<std::string> alg;
  std::optional<std::string> enc;
  std::optional<std::string> generator;
  std::optional<TargetKind> target;  // from the kid host, else from InspectOptions::target
  std::string target_source;         // "kid", "--target" or ""

  std::optional<std::size_t> ciphertext_bytes;
  std::optional<std::size_t> rsa_part_bytes;  // from the KEK, or the only plausible split
  std::optional<std::size_t> kwp_part_bytes;
  std::string split_source;  // "kek", "inferred" or ""
  // KEK sizes (bits) under which the ciphertext length is that of a supported key.
  std::vector<unsigned> plausible_kek_bits;

  std::optional<std::string> kek_sha256;  // the KEK used for the checks, when one was given
  std::optional<UnwrappedKey> key;

  std::vector<Finding> findings;

  std::size_t count(Severity severity) const;
  bool has_errors() const { return count(Severity::kError) > 0; }
  bool has(std::string_view code) const;
  const Finding* first(Severity severity) const;
  // The report as JSON (what `keyport byok inspect --json` prints); contains no key material.
  Json to_json() const;
};

InspectReport inspect_byok(std::span<const std::uint8_t> file_bytes, const InspectOptions& options);

}  // namespace keyport::byok

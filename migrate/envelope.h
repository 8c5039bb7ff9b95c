// SPDX-License-Identifier: Apache-2.0
// Envelope encryption for applications (docs/envelope-format.md has the byte layout):
//
//   KEK (vault key or token key)
//    └─ primary key: AES-256, stored in the keyring only wrapped by the KEK; named, with epochs
//        └─ data encryption key (DEK) of one file: HKDF-SHA256(primary, salt = DEK id,
//           info = "keyport envelope v1" 0x00 || len || primary name || epoch || DEK id)
//            └─ data: AES-256-GCM in segments (64 KiB by default); segment i has the nonce
//               base nonce (7 bytes) || i (4 bytes, big-endian) || last (1 byte), and the whole
//               header as associated data.
//
// Streaming: memory is constant in the size of the file (two segments). A segment's plaintext is
// released only after its tag verified; truncation (the last segment carries the last-flag),
// reordering (the counter is in the nonce), bit flips and header changes (the header is the
// associated data of every segment) are all detected, each as the one integrity_error().
// Decrypting to a file publishes it only when every segment verified (AtomicFileSink).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/error.h"
#include "core/json.h"
#include "core/secret.h"
#include "migrate/kek.h"
#include "migrate/keyring.h"
#include "migrate/stream_io.h"

namespace keyport::migrate {

inline constexpr std::array<std::uint8_t, 4> kEnvelopeMagic = {'K', 'P', 'E', 'V'};
inline constexpr std::uint8_t kEnvelopeVersion = 1;
// HKDF-SHA256 -> AES-256-GCM, 12-byte nonces, 16-byte tags.
inline constexpr std::uint8_t kEnvelopeSuite = 1;
inline constexpr std::size_t kEnvelopePrefixBytes = 8;  // magic, version, suite, header length
inline constexpr std::size_t kEnvelopeMinHeaderBytes = 48;
inline constexpr std::size_t kEnvelopeMaxHeaderBytes = 4096;
inline constexpr std::size_t kEnvelopeMaxKekIdBytes = 2048;
inline constexpr std::size_t kEnvelopeMaxNameBytes = 255;  // KEK version, primary name
inline constexpr std::size_t kDekIdBytes = 16;
inline constexpr std::size_t kBaseNonceBytes = 7;
inline constexpr std::uint32_t kDefaultSegmentBytes = 64 * 1024;
inline constexpr std::uint32_t kMinSegmentBytes = 1024;
inline constexpr std::uint32_t kMaxSegmentBytes = 8 * 1024 * 1024;

struct EnvelopeHeader {
  std::uint8_t version = kEnvelopeVersion;
  std::uint8_t suite = kEnvelopeSuite;
  std::string kek_id;       // the KEK that wrapped the primary key when the file was written
  std::string kek_version;  //
  std::string primary;      // the primary key's name in the keyring ("default")
  std::uint32_t epoch = 0;  // the primary key's epoch (its version in the keyring), 1 or more
  std::array<std::uint8_t, kDekIdBytes> dek_id{};
  std::uint32_t segment_size = kDefaultSegmentBytes;  // plaintext bytes per segment
  std::array<std::uint8_t, kBaseNonceBytes> base_nonce{};

  // The header's bytes (what the file starts with, and the associated data of every segment).
  // kInvalidArgument when a field is out of its bounds.
  Result<Bytes> encode() const;
  Json to_json() const;
};

// Reads the 8-byte prefix and returns the header length it declares, checked against the bounds
// (kFormat: not an envelope, unknown version or suite, length out of range).
Result<std::size_t> envelope_header_length(std::span<const std::uint8_t> prefix);
// Parses a whole header (exactly header-length bytes). Every length is checked before use;
// trailing or missing bytes, empty or oversized fields, a zero epoch, a segment size out of range
// or invalid UTF-8-free text (NUL bytes) are kFormat.
Result<EnvelopeHeader> parse_envelope_header(std::span<const std::uint8_t> bytes);
// Reads and parses the header at the start of `in`; `out_raw` receives its bytes.
Result<EnvelopeHeader> read_envelope_header(ByteSource& in, Bytes* out_raw = nullptr);

// The file's data encryption key: HKDF-SHA256 as in the file comment.
Result<SecretBytes> derive_dek(const SecretBytes& primary, const EnvelopeHeader& header);
// The nonce of segment `index`.
std::array<std::uint8_t, 12> segment_nonce(const EnvelopeHeader& header, std::uint32_t index,
                                           bool last);

struct EnvelopeStats {
  std::uint64_t plaintext_bytes = 0;
  std::uint64_t ciphertext_bytes = 0;  // header included
  std::uint64_t segments = 0;
};

// Writes header and segments of `in` to `out` under the primary key.
Result<EnvelopeStats> seal_stream(const SecretBytes& primary, const EnvelopeHeader& header,
                                  ByteSource& in, ByteSink& out);
// Reads the header and the segments of `in` and writes the plaintext to `out`. `primary_for` is
// called once with the parsed header and returns the primary key.
Result<EnvelopeStats> open_stream(
    const std::function<Result<SecretBytes>(const EnvelopeHeader&)>& primary_for, ByteSource& in,
    ByteSink& out);

// --- with the keyring ---------------------------------------------------------------------------

struct EncryptOptions {
  std::string primary = "default";
  std::uint32_t segment_size = kDefaultSegmentBytes;
};

// Returns the newest epoch of primary key `name` unwrapped by `kek`, creating epoch 1 (a random
// AES-256 key wrapped under `kek`) when the keyring has none. kNotFound when the newest epoch has
// no wrapping by this KEK.
struct PrimaryKey {
  KeyRecord record;
  SecretBytes key;
};
Result<PrimaryKey> current_primary(Keyring& keyring, const KeyEncryptionKey& kek,
                                   std::string_view name);
// Returns primary `name` at `epoch` unwrapped by `kek` (kNotFound naming the KEKs that do wrap
// it).
Result<SecretBytes> unwrap_primary(Keyring& keyring, const KeyEncryptionKey& kek,
                                   std::string_view name, std::uint32_t epoch);
// Adds the next epoch of primary `name` (random, wrapped under `kek`); older epochs become
// "retired" (they still decrypt). Returns the new record.
Result<KeyRecord> rotate_primary(Keyring& keyring, const KeyEncryptionKey& kek,
                                 std::string_view name);

// Encrypts `in` to `out` under the current primary key (fresh DEK id and base nonce).
Result<EnvelopeStats> envelope_encrypt(Keyring& keyring, const KeyEncryptionKey& kek,
                                       ByteSource& in, ByteSink& out,
                                       const EncryptOptions& options = {});
// Decrypts: the header names the primary key and epoch, `kek` unwraps it from the keyring.
Result<EnvelopeStats> envelope_decrypt(Keyring& keyring, const KeyEncryptionKey& kek,
                                       ByteSource& in, ByteSink& out);

}  // namespace keyport::migrate

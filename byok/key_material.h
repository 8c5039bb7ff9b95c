// SPDX-License-Identifier: Apache-2.0
// Key material that lives in files, and the plaintext of a BYOK transfer blob
// (Microsoft Learn, BYOK specification): PKCS#8 PrivateKeyInfo DER for RSA and EC keys, the raw key
// bytes for AES keys.
//
// - load_key_material() reads the private-key files people actually have (PKCS#8 PEM or DER,
//   encrypted PKCS#8, PKCS#1 "RSA PRIVATE KEY", SEC1 "EC PRIVATE KEY", raw or hex AES keys) and
//   re-encodes them the way Azure expects: an exact-length PKCS#8 DER, EC keys with their public
//   key;
// - inspect_pkcs8() says what a PKCS#8 plaintext holds without trusting its length, for the
//   linter (SoftHSM 2.6.1 pads it with zeros, docs/quirks.md softhsm-kwp-zero-padding);
// - wrap_key_material() turns loaded material into a .byok file with the software RSA-AES wrap.
//
// Every byte of key material stays in SecretBytes; nothing here prints or logs it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "byok/byok_file.h"
#include "byok/kid.h"
#include "byok/public_key.h"
#include "core/algorithms.h"
#include "core/error.h"
#include "core/secret.h"

namespace keyport::byok {

// How a key file was written.
enum class KeyFileFormat {
  kPkcs8,           // "PRIVATE KEY" PEM or PrivateKeyInfo DER
  kEncryptedPkcs8,  // "ENCRYPTED PRIVATE KEY" PEM or EncryptedPrivateKeyInfo DER
  kPkcs1,           // "RSA PRIVATE KEY" PEM or RSAPrivateKey DER
  kSec1,            // "EC PRIVATE KEY" PEM or ECPrivateKey DER
  kRawAes,          // 16, 24 or 32 bytes
  kHexAes,          // 32, 48 or 64 hex digits, surrounding whitespace ignored
};
// "PKCS#8", "encrypted PKCS#8", "PKCS#1", "SEC1", "raw AES", "hex AES".
std::string_view to_string(KeyFileFormat format);

struct KeyMaterial {
  KeySpec spec;
  // The BYOK plaintext: exact-length PKCS#8 DER (RSA, EC with its public key) or the AES key.
  SecretBytes encoded;
  // RSA and EC keys only.
  std::optional<PublicKey> public_key;
  KeyFileFormat format = KeyFileFormat::kPkcs8;
  bool pem = false;
};

// True when the file needs a passphrase: an "ENCRYPTED PRIVATE KEY" PEM block, a PEM block with a
// legacy "Proc-Type: 4,ENCRYPTED" header, or a DER EncryptedPrivateKeyInfo.
bool key_file_is_encrypted(std::span<const std::uint8_t> file);

// Reads one private key (or one AES key) from the contents of a key file.
// - kAuth: the file is encrypted and no passphrase was given, or the passphrase is wrong;
// - kFormat: not a key file keyport can read (garbage, a 17-byte "raw key", two keys in one
//   file, trailing bytes after a DER key);
// - kInvalidArgument: a public key or certificate instead of a private key;
// - kUnsupported (detail "BYOK-KEY-TYPE"): a key Azure BYOK does not take (RSA-1024, P-192,
//   Ed25519, ...), with the accepted types in the message.
Result<KeyMaterial> load_key_material(std::span<const std::uint8_t> file,
                                      const SecretBytes* passphrase);

// What a PKCS#8 plaintext holds.
struct Pkcs8Info {
  KeySpec spec;
  PublicKey public_key;
  std::size_t der_length = 0;          // bytes the DER takes; the rest of the input is trailing
  bool ec_public_key_present = false;  // EC: ECPrivateKey has its [1] publicKey
};
// Parses a PrivateKeyInfo at the start of `plaintext`; bytes after the DER are allowed and
// reported through der_length. kFormat (detail "BYOK-PKCS8-INVALID") when it is not a PKCS#8
// key OpenSSL can read; kUnsupported (detail "BYOK-KEY-TYPE") for a key type or size outside
// all_key_specs().
Result<Pkcs8Info> inspect_pkcs8(const SecretBytes& plaintext);

// The AES key check value: lowercase hex of the first 3 bytes of AES-ECB(key, 0^16).
// kInvalidArgument unless the key is 16, 24 or 32 bytes.
Result<std::string> aes_key_check_value(const SecretBytes& key);

// Wraps loaded key material for `kek` with the software RSA-AES transfer wrap. Checks first that
// `target` accepts the key (kUnsupported, detail "BYOK-PROFILE") and that the KEK is RSA.
Result<ByokFile> wrap_key_material(const KeyMaterial& key, const PublicKey& kek, const KeyId& kid,
                                   TargetKind target, WrapAlg enc, std::string generator);

}  // namespace keyport::byok

// SPDX-License-Identifier: Apache-2.0
#include "byok/key_material.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <vector>

#include "byok/crypto.h"
#include "byok/lint.h"
#include "byok/profile.h"
#include "core/encoding.h"
#include "core/ossl.h"
#include "core/strings.h"

namespace keyport::byok {
namespace {

constexpr std::uint8_t kDerSequence = 0x30;
constexpr std::uint8_t kDerInteger = 0x02;
constexpr std::uint8_t kDerOctetString = 0x04;
constexpr std::uint8_t kDerContext1 = 0xA1;  // ECPrivateKey [1] publicKey
constexpr std::array<std::size_t, 3> kAesKeyBytes = {16, 24, 32};
constexpr std::string_view kPemBegin = "-----BEGIN ";

// ---------------------------------------------------------------------------------------------
// A minimal DER reader, enough to tell key structures apart and to find where a DER value ends
// without handing trailing bytes to OpenSSL.

struct Tlv {
  std::uint8_t tag = 0;
  std::span<const std::uint8_t> content;
  std::size_t size = 0;  // header + content
};

// One TLV at the start of `in`: single-byte tags, definite lengths of up to 4 length bytes.
std::optional<Tlv> read_tlv(std::span<const std::uint8_t> in) {
  if (in.size() < 2 || (in[0] & 0x1f) == 0x1f) {
    return std::nullopt;
  }
  std::size_t length = in[1];
  std::size_t header = 2;
  if ((length & 0x80) != 0) {
    const std::size_t count = length & 0x7f;
    if (count == 0 || count > 4 || in.size() < 2 + count) {
      return std::nullopt;
    }
    length = 0;
    for (std::size_t i = 0; i < count; ++i) {
      length = (length << 8) | in[2 + i];
    }
    header = 2 + count;
  }
  if (length > in.size() - header) {
    return std::nullopt;
  }
  return Tlv{in[0], in.subspan(header, length), header + length};
}

// The TLVs that make up `content`, or nullopt when one does not parse.
std::optional<std::vector<Tlv>> read_children(std::span<const std::uint8_t> content) {
  std::vector<Tlv> out;
  while (!content.empty()) {
    auto tlv = read_tlv(content);
    if (!tlv) {
      return std::nullopt;
    }
    out.push_back(*tlv);
    content = content.subspan(tlv->size);
  }
  return out;
}

enum class DerKind { kPkcs8, kEncryptedPkcs8, kPkcs1, kSec1, kUnknown };

// Tells the four private-key structures apart by the tags of their first members.
DerKind sniff_der(std::span<const std::uint8_t> der) {
  auto outer = read_tlv(der);
  if (!outer || outer->tag != kDerSequence) {
    return DerKind::kUnknown;
  }
  auto kids = read_children(outer->content);
  if (!kids || kids->size() < 2) {
    return DerKind::kUnknown;
  }
  const std::uint8_t first = (*kids)[0].tag;
  const std::uint8_t second = (*kids)[1].tag;
  if (first == kDerSequence && second == kDerOctetString && kids->size() == 2) {
    return DerKind::kEncryptedPkcs8;
  }
  if (first != kDerInteger) {
    return DerKind::kUnknown;
  }
  if (second == kDerSequence && kids->size() >= 3 && (*kids)[2].tag == kDerOctetString) {
    return DerKind::kPkcs8;
  }
  if (second == kDerInteger) {
    return DerKind::kPkcs1;
  }
  if (second == kDerOctetString) {
    return DerKind::kSec1;
  }
  return DerKind::kUnknown;
}

KeyFileFormat format_of(DerKind kind) {
  switch (kind) {
    case DerKind::kEncryptedPkcs8:
      return KeyFileFormat::kEncryptedPkcs8;
    case DerKind::kPkcs1:
      return KeyFileFormat::kPkcs1;
    case DerKind::kSec1:
      return KeyFileFormat::kSec1;
    case DerKind::kPkcs8:
    case DerKind::kUnknown:
      break;
  }
  return KeyFileFormat::kPkcs8;
}

// ---------------------------------------------------------------------------------------------
// Small text helpers.

bool is_hex_digit(std::uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::uint8_t hex_value(std::uint8_t c) {
  if (c >= '0' && c <= '9') {
    return static_cast<std::uint8_t>(c - '0');
  }
  if (c >= 'a' && c <= 'f') {
    return static_cast<std::uint8_t>(c - 'a' + 10);
  }
  return static_cast<std::uint8_t>(c - 'A' + 10);
}

std::span<const std::uint8_t> trim(std::span<const std::uint8_t> in) {
  while (!in.empty() && is_json_space(in.front())) {
    in = in.subspan(1);
  }
  while (!in.empty() && is_json_space(in.back())) {
    in = in.first(in.size() - 1);
  }
  return in;
}

// Skips a UTF-8 byte order mark and leading whitespace.
std::span<const std::uint8_t> skip_bom_and_space(std::span<const std::uint8_t> in) {
  if (in.size() >= 3 && in[0] == 0xEF && in[1] == 0xBB && in[2] == 0xBF) {
    in = in.subspan(3);
  }
  while (!in.empty() && is_json_space(in.front())) {
    in = in.subspan(1);
  }
  return in;
}

bool is_aes_size(std::size_t n) {
  return std::find(kAesKeyBytes.begin(), kAesKeyBytes.end(), n) != kAesKeyBytes.end();
}

std::string accepted_names() {
  std::string out;
  for (const KeySpec& spec : all_key_specs()) {
    out += (out.empty() ? "" : ", ") + spec.name();
  }
  return out;
}

tl::unexpected<Error> unsupported_key(const std::string& what) {
  return make_error(ErrorCode::kUnsupported, std::string(lint_code::kKeyType),
                    what + " cannot be imported into Key Vault or Managed HSM by BYOK (accepted: " +
                        accepted_names() + ")");
}

// ---------------------------------------------------------------------------------------------
// EVP_PKEY <-> KeySpec, PKCS#8, public key.

Result<KeySpec> spec_of(EVP_PKEY* pkey) {
  KeySpec spec;
  if (EVP_PKEY_is_a(pkey, "RSA") == 1) {
    spec.family = KeyFamily::kRsa;
    spec.bits = static_cast<unsigned>(std::max(EVP_PKEY_get_bits(pkey), 0));
  } else if (EVP_PKEY_is_a(pkey, "EC") == 1) {
    std::array<char, 80> group{};
    std::size_t group_len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group.data(), group.size(),
                                       &group_len) != 1) {
      ossl::drain_errors();
      return unsupported_key("an EC key with explicit curve parameters (no named curve)");
    }
    const std::string name(group.data(), group_len);
    std::optional<Curve> curve;
    for (Curve c : {Curve::kP256, Curve::kP384, Curve::kP521, Curve::kP256K}) {
      if (name == curve_openssl_name(c)) {
        curve = c;
      }
    }
    if (!curve) {
      return unsupported_key("an EC key on curve " + name);
    }
    spec.family = KeyFamily::kEc;
    spec.curve = curve;
    spec.bits = curve_bits(*curve);
  } else {
    const char* type = EVP_PKEY_get0_type_name(pkey);
    return unsupported_key(std::string("a ") + (type != nullptr ? type : "non-RSA, non-EC") +
                           " key");
  }
  const auto& known = all_key_specs();
  if (std::find(known.begin(), known.end(), spec) == known.end()) {
    return unsupported_key("an RSA-" + std::to_string(spec.bits) + " key");
  }
  return spec;
}

Result<PublicKey> public_key_of(EVP_PKEY* pkey) {
  const int len = i2d_PUBKEY(pkey, nullptr);
  if (len <= 0) {
    return ossl::crypto_failure("cannot encode the public key");
  }
  Bytes der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  if (i2d_PUBKEY(pkey, &p) != len) {
    return ossl::crypto_failure("cannot encode the public key");
  }
  return PublicKey::from_spki_der(der);
}

// PrivateKeyInfo DER of exactly the key; EC keys always carry their public key (OpenSSL
// otherwise keeps the "no public key" encoding of a key read without one).
Result<SecretBytes> encode_pkcs8(EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "EC") == 1 &&
      EVP_PKEY_set_int_param(pkey, OSSL_PKEY_PARAM_EC_INCLUDE_PUBLIC, 1) != 1) {
    return ossl::crypto_failure("cannot ask for the EC public key in the PKCS#8 encoding");
  }
  ossl::UniquePtr<PKCS8_PRIV_KEY_INFO> p8(EVP_PKEY2PKCS8(pkey));
  if (!p8) {
    return ossl::crypto_failure("cannot encode the key as PKCS#8");
  }
  const int len = i2d_PKCS8_PRIV_KEY_INFO(p8.get(), nullptr);
  if (len <= 0) {
    return ossl::crypto_failure("cannot encode the key as PKCS#8");
  }
  SecretBytes out(static_cast<std::size_t>(len));
  unsigned char* p = out.reveal_mut(SecretAccess::unsafe()).data();
  if (i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &p) != len) {
    return ossl::crypto_failure("cannot encode the key as PKCS#8");
  }
  return out;
}

// Whether the ECPrivateKey inside a PKCS#8 carries its [1] publicKey.
bool ec_has_public_key(const PKCS8_PRIV_KEY_INFO* p8) {
  const unsigned char* inner = nullptr;
  int inner_len = 0;
  if (PKCS8_pkey_get0(nullptr, &inner, &inner_len, nullptr, p8) != 1 || inner == nullptr ||
      inner_len <= 0) {
    return false;
  }
  auto ec_key = read_tlv({inner, static_cast<std::size_t>(inner_len)});
  if (!ec_key || ec_key->tag != kDerSequence) {
    return false;
  }
  auto kids = read_children(ec_key->content);
  if (!kids) {
    return false;
  }
  return std::any_of(kids->begin(), kids->end(),
                     [](const Tlv& t) { return t.tag == kDerContext1; });
}

// ---------------------------------------------------------------------------------------------
// Reading DER and PEM key files.

int passphrase_callback(char* buf, int size, int /*rwflag*/, void* user) {
  const auto* passphrase = static_cast<const SecretBytes*>(user);
  if (passphrase == nullptr || size < 0) {
    return -1;
  }
  const auto bytes = passphrase->reveal(SecretAccess::unsafe());
  if (bytes.size() > static_cast<std::size_t>(size)) {
    return -1;
  }
  std::memcpy(buf, bytes.data(), bytes.size());
  return static_cast<int>(bytes.size());
}

tl::unexpected<Error> passphrase_needed() {
  return make_error(ErrorCode::kAuth,
                    "the key file is encrypted: give its passphrase (--passphrase-source "
                    "env:VAR or file:PATH, or type it at the prompt)");
}

tl::unexpected<Error> wrong_passphrase() {
  ossl::drain_errors();
  return make_error(ErrorCode::kAuth,
                    "cannot decrypt the key file: wrong passphrase (or a damaged file)");
}

// Decodes one private key structure that spans all of `der`.
Result<ossl::UniquePtr<EVP_PKEY>> decode_der(DerKind kind, std::span<const std::uint8_t> der,
                                             const SecretBytes* passphrase) {
  auto outer = read_tlv(der);
  if (!outer || outer->tag != kDerSequence) {
    return make_error(ErrorCode::kFormat, "the key is not DER (no ASN.1 SEQUENCE)");
  }
  if (outer->size != der.size()) {
    return make_error(ErrorCode::kFormat, "the key has " +
                                              std::to_string(der.size() - outer->size) +
                                              " trailing bytes after its DER encoding");
  }
  if (der.size() > static_cast<std::size_t>(LONG_MAX)) {
    return make_error(ErrorCode::kFormat, "the key is too large");
  }
  const long len = static_cast<long>(der.size());
  const unsigned char* p = der.data();
  ossl::UniquePtr<EVP_PKEY> pkey;
  switch (kind) {
    case DerKind::kPkcs8: {
      ossl::UniquePtr<PKCS8_PRIV_KEY_INFO> p8(d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, len));
      if (p8) {
        pkey.reset(EVP_PKCS82PKEY(p8.get()));
      }
      break;
    }
    case DerKind::kEncryptedPkcs8: {
      if (passphrase == nullptr) {
        return passphrase_needed();
      }
      ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(der.data(), static_cast<int>(der.size())));
      if (!bio) {
        return ossl::crypto_failure("cannot read the encrypted key");
      }
      pkey.reset(d2i_PKCS8PrivateKey_bio(bio.get(), nullptr, passphrase_callback,
                                         const_cast<SecretBytes*>(passphrase)));
      if (!pkey) {
        return wrong_passphrase();
      }
      p = der.data() + der.size();
      break;
    }
    case DerKind::kPkcs1:
      pkey.reset(d2i_PrivateKey(EVP_PKEY_RSA, nullptr, &p, len));
      break;
    case DerKind::kSec1:
      pkey.reset(d2i_PrivateKey(EVP_PKEY_EC, nullptr, &p, len));
      break;
    case DerKind::kUnknown:
      break;
  }
  ossl::drain_errors();
  if (!pkey || p != der.data() + der.size()) {
    const char* what = kind == DerKind::kPkcs1  ? "an RSAPrivateKey (PKCS#1)"
                       : kind == DerKind::kSec1 ? "an ECPrivateKey (SEC1) with a named curve"
                                                : "a PrivateKeyInfo (PKCS#8)";
    return make_error(ErrorCode::kFormat,
                      std::string("the key is not ") + what + " that OpenSSL can read");
  }
  return pkey;
}

struct PemBlock {
  std::string label;
  std::string header;
  SecretBytes der;
};

// The three buffers PEM_read_bio_ex hands out, in secure memory, wiped when freed.
struct PemParts {
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  PemParts() = default;
  PemParts(const PemParts&) = delete;
  PemParts& operator=(const PemParts&) = delete;
  ~PemParts() {
    OPENSSL_secure_free(name);
    OPENSSL_secure_free(header);
    if (data != nullptr) {
      OPENSSL_secure_clear_free(data, static_cast<std::size_t>(len < 0 ? 0 : len));
    }
  }
};

Result<std::vector<PemBlock>> read_pem_blocks(std::span<const std::uint8_t> text) {
  if (text.size() > static_cast<std::size_t>(INT_MAX)) {
    return make_error(ErrorCode::kFormat, "the key file is too large");
  }
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) {
    return ossl::crypto_failure("cannot read the PEM file");
  }
  std::vector<PemBlock> blocks;
  for (;;) {
    PemParts parts;
    if (PEM_read_bio_ex(bio.get(), &parts.name, &parts.header, &parts.data, &parts.len,
                        PEM_FLAG_SECURE) != 1) {
      const unsigned long err = ERR_peek_last_error();
      const bool at_end = ERR_GET_LIB(err) == ERR_LIB_PEM &&
                          ERR_GET_REASON(err) == PEM_R_NO_START_LINE && !blocks.empty();
      ossl::drain_errors();
      if (at_end) {
        return blocks;
      }
      return make_error(ErrorCode::kFormat,
                        "the PEM file does not parse (a damaged BEGIN/END block or base64)");
    }
    PemBlock block;
    block.label = parts.name != nullptr ? parts.name : "";
    block.header = parts.header != nullptr ? parts.header : "";
    block.der = SecretBytes(std::span<const std::uint8_t>(
        parts.data, static_cast<std::size_t>(parts.len < 0 ? 0 : parts.len)));
    blocks.push_back(std::move(block));
  }
}

// Decrypts a PEM body with a legacy "Proc-Type: 4,ENCRYPTED" header in place.
Status decrypt_legacy_pem(PemBlock& block, const SecretBytes* passphrase) {
  if (passphrase == nullptr) {
    return passphrase_needed();
  }
  EVP_CIPHER_INFO cipher;
  if (PEM_get_EVP_CIPHER_INFO(block.header.data(), &cipher) != 1) {
    ossl::drain_errors();
    return make_error(ErrorCode::kFormat,
                      "the PEM block's encryption header (DEK-Info) is not one OpenSSL knows");
  }
  long len = static_cast<long>(block.der.size());
  if (PEM_do_header(&cipher, block.der.reveal_mut(SecretAccess::unsafe()).data(), &len,
                    passphrase_callback, const_cast<SecretBytes*>(passphrase)) != 1 ||
      len < 0) {
    return wrong_passphrase();
  }
  block.der.truncate(static_cast<std::size_t>(len));
  return {};
}

bool is_private_key_label(std::string_view label) {
  return label == "PRIVATE KEY" || label == "ENCRYPTED PRIVATE KEY" || label == "RSA PRIVATE KEY" ||
         label == "EC PRIVATE KEY";
}

bool is_public_label(std::string_view label) {
  return label == "PUBLIC KEY" || label == "RSA PUBLIC KEY" || label == "CERTIFICATE" ||
         label == "TRUSTED CERTIFICATE" || label == "X509 CERTIFICATE";
}

DerKind kind_for_label(std::string_view label) {
  if (label == "PRIVATE KEY") {
    return DerKind::kPkcs8;
  }
  if (label == "ENCRYPTED PRIVATE KEY") {
    return DerKind::kEncryptedPkcs8;
  }
  if (label == "RSA PRIVATE KEY") {
    return DerKind::kPkcs1;
  }
  return DerKind::kSec1;
}

Result<KeyMaterial> finish(ossl::UniquePtr<EVP_PKEY> pkey, KeyFileFormat format, bool pem) {
  KEYPORT_ASSIGN_OR_RETURN(KeySpec spec, spec_of(pkey.get()));
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes encoded, encode_pkcs8(pkey.get()));
  // Re-read what was written: exact length, same key type, EC public key present.
  KEYPORT_ASSIGN_OR_RETURN(Pkcs8Info info, inspect_pkcs8(encoded));
  if (info.der_length != encoded.size() || !(info.spec == spec) ||
      (spec.family == KeyFamily::kEc && !info.ec_public_key_present)) {
    return make_error(ErrorCode::kInternal, "the PKCS#8 encoding of the key does not read back");
  }
  KeyMaterial out;
  out.spec = spec;
  out.encoded = std::move(encoded);
  out.public_key = std::move(info.public_key);
  out.format = format;
  out.pem = pem;
  return out;
}

Result<KeyMaterial> load_pem(std::span<const std::uint8_t> text, const SecretBytes* passphrase) {
  KEYPORT_ASSIGN_OR_RETURN(std::vector<PemBlock> blocks, read_pem_blocks(text));
  PemBlock* key_block = nullptr;
  std::size_t key_blocks = 0;
  std::string other_labels;
  bool saw_public = false;
  for (PemBlock& block : blocks) {
    if (is_private_key_label(block.label)) {
      key_block = &block;
      ++key_blocks;
    } else {
      saw_public = saw_public || is_public_label(block.label);
      other_labels += (other_labels.empty() ? "\"" : ", \"") + block.label + "\"";
    }
  }
  if (key_blocks > 1) {
    return make_error(ErrorCode::kFormat, "the file holds " + std::to_string(key_blocks) +
                                              " private keys; give a file with exactly one");
  }
  if (key_block == nullptr) {
    if (saw_public) {
      return make_error(ErrorCode::kInvalidArgument,
                        "the file holds no private key, only " + other_labels +
                            "; byok wrap needs the private key (or the AES key) to wrap");
    }
    return make_error(ErrorCode::kFormat,
                      "the file holds no PEM private key keyport reads (PRIVATE KEY, ENCRYPTED "
                      "PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY); found " +
                          other_labels);
  }
  if (key_block->header.find("ENCRYPTED") != std::string::npos) {
    KEYPORT_TRY(decrypt_legacy_pem(*key_block, passphrase));
  }
  const DerKind kind = kind_for_label(key_block->label);
  auto pkey = decode_der(kind, key_block->der.reveal(SecretAccess::unsafe()), passphrase);
  if (!pkey) {
    // A legacy-encrypted block that decrypted to garbage: the passphrase was wrong.
    if (!key_block->header.empty() && pkey.error().code() == ErrorCode::kFormat) {
      return wrong_passphrase();
    }
    return tl::unexpected(pkey.error().with_context("\"" + key_block->label + "\" PEM block"));
  }
  return finish(std::move(*pkey), format_of(kind), true);
}

Result<KeyMaterial> load_aes(SecretBytes key, KeyFileFormat format) {
  KeyMaterial out;
  out.spec = KeySpec{KeyFamily::kAes, static_cast<unsigned>(key.size() * 8), std::nullopt};
  out.encoded = std::move(key);
  out.format = format;
  return out;
}

std::string describe_size(std::size_t n) {
  return std::to_string(n) + (n == 1 ? " byte" : " bytes");
}

}  // namespace

std::string_view to_string(KeyFileFormat format) {
  switch (format) {
    case KeyFileFormat::kPkcs8:
      return "PKCS#8";
    case KeyFileFormat::kEncryptedPkcs8:
      return "encrypted PKCS#8";
    case KeyFileFormat::kPkcs1:
      return "PKCS#1";
    case KeyFileFormat::kSec1:
      return "SEC1";
    case KeyFileFormat::kRawAes:
      return "raw AES";
    case KeyFileFormat::kHexAes:
      return "hex AES";
  }
  return "";
}

bool key_file_is_encrypted(std::span<const std::uint8_t> file) {
  const auto text = skip_bom_and_space(file);
  const std::string_view chars = as_chars(text);
  if (chars.starts_with(kPemBegin)) {
    return chars.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos ||
           chars.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos;
  }
  auto outer = read_tlv(file);
  return outer && outer->size == file.size() && sniff_der(file) == DerKind::kEncryptedPkcs8;
}

Result<KeyMaterial> load_key_material(std::span<const std::uint8_t> file,
                                      const SecretBytes* passphrase) {
  const auto text = skip_bom_and_space(file);
  if (text.empty()) {
    return make_error(ErrorCode::kFormat, "the key file is empty");
  }
  if (as_chars(text).starts_with(kPemBegin)) {
    return load_pem(text, passphrase);
  }
  // Hex text: an AES key written as 32, 48 or 64 hex digits.
  const auto trimmed = trim(file);
  if (!trimmed.empty() && std::all_of(trimmed.begin(), trimmed.end(), is_hex_digit)) {
    if (trimmed.size() % 2 != 0 || !is_aes_size(trimmed.size() / 2)) {
      return make_error(ErrorCode::kFormat,
                        "the key file holds " + std::to_string(trimmed.size()) +
                            " hex digits; a hex AES key has 32, 48 or 64 (128, 192 or 256 bits)");
    }
    SecretBytes key(trimmed.size() / 2);
    auto out = key.reveal_mut(SecretAccess::unsafe());
    for (std::size_t i = 0; i < out.size(); ++i) {
      out[i] = static_cast<std::uint8_t>((hex_value(trimmed[2 * i]) << 4) |
                                         hex_value(trimmed[2 * i + 1]));
    }
    return load_aes(std::move(key), KeyFileFormat::kHexAes);
  }
  // Raw AES keys: no private-key DER is this short.
  if (is_aes_size(file.size())) {
    return load_aes(SecretBytes(file), KeyFileFormat::kRawAes);
  }
  const DerKind kind = sniff_der(file);
  if (kind != DerKind::kUnknown) {
    KEYPORT_ASSIGN_OR_RETURN(auto pkey, decode_der(kind, file, passphrase));
    return finish(std::move(pkey), format_of(kind), false);
  }
  return make_error(ErrorCode::kFormat,
                    "not a key file keyport reads (" + describe_size(file.size()) +
                        "): expected a PEM or DER private key (PKCS#8, encrypted PKCS#8, PKCS#1, "
                        "SEC1), a raw AES key of 16, 24 or 32 bytes, or one in 32, 48 or 64 hex "
                        "digits");
}

Result<Pkcs8Info> inspect_pkcs8(const SecretBytes& plaintext) {
  const auto bytes = plaintext.reveal(SecretAccess::unsafe());
  auto outer = read_tlv(bytes);
  if (!outer || outer->tag != kDerSequence) {
    return make_error(ErrorCode::kFormat, std::string(lint_code::kPkcs8Invalid),
                      "the key material does not start with a DER SEQUENCE (" +
                          describe_size(bytes.size()) + ")");
  }
  const unsigned char* p = bytes.data();
  ossl::UniquePtr<PKCS8_PRIV_KEY_INFO> p8(
      d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(outer->size)));
  if (!p8 || p != bytes.data() + outer->size) {
    ossl::drain_errors();
    return make_error(ErrorCode::kFormat, std::string(lint_code::kPkcs8Invalid),
                      "the key material is not a PKCS#8 PrivateKeyInfo");
  }
  ossl::UniquePtr<EVP_PKEY> pkey(EVP_PKCS82PKEY(p8.get()));
  if (!pkey) {
    ossl::drain_errors();
    return make_error(ErrorCode::kFormat, std::string(lint_code::kPkcs8Invalid),
                      "the PKCS#8 PrivateKeyInfo does not hold a key OpenSSL can read");
  }
  ossl::drain_errors();
  KEYPORT_ASSIGN_OR_RETURN(KeySpec spec, spec_of(pkey.get()));
  KEYPORT_ASSIGN_OR_RETURN(PublicKey public_key, public_key_of(pkey.get()));
  return Pkcs8Info{spec, std::move(public_key), outer->size,
                   spec.family == KeyFamily::kEc && ec_has_public_key(p8.get())};
}

Result<std::string> aes_key_check_value(const SecretBytes& key) {
  const EVP_CIPHER* cipher = nullptr;
  switch (key.size()) {
    case 16:
      cipher = EVP_aes_128_ecb();
      break;
    case 24:
      cipher = EVP_aes_192_ecb();
      break;
    case 32:
      cipher = EVP_aes_256_ecb();
      break;
    default:
      return make_error(ErrorCode::kInvalidArgument,
                        "an AES key is 16, 24 or 32 bytes, not " + std::to_string(key.size()));
  }
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  const std::array<std::uint8_t, 16> zeros{};
  std::array<std::uint8_t, 32> out{};
  int out_len = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), cipher, nullptr, key.reveal(SecretAccess::unsafe()).data(),
                         nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data(), &out_len, zeros.data(),
                        static_cast<int>(zeros.size())) != 1 ||
      out_len != 16) {
    return ossl::crypto_failure("AES key check value");
  }
  return hex_encode(std::span<const std::uint8_t>(out.data(), 3));
}

Result<ByokFile> wrap_key_material(const KeyMaterial& key, const PublicKey& kek, const KeyId& kid,
                                   TargetKind target, WrapAlg enc, std::string generator) {
  if (kid.version.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the KEK identifier " + kid.url + " has no version; a .byok file names " +
                          "the exact KEK version (az keyvault key show --query key.kid)");
  }
  auto accepted = check_target_accepts(target, key.spec);
  if (!accepted) {
    return tl::unexpected(
        std::move(accepted).error().with_detail(std::string(lint_code::kProfile)));
  }
  if (kek.family() != KeyFamily::kRsa) {
    return make_error(ErrorCode::kUnsupported, "the KEK must be an RSA key (RSA-HSM)");
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes ciphertext, rsa_aes_wrap(kek.spki_der(), enc, key.encoded));
  ByokFile file;
  file.kid = kid.url;
  file.enc = enc;
  file.ciphertext = std::move(ciphertext);
  file.generator = std::move(generator);
  return file;
}

}  // namespace keyport::byok

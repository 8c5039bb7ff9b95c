// SPDX-License-Identifier: Apache-2.0
#include "byok/kek.h"

#include <array>
#include <cstddef>

#include "core/file_io.h"
#include "core/json.h"
#include "core/strings.h"

namespace keyport::byok {
namespace {

constexpr std::size_t kMaxKekFileBytes = 1u << 20;
constexpr std::array<unsigned, 3> kKekSizes = {2048, 3072, 4096};
constexpr std::string_view kImportRule =
    "Azure: \"import is mutually exclusive with all other key operations\"";

std::string describe_key(const PublicKey& key) {
  if (key.family() == KeyFamily::kEc && key.curve()) {
    return "an EC " + std::string(curve_jwk_name(*key.curve())) + " key";
  }
  const std::string bits = std::to_string(key.bits());
  // "an 8192-bit", "a 1024-bit".
  return (bits.front() == '8' ? "an " : "a ") + bits + "-bit RSA key";
}

// key_ops, when present, must be exactly ["import"].
Status check_key_ops(const Json& jwk) {
  auto it = jwk.find("key_ops");
  if (it == jwk.end()) {
    return {};
  }
  if (!it->is_array()) {
    return make_error(ErrorCode::kFormat, "JWK: member \"key_ops\" must be an array of strings");
  }
  std::string listed;
  std::size_t count = 0;
  bool only_import = true;
  for (const auto& op : *it) {
    if (!op.is_string()) {
      return make_error(ErrorCode::kFormat, "JWK: member \"key_ops\" must be an array of strings");
    }
    const std::string& name = op.get_ref<const std::string&>();
    listed += (listed.empty() ? "\"" : ", \"") + name + "\"";
    only_import = only_import && name == "import";
    ++count;
  }
  if (count == 1 && only_import) {
    return {};
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "the KEK's key_ops are [" + listed +
                        "]; a BYOK KEK must have key_ops exactly [\"import\"] (" +
                        std::string(kImportRule) + ")");
}

Result<Kek> kek_from_json(std::string_view text) {
  KEYPORT_ASSIGN_OR_RETURN(Json doc, parse_json_strict(text));
  if (!doc.is_object()) {
    return make_error(ErrorCode::kFormat, "expected a JWK or a KeyBundle JSON object");
  }
  const Json* jwk = &doc;
  auto key_it = doc.find("key");
  if (key_it != doc.end()) {
    if (!key_it->is_object()) {
      return make_error(ErrorCode::kFormat, "KeyBundle: member \"key\" must be a JWK object");
    }
    jwk = &*key_it;
  }
  auto kty = jwk->find("kty");
  if (kty == jwk->end()) {
    return make_error(ErrorCode::kFormat, "JWK: missing member \"kty\"");
  }
  if (!kty->is_string()) {
    return make_error(ErrorCode::kFormat, "JWK: member \"kty\" must be a string");
  }
  auto key = PublicKey::from_jwk(*jwk);
  // Private material is the first thing to report, whatever the kty.
  if (!key && key.error().code() == ErrorCode::kInvalidArgument) {
    return tl::unexpected(key.error());
  }
  const std::string& name = kty->get_ref<const std::string&>();
  if (name != "RSA" && name != "RSA-HSM") {
    return make_error(ErrorCode::kUnsupported,
                      "the KEK must be an RSA key (RSA-HSM); this JWK has kty \"" + name + "\"");
  }
  KEYPORT_TRY(check_key_ops(*jwk));
  if (!key) {
    return tl::unexpected(key.error());
  }
  std::optional<std::string> kid;
  auto kid_it = jwk->find("kid");
  if (kid_it != jwk->end()) {
    if (!kid_it->is_string()) {
      return make_error(ErrorCode::kFormat, "JWK: member \"kid\" must be a string");
    }
    kid = kid_it->get<std::string>();
  }
  return Kek{std::move(*key), std::move(kid)};
}

Result<Kek> read_kek(std::span<const std::uint8_t> contents) {
  std::size_t start = 0;
  // A UTF-8 byte order mark (Windows editors) is not part of PEM or JSON.
  if (contents.size() >= 3 && contents[0] == 0xEF && contents[1] == 0xBB && contents[2] == 0xBF) {
    start = 3;
  }
  while (start < contents.size() && is_json_space(contents[start])) {
    ++start;
  }
  if (start == contents.size()) {
    return make_error(ErrorCode::kFormat, "the KEK file is empty");
  }
  std::string_view text = as_chars(contents.subspan(start));
  if (text.starts_with("-----BEGIN")) {
    KEYPORT_ASSIGN_OR_RETURN(PublicKey key, PublicKey::from_pem(text));
    return Kek{std::move(key), std::nullopt};
  }
  if (text.front() == '{') {
    return kek_from_json(text);
  }
  auto key = PublicKey::from_spki_der(contents);
  if (!key) {
    if (key.error().code() == ErrorCode::kFormat) {
      return tl::unexpected(
          key.error().with_context("not a PEM public key, a JWK or a DER SubjectPublicKeyInfo"));
    }
    return tl::unexpected(key.error());
  }
  return Kek{std::move(*key), std::nullopt};
}

Result<Kek> load_kek_unprefixed(std::span<const std::uint8_t> contents) {
  KEYPORT_ASSIGN_OR_RETURN(Kek kek, read_kek(contents));
  if (kek.key.family() != KeyFamily::kRsa) {
    return make_error(ErrorCode::kUnsupported,
                      "the KEK must be an RSA key (RSA-HSM) created in the target vault with "
                      "--kty RSA-HSM --ops import; this is " +
                          describe_key(kek.key));
  }
  bool size_ok = false;
  for (unsigned bits : kKekSizes) {
    size_ok = size_ok || kek.key.bits() == bits;
  }
  if (!size_ok) {
    return make_error(ErrorCode::kUnsupported, "the KEK is " + describe_key(kek.key) +
                                                   "; Azure KEKs are RSA 2048, 3072 or 4096 bits");
  }
  return kek;
}

}  // namespace

Result<Kek> load_kek(std::span<const std::uint8_t> contents, std::string_view source) {
  auto kek = load_kek_unprefixed(contents);
  if (!kek && !source.empty()) {
    return tl::unexpected(kek.error().with_context(source));
  }
  return kek;
}

Result<Kek> load_kek_file(const std::filesystem::path& path) {
  // read_file's own errors already name the path.
  KEYPORT_ASSIGN_OR_RETURN(Bytes contents, read_file(path, kMaxKekFileBytes));
  return load_kek(contents, path.string());
}

}  // namespace keyport::byok

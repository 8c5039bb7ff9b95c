// SPDX-License-Identifier: Apache-2.0
// byok/lint.h: the .byok linter behind `keyport byok inspect`.
// - the checked-in structural corpus tests/vectors/byok-lint/ (manifest.json: one defect per
//   file and its expected code; no key material anywhere in it);
// - a generated corpus of defects that need keys (tampered parts, wrong KEK, what the plaintext
//   holds), made here with OpenSSL keys and written to the scratch folder for inspection;
// - the real-world Securosys Primus file from tests/vectors/real-world;
// - properties: every refusal of keyport's strict reader is explained, no key material in the
//   report.
#include <catch2/catch.hpp>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "byok/byok_file.h"
#include "byok/crypto.h"
#include "byok/lint.h"
#include "byok/public_key.h"
#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/ossl.h"
#include "core/random.h"
#include "core/secret.h"
#include "tests/support/oracle.h"
#include "tests/support/support.h"

using namespace keyport;
using namespace keyport::byok;
namespace oracle = keyport::test::oracle;
namespace fs = std::filesystem;

namespace {

using PkeyPtr = ossl::UniquePtr<EVP_PKEY>;

const std::string kVersion = "0123456789abcdef0123456789abcdef";
const std::string kVaultKid = "https://contoso.vault.azure.net/keys/KEKforBYOK/" + kVersion;
const std::string kHsmKid = "https://contoso-hsm.managedhsm.azure.net/keys/KEKforBYOK/" + kVersion;
const std::string kOtherHostKid = "https://vault.example.test/keys/KEKforBYOK/" + kVersion;

// Keys are made once per process: RSA generation is the slow part.
EVP_PKEY* kek() {
  static PkeyPtr key = oracle::rsa_keygen(2048);
  return key.get();
}
EVP_PKEY* other_kek() {
  static PkeyPtr key = oracle::rsa_keygen(2048);
  return key.get();
}
EVP_PKEY* rsa_target() {
  static PkeyPtr key = oracle::rsa_keygen(2048);
  return key.get();
}
EVP_PKEY* ec_target() {
  static PkeyPtr key = oracle::ec_keygen("P-256");
  return key.get();
}

PublicKey public_key(EVP_PKEY* key) {
  auto pk = PublicKey::from_spki_der(oracle::spki_der(key));
  REQUIRE_OK(pk);
  return *pk;
}

// An RSA public key with a random odd modulus of `bits` bits: a KEK of another size, for the
// length checks, without generating one.
PublicKey fake_rsa_public(unsigned bits) {
  Bytes n = random_bytes(bits / 8);
  n.front() |= 0x80;
  n.back() |= 0x01;
  const Bytes e = {0x01, 0x00, 0x01};
  auto pk = PublicKey::from_rsa_components(n, e);
  REQUIRE_OK(pk);
  return *pk;
}

std::shared_ptr<const SecretBytes> private_der(EVP_PKEY* key) {
  return std::make_shared<const SecretBytes>(SecretBytes(oracle::pkcs8_der(key)));
}

Bytes wrap(EVP_PKEY* wrapping_kek, WrapAlg alg, const Bytes& plaintext) {
  auto blob = rsa_aes_wrap(oracle::spki_der(wrapping_kek), alg, SecretBytes(plaintext));
  REQUIRE_OK(blob);
  return *blob;
}

std::string byok_text(const std::string& kid, WrapAlg enc, const Bytes& ciphertext) {
  ByokFile file;
  file.kid = kid;
  file.enc = enc;
  file.ciphertext = ciphertext;
  file.generator = "keyport lint_test; OpenSSL software wrap";
  return file.to_json();
}

InspectOptions with_kek(EVP_PKEY* key, bool with_private) {
  InspectOptions o;
  o.kek = public_key(key);
  if (with_private) {
    o.kek_private_der = private_der(key);
  }
  return o;
}

InspectOptions private_only(EVP_PKEY* key) {
  InspectOptions o;
  o.kek_private_der = private_der(key);
  return o;
}

// PKCS#8 of an EC key without the [1] publicKey, as SoftHSM 2.6.1 writes it.
Bytes ec_pkcs8_without_public_key(EVP_PKEY* key) {
  PkeyPtr copy(EVP_PKEY_dup(key));
  REQUIRE(copy);
  REQUIRE(EVP_PKEY_set_int_param(copy.get(), OSSL_PKEY_PARAM_EC_INCLUDE_PUBLIC, 0) == 1);
  return oracle::pkcs8_der(copy.get());
}

std::string sha256_hex(const Bytes& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) == 1);
  return hex_encode(std::span<const std::uint8_t>(digest, len));
}

std::set<std::string> codes_of(const InspectReport& r, Severity severity) {
  std::set<std::string> out;
  for (const Finding& f : r.findings) {
    if (f.severity == severity) {
      out.insert(f.code);
    }
  }
  return out;
}

const Finding* find_code(const InspectReport& r, std::string_view code) {
  for (const Finding& f : r.findings) {
    if (f.code == code) {
      return &f;
    }
  }
  return nullptr;
}

// The table check: `code` is reported with `severity`, and it is the only finding of that
// severity or worse; a good file (code empty) has no error and no warning. Never the catch-all.
void check_finding(const std::string& name, const InspectReport& r, const std::string& code,
                   std::optional<Severity> severity) {
  INFO(name << "\n" << dump_json(r.to_json(), 2));
  CHECK_FALSE(r.has(lint_code::kReaderRefuses));
  const auto errors = codes_of(r, Severity::kError);
  const auto warnings = codes_of(r, Severity::kWarning);
  if (code.empty()) {
    CHECK(errors.empty());
    CHECK(warnings.empty());
    return;
  }
  const Finding* f = find_code(r, code);
  REQUIRE(f != nullptr);
  CHECK(f->severity == *severity);
  CHECK_FALSE(f->message.empty());
  CHECK_FALSE(f->advice.empty());
  if (*severity == Severity::kError) {
    CHECK(errors == std::set<std::string>{code});
    CHECK(r.has_errors());
  } else if (*severity == Severity::kWarning) {
    CHECK(errors.empty());
    CHECK(warnings == std::set<std::string>{code});
  } else {
    CHECK(errors.empty());
    CHECK(warnings.empty());
  }
}

std::optional<Severity> parse_severity(const std::string& s) {
  if (s == "error") {
    return Severity::kError;
  }
  if (s == "warning") {
    return Severity::kWarning;
  }
  if (s == "info") {
    return Severity::kInfo;
  }
  return std::nullopt;
}

fs::path corpus_dir() {
  return test::source_dir() / "tests" / "vectors" / "byok-lint";
}

Json load_manifest() {
  auto text = read_text_file(corpus_dir() / "manifest.json");
  REQUIRE_OK(text);
  auto json = parse_json_strict(*text);
  REQUIRE_OK(json);
  REQUIRE(json->is_array());
  return *json;
}

Bytes read_bytes(const fs::path& path) {
  auto bytes = read_file(path);
  REQUIRE_OK(bytes);
  return *bytes;
}

// A generated corpus entry: the file, how to inspect it, and what must be found.
struct Generated {
  std::string name;
  std::string text;
  InspectOptions options;
  std::string code;
  Severity severity = Severity::kError;
};

std::vector<Generated> generated_corpus() {
  std::vector<Generated> out;
  const Bytes rsa_p8 = oracle::pkcs8_der(rsa_target());
  const Bytes ec_p8 = oracle::pkcs8_der(ec_target());
  const Bytes aes_key = random_bytes(32);
  const Bytes good_rsa = wrap(kek(), WrapAlg::kRsaAesKeyWrap, rsa_p8);

  auto add = [&out](std::string name, std::string text, InspectOptions options, std::string code,
                    Severity severity = Severity::kError) {
    out.push_back(
        {std::move(name), std::move(text), std::move(options), std::move(code), severity});
  };

  // Good files: every check runs, nothing is found.
  add("good-rsa2048-key-vault", byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, good_rsa),
      with_kek(kek(), true), "");
  add("good-ec-p256-managed-hsm",
      byok_text(kHsmKid, WrapAlg::kRsaAesKeyWrap, wrap(kek(), WrapAlg::kRsaAesKeyWrap, ec_p8)),
      private_only(kek()), "");
  add("good-aes256-managed-hsm",
      byok_text(kHsmKid, WrapAlg::kRsaAesKeyWrap, wrap(kek(), WrapAlg::kRsaAesKeyWrap, aes_key)),
      with_kek(kek(), true), "");

  // The RSA part and the KWP part.
  Bytes tampered_rsa = good_rsa;
  tampered_rsa[200] ^= 0x01;  // low-order byte: the value stays below the modulus
  add("tampered-rsa-part", byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, tampered_rsa),
      with_kek(kek(), true), std::string(lint_code::kUnwrapFailed));
  Bytes tampered_kwp = good_rsa;
  tampered_kwp[256 + 300] ^= 0x80;
  add("tampered-kwp-part", byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, tampered_kwp),
      private_only(kek()), std::string(lint_code::kUnwrapFailed));
  Bytes rsa_part_too_big = good_rsa;
  std::fill(rsa_part_too_big.begin(), rsa_part_too_big.begin() + 256, 0xFF);
  add("rsa-part-not-below-modulus", byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, rsa_part_too_big),
      with_kek(kek(), false), std::string(lint_code::kKekMismatch));
  Bytes odd_kwp = good_rsa;
  odd_kwp.resize(odd_kwp.size() - 3);
  add("kwp-part-not-multiple-of-8", byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, odd_kwp),
      with_kek(kek(), false), std::string(lint_code::kKwpLength));

  // The KEK.
  InspectOptions other_kid = with_kek(kek(), false);
  other_kid.kek_kid = "https://contoso.vault.azure.net/keys/KEKforBYOK/" + std::string(32, 'f');
  add("kek-jwk-names-another-version", byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, good_rsa),
      other_kid, std::string(lint_code::kKekMismatch));
  InspectOptions pair = with_kek(other_kek(), false);
  pair.kek_private_der = private_der(kek());
  add("kek-public-and-private-differ", byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, good_rsa),
      pair, std::string(lint_code::kKekMismatch));
  InspectOptions kek3072;
  kek3072.kek = fake_rsa_public(3072);
  add("rsa-part-for-2048-kek-checked-with-3072",
      byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, good_rsa), kek3072,
      std::string(lint_code::kRsaLength));
  InspectOptions kek4096;
  kek4096.kek = fake_rsa_public(4096);
  add("aes-file-for-2048-kek-checked-with-4096",
      byok_text(kHsmKid, WrapAlg::kRsaAesKeyWrap, wrap(kek(), WrapAlg::kRsaAesKeyWrap, aes_key)),
      kek4096, std::string(lint_code::kRsaLength));
  add("ciphertext-shorter-than-the-rsa-part",
      byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap,
                Bytes(good_rsa.begin(), good_rsa.begin() + 200)),
      with_kek(kek(), true), std::string(lint_code::kCtShort));
  add("kwp-part-of-8-bytes",
      byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap,
                Bytes(good_rsa.begin(), good_rsa.begin() + 264)),
      with_kek(kek(), true), std::string(lint_code::kKwpLength));

  // enc and the transfer key.
  add("enc-says-sha1-but-wrapped-with-sha256",
      byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap,
                wrap(kek(), WrapAlg::kRsaAesKeyWrap256, rsa_p8)),
      private_only(kek()), std::string(lint_code::kEncMismatch));
  {
    const SecretBytes transfer(random_bytes(16));
    auto rsa_part = rsa_oaep_encrypt(oracle::spki_der(kek()), OaepHash::kSha1, transfer);
    REQUIRE_OK(rsa_part);
    auto kwp_part = aes_kwp_wrap(transfer, SecretBytes(rsa_p8));
    REQUIRE_OK(kwp_part);
    Bytes blob = *rsa_part;
    blob.insert(blob.end(), kwp_part->begin(), kwp_part->end());
    add("transfer-key-aes128", byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, blob),
        private_only(kek()), std::string(lint_code::kTransferKeySize), Severity::kWarning);
  }

  // What the plaintext holds.
  add("aes-key-in-key-vault-file",
      byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, wrap(kek(), WrapAlg::kRsaAesKeyWrap, aes_key)),
      private_only(kek()), std::string(lint_code::kProfile));
  {
    InspectOptions o = private_only(kek());
    o.target = TargetKind::kKeyVault;
    add("aes-key-other-host-target-key-vault",
        byok_text(kOtherHostKid, WrapAlg::kRsaAesKeyWrap,
                  wrap(kek(), WrapAlg::kRsaAesKeyWrap, aes_key)),
        o, std::string(lint_code::kProfile));
  }
  {
    PkeyPtr rsa1024 = oracle::rsa_keygen(1024);
    add("rsa-1024-target",
        byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap,
                  wrap(kek(), WrapAlg::kRsaAesKeyWrap, oracle::pkcs8_der(rsa1024.get()))),
        private_only(kek()), std::string(lint_code::kKeyType));
  }
  {
    PkeyPtr p192 = oracle::ec_keygen("P-192");
    add("ec-p192-target",
        byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap,
                  wrap(kek(), WrapAlg::kRsaAesKeyWrap, oracle::pkcs8_der(p192.get()))),
        private_only(kek()), std::string(lint_code::kKeyType));
  }
  {
    PkeyPtr ed25519(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    REQUIRE(ed25519);
    add("ed25519-target",
        byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap,
                  wrap(kek(), WrapAlg::kRsaAesKeyWrap, oracle::pkcs8_der(ed25519.get()))),
        private_only(kek()), std::string(lint_code::kKeyType));
  }
  {
    Bytes raw20 = random_bytes(20);
    raw20[0] = 0x42;
    add("raw-20-byte-key",
        byok_text(kHsmKid, WrapAlg::kRsaAesKeyWrap, wrap(kek(), WrapAlg::kRsaAesKeyWrap, raw20)),
        private_only(kek()), std::string(lint_code::kKeyType));
  }
  {
    const Bytes not_pkcs8 = {0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00};
    add("der-sequence-not-pkcs8",
        byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap,
                  wrap(kek(), WrapAlg::kRsaAesKeyWrap, not_pkcs8)),
        private_only(kek()), std::string(lint_code::kPkcs8Invalid));
  }
  {
    Bytes padded = ec_p8;
    padded.insert(padded.end(), 5, 0x00);
    add("pkcs8-plus-5-zero-bytes",
        byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, wrap(kek(), WrapAlg::kRsaAesKeyWrap, padded)),
        private_only(kek()), std::string(lint_code::kPkcs8TrailingZeros), Severity::kWarning);
  }
  {
    Bytes garbage = rsa_p8;
    garbage.insert(garbage.end(), {0x01, 0x02, 0x03});
    add("pkcs8-plus-garbage",
        byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap,
                  wrap(kek(), WrapAlg::kRsaAesKeyWrap, garbage)),
        private_only(kek()), std::string(lint_code::kPkcs8TrailingBytes));
  }
  {
    const Bytes no_pub = ec_pkcs8_without_public_key(ec_target());
    REQUIRE(no_pub.size() < ec_p8.size());
    add("ec-pkcs8-without-public-key",
        byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, wrap(kek(), WrapAlg::kRsaAesKeyWrap, no_pub)),
        private_only(kek()), std::string(lint_code::kEcNoPubkey), Severity::kWarning);
  }
  {
    InspectOptions o = private_only(kek());
    o.target = TargetKind::kManagedHsm;
    add("target-contradicts-kid-host", byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, good_rsa), o,
        std::string(lint_code::kTargetConflict), Severity::kWarning);
  }
  return out;
}

}  // namespace

TEST_CASE("the linter catalogues every finding code once with a severity, a summary and advice",
          "[unit][lint]") {
  const auto& catalogue = finding_catalogue();
  std::set<std::string_view> seen;
  for (const FindingKind& kind : catalogue) {
    INFO(kind.code);
    CHECK(seen.insert(kind.code).second);
    CHECK(kind.code.starts_with("BYOK-"));
    CHECK_FALSE(kind.summary.empty());
    CHECK_FALSE(kind.advice.empty());
    CHECK(find_finding_kind(kind.code) == &kind);
  }
  CHECK(catalogue.size() >= 30);
  CHECK(find_finding_kind("BYOK-NO-SUCH-CODE") == nullptr);
  CHECK(find_finding_kind(lint_code::kPkcs8TrailingZeros)->severity == Severity::kWarning);
  CHECK(find_finding_kind(lint_code::kUnwrapFailed)->severity == Severity::kError);
}

TEST_CASE("docs/byok-inspect.md documents every lint finding code and no other", "[unit][lint]") {
  auto doc = read_text_file(test::source_dir() / "docs" / "byok-inspect.md");
  REQUIRE_OK(doc);
  for (const FindingKind& kind : finding_catalogue()) {
    INFO(kind.code);
    CHECK(doc->find("`" + std::string(kind.code) + "`") != std::string::npos);
  }
  const std::regex code_re("BYOK-[A-Z0-9]+(-[A-Z0-9]+)*");
  for (auto it = std::sregex_iterator(doc->begin(), doc->end(), code_re);
       it != std::sregex_iterator(); ++it) {
    INFO(it->str());
    CHECK(find_finding_kind(it->str()) != nullptr);
  }
}

TEST_CASE("each file of the checked-in lint corpus yields exactly its expected finding",
          "[unit][lint]") {
  const Json manifest = load_manifest();
  std::size_t broken = 0;
  std::set<std::string> codes_covered;
  for (const Json& entry : manifest) {
    const std::string name = entry.at("file").get<std::string>();
    const std::string code = entry.at("code").is_null() ? "" : entry.at("code").get<std::string>();
    const auto severity = entry.at("severity").is_null()
                              ? std::nullopt
                              : parse_severity(entry.at("severity").get<std::string>());
    const Bytes bytes = read_bytes(corpus_dir() / name);
    const InspectReport r = inspect_byok(bytes, {});
    check_finding(name, r, code, severity);
    INFO(name);
    CHECK(r.reader_accepts == entry.at("reader_accepts").get<bool>());
    CHECK(r.reader_accepts == ByokFile::parse(as_chars(bytes)).has_value());
    CHECK(r.file_bytes == bytes.size());
    if (!code.empty()) {
      ++broken;
      codes_covered.insert(code);
    }
  }
  CHECK(broken >= 40);
  CHECK(codes_covered.size() >= 20);
}

TEST_CASE("the linter splits the good corpus files at a 2048-bit RSA part", "[unit][lint]") {
  for (const char* name : {"good-key-vault-rsa2048.byok", "good-managed-hsm-aes256.byok"}) {
    INFO(name);
    const InspectReport r = inspect_byok(read_bytes(corpus_dir() / name), {});
    CHECK(r.plausible_kek_bits == std::vector<unsigned>{2048});
    CHECK(r.rsa_part_bytes == std::optional<std::size_t>(256));
    CHECK(r.split_source == "inferred");
    CHECK(r.has(lint_code::kKeyUnchecked));
    CHECK(r.schema_version == std::optional<std::string>("1.0.0"));
    REQUIRE(r.target.has_value());
  }
  const InspectReport aes =
      inspect_byok(read_bytes(corpus_dir() / "good-managed-hsm-aes256.byok"), {});
  CHECK(aes.target == std::optional<TargetKind>(TargetKind::kManagedHsm));
  CHECK(aes.kwp_part_bytes == std::optional<std::size_t>(40));
}

TEST_CASE(
    "each generated lint file with a key-dependent defect yields exactly its expected finding",
    "[unit][lint]") {
  const fs::path dir = test::make_scratch_subdir("byok-lint-generated");
  const auto corpus = generated_corpus();
  std::size_t broken = 0;
  for (const Generated& g : corpus) {
    // Kept on disk for whoever reads a failure (the scratch folder survives failed runs).
    REQUIRE_OK(write_file_atomic(dir / (g.name + ".byok"), g.text));
    const InspectReport r = inspect_byok(as_bytes(g.text), g.options);
    check_finding(g.name, r, g.code,
                  g.code.empty() ? std::nullopt : std::optional<Severity>(g.severity));
    INFO(g.name);
    CHECK(r.reader_accepts);
    broken += g.code.empty() ? 0 : 1;
  }
  CHECK(broken >= 20);
}

TEST_CASE(
    "the linter finds no error in the real-world Securosys Primus file, only its padding warning",
    "[unit][lint]") {
  auto path = test::vector_path("real-world/securosys-primus-rsa4096.byok");
  const InspectReport r = inspect_byok(read_bytes(path), {});
  INFO(dump_json(r.to_json(), 2));
  CHECK_FALSE(r.has_errors());
  CHECK(codes_of(r, Severity::kWarning) == std::set<std::string>{"BYOK-CT-PADDING"});
  CHECK(r.reader_accepts);
  CHECK(r.ciphertext_bytes == std::optional<std::size_t>(2896));
  CHECK(r.plausible_kek_bits == std::vector<unsigned>{4096});
  CHECK(r.rsa_part_bytes == std::optional<std::size_t>(512));
  CHECK(r.kwp_part_bytes == std::optional<std::size_t>(2384));
  CHECK(r.target == std::optional<TargetKind>(TargetKind::kKeyVault));
  REQUIRE(r.generator.has_value());
  CHECK(r.generator->find("Primus") != std::string::npos);
}

TEST_CASE("with the private KEK the linter reports an RSA key's type and public-key fingerprint",
          "[unit][lint]") {
  const std::string text =
      byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap,
                wrap(kek(), WrapAlg::kRsaAesKeyWrap, oracle::pkcs8_der(rsa_target())));
  const InspectReport r = inspect_byok(as_bytes(text), with_kek(kek(), true));
  INFO(dump_json(r.to_json(), 2));
  CHECK(r.findings.empty());
  REQUIRE(r.key.has_value());
  REQUIRE(r.key->spec.has_value());
  CHECK(r.key->spec->name() == "rsa-2048");
  CHECK(r.key->public_sha256 ==
        std::optional<std::string>(sha256_hex(oracle::spki_der(rsa_target()))));
  CHECK(r.key->pkcs8_bytes == std::optional<std::size_t>(oracle::pkcs8_der(rsa_target()).size()));
  CHECK(r.key->transfer_key_bytes == 32);
  CHECK(r.kek_sha256 == std::optional<std::string>(sha256_hex(oracle::spki_der(kek()))));
  CHECK(r.split_source == "kek");
}

TEST_CASE("with the private KEK the linter reports EC curves and AES check values",
          "[unit][lint]") {
  for (const char* group : {"P-256", "P-384", "P-521", "secp256k1"}) {
    INFO(group);
    PkeyPtr key = oracle::ec_keygen(group);
    const std::string text =
        byok_text(kHsmKid, WrapAlg::kRsaAesKeyWrap384,
                  wrap(kek(), WrapAlg::kRsaAesKeyWrap384, oracle::pkcs8_der(key.get())));
    const InspectReport r = inspect_byok(as_bytes(text), private_only(kek()));
    CHECK_FALSE(r.has_errors());
    CHECK(codes_of(r, Severity::kWarning) ==
          std::set<std::string>{std::string(lint_code::kEncUndocumented)});
    REQUIRE(r.key.has_value());
    REQUIRE(r.key->spec.has_value());
    CHECK(r.key->spec->family == KeyFamily::kEc);
    CHECK(r.key->public_sha256 ==
          std::optional<std::string>(sha256_hex(oracle::spki_der(key.get()))));
    CHECK(r.key->enc_used == WrapAlg::kRsaAesKeyWrap384);
  }
  for (std::size_t bytes : {16u, 24u, 32u}) {
    INFO(bytes);
    const Bytes aes = random_bytes(bytes);
    const std::string text =
        byok_text(kHsmKid, WrapAlg::kRsaAesKeyWrap, wrap(kek(), WrapAlg::kRsaAesKeyWrap, aes));
    const InspectReport r = inspect_byok(as_bytes(text), private_only(kek()));
    CHECK(r.findings.empty());
    REQUIRE(r.key.has_value());
    CHECK(r.key->spec == std::optional<KeySpec>(KeySpec{
                             KeyFamily::kAes, static_cast<unsigned>(bytes * 8), std::nullopt}));
    const Bytes kcv = oracle::aes_check_value(aes);
    CHECK(r.key->aes_kcv == std::optional<std::string>(hex_encode(std::span(kcv).first(3))));
    CHECK_FALSE(r.key->public_sha256.has_value());
  }
}

TEST_CASE("the linter shows both quirks of a SoftHSM 2.6.1 EC plaintext as warnings, not errors",
          "[unit][lint]") {
  // 67-byte PKCS#8 without the public key, zero-padded to 72 bytes inside the KWP plaintext.
  Bytes plaintext = ec_pkcs8_without_public_key(ec_target());
  REQUIRE(plaintext.size() == 67);
  plaintext.resize(72, 0x00);
  const std::string text = byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap,
                                     wrap(kek(), WrapAlg::kRsaAesKeyWrap, plaintext));
  const InspectReport r = inspect_byok(as_bytes(text), private_only(kek()));
  INFO(dump_json(r.to_json(), 2));
  CHECK_FALSE(r.has_errors());
  CHECK(codes_of(r, Severity::kWarning) ==
        std::set<std::string>{std::string(lint_code::kPkcs8TrailingZeros),
                              std::string(lint_code::kEcNoPubkey)});
  const Finding* zeros = find_code(r, lint_code::kPkcs8TrailingZeros);
  REQUIRE(zeros != nullptr);
  CHECK(zeros->message.find("SoftHSM") != std::string::npos);
  CHECK(zeros->advice.find("pyca/cryptography") != std::string::npos);
  REQUIRE(r.key.has_value());
  CHECK(r.key->pkcs8_bytes == std::optional<std::size_t>(67));
  CHECK(r.key->plaintext_bytes == 72);
}

TEST_CASE("a tampered RSA part and a tampered KWP part give the same lint finding and message",
          "[unit][lint]") {
  const Bytes good = wrap(kek(), WrapAlg::kRsaAesKeyWrap, oracle::pkcs8_der(ec_target()));
  Bytes bad_rsa = good;
  bad_rsa[100] ^= 0x04;
  Bytes bad_kwp = good;
  bad_kwp[good.size() - 1] ^= 0x04;
  const InspectReport r1 = inspect_byok(
      as_bytes(byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, bad_rsa)), private_only(kek()));
  const InspectReport r2 = inspect_byok(
      as_bytes(byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, bad_kwp)), private_only(kek()));
  const Finding* f1 = find_code(r1, lint_code::kUnwrapFailed);
  const Finding* f2 = find_code(r2, lint_code::kUnwrapFailed);
  REQUIRE(f1 != nullptr);
  REQUIRE(f2 != nullptr);
  CHECK(f1->message == f2->message);
  CHECK(f1->message.find(std::string(kIntegrityMessage)) != std::string::npos);
  CHECK_FALSE(r1.key.has_value());
  CHECK_FALSE(r2.key.has_value());
}

TEST_CASE("the linter never unwraps a file wrapped for another KEK of the same size",
          "[unit][lint]") {
  const std::string text =
      byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap,
                wrap(other_kek(), WrapAlg::kRsaAesKeyWrap, oracle::pkcs8_der(ec_target())));
  const InspectReport r = inspect_byok(as_bytes(text), private_only(kek()));
  INFO(dump_json(r.to_json(), 2));
  // The RSA part may or may not be below this KEK's modulus; either way nothing is unwrapped.
  const auto errors = codes_of(r, Severity::kError);
  CHECK(errors.size() == 1);
  CHECK((r.has(lint_code::kUnwrapFailed) || r.has(lint_code::kKekMismatch)));
  CHECK_FALSE(r.key.has_value());
}

TEST_CASE("the linter unwraps with a private KEK in PEM as well as in DER", "[unit][lint]") {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), kek(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  REQUIRE(len > 0);
  InspectOptions o;
  o.kek_private_der = std::make_shared<const SecretBytes>(SecretBytes(std::span<const std::uint8_t>(
      reinterpret_cast<const std::uint8_t*>(data), static_cast<std::size_t>(len))));
  const std::string text =
      byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap,
                wrap(kek(), WrapAlg::kRsaAesKeyWrap, oracle::pkcs8_der(ec_target())));
  const InspectReport r = inspect_byok(as_bytes(text), o);
  INFO(dump_json(r.to_json(), 2));
  CHECK(r.findings.empty());
  REQUIRE(r.key.has_value());
  CHECK(r.key->description == "ec-p256");
}

TEST_CASE("an unusable private KEK is a lint finding, not a failure", "[unit][lint]") {
  InspectOptions o;
  o.kek_private_der = std::make_shared<const SecretBytes>(SecretBytes(random_bytes(100)));
  const Bytes bytes = read_bytes(corpus_dir() / "good-key-vault-rsa2048.byok");
  const InspectReport r = inspect_byok(bytes, o);
  CHECK(codes_of(r, Severity::kError) == std::set<std::string>{"BYOK-KEK-UNUSABLE"});
  CHECK_FALSE(r.key.has_value());
}

TEST_CASE("the JSON lint report holds the findings and never the key material", "[unit][lint]") {
  const Bytes aes = random_bytes(32);
  const std::string text =
      byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, wrap(kek(), WrapAlg::kRsaAesKeyWrap, aes));
  const InspectReport r = inspect_byok(as_bytes(text), private_only(kek()));
  const std::string json = dump_json(r.to_json(), 2);
  INFO(json);
  CHECK(json.find(hex_encode(aes)) == std::string::npos);
  CHECK(json.find(base64url_encode(aes)) == std::string::npos);
  CHECK(json.find(base64_encode(aes)) == std::string::npos);
  auto parsed = parse_json_strict(json);
  REQUIRE_OK(parsed);
  CHECK((*parsed)["valid"] == false);
  CHECK((*parsed)["counts"]["error"] == 1);
  CHECK((*parsed)["findings"][0]["code"] == "BYOK-PROFILE");
  CHECK((*parsed)["key"]["type"] == "aes-256");
  CHECK((*parsed)["key"]["kcv"].is_string());
  CHECK((*parsed)["target"] == "key-vault");
}

TEST_CASE(
    "every refusal of keyport's strict reader is explained by a lint finding in a mutation sweep",
    "[unit][lint]") {
  const std::string good = byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap,
                                     wrap(kek(), WrapAlg::kRsaAesKeyWrap, random_bytes(32)));
  std::mt19937 rng(20240607);
  std::string alphabet = "{}[]\",:=+/-_ \n\\.0aZ\xff";
  alphabet.push_back('\0');
  std::size_t refused = 0;
  for (int i = 0; i < 600; ++i) {
    std::string text = good;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const std::size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0:
          text[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          text.erase(at, 1 + rng() % 8);
          break;
        default:
          text.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
      }
    }
    const InspectReport r = inspect_byok(as_bytes(text), {});
    INFO(text);
    CHECK_FALSE(r.has(lint_code::kReaderRefuses));
    if (!r.reader_accepts) {
      ++refused;
      CHECK((r.has_errors() || r.has(lint_code::kCtStdB64)));
    }
  }
  CHECK(refused > 100);
}

TEST_CASE("without the private KEK a KWP part no key type wraps to is BYOK-KWP-LENGTH",
          "[unit][lint]") {
  // An AES-256 key (40 bytes wrapped) with one stray semiblock after it: 48 bytes fit no AES key
  // (24, 32, 40), no EC PKCS#8 (72 at the least) and no RSA key. Before the lengths of EC and RSA
  // keys were known exactly, this file passed.
  Bytes ct = wrap(kek(), WrapAlg::kRsaAesKeyWrap, random_bytes(32));
  const Bytes extra = random_bytes(8);
  ct.insert(ct.end(), extra.begin(), extra.end());
  const InspectReport r = inspect_byok(as_bytes(byok_text(kHsmKid, WrapAlg::kRsaAesKeyWrap, ct)),
                                       with_kek(kek(), false));
  check_finding("aes-256 plus 8 bytes", r, std::string(lint_code::kKwpLength), Severity::kError);
  // With the private KEK the unwrap itself fails, with its one message.
  const InspectReport p = inspect_byok(as_bytes(byok_text(kHsmKid, WrapAlg::kRsaAesKeyWrap, ct)),
                                       with_kek(kek(), true));
  CHECK(p.has(lint_code::kUnwrapFailed));
}

TEST_CASE(
    "without the private KEK a Key Vault file whose KWP part can only be an AES key is "
    "BYOK-KWP-TARGET",
    "[unit][lint]") {
  const Bytes ct = wrap(kek(), WrapAlg::kRsaAesKeyWrap, random_bytes(24));
  const InspectReport r = inspect_byok(as_bytes(byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, ct)),
                                       with_kek(kek(), false));
  check_finding("aes-192 for Key Vault", r, std::string(lint_code::kKwpTarget), Severity::kError);
  CHECK(find_code(r, lint_code::kKwpTarget)->message.find("aes-192") != std::string::npos);
  // The same file for Managed HSM is fine.
  const InspectReport mhsm = inspect_byok(as_bytes(byok_text(kHsmKid, WrapAlg::kRsaAesKeyWrap, ct)),
                                          with_kek(kek(), false));
  check_finding("aes-192 for Managed HSM", mhsm, "", std::nullopt);
}

TEST_CASE(
    "a 3072-bit KEK given for an EC P-521 file made under a 2048-bit KEK is "
    "BYOK-RSA-LENGTH",
    "[unit][lint]") {
  // P-521 PKCS#8 with its public key: 241 bytes, 256 wrapped, 512 in all under a 2048-bit KEK.
  // Split at 384 bytes, the 128-byte rest fits no key type; before, any length from 72 to 272
  // passed as "an EC key".
  PkeyPtr p521 = oracle::ec_keygen("P-521");
  const Bytes ct = wrap(kek(), WrapAlg::kRsaAesKeyWrap, oracle::pkcs8_der(p521.get()));
  REQUIRE(ct.size() == 512);
  InspectOptions o;
  o.kek = fake_rsa_public(3072);
  const InspectReport r =
      inspect_byok(as_bytes(byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, ct)), o);
  check_finding("p-521 under 2048, 3072 given", r, std::string(lint_code::kRsaLength),
                Severity::kError);
  CHECK(r.plausible_kek_bits == std::vector<unsigned>{2048});
  // And the right KEK finds the file fine.
  const InspectReport ok = inspect_byok(as_bytes(byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, ct)),
                                        with_kek(kek(), false));
  CHECK_FALSE(ok.has(lint_code::kRsaLength));
  CHECK_FALSE(ok.has(lint_code::kKwpLength));
}

TEST_CASE("every key type keyport exports has a KWP length the linter knows", "[unit][lint]") {
  // OpenSSL's encodings (EC with its public key) and SoftHSM's (without it), of every curve and
  // RSA size, wrapped under a 2048-bit KEK: none may be called BYOK-KWP-LENGTH.
  std::vector<std::pair<std::string, Bytes>> keys;
  for (const char* curve : {"P-256", "P-384", "P-521", "secp256k1"}) {
    PkeyPtr k = oracle::ec_keygen(curve);
    keys.emplace_back(std::string(curve) + " openssl", oracle::pkcs8_der(k.get()));
    keys.emplace_back(std::string(curve) + " softhsm", ec_pkcs8_without_public_key(k.get()));
  }
  for (unsigned bits : {2048u, 3072u}) {
    PkeyPtr k = oracle::rsa_keygen(bits);
    keys.emplace_back("rsa-" + std::to_string(bits), oracle::pkcs8_der(k.get()));
  }
  for (const auto& [name, der] : keys) {
    const Bytes ct = wrap(kek(), WrapAlg::kRsaAesKeyWrap, der);
    const InspectReport r = inspect_byok(
        as_bytes(byok_text(kVaultKid, WrapAlg::kRsaAesKeyWrap, ct)), with_kek(kek(), false));
    INFO(name << " (" << der.size() << "-byte PKCS#8)");
    CHECK_FALSE(r.has(lint_code::kKwpLength));
    CHECK_FALSE(r.has(lint_code::kKwpTarget));
    CHECK_FALSE(r.has(lint_code::kRsaLength));
  }
}

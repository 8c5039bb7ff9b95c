// SPDX-License-Identifier: Apache-2.0
#include "tests/skr/skr_rig.h"

#include <catch2/catch.hpp>

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <unistd.h>

#include <functional>
#include <map>

#include "core/digest.h"
#include "core/file_io.h"
#include "tests/support/support.h"

namespace keyport::test::skr {
namespace sk = keyport::skr;

namespace {

// Publishes `make(tmp)`'s output under `final_path` atomically (rename), so that test processes
// running in parallel share one copy; the loser of a race uses the winner's.
void publish_once(const std::filesystem::path& final_path,
                  const std::function<void(const std::filesystem::path&)>& make) {
  if (std::filesystem::exists(final_path)) {
    return;
  }
  std::filesystem::create_directories(final_path.parent_path());
  const std::filesystem::path tmp =
      final_path.parent_path() /
      (final_path.filename().string() + ".tmp-" + std::to_string(::getpid()));
  std::filesystem::remove_all(tmp);
  make(tmp);
  std::error_code ec;
  std::filesystem::rename(tmp, final_path, ec);
  if (ec) {
    std::filesystem::remove_all(tmp);  // another process published it first
  }
  REQUIRE(std::filesystem::exists(final_path));
}

std::filesystem::path cache_dir() {
  return std::filesystem::path(KEYPORT_TEST_TMP) / "skr-cache";
}

}  // namespace

EVP_PKEY& rsa_key(int slot, unsigned bits) {
  // RSA key generation is slow; keys are made once and shared by every test process through
  // PEM files in the build's test-tmp folder.
  static std::map<std::pair<int, unsigned>, ossl::UniquePtr<EVP_PKEY>> cache;
  auto& entry = cache[{slot, bits}];
  if (!entry) {
    const auto path =
        cache_dir() / ("rsa-" + std::to_string(bits) + "-" + std::to_string(slot) + ".pem");
    publish_once(path, [bits](const std::filesystem::path& tmp) {
      ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
      REQUIRE(ctx);
      REQUIRE(EVP_PKEY_keygen_init(ctx.get()) == 1);
      REQUIRE(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), static_cast<int>(bits)) == 1);
      EVP_PKEY* raw = nullptr;
      REQUIRE(EVP_PKEY_generate(ctx.get(), &raw) == 1);
      ossl::UniquePtr<EVP_PKEY> key(raw);
      SecretBytes pem = pkcs8_pem(*key);
      REQUIRE_OK(write_file_atomic(tmp, pem.reveal(SecretAccess::unsafe()), {false, 0600}));
    });
    auto pem = read_secret_file(path);
    REQUIRE_OK(pem);
    auto bytes = pem->reveal(SecretAccess::unsafe());
    ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
    entry.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    REQUIRE(entry);
  }
  return *entry;
}

ossl::UniquePtr<EVP_PKEY> make_ec_key(const char* group) {
  ossl::UniquePtr<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", group));
  REQUIRE(key);
  return key;
}

SecretBytes pkcs8_der(const EVP_PKEY& key) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  REQUIRE(i2d_PKCS8PrivateKey_bio(bio.get(), &key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return SecretBytes(std::span<const std::uint8_t>(reinterpret_cast<std::uint8_t*>(data),
                                                   static_cast<std::size_t>(len)));
}

SecretBytes pkcs8_pem(const EVP_PKEY& key) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PKCS8PrivateKey(bio.get(), &key, nullptr, nullptr, 0, nullptr, nullptr) ==
          1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return SecretBytes(std::span<const std::uint8_t>(reinterpret_cast<std::uint8_t*>(data),
                                                   static_cast<std::size_t>(len)));
}

byok::PublicKey public_of(const EVP_PKEY& key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(&key, &der);
  REQUIRE(len > 0);
  Bytes spki(der, der + len);
  OPENSSL_free(der);
  auto pub = byok::PublicKey::from_spki_der(spki);
  REQUIRE_OK(pub);
  return *std::move(pub);
}

Json public_jwk(const EVP_PKEY& key) {
  return public_of(key).to_jwk();
}

std::string b64(std::string_view text) {
  return base64url_encode(as_bytes(text));
}

std::string signing_input(std::string_view header_json, std::string_view payload_json) {
  return b64(header_json) + "." + b64(payload_json);
}

std::string assemble(std::string_view header_json, std::string_view payload_json,
                     std::span<const std::uint8_t> signature) {
  return signing_input(header_json, payload_json) + "." + base64url_encode(signature);
}

Bytes rsa_sign(EVP_PKEY& key, const char* md, std::string_view input, bool pss) {
  ossl::UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  REQUIRE(EVP_DigestSignInit_ex(ctx.get(), &pctx, md, nullptr, nullptr, &key, nullptr) == 1);
  if (pss) {
    REQUIRE(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1);
    REQUIRE(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1);
  }
  std::size_t len = 0;
  REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &len,
                         reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
  Bytes sig(len);
  REQUIRE(EVP_DigestSign(ctx.get(), sig.data(), &len,
                         reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
  sig.resize(len);
  return sig;
}

Bytes ecdsa_sign(EVP_PKEY& key, const char* md, std::string_view input,
                 std::size_t coordinate_bytes) {
  Bytes der = rsa_sign(key, md, input);  // EVP_DigestSign works the same for ECDSA
  const unsigned char* p = der.data();
  ossl::UniquePtr<ECDSA_SIG> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  REQUIRE(sig);
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  Bytes out(2 * coordinate_bytes);
  REQUIRE(BN_bn2binpad(r, out.data(), static_cast<int>(coordinate_bytes)) > 0);
  REQUIRE(BN_bn2binpad(s, out.data() + coordinate_bytes, static_cast<int>(coordinate_bytes)) > 0);
  return out;
}

Bytes hmac_sha256(std::span<const std::uint8_t> key, std::string_view input) {
  ossl::UniquePtr<EVP_MAC> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  REQUIRE(mac);
  ossl::UniquePtr<EVP_MAC_CTX> ctx(EVP_MAC_CTX_new(mac.get()));
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  REQUIRE(EVP_MAC_init(ctx.get(), key.data(), key.size(), params) == 1);
  REQUIRE(EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(input.data()),
                         input.size()) == 1);
  Bytes out(32);
  std::size_t len = 0;
  REQUIRE(EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) == 1);
  out.resize(len);
  return out;
}

std::string forge_rs256(EVP_PKEY& key, std::string_view header_json,
                        std::string_view payload_json) {
  return assemble(header_json, payload_json,
                  rsa_sign(key, "SHA256", signing_input(header_json, payload_json)));
}

namespace {
// Authorities take several RSA keys; each (stem, url) is made once into the shared cache and
// copied into the test's scratch folder.
sk::SimulatedAuthority make_authority(const std::string& stem, const std::string& url) {
  const auto cached =
      cache_dir() / ("authority-" + stem + "-" + hex_encode(sha256(as_bytes(url))).substr(0, 12));
  publish_once(cached, [&url](const std::filesystem::path& tmp) {
    REQUIRE_OK(sk::SimulatedAuthority::init(tmp, url, false, [] { return kNow; }));
  });
  auto dir = make_scratch_subdir(stem);
  std::filesystem::copy(
      cached, dir,
      std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
  std::filesystem::remove(dir / "server.json");
  auto a = sk::SimulatedAuthority::open(dir, [] { return kNow; });
  REQUIRE_OK(a);
  return *std::move(a);
}
}  // namespace

AuthorityRig::AuthorityRig(const std::string& stem, const std::string& url)
    : m_authority(make_authority(stem, url)) {
  auto r = sk::StaticKeyResolver::from_json(m_authority->trusted_authorities());
  REQUIRE_OK(r);
  m_resolver = *r;
}

sk::AttestationVerifier AuthorityRig::verifier(sk::VerifierOptions options) const {
  options.clock = [] { return kNow; };
  auto v = sk::AttestationVerifier::create(m_resolver, std::move(options));
  REQUIRE_OK(v);
  return *std::move(v);
}

std::string AuthorityRig::mint(sk::MintOptions options) const {
  if (!options.issued_at) {
    options.issued_at = kNow;
  }
  auto t = m_authority->mint(runtime_public(), options);
  REQUIRE_OK(t);
  return *t;
}

Json AuthorityRig::claims(sk::MintOptions options) const {
  if (!options.issued_at) {
    options.issued_at = kNow;
  }
  auto c = m_authority->claims(runtime_public(), options);
  REQUIRE_OK(c);
  return *c;
}

std::string AuthorityRig::sign(const Json& payload, const Json& header_overrides) const {
  auto t = m_authority->sign(payload, header_overrides);
  REQUIRE_OK(t);
  return *t;
}

}  // namespace keyport::test::skr

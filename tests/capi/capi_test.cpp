// SPDX-License-Identifier: Apache-2.0
// libkeyport's C API (include/keyport/keyport.h) as a program that embeds it sees it: this test
// links the shared library libkeyport.so.0 (nothing but kp_* is exported from it) and a SoftHSM2
// token folder of its own made by softhsm-config/init-tokens.sh. What the library wraps is opened
// by OpenSSL EVP (tests/support/oracle.cpp), which keyport's wrapping code does not use.
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "byok/crypto.h"
#include "core/encoding.h"
#include "core/json.h"
#include "core/random.h"
#include "core/strings.h"
#include "core/x509.h"
#include "keyport/keyport.h"
#include "skr/enclave.h"
#include "skr/jws.h"
#include "tests/support/oracle.h"
#include "tests/support/support.h"

using namespace keyport;

namespace {

constexpr const char* kKid =
    "https://kpcapi.vault.azure.net/keys/kek/0123456789abcdef0123456789abcdef";
constexpr const char* kHsmKid =
    "https://kpcapi.managedhsm.azure.net/keys/kek/0123456789abcdef0123456789abcdef";
constexpr const char* kPin = "5678";

// A token folder of this process's own ("capi", user PIN 5678), SOFTHSM2_CONF pointed at it.
void token_folder() {
  static bool done = false;
  if (done) {
    return;
  }
  const auto dir = test::make_scratch_subdir("capi-tokens");
  std::string out;
  const int rc =
      test::run_command("'" + (test::source_dir() / "softhsm-config" / "init-tokens.sh").string() +
                            "' '" + dir.string() + "' capi:1234:" + kPin,
                        &out);
  INFO(out);
  REQUIRE(rc == 0);
  ::setenv("SOFTHSM2_CONF", (dir / "softhsm2.conf").c_str(), 1);
  done = true;
}

struct Err {
  kp_error* e = nullptr;
  ~Err() { kp_error_free(e); }
  kp_error** operator&() {
    kp_error_free(e);
    e = nullptr;
    return &e;
  }
  std::string message() const { return kp_error_message(e); }
};

int pin_from_ctx(void* ctx, const char* /*label*/, char* buf, size_t capacity, size_t* len) {
  const auto* pin = static_cast<const std::string*>(ctx);
  if (pin->empty() || pin->size() > capacity) {
    return 1;
  }
  std::memcpy(buf, pin->data(), pin->size());
  *len = pin->size();
  return 0;
}

struct Opened {
  kp_module* module = nullptr;
  kp_token* token = nullptr;
  ~Opened() {
    kp_token_close(token);
    kp_module_close(module);
  }
};

void open_token(Opened& o, const std::string& pin = kPin) {
  token_folder();
  Err err;
  REQUIRE(kp_module_open(KEYPORT_DEFAULT_MODULE, nullptr, &o.module, &err) == KP_OK);
  std::string p = pin;
  const kp_status st = kp_token_open(o.module, "capi", nullptr, pin_from_ctx, &p, &o.token, &err);
  INFO(err.message());
  REQUIRE(st == KP_OK);
}

std::string take(char* s) {
  std::string out(s == nullptr ? "" : s);
  kp_free(s);
  return out;
}

Json json_of(char* s) {
  auto j = parse_json_strict(take(s));
  REQUIRE_OK(j);
  return *j;
}

struct Kek {
  ossl::UniquePtr<EVP_PKEY> key = test::oracle::rsa_keygen(2048);
  std::string pem = test::oracle::spki_pem(key.get());
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(pem.data()); }
};

// The .byok file of `b`, through the caller-buffer path (asking for the size first).
std::string byok_text(const kp_byok* b) {
  Err err;
  size_t len = 0;
  CHECK(kp_byok_copy(b, nullptr, 0, &len, &err) == KP_ERR_BAD_INPUT);
  CHECK(std::string(kp_error_detail(err.e)) == "buffer-too-small");
  REQUIRE(len > 0);
  std::vector<uint8_t> buf(len);
  REQUIRE(kp_byok_copy(b, buf.data(), buf.size(), &len, &err) == KP_OK);
  return std::string(buf.begin(), buf.end());
}

// OpenSSL opens the transfer blob with the KEK's private key.
Bytes oracle_unwrap(const std::string& byok_json, EVP_PKEY* kek_private) {
  auto j = parse_json_strict(byok_json);
  REQUIRE_OK(j);
  auto ct = base64url_decode((*j)["ciphertext"].get<std::string>());
  REQUIRE_OK(ct);
  auto alg = parse_wrap_alg((*j)["header"]["enc"].get<std::string>());
  REQUIRE_OK(alg);
  return test::oracle::unwrap_transfer_blob(kek_private, *alg, *ct);
}

// The AES key check value, by OpenSSL: the first 3 bytes of AES-ECB(key, 0^16), hex.
std::string openssl_kcv(std::span<const std::uint8_t> key) {
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  REQUIRE(key.size() == 32);
  unsigned char zero[16] = {};
  unsigned char out[32] = {};
  int n = 0;
  REQUIRE(EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_ecb(), nullptr, key.data(), nullptr) == 1);
  EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
  REQUIRE(EVP_EncryptUpdate(ctx.get(), out, &n, zero, sizeof zero) == 1);
  return hex_encode(std::span<const std::uint8_t>(out, 3));
}

}  // namespace

TEST_CASE("the C API: version, ABI and the library's exports", "[softhsm][capi]") {
  CHECK(std::string(kp_version()) == KEYPORT_PROJECT_VERSION);
  CHECK(kp_abi_version() == KP_ABI_VERSION);
  kp_free(nullptr);
  kp_error_free(nullptr);
  kp_byok_free(nullptr);
  kp_release_free(nullptr);
  kp_token_close(nullptr);
  kp_module_close(nullptr);
  kp_free_secret(nullptr, 0);
  CHECK(kp_error_status(nullptr) == KP_OK);
  // Only kp_* leaves the shared library (hidden visibility and libkeyport.map).
  std::string out;
  REQUIRE(test::run_command("nm -D --defined-only '" KEYPORT_LIBKEYPORT_SO "'", &out) == 0);
  std::size_t exported = 0;
  std::size_t foreign = 0;
  std::size_t pos = 0;
  while (pos < out.size()) {
    const auto eol = out.find('\n', pos);
    const std::string line = out.substr(pos, eol == std::string::npos ? eol : eol - pos);
    pos = eol == std::string::npos ? out.size() : eol + 1;
    const auto sp = line.rfind(' ');
    if (sp == std::string::npos) {
      continue;
    }
    const std::string name = line.substr(sp + 1);
    if (name.rfind("kp_", 0) == 0) {
      ++exported;
    } else if (name != "KEYPORT_0") {
      INFO(name);
      ++foreign;
    }
  }
  CHECK(exported >= 26);
  CHECK(foreign == 0);
}

TEST_CASE("the C API generates keys in a token and exports them to .byok files OpenSSL opens",
          "[softhsm][capi]") {
  Opened o;
  open_token(o);
  Err err;
  for (const char* spec : {"RSA-3072", "EC-P256", "AES-256"}) {
    char* info = nullptr;
    const std::string label = std::string("capi-") + spec;
    REQUIRE(kp_key_generate(o.token, spec, label.c_str(), &info, &err) == KP_OK);
    const Json j = json_of(info);
    CHECK(j["label"] == label);
    CHECK(j["id"].get<std::string>().size() == 32);
  }
  char* listed = nullptr;
  REQUIRE(kp_key_list(o.token, &listed, &err) == KP_OK);
  const Json keys = json_of(listed);
  REQUIRE(keys.size() == 3);
  for (const auto& k : keys) {
    CHECK(k["sensitive"] == true);
    CHECK(k["extractable"] == true);
  }

  Kek kek;
  const auto dir = test::make_scratch_subdir("capi-export");
  for (const char* spec : {"RSA-3072", "EC-P256", "AES-256"}) {
    const std::string label = std::string("capi-") + spec;
    kp_export_options opts{};
    opts.struct_size = sizeof opts;
    opts.key = label.c_str();
    opts.kek = kek.data();
    opts.kek_len = kek.pem.size();
    const bool aes = std::string(spec) == "AES-256";  // Key Vault takes no AES key: Managed HSM
    opts.kid = aes ? kHsmKid : kKid;
    kp_byok* b = nullptr;
    const kp_status st = kp_export_byok(o.token, &opts, &b, &err);
    INFO(err.message());
    REQUIRE(st == KP_OK);
    const std::string text = byok_text(b);
    const Bytes plain = oracle_unwrap(text, kek.key.get());
    if (aes) {
      CHECK(plain.size() == 32);
    } else {
      std::size_t der_len = 0;
      auto parsed = test::oracle::parse_pkcs8(plain, &der_len);
      CHECK(parsed);
      // SoftHSM 2.6.1 zero-pads the PKCS#8 to a multiple of 8 inside KWP (docs/quirks.md).
      REQUIRE(der_len <= plain.size());
      CHECK(plain.size() - der_len < 8);
      for (std::size_t i = der_len; i < plain.size(); ++i) {
        CHECK(plain[i] == 0);
      }
    }
    char* info = nullptr;
    REQUIRE(kp_byok_info(b, &info, &err) == KP_OK);
    const Json bi = json_of(info);
    CHECK(bi["kid"] == (aes ? kHsmKid : kKid));
    CHECK(bi["target"] == (aes ? "managed-hsm" : "key-vault"));
    CHECK(bi["type"] == ascii_lower(spec));

    // The file: written atomically, never over an existing one unless asked.
    const std::string path = (dir / (label + ".byok")).string();
    REQUIRE(kp_byok_write(b, path.c_str(), 0, &err) == KP_OK);
    CHECK(kp_byok_write(b, path.c_str(), 0, &err) == KP_ERR_EXISTS);
    CHECK(kp_byok_write(b, path.c_str(), 1, &err) == KP_OK);
    std::ifstream in(path, std::ios::binary);
    const std::string on_disk((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    CHECK(on_disk == text);

    // The linter finds nothing wrong with it, the KEK given.
    char* report = nullptr;
    size_t errors = 99;
    size_t warnings = 99;
    REQUIRE(kp_byok_inspect(reinterpret_cast<const uint8_t*>(text.data()), text.size(), kek.data(),
                            kek.pem.size(), &report, &errors, &warnings, nullptr, &err) == KP_OK);
    INFO(report);
    CHECK(errors == 0);
    kp_free(report);
    kp_byok_free(b);
  }
}

TEST_CASE("the C API reports failures with the CLI's statuses and a message", "[softhsm][capi]") {
  token_folder();
  Err err;
  kp_module* m = nullptr;
  REQUIRE(kp_module_open(nullptr, nullptr, &m, &err) == KP_OK);  // the build's default module
  kp_token* t = nullptr;
  std::string wrong = "0000";
  CHECK(kp_token_open(m, "capi", nullptr, pin_from_ctx, &wrong, &t, &err) == KP_ERR_AUTH);
  CHECK(kp_error_status(err.e) == KP_ERR_AUTH);
  CHECK(t == nullptr);
  std::string none;
  CHECK(kp_token_open(m, "capi", nullptr, pin_from_ctx, &none, &t, &err) == KP_ERR_AUTH);
  CHECK(err.message().find("PIN callback") != std::string::npos);
  CHECK(kp_token_open(m, "no-such-token", nullptr, pin_from_ctx, &wrong, &t, &err) ==
        KP_ERR_NOT_FOUND);
  CHECK(kp_token_open(m, "pkcs11:token=capi;bogus=1", nullptr, nullptr, nullptr, &t, &err) ==
        KP_ERR_BAD_INPUT);
  kp_module* bad = nullptr;
  CHECK(kp_module_open("/nonexistent/libpkcs11.so", nullptr, &bad, &err) != KP_OK);
  CHECK(!err.message().empty());
  kp_module_close(m);

  // The PIN from a pin source instead of the callback.
  Opened o;
  token_folder();
  REQUIRE(kp_module_open(nullptr, nullptr, &o.module, &err) == KP_OK);
  ::setenv("KEYPORT_CAPI_TEST_PIN", kPin, 1);
  REQUIRE(kp_token_open(o.module, "pkcs11:token=capi", "env:KEYPORT_CAPI_TEST_PIN", nullptr,
                        nullptr, &o.token, &err) == KP_OK);
  CHECK(kp_key_generate(o.token, "RSA-1024", "weak", nullptr, &err) == KP_ERR_BAD_INPUT);
  REQUIRE(kp_key_generate(o.token, "EC-P384", "dup", nullptr, &err) == KP_OK);
  CHECK(kp_key_generate(o.token, "EC-P384", "dup", nullptr, &err) == KP_ERR_EXISTS);
  CHECK(kp_key_generate(o.token, "EC-P384", nullptr, nullptr, &err) == KP_ERR_BAD_INPUT);

  Kek kek;
  kp_export_options opts{};
  opts.struct_size = sizeof opts;
  opts.key = "no-such-key";
  opts.kek = kek.data();
  opts.kek_len = kek.pem.size();
  opts.kid = kKid;
  kp_byok* b = nullptr;
  CHECK(kp_export_byok(o.token, &opts, &b, &err) == KP_ERR_NOT_FOUND);
  opts.key = "dup";
  opts.kid = "https://example.com/not-a-kid";
  CHECK(kp_export_byok(o.token, &opts, &b, &err) == KP_ERR_BAD_INPUT);
  opts.kid = kKid;
  const std::string garbage = "not a key";
  opts.kek = reinterpret_cast<const uint8_t*>(garbage.data());
  opts.kek_len = garbage.size();
  CHECK(kp_export_byok(o.token, &opts, &b, &err) == KP_ERR_BAD_INPUT);
  opts.kek = kek.data();
  opts.kek_len = kek.pem.size();
  opts.struct_size = 8;
  CHECK(kp_export_byok(o.token, &opts, &b, &err) == KP_ERR_BAD_INPUT);
  CHECK(b == nullptr);
  CHECK(kp_export_byok(nullptr, &opts, &b, &err) == KP_ERR_BAD_INPUT);

  // Inspect makes a report whatever the file holds.
  char* report = nullptr;
  size_t errors = 0;
  REQUIRE(kp_byok_inspect(reinterpret_cast<const uint8_t*>(garbage.data()), garbage.size(), nullptr,
                          0, &report, &errors, nullptr, nullptr, &err) == KP_OK);
  CHECK(errors > 0);
  kp_free(report);
}

TEST_CASE("the C API wraps a key file in software, and OpenSSL opens it", "[softhsm][capi]") {
  auto key = test::oracle::rsa_keygen(2048);
  const Bytes pkcs8 = test::oracle::pkcs8_der(key.get());
  Kek kek;
  Err err;
  kp_byok* b = nullptr;
  REQUIRE(kp_wrap_key_file(pkcs8.data(), pkcs8.size(), nullptr, kek.data(), kek.pem.size(), kKid,
                           nullptr, &b, &err) == KP_OK);
  CHECK(oracle_unwrap(byok_text(b), kek.key.get()) == pkcs8);
  kp_byok_free(b);
  const Bytes aes = random_bytes(7);
  CHECK(kp_wrap_key_file(aes.data(), aes.size(), nullptr, kek.data(), kek.pem.size(), kKid, nullptr,
                         &b, &err) == KP_ERR_BAD_INPUT);
}

TEST_CASE(
    "the C API verifies a release response and unwraps the released key, in software and "
    "into a token",
    "[softhsm][capi]") {
  // The vault's half, made with keyport's C++ libraries linked into this test: a CA, a signing
  // certificate, and an AES key released to a runtime key.
  auto ca_key = x509::generate_rsa_key(2048);
  REQUIRE_OK(ca_key);
  x509::CertificateRequest ca_req;
  ca_req.common_name = "capi test vault CA";
  ca_req.is_ca = true;
  auto ca = x509::make_certificate(ca_req, **ca_key, **ca_key, nullptr);
  REQUIRE_OK(ca);
  auto leaf_key = x509::generate_rsa_key(2048);
  REQUIRE_OK(leaf_key);
  x509::CertificateRequest leaf_req;
  leaf_req.common_name = "kpcapi.vault.azure.net";
  leaf_req.dns_names = {"kpcapi.vault.azure.net"};
  leaf_req.code_signing = true;
  auto leaf = x509::make_certificate(leaf_req, **leaf_key, **ca_key, ca->get());
  REQUIRE_OK(leaf);
  auto leaf_pem = x509::private_key_pem(**leaf_key);
  REQUIRE_OK(leaf_pem);
  auto signer = skr::SoftwareSigner::from_private_key(*leaf_pem, skr::JwsAlg::kRs256);
  REQUIRE_OK(signer);

  auto runtime = test::oracle::rsa_keygen(2048);
  auto runtime_pub = byok::PublicKey::from_spki_der(test::oracle::spki_der(runtime.get()));
  REQUIRE_OK(runtime_pub);
  const SecretBytes released = random_secret(32);
  auto release_to = [&](const byok::PublicKey& to, WrapAlg enc) {
    skr::ReleaseResponseInput in;
    in.request_kid = "https://kpcapi.vault.azure.net/keys/k";
    in.enc = enc;
    in.key_bundle = Json{
        {"key",
         Json{{"kid", "https://kpcapi.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef"},
              {"kty", "oct-HSM"},
              {"key_ops", Json::array({"encrypt", "decrypt"})}}},
        {"attributes", Json{{"enabled", true}, {"exportable", true}}},
        {"tags", Json::object()}};
    in.runtime_kid = skr::jwk_thumbprint(to);
    auto wrapped = byok::rsa_aes_wrap(to.spki_der(), in.enc, released);
    REQUIRE_OK(wrapped);
    in.wrapped_key = *wrapped;
    auto jws = skr::build_release_response(
        in, *signer, {x509::certificate_der(**leaf), x509::certificate_der(**ca)});
    REQUIRE_OK(jws);
    return dump_json(Json{{"value", *jws}});
  };
  const std::string ca_pem = x509::certificate_pem(**ca);

  Err err;
  kp_release* rel = nullptr;
  const std::string body = release_to(*runtime_pub, WrapAlg::kRsaAesKeyWrap256);
  REQUIRE(kp_release_verify(body.c_str(), ca_pem.c_str(), "kpcapi.vault.azure.net", nullptr, &rel,
                            &err) == KP_OK);
  char* info = nullptr;
  REQUIRE(kp_release_info(rel, &info, &err) == KP_OK);
  CHECK(json_of(info)["kty"] == "oct-HSM");
  const Bytes runtime_der = test::oracle::pkcs8_der(runtime.get());
  uint8_t* material = nullptr;
  size_t material_len = 0;
  REQUIRE(kp_release_unwrap(rel, runtime_der.data(), runtime_der.size(), nullptr, &material,
                            &material_len, &err) == KP_OK);
  REQUIRE(material_len == 32);
  CHECK(std::equal(material, material + material_len,
                   released.reveal(SecretAccess::unsafe()).begin()));
  kp_free_secret(material, material_len);
  // Another runtime key: refused.
  auto other = test::oracle::rsa_keygen(2048);
  const Bytes other_der = test::oracle::pkcs8_der(other.get());
  CHECK(kp_release_unwrap(rel, other_der.data(), other_der.size(), nullptr, &material,
                          &material_len, &err) != KP_OK);
  kp_release_free(rel);

  // Refusals of the response itself: another CA, another host, a tampered body.
  auto other_ca_key = x509::generate_rsa_key(2048);
  REQUIRE_OK(other_ca_key);
  auto other_ca = x509::make_certificate(ca_req, **other_ca_key, **other_ca_key, nullptr);
  REQUIRE_OK(other_ca);
  CHECK(kp_release_verify(body.c_str(), x509::certificate_pem(**other_ca).c_str(), nullptr, nullptr,
                          &rel, &err) == KP_ERR_HSM_OR_CRYPTO);
  CHECK(std::string(kp_error_detail(err.e)) == "REL-CHAIN");
  CHECK(kp_release_verify(body.c_str(), ca_pem.c_str(), "elsewhere.vault.azure.net", nullptr, &rel,
                          &err) == KP_ERR_HSM_OR_CRYPTO);
  CHECK(kp_release_verify("{\"value\": \"x.y.z\"}", ca_pem.c_str(), nullptr, nullptr, &rel, &err) !=
        KP_OK);

  // Into a token: the runtime key made there (its private half never leaves), the release
  // wrapped to its public JWK, the released key stored sensitive and checked without reading it.
  Opened o;
  open_token(o);
  char* jwk_text = nullptr;
  REQUIRE(kp_runtime_key_generate(o.token, "capi-runtime", &jwk_text, &err) == KP_OK);
  const Json jwk = json_of(jwk_text);
  auto token_runtime = byok::PublicKey::from_jwk(jwk);
  REQUIRE_OK(token_runtime);
  CHECK(jwk["kid"] == skr::jwk_thumbprint(*token_runtime));
  CHECK(kp_runtime_key_generate(o.token, "capi-runtime", &jwk_text, &err) == KP_ERR_EXISTS);
  // SHA-1 OAEP: what SoftHSM 2.6.1 unwraps in the token (it refuses OAEP with SHA-256).
  const std::string to_token = release_to(*token_runtime, WrapAlg::kRsaAesKeyWrap);
  REQUIRE(kp_release_verify(to_token.c_str(), ca_pem.c_str(), nullptr, nullptr, &rel, &err) ==
          KP_OK);
  char* stored = nullptr;
  const kp_status st = kp_release_unwrap_into_token(o.token, rel, "capi-runtime", nullptr,
                                                    "capi-released", &stored, &err);
  INFO(err.message());
  REQUIRE(st == KP_OK);
  const Json s = json_of(stored);
  CHECK(s["label"] == "capi-released");
  // "aes": SoftHSM 2.6.1 reports CKA_VALUE_LEN 0 for unwrapped AES keys (docs/quirks.md).
  CHECK((s["type"] == "aes-256" || s["type"] == "aes"));
  // The KCV the token reports is AES-ECB(key, 0^16) of the key released, as OpenSSL computes it.
  CHECK(s["kcv"] == openssl_kcv(released.reveal(SecretAccess::unsafe())));
  kp_release_free(rel);
}

// SPDX-License-Identifier: Apache-2.0
#include "tests/vault/vault_rig.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <optional>
#include <stdexcept>

#include "byok/kid.h"
#include "core/encoding.h"
#include "tests/support/oracle.h"
#include "tests/support/softhsm.h"
#include "transfer/export.h"

namespace keyport::test {

VaultRig::VaultRig(vault::Flavor flavor, const std::string& name, const std::string& base_url)
    : session(SoftHsm::get().login(kVaultToken)) {
  dir = make_scratch_subdir("vault-" + name);
  vault::VaultConfig c;
  c.flavor = flavor;
  c.name = name;
  c.base_url = base_url;
  REQUIRE_OK(vault::Vault::init(dir, c, clock.clock()));
  open();
}

void VaultRig::open(vault::CrashPoint crash) {
  vault::VaultOptions o;
  o.module = SoftHsm::get().module();
  o.token_label = kVaultToken;
  o.pin = SecretBytes::from_string(kVaultPin);
  o.clock = clock.clock();
  o.crash_point = crash;
  auto r = vault::Vault::open(dir, std::move(o));
  REQUIRE_OK(r);
  v = std::move(*r);
}

std::size_t VaultRig::token_objects() const {
  p11::Template t;
  t.token(true);
  auto found = session.find_objects(t);
  REQUIRE_OK(found);
  return found->size();
}

CK_OBJECT_HANDLE VaultRig::object_of(const std::string& name, const std::string& version) const {
  p11::Template t;
  t.token(true).label("kv:" + name + ":" + version);
  auto found = session.find_objects(t);
  REQUIRE_OK(found);
  REQUIRE(found->size() == 1);
  return found->front();
}

Onprem::Onprem() : session(SoftHsm::get().login(kOnpremToken)) {
  token = *p11::token_info(*SoftHsm::get().module(), session.slot());
  caps = *p11::probe_wrap_capabilities(session, token);
}

p11::KeyObject Onprem::generate(const KeySpec& spec, const std::string& label) {
  p11::KeyGenRequest req;
  req.spec = spec;
  req.label = label;
  auto k = p11::generate_portable_key(session, req);
  REQUIRE_OK(k);
  return *k;
}

byok::ByokFile Onprem::export_to(const p11::KeyObject& key, const byok::PublicKey& kek,
                                 const std::string& kid) {
  auto skek = transfer::SessionKek::import(session, kek);
  REQUIRE_OK(skek);
  auto parsed = byok::parse_kid(kid);
  REQUIRE_OK(parsed);
  transfer::ExportOptions o;
  o.generator = transfer::generator_for(token);
  // The vault's own host decides the profile; the test vaults use hosts the kid parser knows or
  // a local address, so name the target from the key type.
  auto target = key.spec.family == KeyFamily::kAes ? byok::TargetKind::kManagedHsm
                                                   : byok::TargetKind::kKeyVault;
  auto r = transfer::export_key(session, caps, key, *skek, *parsed, target, o);
  REQUIRE_OK(r);
  return r->file;
}

Json kek_params(unsigned bits) {
  return Json{{"kty", "RSA-HSM"}, {"key_size", bits}, {"key_ops", Json::array({"import"})}};
}

byok::PublicKey public_key_of(const Json& bundle) {
  auto pub = byok::PublicKey::from_jwk(bundle.at("key"));
  REQUIRE_OK(pub);
  return *pub;
}

Json byok_body(const std::string& file_text, const std::string& kty, const std::string& crv) {
  Json key{{"kty", kty}, {"key_hsm", base64url_encode(as_bytes(file_text))}};
  if (!crv.empty()) {
    key["crv"] = crv;
  }
  return Json{{"key", key}};
}

std::string version_of(const Json& bundle) {
  std::string kid = bundle.at("key").at("kid").get<std::string>();
  return kid.substr(kid.rfind('/') + 1);
}

void expect_kv_error(const Result<Json>& r, std::string_view code, int status,
                     std::string_view inner) {
  REQUIRE_FALSE(r.has_value());
  INFO(r.error().describe());
  CHECK(r.error().detail() == code);
  CHECK(vault::http_status_for(r.error()) == status);
  CHECK(vault::kv_inner_code(r.error()) == inner);
  Json body = vault::error_body(r.error());
  CHECK(body["error"]["code"] == std::string(code));
}

namespace {

const EVP_MD* md_for_alg(const std::string& alg) {
  if (alg.find("384") != std::string::npos) {
    return EVP_sha384();
  }
  if (alg.find("512") != std::string::npos) {
    return EVP_sha512();
  }
  return EVP_sha256();
}

Bytes bn_bytes(EVP_PKEY* key, const char* name, std::size_t pad_to = 0) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) {
    throw std::runtime_error(std::string("get ") + name);
  }
  ossl::UniquePtr<BIGNUM> owned(bn);
  std::size_t n = std::max<std::size_t>(pad_to, static_cast<std::size_t>(BN_num_bytes(bn)));
  Bytes out(n);
  BN_bn2binpad(bn, out.data(), static_cast<int>(n));
  return out;
}

}  // namespace

Bytes digest_of(const std::string& alg, const Bytes& data) {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int n = 0;
  REQUIRE(EVP_Digest(data.data(), data.size(), out.data(), &n, md_for_alg(alg), nullptr) == 1);
  out.resize(n);
  return out;
}

ossl::UniquePtr<EVP_PKEY> openssl_public(const Json& bundle) {
  const Json& k = bundle.at("key");
  auto b64 = [&](const char* m) { return *base64url_decode(k.at(m).get<std::string>()); };
  std::string kty = k.at("kty").get<std::string>();
  if (kty.rfind("RSA", 0) == 0) {
    return oracle::rsa_public_from(b64("n"), b64("e"));
  }
  std::string crv = k.at("crv").get<std::string>();
  const char* group = crv == "P-256"   ? "prime256v1"
                      : crv == "P-384" ? "secp384r1"
                      : crv == "P-521" ? "secp521r1"
                                       : "secp256k1";
  Bytes point{0x04};
  Bytes x = b64("x"), y = b64("y");
  point.insert(point.end(), x.begin(), x.end());
  point.insert(point.end(), y.begin(), y.end());
  return oracle::ec_public_from(group, point);
}

bool openssl_verify(EVP_PKEY* pub, const std::string& alg, const Bytes& digest,
                    const Bytes& signature) {
  Bytes sig = signature;
  if (alg[0] == 'E') {
    std::size_t half = sig.size() / 2;
    ossl::UniquePtr<ECDSA_SIG> es(ECDSA_SIG_new());
    ECDSA_SIG_set0(es.get(), BN_bin2bn(sig.data(), static_cast<int>(half), nullptr),
                   BN_bin2bn(sig.data() + half, static_cast<int>(half), nullptr));
    unsigned char* der = nullptr;
    int len = i2d_ECDSA_SIG(es.get(), &der);
    sig.assign(der, der + len);
    OPENSSL_free(der);
  }
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(pub, nullptr));
  REQUIRE(EVP_PKEY_verify_init(ctx.get()) == 1);
  if (alg[0] != 'E') {
    REQUIRE(EVP_PKEY_CTX_set_signature_md(ctx.get(), md_for_alg(alg)) == 1);
    if (alg[0] == 'P') {
      REQUIRE(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PSS_PADDING) == 1);
      REQUIRE(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_DIGEST) == 1);
    } else {
      REQUIRE(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1);
    }
  }
  int rc = EVP_PKEY_verify(ctx.get(), sig.data(), sig.size(), digest.data(), digest.size());
  ossl::drain_errors();
  return rc == 1;
}

Bytes openssl_encrypt(EVP_PKEY* pub, const std::string& alg, const Bytes& plaintext) {
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(pub, nullptr));
  REQUIRE(EVP_PKEY_encrypt_init(ctx.get()) == 1);
  if (alg == "RSA1_5") {
    REQUIRE(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) == 1);
  } else {
    const EVP_MD* md = alg == "RSA-OAEP" ? EVP_sha1() : EVP_sha256();
    REQUIRE(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) == 1);
    REQUIRE(EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), md) == 1);
    REQUIRE(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), md) == 1);
  }
  std::size_t len = 0;
  REQUIRE(EVP_PKEY_encrypt(ctx.get(), nullptr, &len, plaintext.data(), plaintext.size()) == 1);
  Bytes out(len);
  REQUIRE(EVP_PKEY_encrypt(ctx.get(), out.data(), &len, plaintext.data(), plaintext.size()) == 1);
  out.resize(len);
  return out;
}

Json rsa_private_jwk(EVP_PKEY* key) {
  Json j{{"kty", "RSA"}};
  const std::pair<const char*, const char*> parts[] = {
      {"n", OSSL_PKEY_PARAM_RSA_N},          {"e", OSSL_PKEY_PARAM_RSA_E},
      {"d", OSSL_PKEY_PARAM_RSA_D},          {"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
      {"q", OSSL_PKEY_PARAM_RSA_FACTOR2},    {"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},
      {"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2}, {"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1}};
  for (const auto& [member, param] : parts) {
    j[member] = base64url_encode(bn_bytes(key, param));
  }
  return j;
}

Json ec_private_jwk(EVP_PKEY* key, const std::string& crv) {
  Bytes point = oracle::ec_public_point(key);
  std::size_t field = (point.size() - 1) / 2;
  Json j{{"kty", "EC"}, {"crv", crv}};
  j["x"] = base64url_encode(Bytes(point.begin() + 1, point.begin() + 1 + field));
  j["y"] = base64url_encode(Bytes(point.begin() + 1 + field, point.end()));
  j["d"] = base64url_encode(bn_bytes(key, OSSL_PKEY_PARAM_PRIV_KEY, field));
  return j;
}

Bytes openssl_aes_kw(const Bytes& kek, const Bytes& key, bool pad) {
  const EVP_CIPHER* c = nullptr;
  switch (kek.size()) {
    case 16:
      c = pad ? EVP_aes_128_wrap_pad() : EVP_aes_128_wrap();
      break;
    case 24:
      c = pad ? EVP_aes_192_wrap_pad() : EVP_aes_192_wrap();
      break;
    default:
      c = pad ? EVP_aes_256_wrap_pad() : EVP_aes_256_wrap();
  }
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  REQUIRE(EVP_EncryptInit_ex(ctx.get(), c, nullptr, kek.data(), nullptr) == 1);
  Bytes out(key.size() + 16);
  int n1 = 0, n2 = 0;
  REQUIRE(EVP_EncryptUpdate(ctx.get(), out.data(), &n1, key.data(), static_cast<int>(key.size())) ==
          1);
  REQUIRE(EVP_EncryptFinal_ex(ctx.get(), out.data() + n1, &n2) == 1);
  out.resize(static_cast<std::size_t>(n1 + n2));
  return out;
}

namespace {

ossl::UniquePtr<EVP_CIPHER> aes_cipher(const std::string& mode, std::size_t key_bytes) {
  const std::string name =
      "AES-" + std::to_string(key_bytes * 8) + (mode == "GCM" ? "-GCM" : "-CBC");
  ossl::UniquePtr<EVP_CIPHER> c(EVP_CIPHER_fetch(nullptr, name.c_str(), nullptr));
  REQUIRE(c);
  return c;
}

}  // namespace

AesCiphertext openssl_aes_encrypt(const std::string& mode, const Bytes& key, const Bytes& iv,
                                  const Bytes& aad, const Bytes& plaintext) {
  auto c = aes_cipher(mode, key.size());
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  const bool gcm = mode == "GCM";
  REQUIRE(EVP_EncryptInit_ex2(ctx.get(), c.get(), nullptr, nullptr, nullptr) == 1);
  if (gcm) {
    REQUIRE(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                                nullptr) == 1);
  }
  REQUIRE(EVP_EncryptInit_ex2(ctx.get(), nullptr, key.data(), iv.data(), nullptr) == 1);
  EVP_CIPHER_CTX_set_padding(ctx.get(), mode == "CBCPAD" ? 1 : 0);
  int n = 0;
  if (gcm && !aad.empty()) {
    REQUIRE(EVP_EncryptUpdate(ctx.get(), nullptr, &n, aad.data(), static_cast<int>(aad.size())) ==
            1);
  }
  AesCiphertext out{Bytes(plaintext.size() + 16), {}};
  int n1 = 0, n2 = 0;
  REQUIRE(EVP_EncryptUpdate(ctx.get(), out.ct.data(), &n1, plaintext.data(),
                            static_cast<int>(plaintext.size())) == 1);
  REQUIRE(EVP_EncryptFinal_ex(ctx.get(), out.ct.data() + n1, &n2) == 1);
  out.ct.resize(static_cast<std::size_t>(n1 + n2));
  if (gcm) {
    out.tag.resize(16);
    REQUIRE(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, out.tag.data()) == 1);
  }
  return out;
}

std::optional<Bytes> openssl_aes_decrypt(const std::string& mode, const Bytes& key, const Bytes& iv,
                                         const Bytes& aad, const Bytes& ct, const Bytes& tag) {
  auto c = aes_cipher(mode, key.size());
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  const bool gcm = mode == "GCM";
  REQUIRE(EVP_DecryptInit_ex2(ctx.get(), c.get(), nullptr, nullptr, nullptr) == 1);
  if (gcm) {
    REQUIRE(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()),
                                nullptr) == 1);
  }
  REQUIRE(EVP_DecryptInit_ex2(ctx.get(), nullptr, key.data(), iv.data(), nullptr) == 1);
  EVP_CIPHER_CTX_set_padding(ctx.get(), mode == "CBCPAD" ? 1 : 0);
  int n = 0;
  if (gcm && !aad.empty()) {
    REQUIRE(EVP_DecryptUpdate(ctx.get(), nullptr, &n, aad.data(), static_cast<int>(aad.size())) ==
            1);
  }
  Bytes out(ct.size() + 16);
  int n1 = 0, n2 = 0;
  REQUIRE(EVP_DecryptUpdate(ctx.get(), out.data(), &n1, ct.data(), static_cast<int>(ct.size())) ==
          1);
  if (gcm) {
    Bytes t = tag;
    REQUIRE(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(t.size()),
                                t.data()) == 1);
  }
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + n1, &n2) != 1) {
    return std::nullopt;
  }
  out.resize(static_cast<std::size_t>(n1 + n2));
  return out;
}

std::size_t audit_rows(vault::Vault& v, const std::string& operation, const std::string& outcome) {
  auto audit = v.audit_log();
  REQUIRE_OK(audit);
  std::size_t n = 0;
  for (const auto& row : *audit) {
    n += row.operation == operation && row.outcome == outcome ? 1 : 0;
  }
  return n;
}

}  // namespace keyport::test

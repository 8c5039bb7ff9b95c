// SPDX-License-Identifier: Apache-2.0
// Token KEKs checked by OpenSSL: AES (RFC 5649) and RSA (OAEP SHA-1) wrap and unwrap, in-token
// re-wrap and check values without leftover session objects, one error for every bad wrapping,
// portability, and the KEK-SPEC syntax.
#include <catch2/catch.hpp>

#include <openssl/rsa.h>

#include "core/random.h"
#include "migrate/crypto.h"
#include "migrate/kek_spec.h"
#include "pkcs11/keygen.h"
#include "tests/migrate/migrate_rig.h"
#include "tests/support/oracle.h"
#include "tests/support/softhsm.h"

using namespace keyport;
namespace oracle = keyport::test::oracle;

namespace {

Bytes reveal(const SecretBytes& s) {
  auto v = s.reveal(SecretAccess::unsafe());
  return Bytes(v.begin(), v.end());
}

Bytes openssl_oaep_sha1(EVP_PKEY* key, const Bytes& plain, bool encrypt) {
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(key, nullptr));
  REQUIRE((encrypt ? EVP_PKEY_encrypt_init(ctx.get()) : EVP_PKEY_decrypt_init(ctx.get())) == 1);
  REQUIRE(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) == 1);
  REQUIRE(EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha1()) == 1);
  REQUIRE(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha1()) == 1);
  std::size_t len = 0;
  auto call = [&](std::uint8_t* out) {
    return encrypt ? EVP_PKEY_encrypt(ctx.get(), out, &len, plain.data(), plain.size())
                   : EVP_PKEY_decrypt(ctx.get(), out, &len, plain.data(), plain.size());
  };
  REQUIRE(call(nullptr) == 1);
  Bytes out(len);
  REQUIRE(call(out.data()) == 1);
  out.resize(len);
  return out;
}

}  // namespace

TEST_CASE("a token aes kek wraps what openssl unwraps and unwraps what openssl wrapped",
          "[migrate][softhsm]") {
  test::MigrateRig rig;
  auto known = rig.make_aes_kek("kek-aes");
  auto kek = rig.open_kek("kek-aes");
  CHECK(kek->algorithm() == "AES-KWP");
  CHECK(kek->id().id == "pkcs11:token=onprem;object=kek-aes;type=secret-key");
  Bytes kcv = oracle::aes_check_value(known.value);
  CHECK(kek->id().version == "kcv:" + hex_encode(std::span(kcv.data(), 3)));
  for (std::size_t n : {16u, 24u, 32u, 48u}) {
    SecretBytes key = random_secret(n);
    auto wrapped = kek->wrap(key);
    REQUIRE_OK(wrapped);
    CHECK(test::openssl_kwp_unwrap(known.value, *wrapped) == reveal(key));
    Bytes theirs = test::openssl_kwp_wrap(known.value, reveal(key));
    auto back = kek->unwrap(theirs);
    REQUIRE_OK(back);
    CHECK(back->ct_equal(key));
  }
  CHECK(kek->live_session_objects() == 0);
  CHECK(test::count_session_objects(rig.session(), CKO_SECRET_KEY) == 0);
}

TEST_CASE("a token rsa kek wraps with oaep sha1 that openssl opens", "[migrate][softhsm]") {
  test::MigrateRig rig;
  p11::KeyGenRequest req;
  req.spec = *parse_key_spec("rsa-2048");
  req.label = "kek-rsa";
  auto made = p11::generate_portable_key(rig.session(), req);
  REQUIRE_OK(made);
  auto kek = rig.open_kek("kek-rsa");
  CHECK(kek->algorithm() == "RSA-OAEP");
  CHECK(kek->is_rsa());
  CHECK(kek->id().version.rfind("sha256:", 0) == 0);
  auto pub = p11::read_public_components(rig.session(), *made);
  REQUIRE_OK(pub);
  auto evp = oracle::rsa_public_from(pub->modulus, pub->exponent);
  SecretBytes key = random_secret(32);
  auto wrapped = kek->wrap(key);
  REQUIRE_OK(wrapped);
  CHECK(wrapped->size() == 256);
  // OpenSSL cannot open it without the private key; the token can, and so can keyport's unwrap
  // of an OAEP ciphertext OpenSSL made with the public key.
  Bytes theirs = openssl_oaep_sha1(evp.get(), reveal(key), true);
  auto back = kek->unwrap(theirs);
  REQUIRE_OK(back);
  CHECK(back->ct_equal(key));
  auto mine = kek->unwrap(*wrapped);
  REQUIRE_OK(mine);
  CHECK(mine->ct_equal(key));
  // RSA to AES inside the token.
  auto aes = rig.make_aes_kek("kek-aes2");
  auto to = rig.open_kek("kek-aes2");
  REQUIRE(kek->can_rewrap_in_token(*to));
  auto moved = kek->rewrap_in_token(theirs, *to);
  REQUIRE_OK(moved);
  CHECK(test::openssl_kwp_unwrap(aes.value, *moved) == reveal(key));
  CHECK(test::count_session_objects(rig.session(), CKO_SECRET_KEY) == 0);
}

TEST_CASE("an in token rewrap moves the key and leaves no session objects", "[migrate][softhsm]") {
  test::MigrateRig rig;
  auto a = rig.make_aes_kek("kek-a");
  auto b = rig.make_aes_kek("kek-b");
  auto from = rig.open_kek("kek-a");
  auto to = rig.open_kek("kek-b");
  REQUIRE(from->can_rewrap_in_token(*to));
  REQUIRE(to->can_rewrap_in_token(*from));
  Bytes key = random_bytes(32);
  Bytes wrapped = test::openssl_kwp_wrap(a.value, key);
  auto moved = from->rewrap_in_token(wrapped, *to);
  REQUIRE_OK(moved);
  CHECK(test::openssl_kwp_unwrap(b.value, *moved) == key);
  // Check values from the token equal OpenSSL's.
  auto cv_old = from->check_value_in_token(wrapped);
  auto cv_new = to->check_value_in_token(*moved);
  REQUIRE_OK(cv_old);
  REQUIRE_OK(cv_new);
  CHECK(*cv_old == oracle::aes_check_value(key));
  CHECK(*cv_new == *cv_old);
  // A software KEK is not in the token.
  auto soft = migrate::SecretKek::create("keyring:p", random_secret(32));
  REQUIRE_OK(soft);
  CHECK_FALSE(from->can_rewrap_in_token(**soft));
  CHECK_ERROR_CODE(from->rewrap_in_token(wrapped, **soft), ErrorCode::kUnsupported);
  CHECK(from->live_session_objects() == 0);
  CHECK(test::count_session_objects(rig.session(), CKO_SECRET_KEY) == 0);
}

TEST_CASE("every bad wrapping gives the one integrity error and leaves nothing behind",
          "[migrate][softhsm]") {
  test::MigrateRig rig;
  auto a = rig.make_aes_kek("kek-a");
  rig.make_aes_kek("kek-b");
  auto from = rig.open_kek("kek-a");
  auto to = rig.open_kek("kek-b");
  Bytes good = test::openssl_kwp_wrap(a.value, random_bytes(32));
  Bytes flipped = good;
  flipped[5] ^= 1;
  Bytes other = test::openssl_kwp_wrap(random_bytes(32), random_bytes(32));
  for (const Bytes& bad : {flipped, other, Bytes(good.begin(), good.end() - 8), Bytes(7, 1)}) {
    auto u = from->unwrap(bad);
    REQUIRE_FALSE(u.has_value());
    CHECK(u.error().code() == ErrorCode::kIntegrityFailure);
    CHECK(u.error().message() == kIntegrityMessage);
    CHECK_ERROR_CODE(from->rewrap_in_token(bad, *to), ErrorCode::kIntegrityFailure);
    CHECK_ERROR_CODE(from->check_value_in_token(bad), ErrorCode::kIntegrityFailure);
  }
  CHECK(from->live_session_objects() == 0);
  CHECK(test::count_session_objects(rig.session(), CKO_SECRET_KEY) == 0);
}

TEST_CASE("token kek portability follows CKA_EXTRACTABLE", "[migrate][softhsm]") {
  test::MigrateRig rig;
  rig.make_aes_kek("kek-fixed", false);
  rig.make_aes_kek("kek-portable", true);
  auto fixed = rig.open_kek("kek-fixed")->portability();
  auto portable = rig.open_kek("kek-portable")->portability();
  REQUIRE_OK(fixed);
  REQUIRE_OK(portable);
  CHECK_FALSE(fixed->portable);
  CHECK(fixed->reason.find("CKA_EXTRACTABLE=FALSE") != std::string::npos);
  CHECK(fixed->commands.empty());
  CHECK(portable->portable);
  REQUIRE(portable->commands.size() == 2);
  CHECK(portable->commands[0].rfind("keyport byok export --token 'onprem' --key 'kek-portable'",
                                    0) == 0);
}

TEST_CASE("kek specs parse in the documented forms and refuse the rest", "[migrate][unit]") {
  auto v = migrate::KekSpec::parse("vault:/srv/vaults/a#kek/0123abcd?token=vault&alg=RSA-OAEP");
  REQUIRE_OK(v);
  CHECK(v->kind == migrate::KekSpec::Kind::kVault);
  CHECK(v->vault_dir == "/srv/vaults/a");
  CHECK(v->key_name == "kek");
  CHECK(v->key_version == "0123abcd");
  CHECK(v->attach_token == "vault");
  CHECK(v->alg == "RSA-OAEP");
  auto v2 = migrate::KekSpec::parse("vault:rel/dir#name");
  REQUIRE_OK(v2);
  CHECK(v2->key_version.empty());
  CHECK_FALSE(v2->attach_token.has_value());
  auto p = migrate::KekSpec::parse("pkcs11:token=onprem;object=kek-old");
  REQUIRE_OK(p);
  CHECK(p->kind == migrate::KekSpec::Kind::kPkcs11);
  CHECK(p->uri.object == "kek-old");
  auto h = migrate::KekSpec::parse("https://v.vault.azure.net/keys/k");
  REQUIRE_OK(h);
  CHECK(h->kind == migrate::KekSpec::Kind::kHttps);
  migrate::KekOpener opener;
  CHECK_ERROR_CODE(opener.open(*h, {}), ErrorCode::kUnsupported);
  for (const char* bad :
       {"", "vault:", "vault:dir", "vault:#k", "vault:dir#", "vault:dir#k/", "vault:dir#k/v/w",
        "vault:dir#k?token", "vault:dir#k?pin=1", "vault:dir#k?token=a&token=b",
        "pkcs11:token=onprem", "pkcs11:token=onprem;bogus=1;object=k", "file:/k.pem", "kek"}) {
    INFO(bad);
    CHECK_ERROR_CODE(migrate::KekSpec::parse(bad), ErrorCode::kInvalidArgument);
  }
}

// SPDX-License-Identifier: Apache-2.0
// The Managed HSM security domain format (vault/security_domain.h): Shamir over GF(257), the
// SP 800-108 KDF, A256CBC-HS512 JWEs, the download request, the file and the restore blob.
#include "vault/security_domain.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>

#include <algorithm>
#include <set>

#include "byok/crypto.h"
#include "core/digest.h"
#include "core/ossl.h"
#include "core/random.h"
#include "core/x509.h"

namespace keyport::vault::sd {
namespace {

constexpr unsigned kField = 257;  // the prime of GF(257)
constexpr std::size_t kCekBytes = 64;
constexpr std::size_t kIvBytes = 16;
constexpr std::size_t kTagBytes = 32;
constexpr const char* kKdfName = "sp108_kdf";
constexpr const char* kShareAlgorithm = "shamir_share";

void put_be32(Bytes& out, std::uint32_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 24));
  out.push_back(static_cast<std::uint8_t>(v >> 16));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

Result<Bytes> hmac_sha512(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data) {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int n = 0;
  if (HMAC(EVP_sha512(), key.data(), static_cast<int>(key.size()), data.data(), data.size(),
           out.data(), &n) == nullptr) {
    return ossl::crypto_failure("HMAC-SHA512");
  }
  out.resize(n);
  return out;
}

// --- GF(257) ---

unsigned mod_mul(unsigned a, unsigned b) {
  return (a * b) % kField;
}

unsigned mod_pow(unsigned a, unsigned e) {
  unsigned r = 1;
  while (e != 0) {
    if ((e & 1u) != 0) {
      r = mod_mul(r, a);
    }
    a = mod_mul(a, a);
    e >>= 1;
  }
  return r;
}

unsigned mod_inv(unsigned a) {
  return mod_pow(a, kField - 2);  // Fermat: a^(p-2) = a^-1 for a != 0
}

// A uniformly random element of GF(257): rejection sampling of 16-bit values below 257 * 255.
unsigned random_field_element() {
  while (true) {
    SecretBytes r = random_secret(2);
    const auto b = r.reveal(SecretAccess::unsafe());
    const unsigned v = (static_cast<unsigned>(b[0]) << 8) | b[1];
    if (v < kField * 255) {
      return v % kField;
    }
  }
}

// --- JWE (A256CBC-HS512) ---

struct JweParts {
  std::string header_b64;
  Bytes encrypted_key;
  Bytes iv;
  Bytes ciphertext;
  Bytes tag;
  Json header;
};

Result<JweParts> split_jwe(std::string_view compact) {
  std::vector<std::string_view> parts;
  std::size_t pos = 0;
  while (true) {
    const std::size_t dot = compact.find('.', pos);
    parts.push_back(compact.substr(pos, dot == std::string_view::npos ? dot : dot - pos));
    if (dot == std::string_view::npos) {
      break;
    }
    pos = dot + 1;
  }
  if (parts.size() != 5) {
    return integrity_error();
  }
  JweParts p;
  p.header_b64 = std::string(parts[0]);
  auto header = base64url_decode(parts[0]);
  auto key = base64url_decode(parts[1]);
  auto iv = base64url_decode(parts[2]);
  auto ct = base64url_decode(parts[3]);
  auto tag = base64url_decode(parts[4]);
  if (!header || !key || !iv || !ct || !tag) {
    return integrity_error();
  }
  auto h = parse_json_strict(as_chars(*header), JsonLimits{4096, 4});
  if (!h || !h->is_object()) {
    return integrity_error();
  }
  p.header = std::move(*h);
  p.encrypted_key = std::move(*key);
  p.iv = std::move(*iv);
  p.ciphertext = std::move(*ct);
  p.tag = std::move(*tag);
  return p;
}

std::string header_member(const Json& h, const char* name) {
  auto it = h.find(name);
  return it != h.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The authentication tag over AAD (the encoded header) || IV || ciphertext || AL.
Result<Bytes> cbc_hs512_tag(std::span<const std::uint8_t> mac_key, std::string_view header_b64,
                            std::span<const std::uint8_t> iv, std::span<const std::uint8_t> ct) {
  Bytes data(header_b64.begin(), header_b64.end());
  data.insert(data.end(), iv.begin(), iv.end());
  data.insert(data.end(), ct.begin(), ct.end());
  const std::uint64_t al = static_cast<std::uint64_t>(header_b64.size()) * 8;
  for (int shift = 56; shift >= 0; shift -= 8) {
    data.push_back(static_cast<std::uint8_t>(al >> shift));
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes mac, hmac_sha512(mac_key, data));
  mac.resize(kTagBytes);
  return mac;
}

Result<std::string> seal(const Json& header, const SecretBytes& cek,
                         std::span<const std::uint8_t> encrypted_key,
                         const SecretBytes& plaintext) {
  if (cek.size() != kCekBytes) {
    return make_error(ErrorCode::kInternal, "A256CBC-HS512 needs a 64-byte key");
  }
  const auto k = cek.reveal(SecretAccess::unsafe());
  const std::string header_b64 = base64url_encode(as_bytes(dump_json(header)));
  const Bytes iv = random_bytes(kIvBytes);
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  Bytes ct(plaintext.size() + kIvBytes);
  int n1 = 0;
  int n2 = 0;
  const auto pt = plaintext.reveal(SecretAccess::unsafe());
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, k.data() + 32, iv.data()) != 1 ||
      EVP_EncryptUpdate(ctx.get(), ct.data(), &n1, pt.data(), static_cast<int>(pt.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), ct.data() + n1, &n2) != 1) {
    return ossl::crypto_failure("AES-256-CBC encrypt");
  }
  ct.resize(static_cast<std::size_t>(n1 + n2));
  KEYPORT_ASSIGN_OR_RETURN(Bytes tag, cbc_hs512_tag(k.first(32), header_b64, iv, ct));
  return header_b64 + "." + base64url_encode(encrypted_key) + "." + base64url_encode(iv) + "." +
         base64url_encode(ct) + "." + base64url_encode(tag);
}

Result<SecretBytes> open(const JweParts& p, const SecretBytes& cek) {
  if (cek.size() != kCekBytes || p.iv.size() != kIvBytes || p.tag.size() != kTagBytes ||
      p.ciphertext.empty() || p.ciphertext.size() % 16 != 0 ||
      header_member(p.header, "enc") != "A256CBC-HS512") {
    return integrity_error();
  }
  const auto k = cek.reveal(SecretAccess::unsafe());
  KEYPORT_ASSIGN_OR_RETURN(Bytes tag, cbc_hs512_tag(k.first(32), p.header_b64, p.iv, p.ciphertext));
  if (CRYPTO_memcmp(tag.data(), p.tag.data(), kTagBytes) != 0) {
    return integrity_error();
  }
  ossl::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  SecretBytes out(p.ciphertext.size());
  auto o = out.reveal_mut(SecretAccess::unsafe());
  int n1 = 0;
  int n2 = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, k.data() + 32, p.iv.data()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), o.data(), &n1, p.ciphertext.data(),
                        static_cast<int>(p.ciphertext.size())) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), o.data() + n1, &n2) != 1) {
    (void)ossl::drain_errors();  // bad padding under a good tag: nothing left on the queue
    return integrity_error();
  }
  out.truncate(static_cast<std::size_t>(n1 + n2));
  return out;
}

// --- certificates ---

Result<Recipient> recipient_of(std::span<const std::uint8_t> der, std::string_view where) {
  auto cert = x509::certificate_from_der(der);
  if (!cert) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(where) + " is not an X.509 certificate");
  }
  EVP_PKEY* key = X509_get0_pubkey(cert->get());
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
    return make_error(
        ErrorCode::kInvalidArgument,
        std::string(where) + " does not hold an RSA key (only RSA >= 2048 is supported)");
  }
  if (EVP_PKEY_get_bits(key) < static_cast<int>(kMinRsaBits)) {
    return make_error(ErrorCode::kInvalidArgument, std::string(where) + " holds RSA-" +
                                                       std::to_string(EVP_PKEY_get_bits(key)) +
                                                       " (only RSA >= 2048 is supported)");
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes spki, x509::public_key_spki(*key));
  return Recipient{Bytes(der.begin(), der.end()), std::move(spki), thumbprint_s256(der)};
}

Result<Bytes> rsa_component(const Recipient& r, const char* name) {
  auto cert = x509::certificate_from_der(r.cert_der);
  if (!cert) {
    return tl::unexpected(cert.error());
  }
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(X509_get0_pubkey(cert->get()), name, &bn) != 1) {
    return ossl::crypto_failure("RSA public key");
  }
  Bytes out(static_cast<std::size_t>(BN_num_bytes(bn)));
  BN_bn2bin(bn, out.data());
  BN_free(bn);
  return out;
}

Status check_counts(std::size_t n, unsigned required) {
  if (n < kMinCertificates || n > kMaxCertificates) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "The number of certificates must be 3 to 10 (got " + std::to_string(n) + ").");
  }
  if (required < kMinQuorum || required > kMaxQuorum || required > n) {
    return make_error(ErrorCode::kInvalidArgument,
                      "The quorum (required) must be 2 to 10 and at most the number of "
                      "certificates (got " +
                          std::to_string(required) + " of " + std::to_string(n) + ").");
  }
  return {};
}

Result<std::vector<std::pair<std::string, std::string>>> parse_enc_data(const Json& doc) {
  auto it = doc.find("EncData");
  if (it == doc.end() || !it->is_object()) {
    return make_error(ErrorCode::kFormat, "\"EncData\" is missing or not an object");
  }
  const Json& enc = *it;
  auto kdf = enc.find("kdf");
  if (kdf == enc.end() || !kdf->is_string() || kdf->get<std::string>() != kKdfName) {
    return make_error(ErrorCode::kFormat, "\"EncData.kdf\" must be \"sp108_kdf\"");
  }
  auto data = enc.find("data");
  if (data == enc.end() || !data->is_array() || data->empty() || data->size() > kMaxDataItems) {
    return make_error(ErrorCode::kFormat, "\"EncData.data\" must be an array of 1 to 16 items");
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const Json& d : *data) {
    if (!d.is_object()) {
      return make_error(ErrorCode::kFormat, "an \"EncData.data\" item is not an object");
    }
    auto jwe = d.find("compact_jwe");
    auto tag = d.find("tag");
    if (jwe == d.end() || !jwe->is_string() || tag == d.end() || !tag->is_string() ||
        tag->get<std::string>().empty() || tag->get<std::string>().size() > 256) {
      return make_error(ErrorCode::kFormat,
                        "an \"EncData.data\" item needs string \"compact_jwe\" and \"tag\"");
    }
    out.emplace_back(jwe->get<std::string>(), tag->get<std::string>());
  }
  return out;
}

Result<Json> parse_document(std::string_view text) {
  if (text.size() > kMaxDocumentBytes) {
    return make_error(ErrorCode::kFormat, "the document is larger than 256 KiB");
  }
  auto doc = parse_json_strict(text, JsonLimits{kMaxDocumentBytes, 16});
  if (!doc) {
    return tl::unexpected(doc.error());
  }
  if (!doc->is_object()) {
    return make_error(ErrorCode::kFormat, "the document is not a JSON object");
  }
  return doc;
}

Result<Json> seal_data(std::span<const Datum> data, const SecretBytes& master) {
  Json items = Json::array();
  for (const Datum& d : data) {
    KEYPORT_ASSIGN_OR_RETURN(SecretBytes key, kdf_sp800_108(master, d.tag, "", 512));
    KEYPORT_ASSIGN_OR_RETURN(std::string jwe, jwe_encrypt_dir(key, d.tag, d.plaintext));
    items.push_back(Json{{"compact_jwe", jwe}, {"tag", d.tag}});
  }
  return Json{{"data", std::move(items)}, {"kdf", kKdfName}};
}

Result<std::vector<Datum>> open_data(std::span<const std::pair<std::string, std::string>> data,
                                     const SecretBytes& master) {
  std::vector<Datum> out;
  for (const auto& [jwe, tag] : data) {
    KEYPORT_ASSIGN_OR_RETURN(SecretBytes key, kdf_sp800_108(master, tag, "", 512));
    KEYPORT_ASSIGN_OR_RETURN(SecretBytes plain, jwe_decrypt_dir(key, jwe));
    out.push_back(Datum{tag, std::move(plain)});
  }
  return out;
}

}  // namespace

std::string thumbprint_s256(std::span<const std::uint8_t> cert_der) {
  return base64url_encode(sha256(cert_der));
}

Result<SecretBytes> kdf_sp800_108(const SecretBytes& key, std::string_view label,
                                  std::string_view context, std::size_t bits) {
  if (bits == 0 || bits % 8 != 0 || bits > 4096) {
    return make_error(ErrorCode::kInvalidArgument, "SP 800-108: the length must be 8..4096 bits");
  }
  const std::size_t want = bits / 8;
  SecretBytes out;
  for (std::uint32_t i = 1; out.size() < want; ++i) {
    Bytes input;
    put_be32(input, i);
    input.insert(input.end(), label.begin(), label.end());
    input.push_back(0);
    input.insert(input.end(), context.begin(), context.end());
    put_be32(input, static_cast<std::uint32_t>(bits));
    KEYPORT_ASSIGN_OR_RETURN(Bytes block, hmac_sha512(key.reveal(SecretAccess::unsafe()), input));
    const std::size_t take = std::min(block.size(), want - out.size());
    out.append(std::span<const std::uint8_t>(block.data(), take));
    secure_wipe(block.data(), block.size());
  }
  return out;
}

Result<std::vector<std::vector<std::uint16_t>>> shamir_split(const SecretBytes& secret,
                                                             unsigned shares, unsigned required) {
  if (required < 2 || required > shares || shares > 127) {
    return make_error(ErrorCode::kInvalidArgument, "Shamir: need 2 <= required <= shares <= 127");
  }
  std::vector<std::vector<std::uint16_t>> out(shares);
  std::vector<unsigned> coefficients(required);
  for (std::uint8_t byte : secret.reveal(SecretAccess::unsafe())) {
    coefficients[0] = byte;  // f(0) is the secret byte
    for (unsigned c = 1; c < required; ++c) {
      coefficients[c] = random_field_element();
    }
    for (unsigned x = 1; x <= shares; ++x) {
      unsigned v = 0;
      for (unsigned c = required; c-- > 0;) {  // Horner
        v = (mod_mul(v, x) + coefficients[c]) % kField;
      }
      out[x - 1].push_back(static_cast<std::uint16_t>((x << 9) | v));
    }
  }
  secure_wipe(coefficients.data(), coefficients.size() * sizeof(unsigned));
  return out;
}

Result<SecretBytes> shamir_combine(std::span<const std::vector<std::uint16_t>> shares,
                                   unsigned required) {
  if (required < 2 || shares.size() < required) {
    return integrity_error();
  }
  const std::size_t len = shares[0].size();
  std::vector<unsigned> xs(required);
  for (unsigned i = 0; i < required; ++i) {
    if (shares[i].size() != len || len == 0) {
      return integrity_error();
    }
    xs[i] = shares[i][0] >> 9;
    if (xs[i] == 0 || std::count(xs.begin(), xs.begin() + i, xs[i]) != 0) {
      return integrity_error();
    }
  }
  // The Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i).
  std::vector<unsigned> basis(required);
  for (unsigned i = 0; i < required; ++i) {
    unsigned num = 1;
    unsigned den = 1;
    for (unsigned j = 0; j < required; ++j) {
      if (j != i) {
        num = mod_mul(num, xs[j]);
        den = mod_mul(den, (xs[j] + kField - xs[i]) % kField);
      }
    }
    basis[i] = mod_mul(num, mod_inv(den));
  }
  SecretBytes out(len);
  auto o = out.reveal_mut(SecretAccess::unsafe());
  bool ok = true;
  for (std::size_t b = 0; b < len; ++b) {
    unsigned s = 0;
    for (unsigned i = 0; i < required; ++i) {
      const std::uint16_t w = shares[i][b];
      const unsigned v = w & 0x1ffu;
      ok &= (w >> 9) == xs[i] && v < kField;
      s = (s + mod_mul(basis[i], v % kField)) % kField;
    }
    ok &= s < 256;
    o[b] = static_cast<std::uint8_t>(s & 0xffu);
  }
  if (!ok) {
    return integrity_error();
  }
  return out;
}

Result<std::string> jwe_encrypt_dir(const SecretBytes& key, std::string_view kid,
                                    const SecretBytes& plaintext) {
  return seal(Json{{"alg", "dir"}, {"enc", "A256CBC-HS512"}, {"kid", kid}}, key, {}, plaintext);
}

Result<SecretBytes> jwe_decrypt_dir(const SecretBytes& key, std::string_view compact) {
  KEYPORT_ASSIGN_OR_RETURN(JweParts p, split_jwe(compact));
  if (header_member(p.header, "alg") != "dir" || !p.encrypted_key.empty()) {
    return integrity_error();
  }
  return open(p, key);
}

Result<std::string> jwe_encrypt_rsa(std::span<const std::uint8_t> spki_der,
                                    const SecretBytes& plaintext) {
  SecretBytes cek = random_secret(kCekBytes);
  KEYPORT_ASSIGN_OR_RETURN(Bytes ek, byok::rsa_oaep_encrypt(spki_der, OaepHash::kSha256, cek));
  return seal(Json{{"alg", "RSA-OAEP-256"}, {"enc", "A256CBC-HS512"}, {"kid", "not used"}}, cek, ek,
              plaintext);
}

Result<SecretBytes> jwe_decrypt_rsa(std::string_view compact, const CekDecryptor& decrypt_cek) {
  KEYPORT_ASSIGN_OR_RETURN(JweParts p, split_jwe(compact));
  if (header_member(p.header, "alg") != "RSA-OAEP-256" || p.encrypted_key.empty()) {
    return integrity_error();
  }
  auto cek = decrypt_cek(p.encrypted_key);
  if (!cek || cek->size() != kCekBytes) {
    // The same answer as a bad tag: no oracle on the RSA step.
    SecretBytes decoy = random_secret(kCekBytes);
    (void)open(p, decoy);
    return integrity_error();
  }
  return open(p, *cek);
}

Result<DownloadRequest> parse_download_request(const Json& body) {
  if (!body.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "The request body must be a JSON object.");
  }
  auto certs = body.find("certificates");
  if (certs == body.end() || !certs->is_array()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "\"certificates\" (an array of 3 to 10 JSON web keys with x5c) is required.");
  }
  auto req = body.find("required");
  if (req == body.end() || !req->is_number_integer()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "\"required\" (the quorum, 2 to 10) is required.");
  }
  const auto quorum = req->get<std::int64_t>();
  KEYPORT_TRY(check_counts(certs->size(),
                           quorum < 0 || quorum > 1000 ? 0u : static_cast<unsigned>(quorum)));
  DownloadRequest out;
  out.required = static_cast<unsigned>(quorum);
  std::set<std::string> seen;
  std::set<Bytes> seen_keys;
  for (std::size_t i = 0; i < certs->size(); ++i) {
    const Json& jwk = (*certs)[i];
    const std::string where = "certificates[" + std::to_string(i) + "]";
    if (!jwk.is_object()) {
      return make_error(ErrorCode::kInvalidArgument, where + " is not a JSON web key.");
    }
    auto x5c = jwk.find("x5c");
    if (x5c == jwk.end() || !x5c->is_array() || x5c->empty() || !(*x5c)[0].is_string()) {
      return make_error(ErrorCode::kInvalidArgument,
                        where + ": \"x5c\" (the certificate, base64 DER) is required.");
    }
    auto der = base64_decode((*x5c)[0].get<std::string>());
    if (!der) {
      return make_error(ErrorCode::kInvalidArgument, where + ": \"x5c\" is not base64.");
    }
    KEYPORT_ASSIGN_OR_RETURN(Recipient r, recipient_of(*der, where));
    if (auto kty = jwk.find("kty");
        kty != jwk.end() && (!kty->is_string() || (kty->get<std::string>() != "RSA" &&
                                                   kty->get<std::string>() != "RSA-HSM"))) {
      return make_error(ErrorCode::kInvalidArgument, where + ": \"kty\" must be RSA.");
    }
    for (const char* name : {"n", "e"}) {
      auto m = jwk.find(name);
      if (m == jwk.end()) {
        continue;
      }
      auto given = m->is_string() ? base64url_decode(m->get<std::string>()) : Result<Bytes>();
      KEYPORT_ASSIGN_OR_RETURN(Bytes actual, rsa_component(r, name));
      if (!m->is_string() || !given || *given != actual) {
        return make_error(ErrorCode::kInvalidArgument,
                          where + ": \"" + name + "\" does not match the certificate's key.");
      }
    }
    if (auto t = jwk.find("x5t#S256"); t != jwk.end() && (!t->is_string() || *t != r.x5t_s256)) {
      return make_error(ErrorCode::kInvalidArgument,
                        where + ": \"x5t#S256\" is not the SHA-256 thumbprint of the certificate.");
    }
    if (auto t = jwk.find("x5t");
        t != jwk.end() && (!t->is_string() || *t != base64url_encode(sha1(r.cert_der)))) {
      return make_error(ErrorCode::kInvalidArgument,
                        where + ": \"x5t\" is not the SHA-1 thumbprint of the certificate.");
    }
    if (!seen.insert(r.x5t_s256).second || !seen_keys.insert(r.spki_der).second) {
      return make_error(ErrorCode::kInvalidArgument,
                        where + " repeats a certificate or its key: each share needs its own key.");
    }
    out.recipients.push_back(std::move(r));
  }
  return out;
}

Result<Json> download_request_json(std::span<const std::string> cert_pems, unsigned required) {
  Json certs = Json::array();
  for (std::size_t i = 0; i < cert_pems.size(); ++i) {
    const std::string where = "certificate " + std::to_string(i + 1);
    auto parsed = x509::certificates_from_pem(cert_pems[i]);
    if (!parsed || parsed->size() != 1) {
      return make_error(ErrorCode::kInvalidArgument,
                        where + " is not one PEM \"CERTIFICATE\" block");
    }
    const Bytes der = x509::certificate_der(*parsed->front());
    KEYPORT_ASSIGN_OR_RETURN(Recipient r, recipient_of(der, where));
    KEYPORT_ASSIGN_OR_RETURN(Bytes n, rsa_component(r, "n"));
    KEYPORT_ASSIGN_OR_RETURN(Bytes e, rsa_component(r, "e"));
    certs.push_back(Json{{"kty", "RSA"},
                         {"key_ops", {"verify", "encrypt", "wrapKey"}},
                         {"n", base64url_encode(n)},
                         {"e", base64url_encode(e)},
                         {"x5c", {base64_encode(der)}},
                         {"x5t", base64url_encode(sha1(der))},
                         {"x5t#S256", r.x5t_s256},
                         {"alg", "RSA-OAEP-256"}});
  }
  Json body{{"certificates", std::move(certs)}, {"required", required}};
  KEYPORT_TRY(parse_download_request(body));  // the same rules as the HSM's
  return body;
}

Result<std::string> make_security_domain(const DownloadRequest& request,
                                         std::span<const Datum> data) {
  KEYPORT_TRY(check_counts(request.recipients.size(), request.required));
  SecretBytes master = random_secret(kMasterKeyBytes);
  KEYPORT_ASSIGN_OR_RETURN(
      auto shares,
      shamir_split(master, static_cast<unsigned>(request.recipients.size()), request.required));
  Json enc_shares = Json::array();
  for (std::size_t i = 0; i < shares.size(); ++i) {
    SecretBytes share(shares[i].size() * 2);
    auto s = share.reveal_mut(SecretAccess::unsafe());
    for (std::size_t b = 0; b < shares[i].size(); ++b) {
      s[2 * b] = static_cast<std::uint8_t>(shares[i][b] & 0xffu);
      s[2 * b + 1] = static_cast<std::uint8_t>(shares[i][b] >> 8);
    }
    secure_wipe(shares[i].data(), shares[i].size() * sizeof(std::uint16_t));
    KEYPORT_ASSIGN_OR_RETURN(std::string jwe,
                             jwe_encrypt_rsa(request.recipients[i].spki_der, share));
    enc_shares.push_back(Json{{"enc_key", jwe}, {"x5t_256", request.recipients[i].x5t_s256}});
  }
  KEYPORT_ASSIGN_OR_RETURN(Json enc_data, seal_data(data, master));
  Json doc{{"EncData", std::move(enc_data)},
           {"SharedKeys",
            {{"enc_shares", std::move(enc_shares)},
             {"required", request.required},
             {"key_algorithm", kShareAlgorithm}}}};
  return dump_json(doc);
}

Result<SecurityDomainFile> parse_security_domain(std::string_view text) {
  KEYPORT_ASSIGN_OR_RETURN(Json doc, parse_document(text));
  SecurityDomainFile f;
  KEYPORT_ASSIGN_OR_RETURN(f.data, parse_enc_data(doc));
  auto sk = doc.find("SharedKeys");
  if (sk == doc.end() || !sk->is_object()) {
    return make_error(ErrorCode::kFormat, "\"SharedKeys\" is missing or not an object");
  }
  auto alg = sk->find("key_algorithm");
  if (alg == sk->end() || !alg->is_string() || alg->get<std::string>() != kShareAlgorithm) {
    return make_error(ErrorCode::kFormat, "\"SharedKeys.key_algorithm\" must be \"shamir_share\"");
  }
  auto req = sk->find("required");
  if (req == sk->end() || !req->is_number_integer() || req->get<std::int64_t>() < kMinQuorum ||
      req->get<std::int64_t>() > kMaxQuorum) {
    return make_error(ErrorCode::kFormat, "\"SharedKeys.required\" must be 2 to 10");
  }
  f.required = static_cast<unsigned>(req->get<std::int64_t>());
  auto shares = sk->find("enc_shares");
  if (shares == sk->end() || !shares->is_array() || shares->size() > kMaxCertificates ||
      shares->size() < f.required) {
    return make_error(ErrorCode::kFormat,
                      "\"SharedKeys.enc_shares\" must be an array of at least \"required\" and at "
                      "most 10 shares");
  }
  std::set<std::string> thumbprints;
  for (const Json& s : *shares) {
    auto ek = s.is_object() ? s.find("enc_key") : s.end();
    auto x5t = s.is_object() ? s.find("x5t_256") : s.end();
    if (!s.is_object() || ek == s.end() || !ek->is_string() || x5t == s.end() ||
        !x5t->is_string()) {
      return make_error(
          ErrorCode::kFormat,
          "a \"SharedKeys.enc_shares\" item needs string \"enc_key\" and \"x5t_256\"");
    }
    if (!thumbprints.insert(x5t->get<std::string>()).second) {
      return make_error(ErrorCode::kFormat, "two \"SharedKeys.enc_shares\" name one certificate");
    }
    f.shares.push_back({ek->get<std::string>(), x5t->get<std::string>()});
  }
  return f;
}

Result<std::string> make_restore_blob(const SecurityDomainFile& file,
                                      std::span<const WrappingKey> keys,
                                      std::span<const std::uint8_t> exchange_cert_der) {
  KEYPORT_ASSIGN_OR_RETURN(Recipient exchange, recipient_of(exchange_cert_der, "the exchange key"));
  std::set<std::string> given;
  for (const WrappingKey& k : keys) {
    if (!given.insert(thumbprint_s256(k.cert_der)).second) {
      return make_error(ErrorCode::kInvalidArgument,
                        "a wrapping key is given twice: the quorum needs distinct keys");
    }
  }
  std::vector<std::vector<std::uint16_t>> opened;
  for (const WrappingKey& k : keys) {
    if (opened.size() >= file.required) {
      break;
    }
    const std::string x5t = thumbprint_s256(k.cert_der);
    for (const auto& s : file.shares) {
      if (s.x5t_256 != x5t) {
        continue;
      }
      KEYPORT_ASSIGN_OR_RETURN(
          SecretBytes share, jwe_decrypt_rsa(s.enc_key, [&](std::span<const std::uint8_t> ek) {
            return byok::rsa_oaep_decrypt(k.private_key_der, OaepHash::kSha256, ek);
          }));
      const auto b = share.reveal(SecretAccess::unsafe());
      if (b.empty() || b.size() % 2 != 0) {
        return integrity_error();
      }
      std::vector<std::uint16_t> values(b.size() / 2);
      for (std::size_t i = 0; i < values.size(); ++i) {
        values[i] = static_cast<std::uint16_t>(b[2 * i] | (b[2 * i + 1] << 8));
      }
      opened.push_back(std::move(values));
      break;
    }
  }
  if (opened.size() < file.required) {
    return make_error(ErrorCode::kInvalidArgument,
                      "Insufficient shares: " + std::to_string(opened.size()) +
                          " of the wrapping keys match a share of this security domain, " +
                          std::to_string(file.required) + " are required.");
  }
  auto master = shamir_combine(opened, file.required);
  for (auto& v : opened) {
    secure_wipe(v.data(), v.size() * sizeof(std::uint16_t));
  }
  if (!master) {
    return tl::unexpected(master.error());
  }
  KEYPORT_ASSIGN_OR_RETURN(std::vector<Datum> data, open_data(file.data, *master));
  SecretBytes fresh = random_secret(kMasterKeyBytes);
  KEYPORT_ASSIGN_OR_RETURN(Json enc_data, seal_data(data, fresh));
  KEYPORT_ASSIGN_OR_RETURN(std::string wrapped, jwe_encrypt_rsa(exchange.spki_der, fresh));
  Json blob{{"EncData", std::move(enc_data)},
            {"WrappedKey", {{"enc_key", wrapped}, {"x5t_256", exchange.x5t_s256}}}};
  return dump_json(blob);
}

Result<RestoreBlob> parse_restore_blob(std::string_view text) {
  KEYPORT_ASSIGN_OR_RETURN(Json doc, parse_document(text));
  RestoreBlob b;
  KEYPORT_ASSIGN_OR_RETURN(b.data, parse_enc_data(doc));
  auto wk = doc.find("WrappedKey");
  if (wk == doc.end() || !wk->is_object()) {
    return make_error(ErrorCode::kFormat, "\"WrappedKey\" is missing or not an object");
  }
  auto ek = wk->find("enc_key");
  auto x5t = wk->find("x5t_256");
  if (ek == wk->end() || !ek->is_string() || x5t == wk->end() || !x5t->is_string()) {
    return make_error(ErrorCode::kFormat,
                      "\"WrappedKey\" needs string \"enc_key\" and \"x5t_256\"");
  }
  b.wrapped_key = ek->get<std::string>();
  b.x5t_256 = x5t->get<std::string>();
  return b;
}

Result<std::vector<Datum>> open_restore_blob(const RestoreBlob& blob, const SecretBytes& master) {
  return open_data(blob.data, master);
}

}  // namespace keyport::vault::sd

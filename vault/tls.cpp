// SPDX-License-Identifier: Apache-2.0
#include "vault/tls.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <ctime>

#include "core/file_io.h"
#include "core/net.h"
#include "core/random.h"
#include "core/strings.h"

namespace keyport::vault {
namespace fs = std::filesystem;
namespace {

constexpr const char* kCaFile = "ca.pem";
constexpr const char* kCaKeyFile = "ca-key.pem";
constexpr const char* kServerCertFile = "server.pem";
constexpr const char* kServerKeyFile = "server-key.pem";

constexpr long kCaLifetime = 10L * 365 * 86400;
constexpr long kServerLifetime = 365L * 86400;
constexpr long kRenewBefore = 30L * 86400;

bool is_dns_name(const std::string& name) {
  if (name.empty() || name.size() > 253 || name.front() == '.' || name.back() == '.' ||
      name.front() == '-') {
    return false;
  }
  // ASCII only, whatever the C locale says is a letter (std::isalnum follows it).
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '.';
  });
}

Result<ossl::UniquePtr<EVP_PKEY>> make_ec_key() {
  ossl::UniquePtr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (!key) {
    return ossl::crypto_failure("EC P-256 key generation");
  }
  return key;
}

Status add_extension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  ossl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext) {
    return ossl::crypto_failure(std::string("certificate extension ") + OBJ_nid2sn(nid));
  }
  if (X509_add_ext(cert, ext.get(), -1) != 1) {
    return ossl::crypto_failure("X509_add_ext");
  }
  return {};
}

// Issues a certificate for `subject_key`. `issuer` null: self-signed CA.
Result<ossl::UniquePtr<X509>> issue(const std::string& common_name, EVP_PKEY& subject_key,
                                    EVP_PKEY& issuer_key, X509* issuer,
                                    const std::vector<std::string>& names, long lifetime) {
  ossl::UniquePtr<X509> cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) {
    return ossl::crypto_failure("X509_new");
  }
  // A positive random 127-bit serial.
  Bytes serial = random_bytes(16);
  serial[0] &= 0x7f;
  ossl::UniquePtr<BIGNUM> bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return ossl::crypto_failure("certificate serial");
  }
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), lifetime) == nullptr) {
    return ossl::crypto_failure("certificate validity");
  }
  ossl::UniquePtr<X509_NAME> subject(X509_NAME_new());
  const auto* cn = reinterpret_cast<const unsigned char*>(common_name.c_str());
  const auto* org = reinterpret_cast<const unsigned char*>("keyport simulated vault");
  if (!subject ||
      X509_NAME_add_entry_by_txt(subject.get(), "O", MBSTRING_UTF8, org, -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8, cn, -1, -1, 0) != 1 ||
      X509_set_subject_name(cert.get(), subject.get()) != 1 ||
      X509_set_issuer_name(
          cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : subject.get()) != 1 ||
      X509_set_pubkey(cert.get(), &subject_key) != 1) {
    return ossl::crypto_failure("certificate names");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  if (issuer == nullptr) {
    KEYPORT_TRY(add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE"));
    KEYPORT_TRY(add_extension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
    KEYPORT_TRY(add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  } else {
    std::string san;
    for (const auto& n : names) {
      san += (san.empty() ? "" : ",") + std::string(is_ip_literal(n) ? "IP:" : "DNS:") + n;
    }
    KEYPORT_TRY(add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
    KEYPORT_TRY(add_extension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
    KEYPORT_TRY(add_extension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth"));
    KEYPORT_TRY(add_extension(cert.get(), &ctx, NID_subject_alt_name, san));
    KEYPORT_TRY(add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
    KEYPORT_TRY(add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  }
  if (X509_sign(cert.get(), &issuer_key, EVP_sha256()) == 0) {
    return ossl::crypto_failure("X509_sign");
  }
  return cert;
}

std::string cert_pem(X509& cert) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), &cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Result<SecretBytes> key_pem(EVP_PKEY& key) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_secmem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), &key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return ossl::crypto_failure("PEM_write_bio_PrivateKey");
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return SecretBytes(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(data),
                                                   static_cast<std::size_t>(n)));
}

Status write_key(const fs::path& path, EVP_PKEY& key) {
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes pem, key_pem(key));
  WriteOptions o;
  o.mode = 0600;
  o.overwrite = true;
  return write_file_atomic(path, pem.reveal(SecretAccess::unsafe()), o);
}

Status write_cert(const fs::path& path, X509& cert) {
  WriteOptions o;
  o.mode = 0644;
  o.overwrite = true;
  return write_file_atomic(path, cert_pem(cert), o);
}

Result<std::vector<ossl::UniquePtr<X509>>> read_certs(const fs::path& path) {
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(path, 1 << 20));
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  std::vector<ossl::UniquePtr<X509>> out;
  while (true) {
    X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (c == nullptr) {
      break;
    }
    out.emplace_back(c);
  }
  ossl::drain_errors();
  if (out.empty()) {
    return make_error(ErrorCode::kFormat, path.string() + " holds no PEM certificate");
  }
  return out;
}

Result<ossl::UniquePtr<EVP_PKEY>> read_key(const fs::path& path) {
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes pem, read_secret_file(path, 1 << 20));
  auto bytes = pem.reveal(SecretAccess::unsafe());
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  ossl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    ossl::drain_errors();
    return make_error(ErrorCode::kFormat, path.string() + " holds no PEM private key");
  }
  return key;
}

// Seconds from now until `t` (negative when past).
long seconds_until(const ASN1_TIME* t) {
  int days = 0;
  int secs = 0;
  if (ASN1_TIME_diff(&days, &secs, nullptr, t) != 1) {
    return LONG_MIN;
  }
  return static_cast<long>(days) * 86400 + secs;
}

bool server_cert_usable(X509& cert, EVP_PKEY& key, X509& ca,
                        const std::vector<std::string>& names) {
  ossl::UniquePtr<EVP_PKEY> ca_pub(X509_get_pubkey(&ca));
  bool ok = ca_pub && X509_verify(&cert, ca_pub.get()) == 1 &&
            X509_check_private_key(&cert, &key) == 1 &&
            seconds_until(X509_get0_notAfter(&cert)) > kRenewBefore;
  for (const auto& n : names) {
    ok = ok && certificate_covers(cert, n);
  }
  ossl::drain_errors();
  return ok;
}

}  // namespace

std::vector<std::string> tls_names(const std::string& vault_host) {
  std::vector<std::string> names{"127.0.0.1", "::1", "localhost"};
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) {
    const std::string h = ascii_lower(host);
    if (is_dns_name(h)) {
      names.push_back(h);
    }
  }
  const std::string v = host_only(vault_host);
  if ((is_dns_name(v) || is_ip_literal(v)) &&
      std::find(names.begin(), names.end(), v) == names.end()) {
    names.push_back(v);
  }
  return names;
}

bool certificate_covers(X509& cert, const std::string& name) {
  bool ok = is_ip_literal(name)
                ? X509_check_ip_asc(&cert, name.c_str(), 0) == 1
                : X509_check_host(&cert, name.c_str(), name.size(), 0, nullptr) == 1;
  ossl::drain_errors();
  return ok;
}

Result<TlsMaterial> ensure_vault_tls(const fs::path& tls_dir,
                                     const std::vector<std::string>& names) {
  std::error_code ec;
  fs::create_directories(tls_dir, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "cannot create " + tls_dir.string() + ": " + ec.message());
  }
  fs::permissions(tls_dir, fs::perms::owner_all, ec);
  TlsMaterial m;
  m.ca_file = tls_dir / kCaFile;

  ossl::UniquePtr<X509> ca;
  ossl::UniquePtr<EVP_PKEY> ca_key;
  if (fs::exists(tls_dir / kCaFile) && fs::exists(tls_dir / kCaKeyFile)) {
    KEYPORT_ASSIGN_OR_RETURN(auto certs, read_certs(tls_dir / kCaFile));
    ca = std::move(certs.front());
    KEYPORT_ASSIGN_OR_RETURN(ca_key, read_key(tls_dir / kCaKeyFile));
    if (X509_check_private_key(ca.get(), ca_key.get()) != 1) {
      ossl::drain_errors();
      return make_error(
          ErrorCode::kInvalidArgument,
          (tls_dir / kCaKeyFile).string() + " is not the key of " + (tls_dir / kCaFile).string());
    }
  } else {
    KEYPORT_ASSIGN_OR_RETURN(ca_key, make_ec_key());
    KEYPORT_ASSIGN_OR_RETURN(ca,
                             issue("keyport vault CA", *ca_key, *ca_key, nullptr, {}, kCaLifetime));
    // The key first: a CA certificate without its key would be useless at the next start.
    KEYPORT_TRY(write_key(tls_dir / kCaKeyFile, *ca_key));
    KEYPORT_TRY(write_cert(tls_dir / kCaFile, *ca));
    m.ca_created = true;
  }

  if (!m.ca_created && fs::exists(tls_dir / kServerCertFile) &&
      fs::exists(tls_dir / kServerKeyFile)) {
    auto certs = read_certs(tls_dir / kServerCertFile);
    auto key = read_key(tls_dir / kServerKeyFile);
    if (certs && key && server_cert_usable(*certs->front(), **key, *ca, names)) {
      m.cert = std::move(certs->front());
      m.key = std::move(*key);
      return m;
    }
  }
  KEYPORT_ASSIGN_OR_RETURN(m.key, make_ec_key());
  KEYPORT_ASSIGN_OR_RETURN(
      m.cert, issue("keyport vault", *m.key, *ca_key, ca.get(), names, kServerLifetime));
  KEYPORT_TRY(write_key(tls_dir / kServerKeyFile, *m.key));
  KEYPORT_TRY(write_cert(tls_dir / kServerCertFile, *m.cert));
  m.cert_issued = true;
  return m;
}

Result<TlsMaterial> load_tls_files(const fs::path& cert_file, const fs::path& key_file) {
  TlsMaterial m;
  KEYPORT_ASSIGN_OR_RETURN(auto certs, read_certs(cert_file));
  KEYPORT_ASSIGN_OR_RETURN(m.key, read_key(key_file));
  m.cert = std::move(certs.front());
  for (std::size_t i = 1; i < certs.size(); ++i) {
    m.chain.push_back(std::move(certs[i]));
  }
  if (X509_check_private_key(m.cert.get(), m.key.get()) != 1) {
    ossl::drain_errors();
    return make_error(
        ErrorCode::kInvalidArgument,
        key_file.string() + " is not the private key of the certificate in " + cert_file.string());
  }
  return m;
}

}  // namespace keyport::vault

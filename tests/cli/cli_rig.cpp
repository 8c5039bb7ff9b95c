// SPDX-License-Identifier: Apache-2.0
#include "tests/cli/cli_rig.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "tests/support/support.h"

#ifndef KEYPORT_CLI_BINARY
#error "KEYPORT_CLI_BINARY must name the keyport executable"
#endif

namespace keyport::test::cli {
namespace fs = std::filesystem;

std::string Run::describe() const {
  return "$ " + command + "\nexit " + std::to_string(rc) + "\n--- stdout\n" + out + "--- stderr\n" +
         err;
}

std::string sh_quote(const std::string& word) {
  std::string q = "'";
  for (char c : word) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

std::set<std::string> list_dir(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

Rig::Rig(const std::string& stem) {
  m_dir = make_scratch_subdir(stem);
  m_out = m_dir / "out";
  fs::create_directories(m_out);
  fs::create_directories(m_dir / "runs");
  const fs::path hsm = m_dir / "hsm";
  std::string log;
  const std::string init = sh_quote((source_dir() / "softhsm-config" / "init-tokens.sh").string()) +
                           " " + sh_quote(hsm.string()) + " onprem:1111:" + m_pin;
  int rc = run_command(init, &log);
  INFO(init << "\n" << log);
  REQUIRE(rc == 0);
  m_conf = hsm / "softhsm2.conf";
  REQUIRE(fs::exists(m_conf));
}

Run Rig::run_in_dir(const std::string& command_line, bool capture_stdout_apart) const {
  Run r;
  const fs::path stdout_file = m_dir / "runs" / ("stdout-" + std::to_string(++m_runs) + ".txt");
  r.command = command_line;
  std::string full = "cd " + sh_quote(m_dir.string()) + " && " + command_line + " </dev/null";
  if (capture_stdout_apart) {
    full = "( " + full + " >" + sh_quote(stdout_file.string()) + " )";
  }
  r.rc = run_command(full, &r.err);
  if (capture_stdout_apart) {
    r.out = read_text(stdout_file);
  } else {
    r.out = r.err;
  }
  return r;
}

Run Rig::keyport(const std::string& args) const {
  RunOptions o;
  o.keyport_pin = m_pin;
  return keyport(args, o);
}

Run Rig::keyport(const std::string& args, const RunOptions& options) const {
  // A clean environment for what keyport reads, whatever the developer's shell has set.
  std::string cmd =
      "env -u KEYPORT_PIN -u KEYPORT_PKCS11_MODULE -u KEYPORT_PKCS11_INIT_ARGS -u KEYPORT_LOG "
      "SOFTHSM2_CONF=" +
      sh_quote(m_conf.string());
  if (!options.keyport_pin.empty()) {
    cmd += " KEYPORT_PIN=" + sh_quote(options.keyport_pin);
  }
  for (const auto& e : options.env) {
    cmd += " " + sh_quote(e);
  }
  cmd += " " + sh_quote(KEYPORT_CLI_BINARY) + " " + args;
  return run_in_dir(cmd, true);
}

Run Rig::shell(const std::string& command_line) const {
  return run_in_dir("env SOFTHSM2_CONF=" + sh_quote(m_conf.string()) + " " + command_line, true);
}

Json Rig::generate(const std::string& type, const std::string& label) const {
  Run r = keyport("key generate --token onprem --type " + type + " --label " + sh_quote(label) +
                  " --json");
  INFO(r.describe());
  REQUIRE(r.rc == 0);
  auto j = parse_json_strict(r.out);
  REQUIRE(j.has_value());
  REQUIRE(j->is_object());
  return *j;
}

Json Rig::list_keys() const {
  Run r = keyport("key list --token onprem --json");
  INFO(r.describe());
  REQUIRE(r.rc == 0);
  auto j = parse_json_strict(r.out);
  REQUIRE(j.has_value());
  REQUIRE(j->contains("keys"));
  REQUIRE((*j)["keys"].is_array());
  return (*j)["keys"];
}

ossl::UniquePtr<EVP_PKEY> Rig::token_public_key(const std::string& label) const {
  const fs::path der_path = m_dir / ("pub-" + label + "-" + std::to_string(m_runs) + ".der");
  Run r = shell(std::string("pkcs11-tool --module ") + kSoftHsmModule +
                " --token-label onprem --read-object --type pubkey --label " + sh_quote(label) +
                " -o " + sh_quote(der_path.string()));
  INFO(r.describe());
  REQUIRE(r.rc == 0);
  const std::string der = read_text(der_path);
  REQUIRE_FALSE(der.empty());
  return public_key_from_der(Bytes(der.begin(), der.end()));
}

ossl::UniquePtr<EVP_PKEY> make_rsa_key(unsigned bits) {
  ossl::UniquePtr<EVP_PKEY> key(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)));
  INFO(ossl::drain_errors());
  REQUIRE(key != nullptr);
  return key;
}

ossl::UniquePtr<EVP_PKEY> make_ec_key() {
  ossl::UniquePtr<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  INFO(ossl::drain_errors());
  REQUIRE(key != nullptr);
  return key;
}

ossl::UniquePtr<EVP_PKEY> make_fake_rsa_public_key(unsigned bits) {
  std::vector<unsigned char> n(bits / 8);
  REQUIRE(RAND_bytes(n.data(), static_cast<int>(n.size())) == 1);
  n.front() |= 0x80;  // exactly `bits` bits
  n.back() |= 0x01;   // odd
  ossl::UniquePtr<BIGNUM> bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
  ossl::UniquePtr<BIGNUM> bn_e(BN_new());
  REQUIRE(bn_n != nullptr);
  REQUIRE(bn_e != nullptr);
  REQUIRE(BN_set_word(bn_e.get(), 65537) == 1);
  REQUIRE(BN_num_bits(bn_n.get()) == static_cast<int>(bits));

  ossl::UniquePtr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  REQUIRE(bld != nullptr);
  REQUIRE(OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) == 1);
  REQUIRE(OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) == 1);
  ossl::UniquePtr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld.get()));
  REQUIRE(params != nullptr);
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  REQUIRE(ctx != nullptr);
  REQUIRE(EVP_PKEY_fromdata_init(ctx.get()) == 1);
  EVP_PKEY* raw = nullptr;
  REQUIRE(EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) == 1);
  ossl::UniquePtr<EVP_PKEY> key(raw);
  REQUIRE(EVP_PKEY_get_bits(key.get()) == static_cast<int>(bits));
  return key;
}

void write_public_pem(const EVP_PKEY& key, const fs::path& path) {
  ossl::UniquePtr<BIO> bio(BIO_new_file(path.c_str(), "w"));
  REQUIRE(bio != nullptr);
  REQUIRE(PEM_write_bio_PUBKEY(bio.get(), &key) == 1);
}

ossl::UniquePtr<EVP_PKEY> public_key_from_der(const Bytes& der) {
  const unsigned char* p = der.data();
  ossl::UniquePtr<EVP_PKEY> key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  INFO(ossl::drain_errors());
  REQUIRE(key != nullptr);
  return key;
}

Opened open_ciphertext(EVP_PKEY& kek_private, const Bytes& ciphertext) {
  const auto modulus_bytes = static_cast<std::size_t>(EVP_PKEY_get_size(&kek_private));
  // RSA part, then at least one 16-byte RFC 5649 block (8-byte AIV + 8 bytes of key data).
  REQUIRE(ciphertext.size() >= modulus_bytes + 16);
  REQUIRE((ciphertext.size() - modulus_bytes) % 8 == 0);
  Opened opened;

  ossl::UniquePtr<EVP_PKEY_CTX> pctx(EVP_PKEY_CTX_new(&kek_private, nullptr));
  REQUIRE(pctx != nullptr);
  REQUIRE(EVP_PKEY_decrypt_init(pctx.get()) == 1);
  REQUIRE(EVP_PKEY_CTX_set_rsa_padding(pctx.get(), RSA_PKCS1_OAEP_PADDING) == 1);
  REQUIRE(EVP_PKEY_CTX_set_rsa_oaep_md(pctx.get(), EVP_sha1()) == 1);
  REQUIRE(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx.get(), EVP_sha1()) == 1);
  std::size_t key_len = modulus_bytes;
  opened.transfer_key.resize(key_len);
  int ok = EVP_PKEY_decrypt(pctx.get(), opened.transfer_key.data(), &key_len, ciphertext.data(),
                            modulus_bytes);
  INFO("RSA-OAEP SHA-1 decrypt of the first " << modulus_bytes
                                              << " bytes: " << ossl::drain_errors());
  REQUIRE(ok == 1);
  opened.transfer_key.resize(key_len);
  REQUIRE(opened.transfer_key.size() == 32);  // an AES-256 transfer key

  ossl::UniquePtr<EVP_CIPHER_CTX> cctx(EVP_CIPHER_CTX_new());
  REQUIRE(cctx != nullptr);
  EVP_CIPHER_CTX_set_flags(cctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  REQUIRE(EVP_DecryptInit_ex(cctx.get(), EVP_aes_256_wrap_pad(), nullptr,
                             opened.transfer_key.data(), nullptr) == 1);
  const std::size_t kwp_len = ciphertext.size() - modulus_bytes;
  opened.plaintext.resize(kwp_len + 16);
  int out_len = 0;
  ok = EVP_DecryptUpdate(cctx.get(), opened.plaintext.data(), &out_len,
                         ciphertext.data() + modulus_bytes, static_cast<int>(kwp_len));
  INFO("AES-256 key wrap with padding, unwrap: " << ossl::drain_errors());
  REQUIRE(ok == 1);
  REQUIRE(out_len > 0);
  int final_len = 0;
  REQUIRE(EVP_DecryptFinal_ex(cctx.get(), opened.plaintext.data() + out_len, &final_len) == 1);
  opened.plaintext.resize(static_cast<std::size_t>(out_len + final_len));
  return opened;
}

ossl::UniquePtr<EVP_PKEY> parse_pkcs8(const Bytes& der, std::size_t& consumed) {
  const unsigned char* p = der.data();
  ossl::UniquePtr<PKCS8_PRIV_KEY_INFO> p8(
      d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size())));
  INFO("d2i_PKCS8_PRIV_KEY_INFO: " << ossl::drain_errors());
  REQUIRE(p8 != nullptr);
  consumed = static_cast<std::size_t>(p - der.data());
  ossl::UniquePtr<EVP_PKEY> key(EVP_PKCS82PKEY(p8.get()));
  INFO("EVP_PKCS82PKEY: " << ossl::drain_errors());
  REQUIRE(key != nullptr);
  return key;
}

}  // namespace keyport::test::cli

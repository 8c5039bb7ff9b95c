// SPDX-License-Identifier: Apache-2.0
// End-to-end test rig for the keyport binary: a private SoftHSM token folder, a way to run the
// binary (and other tools) against it with a controlled environment, and OpenSSL helpers for the
// KEKs and the .byok files the tests check. Shared by keyport_cli_tests and keyport_interop_tests.
#pragma once

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/json.h"
#include "core/ossl.h"

namespace keyport::test::cli {

inline constexpr const char* kSoftHsmModule = "/usr/lib/softhsm/libsofthsm2.so";
inline constexpr const char* kKidVersion = "0123456789abcdef0123456789abcdef";

// One run of a program: exit status, stdout and stderr, separately.
struct Run {
  int rc = -1;
  std::string out;
  std::string err;
  std::string command;  // for failure messages
  // stdout+stderr, for Catch2's INFO.
  std::string describe() const;
};

// Single-quotes a word for /bin/sh.
std::string sh_quote(const std::string& word);

struct RunOptions {
  // KEYPORT_PIN in the environment ("" = unset).
  std::string keyport_pin;
  // More NAME=VALUE words for env(1).
  std::vector<std::string> env;
};

// A scratch folder with its own SoftHSM configuration and one token "onprem" (SO PIN 1111, user
// PIN 2222), and an empty output folder `out` for the files the commands write.
class Rig {
 public:
  explicit Rig(const std::string& stem);

  const std::filesystem::path& dir() const { return m_dir; }
  const std::filesystem::path& out_dir() const { return m_out; }
  const std::filesystem::path& conf() const { return m_conf; }
  const std::string& pin() const { return m_pin; }

  // Runs keyport with `args` (already shell words) in dir(), stdin from /dev/null, with
  // SOFTHSM2_CONF set and KEYPORT_PIN set to the user PIN.
  Run keyport(const std::string& args) const;
  Run keyport(const std::string& args, const RunOptions& options) const;
  // Runs any shell command line in dir() with SOFTHSM2_CONF set.
  Run shell(const std::string& command_line) const;

  // `keyport key generate --json`; REQUIREs success and returns the parsed JSON.
  Json generate(const std::string& type, const std::string& label) const;
  // `keyport key list --json`: the "keys" array.
  Json list_keys() const;
  // The public key of the token object `label`, read with pkcs11-tool (no keyport involved).
  ossl::UniquePtr<EVP_PKEY> token_public_key(const std::string& label) const;

  // A versioned Key Vault or Managed HSM kid for a KEK named KEK.
  static std::string vault_kid() {
    return std::string("https://contoso.vault.azure.net/keys/KEK/") + kKidVersion;
  }
  static std::string mhsm_kid() {
    return std::string("https://contoso.managedhsm.azure.net/keys/KEK/") + kKidVersion;
  }

 private:
  Run run_in_dir(const std::string& command_line, bool capture_stdout_apart) const;

  std::filesystem::path m_dir;
  std::filesystem::path m_out;
  std::filesystem::path m_conf;
  std::string m_pin = "2222";
  mutable int m_runs = 0;
};

// The names in `dir` (files, folders, hidden ones included).
std::set<std::string> list_dir(const std::filesystem::path& dir);
std::string read_text(const std::filesystem::path& path);
void write_text(const std::filesystem::path& path, const std::string& text);

// An RSA key pair made with OpenSSL EVP.
ossl::UniquePtr<EVP_PKEY> make_rsa_key(unsigned bits);
// An EC P-256 key pair made with OpenSSL EVP.
ossl::UniquePtr<EVP_PKEY> make_ec_key();
// An RSA public key with an `bits`-bit random odd modulus and e = 65537 (not a real key: for
// size checks without generating one).
ossl::UniquePtr<EVP_PKEY> make_fake_rsa_public_key(unsigned bits);
// Writes the SubjectPublicKeyInfo PEM of `key`.
void write_public_pem(const EVP_PKEY& key, const std::filesystem::path& path);
ossl::UniquePtr<EVP_PKEY> public_key_from_der(const Bytes& der);

// What a .byok ciphertext holds once opened with the KEK's private key.
struct Opened {
  Bytes transfer_key;  // the ephemeral AES key (RSA-OAEP SHA-1 plaintext)
  Bytes plaintext;     // the RFC 5649 plaintext: PKCS#8 DER (RSA/EC) or the raw key (AES)
};
// Splits the ciphertext at the KEK's modulus length, decrypts the first part with RSA-OAEP SHA-1
// and the rest with AES-256 key wrap with padding. REQUIREs every step to succeed.
Opened open_ciphertext(EVP_PKEY& kek_private, const Bytes& ciphertext);

// Parses a PKCS#8 PrivateKeyInfo; `consumed` receives how many bytes the DER took.
ossl::UniquePtr<EVP_PKEY> parse_pkcs8(const Bytes& der, std::size_t& consumed);

}  // namespace keyport::test::cli

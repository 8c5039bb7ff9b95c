// SPDX-License-Identifier: Apache-2.0
// Test rig for the module matrix: the keyport binary run against one PKCS#11 module (how it is
// loaded, which token, how it logs in), with an OpenSSL KEK, and an independent check of every
// export: the .byok opened with OpenSSL (tests/support/oracle.h) and the key inside it matched
// with the fingerprint the token reports for the key (SHA-256 of the public key, or the AES check
// value computed in the token).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/algorithms.h"
#include "core/json.h"
#include "core/ossl.h"
#include "tests/cli/cli_rig.h"

namespace keyport::test::modules {

// How keyport reaches the module under test.
struct ModuleUnderTest {
  std::string global_args;       // e.g. "--module /path --module-init-args '...'"
  std::string token = "onprem";  // --token
  std::string pin_args;          // e.g. "--pin-source file:/path"; empty: KEYPORT_PIN (the rig's)
  bool keyport_pin = true;       // set KEYPORT_PIN to the SoftHSM rig's user PIN
  std::vector<std::string> env;  // more NAME=VALUE (KEYPORT_QUIRKS=..., XDG_CONFIG_HOME=...)
};

class ModuleRig {
 public:
  ModuleRig(const std::string& stem, ModuleUnderTest module);
  // For modules set up in the rig's own folder (an NSS database): `make` gets the rig.
  ModuleRig(const std::string& stem, const std::function<ModuleUnderTest(const cli::Rig&)>& make);

  // keyport <global args> <args>, with the module's environment.
  cli::Run keyport(const std::string& args) const;
  // A command that works on the token: <args> --token T <pin args>.
  cli::Run on_token(const std::string& args) const;

  // `key generate --json`; REQUIREs success.
  Json generate(const std::string& type, const std::string& label) const;
  // `key list --json`: the "keys" array; REQUIREs success.
  Json list_keys() const;
  // `token info --json` (with --doctor when asked); REQUIREs success.
  Json token_info(bool doctor = false) const;

  // `byok export` of `label` with `enc` to out/<file>, for Managed HSM (which takes every type).
  cli::Run export_key(const std::string& label, const std::string& enc, const std::string& file,
                      const std::string& extra = "") const;
  // Checks a successful export: the report, exactly one file, the ciphertext opened with OpenSSL
  // under `enc`'s hash, and the key inside it identified with the token's fingerprint of `label`.
  // Returns the strategy the report names.
  std::string check_export(const cli::Run& r, const std::string& label, const std::string& enc,
                           const std::string& file) const;
  // Checks a refused export: `code`, a message containing `needle`, no output file at all.
  void check_refused(const cli::Run& r, int code, const std::string& needle) const;

  const cli::Rig& rig() const { return m_rig; }
  const std::filesystem::path& dir() const { return m_rig.dir(); }

 private:
  cli::Rig m_rig;
  ModuleUnderTest m_module;
  ossl::UniquePtr<EVP_PKEY> m_kek;
  std::filesystem::path m_kek_pem;
};

// The enc names keyport takes, and the WrapAlg each means.
WrapAlg wrap_alg_of(const std::string& enc);

}  // namespace keyport::test::modules

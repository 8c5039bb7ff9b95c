// SPDX-License-Identifier: Apache-2.0
// KEK-SPEC: how a command line names a key-encryption key.
//
//   vault:DIR#NAME[/VERSION][?token=LABEL][&alg=ALG]
//       key NAME (VERSION, default the latest) of the simulated vault in folder DIR. Without
//       token= the vault runs in own-folder mode (its own SoftHSM token under DIR/hsm; one such
//       vault per process); with token=LABEL it runs attached to token LABEL of the --module
//       (PIN from the pin sources). alg= overrides the wrap algorithm (RSA-OAEP, RSA-OAEP-256,
//       A128KW, A192KW, A256KW).
//   pkcs11:token=LABEL;object=KEY[;id=..][;type=secret-key|private]
//       an AES key or RSA key pair in a PKCS#11 token (RFC 7512), PIN from the pin sources.
//   https://HOST/keys/NAME[/VERSION]
//       reserved for a Key Vault REST client (not implemented: kUnsupported).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/secret.h"
#include "migrate/kek.h"
#include "pkcs11/locate.h"
#include "pkcs11/module.h"
#include "pkcs11/uri.h"

namespace keyport::vault {
class Vault;
}

namespace keyport::migrate {

struct KekSpec {
  enum class Kind { kVault, kPkcs11, kHttps };
  Kind kind = Kind::kPkcs11;
  std::string text;  // as given

  // vault:
  std::filesystem::path vault_dir;
  std::string key_name;
  std::string key_version;                  // empty: latest
  std::optional<std::string> attach_token;  // ?token=
  std::string alg;                          // ?alg=, empty: the default for the key type

  // pkcs11:
  p11::Uri uri;

  // Parses a KEK-SPEC. kInvalidArgument says what is wrong and shows the syntax.
  static Result<KekSpec> parse(std::string_view text);
};

// Where the PIN of a token comes from (see pkcs11/pin.h): --pin-source, --pin, the URI's
// pin-source/pin-value, $KEYPORT_PIN, a prompt.
struct PinOptions {
  std::optional<std::string> pin_source;
  std::shared_ptr<const SecretBytes> pin_argv;
  bool allow_prompt = true;

  // From a command line's --pin-source and --pin (either may be absent).
  static PinOptions from_flags(std::optional<std::string> pin_source,
                               const std::optional<std::string>& pin);
};

struct KekOpenerOptions {
  p11::ModuleSelection module;  // empty module: the URI's module-path or -name, else the default
  std::string caller = "keyport-migrate";  // the vault audit log's caller
};

// Opens KEKs from specs, sharing what several KEKs need once per process: the PKCS#11 module and
// each vault folder (a vault folder can be open once at a time).
class KekOpener {
 public:
  explicit KekOpener(KekOpenerOptions options = {});
  ~KekOpener();

  // Returns the opened KEK, or the error of the module, token, PIN, vault or key.
  Result<std::unique_ptr<KeyEncryptionKey>> open(const KekSpec& spec, const PinOptions& pin);
  // Uses `vault` for specs naming `dir` instead of opening the folder (tests; callers that hold
  // the vault open already).
  void use_vault(const std::filesystem::path& dir, std::shared_ptr<vault::Vault> vault);
  // The module loaded for pkcs11: specs and attached vaults (nullptr before the first).
  const std::shared_ptr<p11::Module>& module() const { return m_module; }

 private:
  Result<std::shared_ptr<p11::Module>> load_module(const p11::Uri* uri);
  Result<SecretBytes> pin_for(const p11::Uri& uri, const std::string& label,
                              const PinOptions& pin) const;

  KekOpenerOptions m_options;
  std::shared_ptr<p11::Module> m_module;
  std::map<std::string, std::shared_ptr<vault::Vault>> m_vaults;
};

}  // namespace keyport::migrate

// SPDX-License-Identifier: Apache-2.0
// The HSM-side BYOK export: a key in a PKCS#11 token + the target's KEK + its kid -> a .byok file,
// with the key wrapped inside the token (pkcs11/wrap.h) and the file in Azure's format
// (byok/byok_file.h). This layer joins keyport::pkcs11 and keyport::byok, which never link each
// other.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "byok/byok_file.h"
#include "byok/kek.h"
#include "byok/kid.h"
#include "core/algorithms.h"
#include "core/error.h"
#include "pkcs11/keygen.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "pkcs11/wrap.h"

namespace keyport::transfer {

// "keyport <version>"
std::string tool_version();
// The .byok generator string: "keyport <version>; <manufacturer> <model> firmware <x.y>".
std::string generator_for(const p11::TokenInfo& token);

// A KEK prepared for wrapping in one session: its public key imported as a session object once,
// reused for any number of exports, destroyed with this object.
class SessionKek {
 public:
  static Result<SessionKek> import(const p11::Session& session, const byok::PublicKey& kek);
  CK_OBJECT_HANDLE handle() const { return m_object.get(); }
  std::size_t modulus_bytes() const { return m_modulus_bytes; }

 private:
  SessionKek(p11::ScopedObject object, std::size_t modulus_bytes)
      : m_object(std::move(object)), m_modulus_bytes(modulus_bytes) {}
  p11::ScopedObject m_object;
  std::size_t m_modulus_bytes = 0;
};

// Which target a kid points to: from its host, or `fallback` (--target) for other hosts.
// kInvalidArgument when the host is unknown and no fallback is given; `warnings` receives a line
// when the fallback is used.
Result<byok::TargetKind> resolve_target(const byok::KeyId& kid,
                                        std::optional<byok::TargetKind> fallback,
                                        std::vector<std::string>& warnings);

struct ExportOptions {
  WrapAlg enc = WrapAlg::kRsaAesKeyWrap;
  p11::WrapStrategy strategy = p11::WrapStrategy::kAuto;
  std::string generator;  // the .byok generator text; callers pass generator_for(token)
};

struct ExportResult {
  byok::ByokFile file;
  KeySpec spec;
  p11::WrapStrategy strategy_used = p11::WrapStrategy::kComposite;
  std::vector<std::string> warnings;
};

// Checks the target profile accepts the key, then wraps it. Nothing is written to disk.
Result<ExportResult> export_key(const p11::Session& session, const p11::WrapCapabilities& caps,
                                const p11::KeyObject& key, const SessionKek& kek,
                                const byok::KeyId& kid, byok::TargetKind target,
                                const ExportOptions& options);

// The `az keyvault key import` command that uploads a .byok file.
std::string az_import_command(const byok::KeyId& kid, byok::TargetKind target, const KeySpec& spec,
                              const std::string& key_name, const std::filesystem::path& byok_path);

// A name usable as an Azure key name (^[0-9a-zA-Z-]+$) derived from a label; "" when none fits.
std::string azure_key_name_from(std::string_view label);

}  // namespace keyport::transfer

// SPDX-License-Identifier: Apache-2.0
#include "transfer/export.h"

#include "byok/profile.h"
#include "core/version.h"

namespace keyport::transfer {

std::string tool_version() {
  return "keyport " + std::string(keyport::version());
}

std::string generator_for(const p11::TokenInfo& token) {
  return tool_version() + "; " + token.manufacturer + " " + token.model + " firmware " +
         token.firmware();
}

Result<SessionKek> SessionKek::import(const p11::Session& session, const byok::PublicKey& kek) {
  if (kek.family() != KeyFamily::kRsa) {
    return make_error(ErrorCode::kUnsupported, "the KEK must be an RSA key");
  }
  KEYPORT_ASSIGN_OR_RETURN(
      p11::ScopedObject object,
      p11::import_rsa_public_key(session, kek.rsa_modulus(), kek.rsa_exponent()));
  return SessionKek(std::move(object), (kek.bits() + 7) / 8);
}

Result<byok::TargetKind> resolve_target(const byok::KeyId& kid,
                                        std::optional<byok::TargetKind> fallback,
                                        std::vector<std::string>& warnings) {
  if (kid.target) {
    if (fallback && *fallback != *kid.target) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--target " + std::string(byok::to_string(*fallback)) +
                            " contradicts the kid host " + kid.host + " (a " +
                            std::string(byok::to_string(*kid.target)) + ")");
    }
    return *kid.target;
  }
  if (!fallback) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the kid host " + kid.host +
                          " is not an Azure Key Vault or Managed HSM host; say which it is with "
                          "--target key-vault|managed-hsm");
  }
  warnings.push_back("the kid host " + kid.host + " is not an Azure host; treating it as " +
                     std::string(byok::to_string(*fallback)) + " as --target says");
  return *fallback;
}

Result<ExportResult> export_key(const p11::Session& session, const p11::WrapCapabilities& caps,
                                const p11::KeyObject& key, const SessionKek& kek,
                                const byok::KeyId& kid, byok::TargetKind target,
                                const ExportOptions& options) {
  KEYPORT_TRY(byok::check_target_accepts(target, key.spec));
  if (!key.extractable) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "key \"" + key.label +
            "\" is not extractable (CKA_EXTRACTABLE=FALSE): it can never leave the token, "
            "not even wrapped; only keys generated as portable (keyport key generate) can be "
            "exported");
  }
  ExportResult result;
  result.spec = key.spec;
  KEYPORT_ASSIGN_OR_RETURN(result.strategy_used,
                           p11::choose_strategy(caps, options.strategy, options.enc));
  if (!key.sensitive) {
    result.warnings.push_back(
        "key \"" + key.label +
        "\" is not sensitive (CKA_SENSITIVE=FALSE): its value can be read in clear from the token");
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes ciphertext,
                           p11::wrap_rsa_aes(session, caps, result.strategy_used, options.enc,
                                             kek.handle(), kek.modulus_bytes(), key.handle));
  result.file.kid = kid.url;
  result.file.enc = options.enc;
  result.file.ciphertext = std::move(ciphertext);
  result.file.generator = options.generator;
  return result;
}

std::string azure_key_name_from(std::string_view label) {
  if (label.empty() || label.size() > 127)
    return "";
  for (char c : label) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok)
      return "";
  }
  return std::string(label);
}

std::string az_import_command(const byok::KeyId& kid, byok::TargetKind target, const KeySpec& spec,
                              const std::string& key_name, const std::filesystem::path& byok_path) {
  std::string cmd = "az keyvault key import ";
  cmd += target == byok::TargetKind::kManagedHsm ? "--hsm-name " : "--vault-name ";
  cmd += kid.vault_name + " --name " + (key_name.empty() ? "<KEY-NAME>" : key_name) +
         " --byok-file " + byok_path.string() + " --kty " + std::string(spec.azure_cli_kty());
  if (spec.curve)
    cmd += " --curve " + std::string(curve_jwk_name(*spec.curve));
  return cmd;
}

}  // namespace keyport::transfer

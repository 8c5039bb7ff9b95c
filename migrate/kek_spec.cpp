// SPDX-License-Identifier: Apache-2.0
#include "migrate/kek_spec.h"

#include <system_error>

#include "core/strings.h"
#include "pkcs11/pin.h"
#include "pkcs11/token.h"
#include "vault/vault.h"

namespace keyport::migrate {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kSyntax =
    "a KEK-SPEC is vault:DIR#NAME[/VERSION][?token=LABEL][&alg=ALG], "
    "pkcs11:token=LABEL;object=KEY, or https://HOST/keys/NAME[/VERSION]";

tl::unexpected<Error> bad_spec(std::string_view text, std::string_view why) {
  return make_error(ErrorCode::kInvalidArgument, "KEK-SPEC \"" + std::string(text) +
                                                     "\": " + std::string(why) + " (" +
                                                     std::string(kSyntax) + ")");
}

std::string canonical_dir(const fs::path& dir) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(dir), ec);
  return ec ? fs::absolute(dir).string() : p.string();
}

}  // namespace

Result<KekSpec> KekSpec::parse(std::string_view text) {
  KekSpec spec;
  spec.text = std::string(text);
  if (starts_with_icase(text, "vault:")) {
    spec.kind = Kind::kVault;
    std::string_view rest = text.substr(6);
    auto hash = rest.rfind('#');
    if (hash == std::string_view::npos) {
      return bad_spec(text, "no #NAME after the vault folder");
    }
    std::string_view dir = rest.substr(0, hash);
    std::string_view key = rest.substr(hash + 1);
    if (dir.empty()) {
      return bad_spec(text, "empty vault folder");
    }
    std::string_view query;
    if (auto q = key.find('?'); q != std::string_view::npos) {
      query = key.substr(q + 1);
      key = key.substr(0, q);
    }
    auto slash = key.find('/');
    spec.key_name = std::string(key.substr(0, slash));
    if (slash != std::string_view::npos) {
      spec.key_version = std::string(key.substr(slash + 1));
      if (spec.key_version.empty() || spec.key_version.find('/') != std::string::npos) {
        return bad_spec(text, "bad version after NAME/");
      }
    }
    if (spec.key_name.empty()) {
      return bad_spec(text, "empty key name");
    }
    while (!query.empty()) {
      auto amp = query.find('&');
      std::string_view item = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      auto eq = item.find('=');
      if (eq == std::string_view::npos) {
        return bad_spec(text, "query item without '='");
      }
      std::string_view name = item.substr(0, eq);
      std::string value(item.substr(eq + 1));
      if (value.empty()) {
        return bad_spec(text, "empty value for " + std::string(name));
      }
      if (name == "token" && !spec.attach_token) {
        spec.attach_token = value;
      } else if (name == "alg" && spec.alg.empty()) {
        spec.alg = value;
      } else {
        return bad_spec(
            text, "unknown or repeated query item \"" + std::string(name) + "\" (token=, alg=)");
      }
    }
    spec.vault_dir = fs::path(std::string(dir));
    return spec;
  }
  if (starts_with_icase(text, "pkcs11:")) {
    spec.kind = Kind::kPkcs11;
    auto uri = p11::Uri::parse(text);
    if (!uri) {
      return bad_spec(text, uri.error().message());
    }
    if (!uri->has_object_attributes() || (!uri->object && !uri->id)) {
      return bad_spec(text, "the URI names no key (add object= or id=)");
    }
    spec.uri = std::move(*uri);
    return spec;
  }
  if (starts_with_icase(text, "https://")) {
    spec.kind = Kind::kHttps;
    return spec;
  }
  return bad_spec(text, "unknown scheme");
}

PinOptions PinOptions::from_flags(std::optional<std::string> pin_source,
                                  const std::optional<std::string>& pin) {
  PinOptions p;
  p.pin_source = std::move(pin_source);
  if (pin) {
    p.pin_argv = std::make_shared<const SecretBytes>(SecretBytes::from_string(*pin));
  }
  return p;
}

KekOpener::KekOpener(KekOpenerOptions options) : m_options(std::move(options)) {}

KekOpener::~KekOpener() = default;

void KekOpener::use_vault(const fs::path& dir, std::shared_ptr<vault::Vault> vault) {
  m_vaults[canonical_dir(dir)] = std::move(vault);
}

Result<std::shared_ptr<p11::Module>> KekOpener::load_module(const p11::Uri* uri) {
  KEYPORT_ASSIGN_OR_RETURN(auto resolved, p11::resolve_module(m_options.module, uri));
  if (m_module) {
    if (m_module->path() != resolved.path) {
      return make_error(ErrorCode::kUnsupported, "both KEKs must use the same PKCS#11 module (" +
                                                     m_module->path() + " and " + resolved.path +
                                                     ")");
    }
    return m_module;
  }
  KEYPORT_ASSIGN_OR_RETURN(m_module, p11::load_module(m_options.module, uri));
  return m_module;
}

Result<SecretBytes> KekOpener::pin_for(const p11::Uri& uri, const std::string& label,
                                       const PinOptions& pin) const {
  p11::PinRequest req;
  req.pin_source = pin.pin_source;
  req.pin_argv = pin.pin_argv;
  req.uri = &uri;
  req.allow_prompt = pin.allow_prompt;
  req.what = "user PIN for token \"" + label + "\"";
  return p11::resolve_pin(req);
}

Result<std::unique_ptr<KeyEncryptionKey>> KekOpener::open(const KekSpec& spec,
                                                          const PinOptions& pin) {
  switch (spec.kind) {
    case KekSpec::Kind::kHttps:
      return make_error(ErrorCode::kUnsupported,
                        "KEK-SPEC \"" + spec.text +
                            "\": a Key Vault REST client is not part of keyport yet; use a "
                            "vault: or pkcs11: KEK");
    case KekSpec::Kind::kPkcs11: {
      KEYPORT_ASSIGN_OR_RETURN(auto module, load_module(&spec.uri));
      KEYPORT_ASSIGN_OR_RETURN(p11::SlotInfo slot, p11::find_token(*module, spec.uri));
      // As the token says: no PIN for a token without CKF_LOGIN_REQUIRED unless one is given.
      const p11::TokenInfo token = slot.token.value_or(p11::TokenInfo{});
      std::optional<SecretBytes> p;
      if (token.login_required() || pin.pin_source || pin.pin_argv || spec.uri.pin_source ||
          spec.uri.pin_value) {
        KEYPORT_ASSIGN_OR_RETURN(p, pin_for(spec.uri, token.label, pin));
      }
      KEYPORT_ASSIGN_OR_RETURN(auto kek, TokenKek::open(module, slot.id, p, spec.text));
      return std::unique_ptr<KeyEncryptionKey>(std::move(kek));
    }
    case KekSpec::Kind::kVault: {
      const std::string key = canonical_dir(spec.vault_dir);
      auto it = m_vaults.find(key);
      if (it == m_vaults.end()) {
        vault::VaultOptions vo;
        if (spec.attach_token) {
          p11::Uri uri;
          uri.token = *spec.attach_token;
          KEYPORT_ASSIGN_OR_RETURN(auto module, load_module(nullptr));
          KEYPORT_ASSIGN_OR_RETURN(SecretBytes p, pin_for(uri, *spec.attach_token, pin));
          vo.module = module;
          vo.token_label = *spec.attach_token;
          vo.pin = std::move(p);
        }
        auto opened = vault::Vault::open(spec.vault_dir, std::move(vo));
        if (!opened) {
          return tl::unexpected(opened.error().with_context("vault " + spec.vault_dir.string()));
        }
        it = m_vaults.emplace(key, std::shared_ptr<vault::Vault>(std::move(*opened))).first;
      }
      KEYPORT_ASSIGN_OR_RETURN(auto kek, VaultKek::open(it->second, spec.key_name, spec.key_version,
                                                        spec.alg, m_options.caller));
      return std::unique_ptr<KeyEncryptionKey>(std::move(kek));
    }
  }
  return make_error(ErrorCode::kInternal, "unknown KEK-SPEC kind");
}

}  // namespace keyport::migrate

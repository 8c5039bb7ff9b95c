// SPDX-License-Identifier: Apache-2.0
// keyport key generate | list
#include <iostream>
#include <memory>

#include "byok/public_key.h"
#include "byok/service_profile.h"
#include "cli/commands.h"
#include "core/encoding.h"
#include "pkcs11/keygen.h"

namespace keyport::cli {
namespace {

std::string key_uri(const p11::TokenInfo& t, const p11::KeyObject& k) {
  p11::Uri u;
  u.token = t.label;
  u.object = k.label;
  if (!k.id.empty())
    u.id = k.id;
  u.type = k.object_class == CKO_SECRET_KEY ? "secret-key" : "private";
  return u.format();
}

// What identifies a key without revealing it: the SHA-256 of the public key (SPKI DER) for RSA and
// EC, the key check value (first 3 bytes of AES-ECB(key, 0^16), computed in the token) for AES.
// Empty when the token cannot give it (no public object, AES key without CKA_ENCRYPT).
std::pair<std::string, std::string> fingerprint(const p11::Session& s, const p11::KeyObject& k) {
  if (k.spec.family == KeyFamily::kAes) {
    auto cv = p11::aes_check_value(s, k.handle);
    if (!cv || cv->size() < 3)
      return {"kcv", ""};
    return {"kcv", hex_encode(std::span<const std::uint8_t>(cv->data(), 3))};
  }
  auto parts = p11::read_public_components(s, k);
  if (!parts)
    return {"public_key_sha256", ""};
  auto pub = k.spec.family == KeyFamily::kRsa
                 ? byok::PublicKey::from_rsa_components(parts->modulus, parts->exponent)
                 : byok::PublicKey::from_ec_point(*parts->curve, parts->ec_point);
  return {"public_key_sha256", pub ? pub->sha256_fingerprint() : ""};
}

Json key_json(const p11::Session& s, const p11::TokenInfo& t, const p11::KeyObject& k) {
  Json j = {{"label", k.label},
            {"id", hex_encode(k.id)},
            {"type", k.spec.name()},
            {"class", k.object_class == CKO_SECRET_KEY ? "secret-key" : "private"},
            {"sensitive", k.sensitive},
            {"extractable", k.extractable},
            {"portable", k.sensitive && k.extractable},
            {"uri", key_uri(t, k)}};
  auto [name, value] = fingerprint(s, k);
  j[name] = value.empty() ? Json(nullptr) : Json(value);
  return j;
}

struct GenerateOptions {
  TokenOptions token;
  std::string type;
  std::string label;
  std::optional<std::string> id_hex;
  std::optional<std::string> for_profile;
};

Status run_generate(GlobalOptions& g, const GenerateOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(KeySpec spec, parse_key_spec(o.type));
  // --for: a key the service refuses is refused before the token is even opened.
  KEYPORT_ASSIGN_OR_RETURN(const byok::ServiceProfile* profile, resolve_profile(o.for_profile));
  if (profile != nullptr) {
    KEYPORT_TRY(byok::check_profile_accepts(*profile, spec));
  }
  p11::KeyGenRequest req;
  req.spec = spec;
  req.label = o.label;
  if (o.id_hex) {
    auto id = hex_decode(*o.id_hex);
    if (!id)
      return tl::unexpected(id.error().with_context("--id"));
    if (id->empty())
      return make_error(ErrorCode::kInvalidArgument, "--id: empty");
    req.id = *id;
  }
  KEYPORT_ASSIGN_OR_RETURN(TokenContext ctx, open_token(g, o.token, true));
  KEYPORT_ASSIGN_OR_RETURN(auto key, p11::generate_portable_key(*ctx.session, req));
  if (profile != nullptr) {
    note_profile(g, *profile);
  }
  if (g.json) {
    Json j = key_json(*ctx.session, ctx.token(), key);
    if (profile != nullptr) {
      j["profile"] = std::string(profile->name);
    }
    print_json(j);
  } else {
    std::cout << "generated " << spec.name() << " \"" << key.label
              << "\" (sensitive, extractable only wrapped)\n"
              << "id  " << hex_encode(key.id) << "\n"
              << "uri " << key_uri(ctx.token(), key) << std::endl;
  }
  return {};
}

Status run_list(GlobalOptions& g, const TokenOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(TokenContext ctx, open_token(g, o, true));
  KEYPORT_ASSIGN_OR_RETURN(auto keys, p11::list_keys(*ctx.session));
  if (g.json) {
    Json arr = Json::array();
    for (const auto& k : keys)
      arr.push_back(key_json(*ctx.session, ctx.token(), k));
    print_json({{"token", ctx.token().label}, {"keys", arr}});
    return {};
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& k : keys) {
    auto [kind, value] = fingerprint(*ctx.session, k);
    rows.push_back(
        {k.label, k.spec.name(), hex_encode(k.id), k.sensitive ? "yes" : "NO",
         k.extractable ? "wrapped only" : "never",
         value.empty() ? "-" : (kind == "kcv" ? "kcv " : "sha256 ") + value.substr(0, 16),
         key_uri(ctx.token(), k)});
  }
  print_table({"LABEL", "TYPE", "ID", "SENSITIVE", "EXPORT", "FINGERPRINT", "URI"}, rows);
  return {};
}

}  // namespace

void setup_key_commands(CLI::App& app, GlobalOptions& g) {
  auto* key = app.add_subcommand("key", "Generate and list keys in a PKCS#11 token");
  key->require_subcommand(1);

  auto gen = std::make_shared<GenerateOptions>();
  std::string types;
  for (const auto& s : all_key_specs())
    types += (types.empty() ? "" : ", ") + s.name();
  auto* generate = key->add_subcommand("generate",
                                       "Generate a portable key inside the token: sensitive and "
                                       "extractable, so it can leave only wrapped");
  add_token_options(*generate, gen->token);
  generate->add_option("--type", gen->type, "Key type: " + types)->required();
  generate->add_option("--label", gen->label, "CKA_LABEL; must not exist on the token yet")
      ->required();
  generate->add_option("--id", gen->id_hex, "CKA_ID in hex (default: 16 random bytes)");
  add_for_option(*generate, gen->for_profile);
  add_json_flag(*generate, g);
  generate->callback(bind_command(g, [&g, gen]() { return run_generate(g, *gen); }));

  auto list_opts = std::make_shared<TokenOptions>();
  auto* list =
      key->add_subcommand("list", "List private and secret keys, and whether they can be exported");
  add_token_options(*list, *list_opts);
  add_json_flag(*list, g);
  list->callback(bind_command(g, [&g, list_opts]() { return run_list(g, *list_opts); }));
}

}  // namespace keyport::cli

// SPDX-License-Identifier: Apache-2.0
// keyport token list | info
#include <memory>

#include "cli/commands.h"
#include "core/encoding.h"
#include "pkcs11/names.h"
#include "pkcs11/quirks.h"
#include "pkcs11/wrap.h"

namespace keyport::cli {
namespace {

std::string token_uri_text(const p11::TokenInfo& t) {
  p11::Uri u;
  u.token = t.label;
  u.manufacturer = t.manufacturer;
  u.model = t.model;
  u.serial = t.serial;
  return u.format();
}

Json token_json(const p11::SlotInfo& s) {
  Json j = {{"slot_id", s.id}, {"slot_description", s.description}};
  if (s.token) {
    const auto& t = *s.token;
    j["label"] = t.label;
    j["manufacturer"] = t.manufacturer;
    j["model"] = t.model;
    j["serial"] = t.serial;
    j["firmware"] = t.firmware();
    j["initialized"] = t.initialized();
    j["login_required"] = t.login_required();
    if (t.initialized())
      j["uri"] = token_uri_text(t);
  }
  return j;
}

Status run_list(GlobalOptions& g) {
  KEYPORT_ASSIGN_OR_RETURN(auto module, load_module(g));
  KEYPORT_ASSIGN_OR_RETURN(auto slots, p11::list_slots(*module, true));
  if (g.json) {
    Json arr = Json::array();
    for (const auto& s : slots)
      arr.push_back(token_json(s));
    print_json({{"module", module->path()}, {"library", module->description()}, {"tokens", arr}});
    return {};
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : slots) {
    if (!s.token)
      continue;
    const auto& t = *s.token;
    rows.push_back({std::to_string(s.id), t.initialized() ? t.label : "(not initialised)",
                    t.manufacturer, t.model, t.serial, token_uri_text(t)});
  }
  note(g, "module " + module->path() + " (" + module->description() + ")");
  print_table({"SLOT", "LABEL", "MANUFACTURER", "MODEL", "SERIAL", "URI"}, rows);
  return {};
}

std::string flags_text(CK_FLAGS f) {
  std::string out;
  auto add = [&](CK_FLAGS bit, const char* name) {
    if (f & bit)
      out += (out.empty() ? "" : ",") + std::string(name);
  };
  add(CKF_ENCRYPT, "encrypt");
  add(CKF_DECRYPT, "decrypt");
  add(CKF_SIGN, "sign");
  add(CKF_VERIFY, "verify");
  add(CKF_WRAP, "wrap");
  add(CKF_UNWRAP, "unwrap");
  add(CKF_GENERATE, "generate");
  add(CKF_GENERATE_KEY_PAIR, "generate_key_pair");
  add(CKF_DERIVE, "derive");
  return out;
}

bool byok_relevant(CK_MECHANISM_TYPE m) {
  switch (m) {
    case CKM_RSA_AES_KEY_WRAP:
    case CKM_AES_KEY_WRAP:
    case CKM_AES_KEY_WRAP_PAD:
    case CKM_AES_KEY_WRAP_KWP:
    case CKM_RSA_PKCS_OAEP:
    case CKM_AES_KEY_GEN:
    case CKM_RSA_PKCS_KEY_PAIR_GEN:
    case CKM_EC_KEY_PAIR_GEN:
    case CKM_ECDSA:
    case CKM_SHA256_RSA_PKCS:
      return true;
    default:
      return false;
  }
}

struct InfoOptions {
  TokenOptions token;
  bool no_probe = false;
  bool doctor = false;
};

Json quirks_json(const std::vector<p11::Quirk>& quirks) {
  Json arr = Json::array();
  for (const auto& q : quirks) {
    arr.push_back({{"code", q.code},
                   {"title", q.title},
                   {"impact", std::string(p11::to_string(q.impact))},
                   {"detail", q.detail},
                   {"advice", q.advice}});
  }
  return arr;
}

Status run_info(GlobalOptions& g, const InfoOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(TokenContext ctx, open_token(g, o.token, false));
  const auto& t = ctx.token();
  KEYPORT_ASSIGN_OR_RETURN(auto mechs, p11::list_mechanisms(*ctx.module, ctx.slot.id));
  KEYPORT_ASSIGN_OR_RETURN(auto caps, p11::probe_wrap_capabilities(*ctx.session, t, !o.no_probe));

  Json verdict = Json::object();
  for (WrapAlg alg : all_wrap_algs()) {
    auto chosen = p11::choose_strategy(caps, p11::WrapStrategy::kAuto, alg);
    Json v = {{"possible", chosen.has_value()}};
    if (chosen) {
      v["strategy"] = std::string(p11::to_string(*chosen));
      if (!caps.oaep_hash[static_cast<int>(wrap_alg_hash(alg))].has_value())
        v["note"] = "hash not probed";
    } else {
      v["reason"] = chosen.error().message();
    }
    verdict[std::string(wrap_alg_name(alg))] = v;
  }
  Json mech_json = Json::array();
  for (const auto& m : mechs) {
    if (!byok_relevant(m.type))
      continue;
    mech_json.push_back({{"mechanism", p11::mechanism_name(m.type)},
                         {"min_key_size", m.min_key_size},
                         {"max_key_size", m.max_key_size},
                         {"flags", flags_text(m.flags)}});
  }
  Json hashes = Json::object();
  for (OaepHash h : {OaepHash::kSha1, OaepHash::kSha256, OaepHash::kSha384}) {
    auto v = caps.oaep_hash[static_cast<int>(h)];
    hashes[std::string(to_string(h))] = v ? Json(*v) : Json(nullptr);
  }
  Json j = token_json(ctx.slot);
  j["library"] = ctx.module->description();
  j["module"] = ctx.module->path();
  j["mechanism_count"] = mechs.size();
  j["byok_mechanisms"] = mech_json;
  j["capabilities"] = {{"native_rsa_aes_key_wrap", caps.native_wrap},
                       {"aes_kwp", caps.kwp ? Json(p11::mechanism_name(*caps.kwp)) : Json(nullptr)},
                       {"rsa_oaep_wrap", caps.oaep_wrap},
                       {"oaep_hashes", hashes}};
  j["byok_verdict"] = verdict;
  auto quirks = p11::known_quirks(t);
  j["quirks"] = quirks_json(quirks);
  if (g.json) {
    print_json(j);
    return {};
  }
  std::cout << "token        " << t.label << "\n"
            << "manufacturer " << t.manufacturer << "\n"
            << "model        " << t.model << " (firmware " << t.firmware() << ")\n"
            << "serial       " << t.serial << "\n"
            << "library      " << ctx.module->description() << " (" << ctx.module->path() << ")\n"
            << "mechanisms   " << mechs.size() << ", BYOK-relevant:\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : mech_json) {
    rows.push_back({"  " + m["mechanism"].get<std::string>(),
                    std::to_string(m["min_key_size"].get<unsigned long>()) + ".." +
                        std::to_string(m["max_key_size"].get<unsigned long>()),
                    m["flags"].get<std::string>()});
  }
  print_table({"  MECHANISM", "KEY SIZES", "FLAGS"}, rows);
  std::cout << "OAEP hashes  ";
  for (auto it = hashes.begin(); it != hashes.end(); ++it) {
    std::cout << it.key() << "="
              << (it->is_null() ? "not probed" : (it->get<bool>() ? "yes" : "no")) << "  ";
  }
  std::cout << "\nBYOK verdict:\n";
  for (auto it = verdict.begin(); it != verdict.end(); ++it) {
    std::cout << "  " << it.key() << ": "
              << ((*it)["possible"].get<bool>()
                      ? "yes, " + (*it)["strategy"].get<std::string>() + " strategy"
                      : "no — " + (*it)["reason"].get<std::string>())
              << "\n";
  }
  if (quirks.empty()) {
    std::cout << "known quirks: none recorded for " << t.manufacturer << " " << t.model << " "
              << t.firmware() << "\n";
    return {};
  }
  std::cout << "known quirks (" << quirks.size() << ")"
            << (o.doctor ? ":" : "; --doctor explains them:") << "\n";
  for (const auto& q : quirks) {
    std::cout << "  [" << p11::to_string(q.impact) << "] " << q.code << ": " << q.title << "\n";
    if (o.doctor)
      std::cout << "      what: " << q.detail << "\n      so:   " << q.advice << "\n";
  }
  return {};
}

}  // namespace

void setup_token_commands(CLI::App& app, GlobalOptions& g) {
  auto* token = app.add_subcommand("token", "Inspect PKCS#11 tokens");
  token->require_subcommand(1);

  auto* list = token->add_subcommand("list", "List the tokens of the module (no login)");
  add_json_flag(*list, g);
  list->callback(bind_command(g, [&g]() { return run_list(g); }));

  auto opts = std::make_shared<InfoOptions>();
  auto* info = token->add_subcommand("info",
                                     "Show a token, its BYOK-relevant mechanisms, and which enc "
                                     "values and wrap strategy it can do");
  add_token_options(*info, opts->token);
  info->add_flag("--doctor", opts->doctor,
                 "Explain each known quirk of this module: what it does and what it means for an "
                 "Azure import");
  info->add_flag("--no-probe", opts->no_probe,
                 "Do not probe OAEP hashes with throwaway session objects (mechanism list only)");
  add_json_flag(*info, g);
  info->callback(bind_command(g, [&g, opts]() { return run_info(g, *opts); }));
}

}  // namespace keyport::cli

// SPDX-License-Identifier: Apache-2.0
// keyport token list | info | modules
#include <cstdlib>
#include <memory>

#include "byok/profile.h"
#include "cli/commands.h"
#include "core/encoding.h"
#include "pkcs11/keygen.h"
#include "pkcs11/locate.h"
#include "pkcs11/names.h"
#include "pkcs11/pin.h"
#include "pkcs11/quirks.h"
#include "pkcs11/selftest.h"
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

// The self-tests as JSON: each RFC 5649 candidate and each OAEP hash.
Json self_test_json(const p11::SelfTestReport& r) {
  Json kwp = Json::array();
  for (const auto& k : r.kwp) {
    Json j = {{"mechanism", p11::mechanism_name(k.mechanism)},
              {"wrap_multiple_of_8", std::string(p11::to_string(k.wrap_multiple_of_8))},
              {"wrap_any_length", std::string(p11::to_string(k.wrap_any_length))},
              {"unwrap", std::string(p11::to_string(k.unwrap))},
              {"rfc5649", k.exact() ? "yes" : (k.usable() ? "multiples of 8 only" : "no")}};
    if (!k.detail.empty())
      j["detail"] = k.detail;
    kwp.push_back(j);
  }
  Json hashes = Json::object();
  for (OaepHash h : {OaepHash::kSha1, OaepHash::kSha256, OaepHash::kSha384}) {
    const auto& t = r.hash(h);
    Json j = {{"rsa_oaep", std::string(p11::to_string(t.oaep))},
              {"rsa_aes_key_wrap", std::string(p11::to_string(t.native))}};
    if (!t.detail.empty())
      j["detail"] = t.detail;
    hashes[std::string(to_string(h))] = j;
  }
  return {{"rfc5649_candidates", kwp}, {"oaep_hashes", hashes}, {"logged_in", r.logged_in}};
}

// The mechanisms a strategy uses, for people.
std::string strategy_mechanisms(const p11::WrapCapabilities& caps, p11::WrapStrategy s,
                                OaepHash h) {
  if (s == p11::WrapStrategy::kNative)
    return "CKM_RSA_AES_KEY_WRAP (OAEP " + std::string(to_string(h)) + ")";
  return p11::mechanism_name(*caps.kwp) + " + CKM_RSA_PKCS_OAEP (" + std::string(to_string(h)) +
         ") + CKM_AES_KEY_GEN";
}

// For every portable key type: can the module make it, and can it export it for each target.
Json doctor_json(const p11::Session& session, const p11::WrapCapabilities& caps) {
  Json rows = Json::array();
  const WrapAlg alg = WrapAlg::kRsaAesKeyWrap;  // Azure's BYOK enc
  const OaepHash h = wrap_alg_hash(alg);
  auto strategy = p11::choose_strategy(caps, p11::WrapStrategy::kAuto, alg);
  for (const KeySpec& spec : all_key_specs()) {
    Json row = {{"key_type", spec.name()}};
    auto gen = p11::check_can_generate(session, spec);
    row["generate"] = gen ? Json("yes") : Json(gen.error().message());
    for (auto [target, name] : {std::pair{byok::TargetKind::kKeyVault, "key_vault"},
                                std::pair{byok::TargetKind::kManagedHsm, "managed_hsm"}}) {
      auto accepted = byok::check_target_accepts(target, spec);
      Json t;
      if (!accepted) {
        t = {{"export", false}, {"why", accepted.error().message()}};
      } else if (!strategy) {
        t = {{"export", false}, {"why", strategy.error().message()}};
      } else {
        t = {{"export", true},
             {"strategy", std::string(p11::to_string(*strategy))},
             {"mechanisms", strategy_mechanisms(caps, *strategy, h)}};
        if (*strategy == p11::WrapStrategy::kComposite && !caps.kwp_exact &&
            spec.family != KeyFamily::kAes) {
          t["note"] =
              "the RFC 5649 mechanism pads to a multiple of 8 with zero bytes first: the PKCS#8 "
              "of this key may arrive with trailing zeros (see docs/quirks.md)";
        }
      }
      row[name] = t;
    }
    rows.push_back(row);
  }
  return rows;
}

// Logs in for the self-tests only when that needs no prompt: the token asks for no login, or a PIN
// was given (--pin-source, --pin, the URI, $KEYPORT_PIN).
Status login_if_pin_at_hand(GlobalOptions& g, TokenContext& ctx, const TokenOptions& t) {
  p11::PinRequest req;
  req.pin_source = t.pin_source;
  if (t.pin)
    req.pin_argv = std::make_shared<const SecretBytes>(SecretBytes::from_string(*t.pin));
  req.uri = &ctx.uri;
  req.allow_prompt = false;
  req.what = "user PIN for token \"" + ctx.token().label + "\"";
  if (ctx.token().login_required() && !p11::pin_given_explicitly(req) &&
      std::getenv(req.env_var.c_str()) == nullptr) {
    return {};
  }
  auto st = p11::login_user(*ctx.session, ctx.token(), req,
                            [&g](const std::string& line) { note(g, line); });
  if (!st)
    return tl::unexpected(st.error().with_context("token \"" + ctx.token().label + "\""));
  return {};
}

Status run_info(GlobalOptions& g, const InfoOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(TokenContext ctx, open_token(g, o.token, false));
  if (!o.no_probe)
    KEYPORT_TRY(login_if_pin_at_hand(g, ctx, o.token));
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
  if (caps.self_test)
    j["self_tests"] = self_test_json(*caps.self_test);
  if (o.doctor)
    j["key_types"] = doctor_json(*ctx.session, caps);
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
  if (caps.self_test) {
    std::cout << "self-tests (known answers, session objects only"
              << (caps.self_test->logged_in ? "" : "; not logged in") << "):\n";
    for (const auto& k : caps.self_test->kwp) {
      std::cout << "  " << p11::mechanism_name(k.mechanism) << ": RFC 5649 "
                << (k.exact() ? "yes" : (k.usable() ? "for multiples of 8 only" : "no"))
                << " (32-byte wrap " << p11::to_string(k.wrap_multiple_of_8) << ", 20-byte wrap "
                << p11::to_string(k.wrap_any_length) << ", unwrap " << p11::to_string(k.unwrap)
                << ")" << (k.detail.empty() ? "" : ": " + k.detail) << "\n";
    }
    if (caps.self_test->kwp.empty())
      std::cout << "  no RFC 5649 candidate is listed for wrap and unwrap\n";
    for (OaepHash h : {OaepHash::kSha1, OaepHash::kSha256, OaepHash::kSha384}) {
      const auto& r = caps.self_test->hash(h);
      std::cout << "  OAEP " << to_string(h) << ": CKM_RSA_PKCS_OAEP " << p11::to_string(r.oaep)
                << ", CKM_RSA_AES_KEY_WRAP " << p11::to_string(r.native)
                << (r.detail.empty() ? "" : " (" + r.detail + ")") << "\n";
    }
  } else {
    std::cout << "self-tests   not run (--no-probe): what follows is the mechanism list only\n";
  }
  std::cout << "BYOK verdict:\n";
  for (auto it = verdict.begin(); it != verdict.end(); ++it) {
    std::cout << "  " << it.key() << ": "
              << ((*it)["possible"].get<bool>()
                      ? "yes, " + (*it)["strategy"].get<std::string>() + " strategy"
                      : "no — " + (*it)["reason"].get<std::string>())
              << "\n";
  }
  if (o.doctor) {
    std::cout << "key types (generate / export for Key Vault / for Managed HSM):\n";
    std::vector<std::vector<std::string>> krows;
    auto target_text = [](const Json& target) {
      if (!target["export"].get<bool>())
        return "no: " + target["why"].get<std::string>();
      return target["strategy"].get<std::string>() + ": " +
             target["mechanisms"].get<std::string>() +
             (target.contains("note") ? " (zero-padded PKCS#8)" : "");
    };
    for (const auto& r : j["key_types"]) {
      krows.push_back({"  " + r["key_type"].get<std::string>(), r["generate"].get<std::string>(),
                       target_text(r["key_vault"]), target_text(r["managed_hsm"])});
    }
    print_table({"  KEY TYPE", "GENERATE", "KEY VAULT", "MANAGED HSM"}, krows);
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

Status run_modules(GlobalOptions& g) {
  auto mods = p11::registered_modules();
  if (g.json) {
    Json arr = Json::array();
    for (const auto& m : mods) {
      Json j = {{"name", m.name}, {"path", m.path}, {"config", m.config_file.string()}};
      j["init_args"] = m.init_reserved ? Json(*m.init_reserved) : Json(nullptr);
      arr.push_back(j);
    }
    Json dirs = Json::array();
    for (const auto& d : p11::p11kit_module_config_dirs())
      dirs.push_back(d.string());
    print_json({{"modules", arr}, {"config_dirs", dirs}});
    return {};
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : mods) {
    rows.push_back({m.name, m.path, m.init_reserved ? "yes" : "no", m.config_file.string()});
  }
  print_table({"NAME", "MODULE", "INIT ARGS", "CONFIG"}, rows);
  note(g,
       "give a NAME to --module (or module-name= in a token URI) to use its module and init "
       "arguments");
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
                 "For each of the ten key types: can the module generate it, can it export it for "
                 "Key Vault and for Managed HSM, with which strategy and mechanisms, and why not; "
                 "and explain each known quirk of this module");
  info->add_flag("--no-probe", opts->no_probe,
                 "Do not run the mechanism self-tests (session objects with known answers): the "
                 "mechanism list only. The RSA self-tests run fully when logged in: give a PIN "
                 "(--pin-source or KEYPORT_PIN); token info never prompts");
  info->footer(
      "Self-tests: each RFC 5649 candidate (CKM_AES_KEY_WRAP_KWP, vendor codes, "
      "CKM_AES_KEY_WRAP_PAD) must wrap known keys to the known answers (Wycheproof, RFC 5649 §6) "
      "before keyport uses it; RSA-OAEP and CKM_RSA_AES_KEY_WRAP are checked per hash. byok "
      "export refuses (exit 8) when nothing proven can build the file.");
  add_json_flag(*info, g);
  info->callback(bind_command(g, [&g, opts]() { return run_info(g, *opts); }));

  auto* modules = token->add_subcommand(
      "modules", "List the PKCS#11 modules registered with p11-kit (names for --module)");
  add_json_flag(*modules, g);
  modules->callback(bind_command(g, [&g]() { return run_modules(g); }));
}

}  // namespace keyport::cli

// SPDX-License-Identifier: Apache-2.0
// The C API of libkeyport (include/keyport/keyport.h) over the C++ libraries: core, pkcs11, byok,
// transfer, skr (the release response) and enclave. Every entry point catches everything: no
// exception and no C++ type crosses the boundary. Errors become kp_error objects whose status is
// the CLI's exit code for the same ErrorCode (cli/exit_codes.h keeps the same numbers).
#include "keyport/keyport.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "byok/byok_file.h"
#include "byok/kek.h"
#include "byok/key_material.h"
#include "byok/kid.h"
#include "byok/lint.h"
#include "byok/public_key.h"
#include "core/encoding.h"
#include "core/error.h"
#include "core/exit_codes.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/secret.h"
#include "core/version.h"
#include "core/x509.h"
#include "enclave/token_release.h"
#include "pkcs11/keygen.h"
#include "pkcs11/locate.h"
#include "pkcs11/pin.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "pkcs11/uri.h"
#include "pkcs11/wrap.h"
#include "skr/enclave.h"
#include "skr/jws.h"
#include "transfer/export.h"

using namespace keyport;

struct kp_error {
  kp_status status = KP_ERR_INTERNAL;
  std::string message;
  std::string detail;
};

struct kp_module {
  std::shared_ptr<p11::Module> module;
};

struct kp_token {
  std::shared_ptr<p11::Module> module;
  p11::SlotInfo slot;
  std::optional<p11::Session> session;
  std::optional<p11::WrapCapabilities> caps;  // probed on the first export
};

struct kp_byok {
  byok::ByokFile file;
  std::string text;
  std::string target;
  std::string type;
  std::string strategy;
  std::string az_import;
};

struct kp_release {
  std::optional<skr::VerifiedRelease> release;
};

namespace {

// The kp_status numbers are the CLI's exit codes (core/exit_codes.h).
static_assert(int{KP_ERR_BAD_INPUT} == int{kExitBadInput} &&
              int{KP_ERR_HSM_OR_CRYPTO} == int{kExitHsmOrCrypto} &&
              int{KP_ERR_NOT_FOUND} == int{kExitNotFound} &&
              int{KP_ERR_EXISTS} == int{kExitExists} && int{KP_ERR_AUTH} == int{kExitAuth} &&
              int{KP_ERR_UNSUPPORTED} == int{kExitUnsupported} &&
              int{KP_ERR_DENIED} == int{kExitDenied} && int{KP_ERR_IO} == int{kExitIo} &&
              int{KP_ERR_PRECONDITION} == int{kExitPrecondition} &&
              int{KP_ERR_UNAVAILABLE} == int{kExitUnavailable} &&
              int{KP_ERR_INTERNAL} == int{kExitFailure});

kp_status status_of(ErrorCode code) {
  return static_cast<kp_status>(exit_code_for(code));
}

kp_status fail(kp_error** err, kp_status status, std::string message, std::string detail = {}) {
  if (err != nullptr) {
    *err = new (std::nothrow) kp_error{status, std::move(message), std::move(detail)};
  }
  return status;
}

kp_status fail(kp_error** err, const Error& e) {
  return fail(err, status_of(e.code()), e.describe(), std::string(e.detail()));
}

kp_status ok(kp_error** err) {
  if (err != nullptr) {
    *err = nullptr;
  }
  return KP_OK;
}

// Runs `body` (returning kp_status) with every exception turned into KP_ERR_INTERNAL.
template <typename Fn>
kp_status guarded(kp_error** err, Fn&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(err, KP_ERR_INTERNAL, "out of memory");
  } catch (const std::exception& e) {
    return fail(err, KP_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(err, KP_ERR_INTERNAL, "internal error: unknown exception");
  }
}

#define KP_REQUIRE(cond, what)                               \
  do {                                                       \
    if (!(cond)) {                                           \
      return fail(err, KP_ERR_BAD_INPUT, std::string(what)); \
    }                                                        \
  } while (0)

// A copy of `s` in malloc'd memory (the caller frees it with kp_free).
char* c_string(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out == nullptr) {
    throw std::bad_alloc();
  }
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return out;
}

std::span<const std::uint8_t> bytes_of(const uint8_t* p, size_t n) {
  return p == nullptr ? std::span<const std::uint8_t>() : std::span<const std::uint8_t>(p, n);
}

std::string str_or(const char* s, const char* fallback = "") {
  return s == nullptr ? std::string(fallback) : std::string(s);
}

std::string class_name(CK_OBJECT_CLASS c) {
  return c == CKO_SECRET_KEY ? "secret-key" : c == CKO_PRIVATE_KEY ? "private" : "other";
}

Json key_json(const p11::KeyObject& k) {
  return Json{{"label", k.label},
              {"id", hex_encode(k.id)},
              {"type", k.spec.name()},
              {"class", class_name(k.object_class)},
              {"sensitive", k.sensitive},
              {"extractable", k.extractable},
              {"has_public", k.public_handle.has_value()}};
}

Result<byok::Kek> load_kek(const uint8_t* kek, size_t kek_len) {
  if (kek == nullptr || kek_len == 0) {
    return make_error(ErrorCode::kInvalidArgument, "the KEK is required (PEM, DER or JWK bytes)");
  }
  return byok::load_kek(bytes_of(kek, kek_len), "the KEK");
}

// The kid (given, else the KEK's) and the target (from the kid host, else `target`).
Result<std::pair<byok::KeyId, byok::TargetKind>> kid_and_target(const char* kid,
                                                                const byok::Kek& kek,
                                                                const char* target) {
  std::string kid_text = str_or(kid);
  if (kid_text.empty() && kek.kid) {
    kid_text = *kek.kid;
  }
  if (kid_text.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the KEK's kid is required (the KEK file is not a JWK with a kid)");
  }
  KEYPORT_ASSIGN_OR_RETURN(byok::KeyId id, byok::parse_kid(kid_text));
  std::optional<byok::TargetKind> fallback;
  if (target != nullptr && *target != '\0') {
    KEYPORT_ASSIGN_OR_RETURN(fallback, byok::parse_target_kind(target));
  }
  std::vector<std::string> warnings;
  KEYPORT_ASSIGN_OR_RETURN(byok::TargetKind kind, transfer::resolve_target(id, fallback, warnings));
  return std::make_pair(std::move(id), kind);
}

// `key_name`: the Azure key name the import command suggests (from the token key's label).
kp_byok* make_byok(byok::ByokFile file, byok::TargetKind target, const KeySpec& spec,
                   std::string strategy, const byok::KeyId& kid, std::string key_name) {
  auto b = std::make_unique<kp_byok>();
  b->text = file.to_json();
  b->target = std::string(byok::to_string(target));
  b->type = spec.name();
  b->strategy = std::move(strategy);
  b->az_import = transfer::az_import_command(kid, target, spec,
                                             key_name.empty() ? "KEY_NAME" : key_name, "FILE.byok");
  b->file = std::move(file);
  return b.release();
}

}  // namespace

extern "C" {

const char* kp_version(void) {
  static const std::string v(version());
  return v.c_str();
}

int kp_abi_version(void) {
  return KP_ABI_VERSION;
}

void kp_free(void* p) {
  std::free(p);
}

void kp_free_secret(uint8_t* p, size_t len) {
  if (p != nullptr) {
    secure_wipe(p, len);
    std::free(p);
  }
}

kp_status kp_error_status(const kp_error* e) {
  return e == nullptr ? KP_OK : e->status;
}

const char* kp_error_message(const kp_error* e) {
  return e == nullptr ? "" : e->message.c_str();
}

const char* kp_error_detail(const kp_error* e) {
  return e == nullptr ? "" : e->detail.c_str();
}

void kp_error_free(kp_error* e) {
  delete e;
}

kp_status kp_module_open(const char* module, const char* init_args, kp_module** out,
                         kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(out != nullptr, "kp_module_open: `out` is NULL");
    p11::ModuleSelection sel;
    sel.module = str_or(module);
    if (init_args != nullptr) {
      sel.init_args = std::string(init_args);
    }
    auto m = p11::load_module(sel);
    if (!m) {
      return fail(err, m.error());
    }
    *out = new kp_module{std::move(*m)};
    return ok(err);
  });
}

void kp_module_close(kp_module* module) {
  delete module;
}

kp_status kp_token_open(kp_module* module, const char* token, const char* pin_source,
                        kp_pin_callback pin_cb, void* pin_ctx, kp_token** out, kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(module != nullptr && out != nullptr, "kp_token_open: `module` or `out` is NULL");
    const std::string name = str_or(token);
    p11::Uri uri;
    if (p11::looks_like_uri(name)) {
      auto parsed = p11::Uri::parse(name);
      if (!parsed) {
        return fail(err, parsed.error());
      }
      uri = std::move(*parsed);
    } else if (!name.empty()) {
      uri.token = name;
    }
    auto t = std::make_unique<kp_token>();
    t->module = module->module;
    auto slot = p11::find_token(*t->module, uri);
    if (!slot) {
      return fail(err, slot.error());
    }
    t->slot = std::move(*slot);
    auto session = p11::Session::open(t->module, t->slot.id, true);
    if (!session) {
      return fail(err, session.error());
    }
    t->session.emplace(std::move(*session));
    const p11::TokenInfo& info = *t->slot.token;
    const bool pin_pad = (info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
    if (pin_source == nullptr && pin_cb != nullptr && info.login_required() && !pin_pad) {
      std::vector<char> buf(256, '\0');
      size_t len = 0;
      const int rc = pin_cb(pin_ctx, info.label.c_str(), buf.data(), buf.size(), &len);
      SecretBytes pin(
          std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(buf.data()),
                                        rc == 0 && len <= buf.size() ? len : 0));
      secure_wipe(buf.data(), buf.size());
      if (rc != 0 || len == 0 || len > buf.size()) {
        return fail(err, KP_ERR_AUTH,
                    "the PIN callback gave no PIN for token \"" + info.label + "\"");
      }
      if (auto st = t->session->login(pin); !st) {
        return fail(err, st.error());
      }
    } else {
      p11::PinRequest req;
      if (pin_source != nullptr) {
        req.pin_source = std::string(pin_source);
      }
      req.uri = &uri;
      req.allow_prompt = false;
      req.what = "user PIN for token \"" + info.label + "\"";
      if (auto st = p11::login_user(*t->session, info, req); !st) {
        return fail(err, st.error().with_context("token \"" + info.label + "\""));
      }
    }
    *out = t.release();
    return ok(err);
  });
}

void kp_token_close(kp_token* token) {
  delete token;
}

kp_status kp_key_generate(kp_token* token, const char* spec, const char* label, char** info_json,
                          kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(token != nullptr && spec != nullptr && label != nullptr && *label != '\0',
               "kp_key_generate: `token`, `spec` and a non-empty `label` are required");
    auto s = parse_key_spec(spec);
    if (!s) {
      return fail(err, s.error());
    }
    p11::KeyGenRequest req;
    req.spec = *s;
    req.label = label;
    auto k = p11::generate_portable_key(*token->session, req);
    if (!k) {
      return fail(err, k.error());
    }
    if (info_json != nullptr) {
      *info_json = c_string(dump_json(key_json(*k)));
    }
    return ok(err);
  });
}

kp_status kp_key_list(kp_token* token, char** keys_json, kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(token != nullptr && keys_json != nullptr, "kp_key_list: NULL argument");
    auto keys = p11::list_keys(*token->session);
    if (!keys) {
      return fail(err, keys.error());
    }
    Json out = Json::array();
    for (const auto& k : *keys) {
      out.push_back(key_json(k));
    }
    *keys_json = c_string(dump_json(out));
    return ok(err);
  });
}

kp_status kp_export_byok(kp_token* token, const kp_export_options* options, kp_byok** out,
                         kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(token != nullptr && options != nullptr && out != nullptr,
               "kp_export_byok: NULL argument");
    KP_REQUIRE(options->struct_size >= offsetof(kp_export_options, target) + sizeof(const char*),
               "kp_export_byok: options.struct_size must be sizeof(kp_export_options)");
    KP_REQUIRE(options->key != nullptr && *options->key != '\0',
               "kp_export_byok: options.key (a PKCS#11 URI or label) is required");
    auto kek = load_kek(options->kek, options->kek_len);
    if (!kek) {
      return fail(err, kek.error());
    }
    auto kt = kid_and_target(options->kid, *kek, options->target);
    if (!kt) {
      return fail(err, kt.error());
    }
    transfer::ExportOptions eo;
    if (options->enc != nullptr) {
      auto enc = parse_wrap_alg(options->enc);
      if (!enc) {
        return fail(err, enc.error());
      }
      eo.enc = *enc;
    }
    if (options->strategy != nullptr) {
      auto st = p11::parse_wrap_strategy(options->strategy);
      if (!st) {
        return fail(err, st.error());
      }
      eo.strategy = *st;
    }
    eo.generator = transfer::generator_for(*token->slot.token);
    const p11::Session& s = *token->session;
    if (!token->caps) {
      auto caps = p11::probe_wrap_capabilities(s, *token->slot.token);
      if (!caps) {
        return fail(err, caps.error());
      }
      token->caps = std::move(*caps);
    }
    auto key = p11::find_key(s, options->key);
    if (!key) {
      return fail(err, key.error());
    }
    auto session_kek = transfer::SessionKek::import(s, kek->key);
    if (!session_kek) {
      return fail(err, session_kek.error());
    }
    auto r = transfer::export_key(s, *token->caps, *key, *session_kek, kt->first, kt->second, eo);
    if (!r) {
      return fail(err, r.error());
    }
    *out = make_byok(std::move(r->file), kt->second, r->spec,
                     std::string(p11::to_string(r->strategy_used)), kt->first,
                     transfer::azure_key_name_from(key->label));
    return ok(err);
  });
}

kp_status kp_wrap_key_file(const uint8_t* key_file, size_t key_file_len, const char* passphrase,
                           const uint8_t* kek, size_t kek_len, const char* kid, const char* target,
                           kp_byok** out, kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(key_file != nullptr && key_file_len > 0 && out != nullptr,
               "kp_wrap_key_file: the key file's bytes and `out` are required");
    auto k = load_kek(kek, kek_len);
    if (!k) {
      return fail(err, k.error());
    }
    auto kt = kid_and_target(kid, *k, target);
    if (!kt) {
      return fail(err, kt.error());
    }
    std::optional<SecretBytes> pass;
    if (passphrase != nullptr) {
      pass = SecretBytes::from_string(passphrase);
    }
    auto material =
        byok::load_key_material(bytes_of(key_file, key_file_len), pass ? &*pass : nullptr);
    if (!material) {
      return fail(err, material.error());
    }
    auto file = byok::wrap_key_material(*material, k->key, kt->first, kt->second,
                                        WrapAlg::kRsaAesKeyWrap, transfer::tool_version());
    if (!file) {
      return fail(err, file.error());
    }
    *out = make_byok(std::move(*file), kt->second, material->spec, "software", kt->first, "");
    return ok(err);
  });
}

kp_status kp_byok_copy(const kp_byok* byok, uint8_t* buf, size_t capacity, size_t* len,
                       kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(byok != nullptr && len != nullptr, "kp_byok_copy: NULL argument");
    *len = byok->text.size();
    if (buf == nullptr || capacity < byok->text.size()) {
      return fail(err, KP_ERR_BAD_INPUT,
                  "the buffer holds " + std::to_string(capacity) + " bytes; the .byok file has " +
                      std::to_string(byok->text.size()),
                  "buffer-too-small");
    }
    std::memcpy(buf, byok->text.data(), byok->text.size());
    return ok(err);
  });
}

kp_status kp_byok_write(const kp_byok* byok, const char* path, int overwrite, kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(byok != nullptr && path != nullptr && *path != '\0', "kp_byok_write: NULL argument");
    WriteOptions w;
    w.overwrite = overwrite != 0;
    w.mode = 0644;
    if (auto st = write_file_atomic(path, byok->text, w); !st) {
      if (st.error().code() == ErrorCode::kAlreadyExists) {
        return fail(
            err, KP_ERR_EXISTS,
            std::string(path) + " exists: kept as it is (pass overwrite = 1 to replace it)");
      }
      return fail(err, st.error());
    }
    return ok(err);
  });
}

kp_status kp_byok_info(const kp_byok* byok, char** info_json, kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(byok != nullptr && info_json != nullptr, "kp_byok_info: NULL argument");
    Json j{{"kid", byok->file.kid},       {"target", byok->target},
           {"type", byok->type},          {"enc", std::string(wrap_alg_name(byok->file.enc))},
           {"strategy", byok->strategy},  {"generator", byok->file.generator},
           {"az_import", byok->az_import}};
    *info_json = c_string(dump_json(j));
    return ok(err);
  });
}

void kp_byok_free(kp_byok* byok) {
  delete byok;
}

kp_status kp_byok_inspect(const uint8_t* file, size_t file_len, const uint8_t* kek, size_t kek_len,
                          char** report_json, size_t* errors, size_t* warnings, size_t* infos,
                          kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(file != nullptr || file_len == 0, "kp_byok_inspect: `file` is NULL");
    byok::InspectOptions io;
    if (kek != nullptr && kek_len > 0) {
      auto k = byok::load_kek(bytes_of(kek, kek_len), "the KEK");
      if (!k) {
        return fail(err, k.error());
      }
      io.kek = k->key;
      io.kek_kid = k->kid;
    }
    const byok::InspectReport report = byok::inspect_byok(bytes_of(file, file_len), io);
    if (report_json != nullptr) {
      *report_json = c_string(dump_json(report.to_json()));
    }
    if (errors != nullptr) {
      *errors = report.count(byok::Severity::kError);
    }
    if (warnings != nullptr) {
      *warnings = report.count(byok::Severity::kWarning);
    }
    if (infos != nullptr) {
      *infos = report.count(byok::Severity::kInfo);
    }
    return ok(err);
  });
}

kp_status kp_release_verify(const char* response, const char* vault_ca_pem, const char* vault_host,
                            const char* nonce, kp_release** out, kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(response != nullptr && vault_ca_pem != nullptr && out != nullptr,
               "kp_release_verify: `response`, `vault_ca_pem` and `out` are required");
    skr::ReleaseTrust trust;
    trust.vault_ca_pem = vault_ca_pem;
    trust.vault_host = str_or(vault_host);
    if (nonce != nullptr) {
      trust.expected_nonce = std::string(nonce);
    }
    auto v = skr::verify_release_response(response, trust);
    if (!v) {
      return fail(err, v.error());
    }
    auto r = std::make_unique<kp_release>();
    r->release.emplace(std::move(*v));
    *out = r.release();
    return ok(err);
  });
}

kp_status kp_release_info(const kp_release* release, char** info_json, kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(release != nullptr && info_json != nullptr, "kp_release_info: NULL argument");
    const skr::VerifiedRelease& v = *release->release;
    Json j{{"kid", v.key_kid()},
           {"kty", v.kty()},
           {"key", v.key_jwk()},
           {"signer", v.signer_subject()}};
    *info_json = c_string(dump_json(j));
    return ok(err);
  });
}

kp_status kp_release_unwrap(const kp_release* release, const uint8_t* runtime_private_key,
                            size_t runtime_private_key_len, const char* runtime_kid,
                            uint8_t** material, size_t* material_len, kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(release != nullptr && runtime_private_key != nullptr && material != nullptr &&
                   material_len != nullptr,
               "kp_release_unwrap: NULL argument");
    const SecretBytes given(bytes_of(runtime_private_key, runtime_private_key_len));
    auto pkey = x509::private_key_from(given);
    if (!pkey) {
      return fail(err, pkey.error());
    }
    auto der = x509::private_key_der(**pkey);
    if (!der) {
      return fail(err, der.error());
    }
    std::string kid = str_or(runtime_kid);
    if (kid.empty()) {
      auto spki = x509::public_key_spki(**pkey);
      if (!spki) {
        return fail(err, spki.error());
      }
      auto pub = byok::PublicKey::from_spki_der(*spki);
      if (!pub) {
        return fail(err, pub.error());
      }
      kid = skr::jwk_thumbprint(*pub);
    }
    auto key = skr::unwrap_released_key(*release->release, *der, kid);
    if (!key) {
      return fail(err, key.error());
    }
    const auto bytes = key->material.reveal(SecretAccess::unsafe());
    auto* copy = static_cast<uint8_t*>(std::malloc(bytes.empty() ? 1 : bytes.size()));
    if (copy == nullptr) {
      throw std::bad_alloc();
    }
    std::memcpy(copy, bytes.data(), bytes.size());
    *material = copy;
    *material_len = bytes.size();
    return ok(err);
  });
}

kp_status kp_runtime_key_generate(kp_token* token, const char* label, char** public_jwk,
                                  kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(token != nullptr && label != nullptr && *label != '\0' && public_jwk != nullptr,
               "kp_runtime_key_generate: `token`, a non-empty `label` and `public_jwk` are "
               "required");
    auto pub = enclave::generate_runtime_key(*token->session, label);
    if (!pub) {
      return fail(err, pub.error());
    }
    Json jwk = pub->to_jwk();
    jwk["kid"] = skr::jwk_thumbprint(*pub);
    *public_jwk = c_string(dump_json(jwk));
    return ok(err);
  });
}

kp_status kp_release_unwrap_into_token(kp_token* token, const kp_release* release,
                                       const char* runtime_key, const char* runtime_kid,
                                       const char* label, char** stored_json, kp_error** err) {
  return guarded(err, [&]() -> kp_status {
    KP_REQUIRE(token != nullptr && release != nullptr && runtime_key != nullptr,
               "kp_release_unwrap_into_token: `token`, `release` and `runtime_key` are required");
    enclave::TokenUnwrapRequest req;
    req.runtime_key = runtime_key;
    if (runtime_kid != nullptr) {
      req.runtime_kid = std::string(runtime_kid);
    }
    if (label != nullptr) {
      req.label = std::string(label);
    }
    auto stored = enclave::unwrap_release_in_token(*token->session, *token->slot.token,
                                                   *release->release, req);
    if (!stored) {
      return fail(err, stored.error());
    }
    if (stored_json != nullptr) {
      // An unwrapped AES key whose token reports CKA_VALUE_LEN 0 (SoftHSM 2.6.1): size unknown.
      const bool sizeless = stored->spec.family == KeyFamily::kAes && stored->spec.bits == 0;
      Json j{{"label", stored->label},
             {"id", hex_encode(stored->id)},
             {"type", sizeless ? std::string("aes") : stored->spec.name()}};
      if (stored->public_key_sha256) {
        j["public_key_sha256"] = *stored->public_key_sha256;
      }
      if (stored->kcv) {
        j["kcv"] = *stored->kcv;
      }
      *stored_json = c_string(dump_json(j));
    }
    return ok(err);
  });
}

void kp_release_free(kp_release* release) {
  delete release;
}

}  // extern "C"

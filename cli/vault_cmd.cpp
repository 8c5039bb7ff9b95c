// SPDX-License-Identifier: Apache-2.0
// keyport vault init | serve | create-key | download | import | get | list | versions | delete |
// recover | purge | backup | restore | sign | verify | wrap-key | unwrap-key | encrypt | decrypt |
// rotate | rotation-policy get|set | clock | platform-cutover | report platform
//
// Every command except init and serve works on a local vault folder (--data DIR, default
// $KEYPORT_VAULT_DATA) or on a running server (--url https://host:port with --token-file or
// $KEYPORT_VAULT_TOKEN, and --ca-file for the vault CA) through vault::Client (client/client.h),
// which sends the same requests either way. This file parses options and prints answers.
#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "byok/public_key.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/vault_common.h"
#include "client/client.h"
#include "client/folder.h"
#include "client/signing.h"
#include "core/encoding.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/random.h"
#include "core/strings.h"
#include "skr/jws.h"
#include "skr/policy.h"
#include "vault/access.h"
#include "vault/attestation.h"
#include "vault/server.h"
#include "vault/vault.h"

namespace keyport::cli {
namespace {
namespace fs = std::filesystem;

// --- printing ---------------------------------------------------------------------------------

std::string time_text(const Json& attrs, const char* member) {
  if (!attrs.contains(member) || !attrs[member].is_number_integer()) {
    return "-";
  }
  std::time_t t = attrs[member].get<std::int64_t>();
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string ops_text(const Json& key) {
  std::string out;
  if (key.contains("key_ops") && key["key_ops"].is_array()) {
    for (const auto& o : key["key_ops"]) {
      out += (out.empty() ? "" : ",") + o.get<std::string>();
    }
  }
  return out.empty() ? "-" : out;
}

// Prints a KeyBundle (text: the lines people look at; --json: all of it).
void print_bundle(const GlobalOptions& g, const Json& bundle) {
  if (g.json) {
    print_json(bundle);
    return;
  }
  const Json& key = bundle.at("key");
  const Json attrs = bundle.value("attributes", Json::object());
  std::cout << "kid:      " << key.value("kid", "") << "\n"
            << "kty:      " << key.value("kty", "") << "\n"
            << "key_ops:  " << ops_text(key) << "\n"
            << "enabled:  " << (attrs.value("enabled", true) ? "yes" : "no") << "\n"
            << "created:  " << time_text(attrs, "created") << "\n"
            << "updated:  " << time_text(attrs, "updated") << std::endl;
}

std::string name_of_kid(const std::string& kid, bool with_version) {
  // https://host/keys/<name>[/<version>]
  auto keys = kid.find("/keys/");
  if (keys == std::string::npos) {
    return kid;
  }
  std::string rest = kid.substr(keys + 6);
  if (!with_version) {
    return rest.substr(0, rest.find('/'));
  }
  auto slash = rest.find('/');
  return slash == std::string::npos ? "" : rest.substr(slash + 1);
}

void print_items(const GlobalOptions& g, const Json& items, bool versions) {
  if (g.json) {
    print_json(Json{{"value", items}});
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& it : items) {
    const Json attrs = it.value("attributes", Json::object());
    const std::string kid = it.value("kid", "");
    rows.push_back({versions ? name_of_kid(kid, true) : name_of_kid(kid, false),
                    attrs.value("enabled", true) ? "yes" : "no", time_text(attrs, "created"),
                    time_text(attrs, "updated"), kid});
  }
  print_table({versions ? "VERSION" : "NAME", "ENABLED", "CREATED", "UPDATED", "KID"}, rows);
}

// The digest to sign or verify: --digest HEX as given, or the digest of --in FILE with the hash of
// the algorithm (vault/algorithms.h's table, through the client).
Result<Bytes> digest_input(const std::string& alg, const std::optional<std::string>& digest_hex,
                           const std::optional<std::string>& data_file) {
  if (digest_hex.has_value() == data_file.has_value()) {
    return make_error(ErrorCode::kInvalidArgument, "give exactly one of --digest HEX or --in FILE");
  }
  if (digest_hex) {
    return hex_decode(*digest_hex);
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes data, read_file(*data_file, 1u << 30));
  return vault::digest_for_sign(alg, data);
}

// --- commands ---------------------------------------------------------------------------------

struct InitOptions {
  std::string data;
  std::string flavor = "key-vault";
  std::string name = "keyport";
  std::string base_url;
  int retention_days = 90;
  bool purge_protection = false;
  std::string backup_domain;  // an existing vault folder whose backup domain the new one joins
  bool require_activation = false;  // a Managed HSM that waits for its security domain
};

// --- vault init --backup-domain EXISTING ------------------------------------------------------
//
// The new vault makes a transfer key pair in its own token (Vault::begin_backup_domain_join); the
// existing vault wraps its two domain keys to the public key (Vault::export_backup_domain); the
// new vault unwraps them (Vault::finish_backup_domain_join). Two own-folder vaults cannot be open
// in one process (SoftHSM reads its configuration once per process), so the existing vault's step
// runs in a child: this binary re-executed (/proc/self/exe) with the hidden subcommand
// `vault backup-domain-export`, which gets the public key as an argument and prints the transfer
// document. A re-exec rather than a bare fork(): the child starts with no module loaded, no
// threads and no copied session state of the parent (PKCS#11 leaves a module's state after fork
// undefined), and it is the same code path as any keyport command, error exit codes included.

struct DomainExportOptions {
  std::string data;
  std::string transfer_key;  // base64url DER SubjectPublicKeyInfo
};

// The child's side: prints the transfer document on stdout.
Status run_domain_export(const DomainExportOptions& o) {
  auto spki = base64url_decode(o.transfer_key);
  if (!spki) {
    return make_error(ErrorCode::kInvalidArgument, "--transfer-key must be base64url DER");
  }
  KEYPORT_ASSIGN_OR_RETURN(auto v, vault::Vault::open(o.data, own_folder_options()));
  KEYPORT_ASSIGN_OR_RETURN(
      std::string doc, v->export_backup_domain(vault::CallContext{"keyport vault init"}, *spki));
  std::cout << doc << std::endl;
  return {};
}

ErrorCode code_for_exit(int rc) {
  switch (rc) {
    case kExitBadInput:
      return ErrorCode::kInvalidArgument;
    case kExitHsmOrCrypto:
      return ErrorCode::kPkcs11;
    case kExitNotFound:
      return ErrorCode::kNotFound;
    case kExitExists:
      return ErrorCode::kAlreadyExists;
    case kExitAuth:
      return ErrorCode::kPermissionDenied;
    case kExitUnsupported:
      return ErrorCode::kUnsupported;
    case kExitIo:
      return ErrorCode::kIo;
    case kExitPrecondition:
      return ErrorCode::kFailedPrecondition;
    default:
      return ErrorCode::kInternal;
  }
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// Runs this binary with `args`; returns its stdout, or its error (category from its exit code,
// message from its stderr).
Result<std::string> run_self(const std::vector<std::string>& args) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    return make_error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return make_error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  std::vector<std::string> argv_s = {"keyport"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return make_error(ErrorCode::kIo, std::string("cannot start keyport: ") + std::strerror(rc));
  }
  // Both outputs are small (a document of a few KiB, an error line): no pipe fills up.
  std::string out = read_all(out_pipe[0]);
  std::string err = read_all(err_pipe[0]);
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    return out;
  }
  // The child's error line (log lines may come before it), without its prefix.
  std::string message(trim(err));
  const std::string prefix = "keyport: error: ";
  if (const auto at = message.rfind(prefix); at != std::string::npos) {
    message = std::string(trim(message.substr(at + prefix.size())));
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : kExitFailure;
  return make_error(code_for_exit(code),
                    message.empty() ? "exit code " + std::to_string(code) : message);
}

// What can be checked of the existing vault without opening it: that it is a vault, that no
// process holds it (a running `vault serve`), and that it has a backup domain.
Result<vault::VaultConfig> check_domain_source(const fs::path& existing, const fs::path& data) {
  std::error_code ec;
  if (fs::exists(data, ec) && fs::equivalent(existing, data, ec)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--backup-domain names the new vault's own folder");
  }
  auto c = vault::VaultConfig::load(existing);
  if (!c) {
    if (c.error().code() == ErrorCode::kNotFound) {
      return make_error(ErrorCode::kNotFound, "--backup-domain " + existing.string() +
                                                  " is not a vault folder (no " +
                                                  vault::kVaultConfigFile + ")");
    }
    return tl::unexpected(c.error().with_context("--backup-domain " + existing.string()));
  }
  if (c->backup_domain_join) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "--backup-domain " + existing.string() +
                          " is itself still joining a backup domain: it has no domain keys");
  }
  if (c->backup_domain.empty()) {
    return make_error(ErrorCode::kFailedPrecondition,
                      "--backup-domain " + existing.string() +
                          " has no backup domain yet (never opened, or made before backups): "
                          "open it once (e.g. keyport vault list --data " +
                          existing.string() + ") and try again");
  }
  const int fd = ::open((existing / "vault.lock").c_str(), O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    const bool busy = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
    ::close(fd);
    if (busy) {
      return make_error(ErrorCode::kAlreadyExists,
                        "--backup-domain " + existing.string() +
                            " is in use (a running keyport vault serve or another command holds "
                            "its lock): stop it and try again");
    }
  }
  return c;
}

// Opens the new vault, runs the three steps, closes it. Returns the domain joined.
Result<std::string> join_backup_domain(const fs::path& data, const fs::path& existing) {
  const vault::CallContext ctx{"keyport vault init"};
  KEYPORT_ASSIGN_OR_RETURN(auto v, vault::Vault::open(data, own_folder_options()));
  KEYPORT_ASSIGN_OR_RETURN(Bytes spki, v->begin_backup_domain_join(ctx));
  auto doc = run_self({"vault", "backup-domain-export", "--data", existing.string(),
                       "--transfer-key", base64url_encode(spki)});
  if (!doc) {
    return tl::unexpected(doc.error().with_context("the existing vault " + existing.string()));
  }
  KEYPORT_TRY(v->finish_backup_domain_join(ctx, trim(*doc)));
  return v->backup_domain();
}

Status run_init(GlobalOptions& g, const InitOptions& o) {
  std::string data = o.data.empty() ? env_or("KEYPORT_VAULT_DATA") : o.data;
  if (data.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "give --data DIR (or $KEYPORT_VAULT_DATA)");
  }
  KEYPORT_ASSIGN_OR_RETURN(vault::Flavor flavor, vault::parse_flavor(o.flavor));
  vault::VaultConfig c;
  c.flavor = flavor;
  c.name = o.name;
  c.base_url = o.base_url;
  c.base_url_given = !o.base_url.empty();
  c.soft_delete_retention_days = o.retention_days;
  c.purge_protection = o.purge_protection;
  c.activation_required = o.require_activation;
  std::string domain;
  if (!o.backup_domain.empty()) {
    KEYPORT_TRY(check_domain_source(o.backup_domain, data));
    std::error_code ec;
    const bool existed = fs::exists(data, ec);
    if (existed && !fs::is_empty(data, ec)) {
      return make_error(ErrorCode::kAlreadyExists, "--backup-domain makes a new vault: " + data +
                                                       " must be a new or empty folder");
    }
    c.backup_domain_join = true;
    KEYPORT_TRY(vault::Vault::init(data, c));
    auto joined = join_backup_domain(data, o.backup_domain);
    if (!joined) {
      // Nothing of a half-made vault stays: the folder was new or empty.
      if (existed) {
        for (const auto& entry : fs::directory_iterator(data, ec)) {
          fs::remove_all(entry.path(), ec);
        }
      } else {
        fs::remove_all(data, ec);
      }
      return tl::unexpected(joined.error().with_context(
          "vault init --backup-domain (nothing was made in " + data + ")"));
    }
    domain = *joined;
  } else {
    KEYPORT_TRY(vault::Vault::init(data, c));
  }
  if (g.json) {
    Json out{{"data", data},
             {"flavor", o.flavor},
             {"name", o.name},
             {"soft_delete_retention_days", o.retention_days},
             {"purge_protection", o.purge_protection},
             {"recoveryLevel", c.recovery_level()},
             {"activated", !c.activation_required}};
    if (!domain.empty()) {
      out["backup_domain"] = domain;
      out["backup_domain_of"] = o.backup_domain;
    }
    print_json(out);
  } else {
    std::cout << "initialised a " << o.flavor << " vault \"" << o.name << "\" in " << data;
    if (!domain.empty()) {
      std::cout << "\njoined backup domain " << domain << " of " << o.backup_domain
                << " (its backups restore here)";
    }
    if (c.activation_required) {
      std::cout << "\nnot activated: every operation but the security domain's is refused until "
                   "keyport vault security-domain download (or upload)";
    }
    std::cout << "\nnext: keyport vault serve --data " << data
              << "   (or use it in place: keyport vault create-key --data " << data << " ...)"
              << std::endl;
  }
  return {};
}

struct ServeOptions {
  std::string data;
  std::string listen = "127.0.0.1:8443";
  std::optional<std::string> flavor;
  std::optional<std::string> tls_cert;
  std::optional<std::string> tls_key;
  std::optional<std::string> access;
  std::optional<std::string> access_log;
  bool insecure_any_token = false;
  std::size_t max_body = 1 << 20;
  std::size_t threads = 8;
  std::string name = "keyport";
  std::string challenge_resource;
  std::string throttle;
  std::optional<std::string> identity_listen;
  long identity_token_lifetime = 3600;
  std::optional<std::string> trusted_authorities;
  std::uint64_t hsm_recycle = vault::kDefaultModuleRecycleOps;
  std::string backup_storage;
};

Status run_serve(GlobalOptions&, const ServeOptions& o) {
  vault::ServerOptions s;
  s.data_dir = o.data.empty() ? env_or("KEYPORT_VAULT_DATA") : o.data;
  if (s.data_dir.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "give --data DIR (or $KEYPORT_VAULT_DATA)");
  }
  s.listen = o.listen;
  if (o.flavor) {
    KEYPORT_ASSIGN_OR_RETURN(s.flavor, vault::parse_flavor(*o.flavor));
  }
  if (o.tls_cert) {
    s.tls_cert = *o.tls_cert;
  }
  if (o.tls_key) {
    s.tls_key = *o.tls_key;
  }
  if (o.access) {
    s.access_file = *o.access;
  }
  if (o.access_log) {
    s.access_log = *o.access_log;
  }
  s.insecure_any_token = o.insecure_any_token;
  s.challenge_resource = o.challenge_resource;
  s.throttle = o.throttle;
  s.identity_listen = o.identity_listen;
  s.identity_token_lifetime = std::chrono::seconds(o.identity_token_lifetime);
  s.max_body = o.max_body;
  s.threads = o.threads;
  s.vault_name = o.name;
  if (o.trusted_authorities) {
    s.release.trusted_authorities = *o.trusted_authorities;
  }
  s.open_vault = [recycle = o.hsm_recycle, storage = o.backup_storage](const fs::path& d) {
    vault::VaultOptions vo = own_folder_options();
    vo.module_recycle_ops = recycle;
    vo.backup_storage = storage;
    return vault::Vault::open(d, std::move(vo));
  };
  return vault::serve_until_signal(std::move(s));
}

struct CreateOptions {
  Target target;
  std::string name;
  std::optional<std::string> kty;
  std::optional<unsigned> size;
  std::optional<std::string> curve;
  std::vector<std::string> ops;
  bool kek = false;
  // Secure Key Release: an exportable key needs a release policy (docs/skr.md).
  bool exportable = false;
  std::optional<std::string> policy;
  bool immutable = false;
  std::optional<std::string> for_profile;  // --for: service profile (profiles_cmd.cpp)
};

// attributes.exportable and release_policy of create-key. The policy is linted first (as
// `keyport policy lint` does): errors refuse the command before anything is sent, warnings are
// printed.
Status add_release_policy(const GlobalOptions& g, const CreateOptions& o, Json& body) {
  if (!o.policy) {
    if (o.exportable || o.immutable) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--exportable and --immutable need --policy POLICY.json (a release policy; "
                        "check it with keyport policy lint)");
    }
    return {};
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(*o.policy, 1u << 20));
  const skr::PolicyLint lint = skr::lint_policy(text);
  for (const auto& w : lint.warnings) {
    note(g, "warning  " + *o.policy + ": " + w.describe());
  }
  if (!lint.errors.empty()) {
    std::string all;
    for (const auto& e : lint.errors) {
      all += "\n  error  " + e.describe();
    }
    return make_error(ErrorCode::kFormat,
                      "--policy " + *o.policy + ": not a valid release policy, nothing was sent (" +
                          std::to_string(lint.errors.size()) + " error(s); keyport policy lint " +
                          *o.policy + "):" + all);
  }
  body["attributes"]["exportable"] = true;
  body["release_policy"] = Json{{"contentType", "application/json; charset=utf-8"},
                                {"data", base64url_encode(as_bytes(text))},
                                {"immutable", o.immutable}};
  return {};
}

Status run_create(GlobalOptions& g, const CreateOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(const byok::ServiceProfile* profile, resolve_profile(o.for_profile));
  Json body = Json::object();
  KEYPORT_TRY(add_release_policy(g, o, body));
  if (o.kek) {
    if ((o.kty && *o.kty != "RSA-HSM") || !o.ops.empty() || o.curve) {
      return make_error(ErrorCode::kInvalidArgument,
                        "--kek makes an RSA-HSM key with key_ops [\"import\"]: drop --kty, "
                        "--curve and --ops");
    }
    body["kty"] = "RSA-HSM";
    body["key_size"] = o.size.value_or(4096);
    body["key_ops"] = Json::array({"import"});
  } else {
    if (!o.kty) {
      return make_error(ErrorCode::kInvalidArgument,
                        "give --kty RSA-HSM|EC-HSM|oct-HSM (or --kek for a key exchange key)");
    }
    body["kty"] = *o.kty;
    if (o.size) {
      body["key_size"] = *o.size;
    }
    if (o.curve) {
      body["crv"] = *o.curve;
    }
    if (!o.ops.empty()) {
      body["key_ops"] = o.ops;
    }
  }
  if (profile != nullptr) {
    KEYPORT_TRY(apply_profile_to_create(*profile, body, o.kek));  // refused: nothing is created
  }
  KEYPORT_TRY(vault::Client::check_key_name(o.name));  // before connecting: a usage error
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json bundle, client.create_key(o.name, body));
  if (profile != nullptr) {
    Json report = profile_vault_report(g, *profile, bundle);
    if (g.json) {
      bundle["profile"] = std::move(report);
    }
  }
  print_bundle(g, bundle);
  return {};
}

struct DownloadOptions {
  Target target;
  std::string name;
  std::string version;
  std::string output;
  std::string encoding = "PEM";
  bool force = false;
};

Status run_download(GlobalOptions& g, const DownloadOptions& o) {
  if (o.encoding != "PEM" && o.encoding != "DER") {
    return make_error(ErrorCode::kInvalidArgument, "--encoding: PEM or DER");
  }
  KEYPORT_TRY(check_output_path(o.output, o.force));
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json bundle, client.get_key(o.name, o.version));
  const Json& key = bundle.at("key");
  const std::string kty = key.value("kty", "");
  if (kty != "RSA" && kty != "RSA-HSM" && kty != "EC" && kty != "EC-HSM") {
    return make_error(ErrorCode::kUnsupported,
                      "key " + o.name + " is " + kty +
                          ": only public keys can be downloaded (supported key types: RSA, "
                          "RSA-HSM, EC, EC-HSM)");
  }
  Json jwk = key;
  jwk.erase("kid");
  jwk.erase("key_ops");
  KEYPORT_ASSIGN_OR_RETURN(byok::PublicKey pub, byok::PublicKey::from_jwk(jwk));
  WriteOptions w;
  w.overwrite = o.force;
  if (o.encoding == "PEM") {
    KEYPORT_TRY(write_file_atomic(o.output, pub.pem(), w));
  } else {
    KEYPORT_TRY(write_file_atomic(o.output, pub.spki_der(), w));
  }
  const std::string kid = key.value("kid", "");
  if (g.json) {
    print_json(Json{{"kid", kid},
                    {"kty", kty},
                    {"key_ops", key.value("key_ops", Json::array())},
                    {"file", o.output},
                    {"encoding", o.encoding},
                    {"spki_sha256", pub.sha256_fingerprint()}});
  } else {
    std::cout << "wrote the public key of " << kid << " to " << o.output << " (" << o.encoding
              << " SubjectPublicKeyInfo)" << std::endl;
  }
  return {};
}

struct ImportOptions {
  Target target;
  std::string name;
  std::optional<std::string> byok;
  std::optional<std::string> jwk;
  std::string kty = "RSA";
  std::optional<std::string> curve;
  bool hsm = false;
};

Status run_import(GlobalOptions& g, const ImportOptions& o) {
  if (o.byok.has_value() == o.jwk.has_value()) {
    return make_error(ErrorCode::kInvalidArgument, "give exactly one of --byok FILE or --jwk FILE");
  }
  Result<Json> bundle = make_error(ErrorCode::kInternal, "unreachable");
  if (o.byok) {
    // As `az keyvault key import --byok-file` and `keyport byok request`: one body builder
    // (byok::build_import_request), so both accept the same --kty and --curve spellings.
    KEYPORT_ASSIGN_OR_RETURN(Bytes file, read_file(*o.byok, 1 << 20));
    byok::ImportRequestOptions r;
    r.name = o.name;
    r.kty = o.kty;
    r.curve = o.curve;
    r.hsm = true;
    auto body = vault::byok_import_body(file, r);
    if (!body) {
      return tl::unexpected(body.error().with_context(*o.byok));
    }
    KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
    bundle = client.import_key(o.name, *body);
  } else {
    KEYPORT_ASSIGN_OR_RETURN(SecretBytes text, read_secret_file(*o.jwk, 1 << 20));
    KEYPORT_TRY(vault::Client::check_key_name(o.name));  // part of the URL path, as in create-key
    KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
    bundle = client.import_jwk(o.name, text, o.hsm);
    if (!bundle && bundle.error().code() == ErrorCode::kFormat) {
      return tl::unexpected(bundle.error().with_context(*o.jwk));
    }
  }
  if (!bundle) {
    return tl::unexpected(bundle.error());
  }
  print_bundle(g, *bundle);
  return {};
}

struct KeyRef {
  Target target;
  std::string name;
  std::string version;
};

struct BackupOptions {
  KeyRef key;
  std::string out;
  bool force = false;
};

Status run_backup(GlobalOptions& g, const BackupOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.key.target));
  KEYPORT_ASSIGN_OR_RETURN(std::string blob, client.backup_key(o.key.name));
  // The blob holds key material only wrapped by the backup domain's key; 0600 all the same.
  KEYPORT_TRY(write_file_atomic(o.out, blob + "\n", WriteOptions{o.force, 0600}));
  if (g.json) {
    print_json(Json{{"name", o.key.name}, {"file", o.out}, {"bytes", blob.size()}});
  } else {
    std::cout << "backed up " << o.key.name << " to " << o.out << " (" << blob.size()
              << " characters; restore with keyport vault restore " << o.out << ")" << std::endl;
  }
  return {};
}

struct AttestationOptions {
  KeyRef key;
  std::optional<std::string> output;  // get: the bundle JSON
  std::optional<std::string> input;   // verify: a bundle file instead of asking the vault
  std::optional<std::string> trust;   // verify: the vault CA
  bool force = false;
};

// The vault CA an attestation is checked against: --trust, else the folder's tls/ca.pem (--data),
// else the --ca-file (or $KEYPORT_VAULT_CA) of --url.
Result<std::string> attestation_trust(const AttestationOptions& o) {
  std::string file = o.trust.value_or("");
  if (file.empty()) {
    const Target& t = o.key.target;
    const std::string data =
        t.data.empty() && t.url.empty() ? env_or("KEYPORT_VAULT_DATA") : t.data;
    file = !data.empty()        ? (std::filesystem::path(data) / "tls" / "ca.pem").string()
           : !t.ca_file.empty() ? t.ca_file
                                : env_or("KEYPORT_VAULT_CA");
  }
  if (file.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "no CA to check the attestation against: give --trust CA.pem (the vault's "
                      "DIR/tls/ca.pem)");
  }
  return read_text_file(file, 1u << 20);
}

Status run_get_attestation(GlobalOptions& g, const AttestationOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.key.target));
  KEYPORT_ASSIGN_OR_RETURN(Json bundle, client.key_attestation(o.key.name, o.key.version));
  if (o.output) {
    KEYPORT_TRY(write_file_atomic(*o.output, bundle.dump(1) + "\n", WriteOptions{o.force, 0644}));
  }
  if (g.json) {
    print_json(bundle);
  } else {
    std::cout << "kid: " << bundle["key"].value("kid", "")
              << "\nattestation: " << bundle["attributes"]["attestation"].value("version", "")
              << " (SIMULATED: signed by the vault's attestation key, not by HSM hardware)\n";
    if (o.output) {
      std::cout << "wrote the key bundle to " << *o.output
                << "; check it with keyport vault verify-attestation --in " << *o.output << "\n";
    }
    std::cout << std::flush;
  }
  return {};
}

Status run_verify_attestation(GlobalOptions& g, const AttestationOptions& o) {
  if (o.input.has_value() == !o.key.name.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "give exactly one of --in BUNDLE.json or --name (ask the vault)");
  }
  Json bundle;
  if (o.input) {
    KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(*o.input, 1u << 20));
    KEYPORT_ASSIGN_OR_RETURN(bundle, parse_json_strict(text));
  } else {
    KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.key.target));
    KEYPORT_ASSIGN_OR_RETURN(bundle, client.key_attestation(o.key.name, o.key.version));
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string trust, attestation_trust(o));
  KEYPORT_ASSIGN_OR_RETURN(vault::AttestationReport report,
                           vault::verify_key_attestation(bundle, trust));
  if (g.json) {
    Json j{{"verified", true},
           {"simulated", true},
           {"kid", report.kid},
           {"signer", report.signer},
           {"private", report.private_statement}};
    if (report.public_statement) {
      j["public"] = *report.public_statement;
    }
    print_json(j);
    return {};
  }
  const Json& p = report.private_statement;
  std::cout << "verified: SIMULATED key attestation of " << report.kid << "\n  signed by "
            << report.signer << " (vault attestation key, chains to the trusted vault CA)\n  "
            << p.value("object", "") << ", origin " << p.value("origin", "") << ", token "
            << p["token"].value("label", "") << " (serial " << p["token"].value("serial", "")
            << ")\n";
  for (const auto& [name, value] : p["attributes"].items()) {
    std::cout << "  " << name << " = " << (value.get<bool>() ? "true" : "false") << "\n";
  }
  if (report.public_statement) {
    std::cout << "  public key SHA-256 " << report.public_statement->value("spki_sha256", "")
              << ", checked against the token object by "
              << report.public_statement->value("checked_against_private_key_by", "") << "\n";
  }
  std::cout << std::flush;
  return {};
}

struct FullBackupOptions {
  Target target;
  std::string storage_url;  // full-backup: the container; full-restore: the backup's folder URL
  std::string sas_token_file;
  std::string key;  // full-restore: only this key (selective key restore)
};

Status run_full_backup(GlobalOptions& g, const FullBackupOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes sas, read_secret_file(o.sas_token_file, 64u << 10));
  sas = SecretBytes::from_string(trim(std::string_view(
      reinterpret_cast<const char*>(sas.reveal(SecretAccess::unsafe()).data()), sas.size())));
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json status, client.full_backup(o.storage_url, sas));
  if (g.json) {
    print_json(status);
  } else {
    std::cout << status.value("statusDetails", "")
              << "\nfolder: " << status.value("azureStorageBlobContainerUri", "") << "\n"
              << std::flush;
  }
  return {};
}

Status run_full_restore(GlobalOptions& g, const FullBackupOptions& o) {
  // https://ACCOUNT.blob.core.windows.net/CONTAINER/FOLDER, as the SDKs' folder_url.
  const std::string url = o.storage_url;
  const auto host_end =
      url.find('/', url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
  const auto container_end =
      host_end == std::string::npos ? std::string::npos : url.find('/', host_end + 1);
  if (url.rfind("https://", 0) != 0 || container_end == std::string::npos ||
      container_end + 1 >= url.size()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--folder-url must be https://ACCOUNT.blob.core.windows.net/CONTAINER/FOLDER "
                      "(the folder full-backup printed)");
  }
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes sas, read_secret_file(o.sas_token_file, 64u << 10));
  sas = SecretBytes::from_string(trim(std::string_view(
      reinterpret_cast<const char*>(sas.reveal(SecretAccess::unsafe()).data()), sas.size())));
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  std::string folder = url.substr(container_end + 1);
  while (!folder.empty() && folder.back() == '/') {
    folder.pop_back();
  }
  KEYPORT_ASSIGN_OR_RETURN(Json status,
                           client.full_restore(url.substr(0, container_end), folder, sas, o.key));
  if (g.json) {
    print_json(status);
  } else {
    std::cout << status.value("statusDetails", "") << "\n" << std::flush;
  }
  return {};
}

struct RestoreOptions {
  Target target;
  std::string file;
};

Status run_restore(GlobalOptions& g, const RestoreOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(o.file, 8u << 20));
  std::string blob(trim(text));
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json bundle, client.restore_key(blob));
  if (g.json) {
    print_json(bundle);
  } else {
    std::cout << "restored " << bundle["key"].value("kid", std::string("the key")) << std::endl;
  }
  return {};
}

Status run_get(GlobalOptions& g, const KeyRef& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json bundle, client.get_key(o.name, o.version));
  print_bundle(g, bundle);
  return {};
}

Status run_list(GlobalOptions& g, const Target& t, bool deleted) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(t));
  KEYPORT_ASSIGN_OR_RETURN(Json items, deleted ? client.list_deleted_keys() : client.list_keys());
  print_items(g, items, false);
  return {};
}

Status run_versions(GlobalOptions& g, const KeyRef& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json items, client.list_versions(o.name));
  print_items(g, items, true);
  return {};
}

Status run_lifecycle(GlobalOptions& g, const KeyRef& o, const std::string& what) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  Result<Json> r = make_error(ErrorCode::kInternal, "unreachable");
  if (what == "delete") {
    r = client.delete_key(o.name);
  } else if (what == "recover") {
    r = client.recover_deleted_key(o.name);
  } else {
    Status purged = client.purge_deleted_key(o.name);
    r = purged ? Result<Json>(Json()) : Result<Json>(tl::unexpected(purged.error()));
  }
  if (!r) {
    return tl::unexpected(r.error());
  }
  if (g.json) {
    print_json(r->is_null() ? Json{{"purged", o.name}} : *r);
  } else if (what == "delete") {
    std::cout << "deleted " << o.name << " (recoverable until "
              << time_text(*r, "scheduledPurgeDate") << "; keyport vault recover|purge)"
              << std::endl;
  } else if (what == "recover") {
    std::cout << "recovered " << r->at("key").value("kid", o.name) << std::endl;
  } else {
    std::cout << "purged " << o.name << std::endl;
  }
  return {};
}

struct SignOptions {
  KeyRef key;
  std::string alg;
  std::optional<std::string> digest;
  std::optional<std::string> data;
  std::optional<std::string> output;
  std::optional<std::string> signature_file;
  std::optional<std::string> value;
  bool der = false;
  bool force = false;
};

Status run_sign(GlobalOptions& g, const SignOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(Bytes digest, digest_input(o.alg, o.digest, o.data));
  if (o.output) {
    KEYPORT_TRY(check_output_path(*o.output, o.force));
  }
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.key.target));
  KEYPORT_ASSIGN_OR_RETURN(Json r, client.sign(o.key.name, o.key.version, o.alg, digest));
  KEYPORT_ASSIGN_OR_RETURN(Bytes sig, base64url_decode(r.value("value", "")));
  const bool der = o.der && vault::is_ecdsa_alg(o.alg);
  if (o.output) {
    Bytes out = sig;
    if (der) {
      KEYPORT_ASSIGN_OR_RETURN(out, vault::ecdsa_raw_to_der_for_alg(o.alg, sig));
    }
    WriteOptions w;
    w.overwrite = o.force;
    KEYPORT_TRY(write_file_atomic(*o.output, out, w));
  }
  if (g.json) {
    print_json(Json{{"kid", r.value("kid", "")},
                    {"alg", o.alg},
                    {"digest", hex_encode(digest)},
                    {"value", r.value("value", "")},
                    {"file", o.output ? Json(*o.output) : Json(nullptr)}});
  } else {
    std::cout << "kid:       " << r.value("kid", "") << "\n"
              << "alg:       " << o.alg << "\n"
              << "digest:    " << hex_encode(digest) << "\n"
              << "signature: " << r.value("value", "") << std::endl;
    if (o.output) {
      std::cout << "wrote the signature to " << *o.output << (der ? " (DER)" : " (raw)")
                << std::endl;
    }
  }
  return {};
}

Status run_verify(GlobalOptions& g, const SignOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(Bytes digest, digest_input(o.alg, o.digest, o.data));
  if (o.signature_file.has_value() == o.value.has_value()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "give exactly one of --signature FILE or --value BASE64URL");
  }
  Bytes sig;
  if (o.signature_file) {
    KEYPORT_ASSIGN_OR_RETURN(sig, read_file(*o.signature_file, 1 << 16));
    if (o.der && vault::is_ecdsa_alg(o.alg)) {
      KEYPORT_ASSIGN_OR_RETURN(sig, vault::ecdsa_der_to_raw_for_alg(o.alg, sig));
    }
  } else {
    KEYPORT_ASSIGN_OR_RETURN(sig, base64url_decode(*o.value));
  }
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.key.target));
  KEYPORT_ASSIGN_OR_RETURN(Json r, client.verify(o.key.name, o.key.version, o.alg, digest, sig));
  const bool ok = r.value("value", false);
  if (g.json) {
    print_json(Json{{"value", ok}, {"alg", o.alg}, {"digest", hex_encode(digest)}});
  } else {
    std::cout << "signature: " << (ok ? "valid" : "INVALID") << std::endl;
  }
  if (!ok) {
    return make_error(ErrorCode::kIntegrityFailure, "the vault says the signature does not verify");
  }
  return {};
}

void add_key_ref(CLI::App& cmd, KeyRef& k, bool with_version) {
  add_target_options(cmd, k.target);
  cmd.add_option("--name,-n", k.name, "Key name")->required();
  if (with_version) {
    cmd.add_option("--version", k.version, "Key version (default: the latest)");
  }
}

// --- Secure Key Release: release, trust ---------------------------------------------------------

struct ReleaseCmdOptions {
  KeyRef key;
  std::string token;
  std::optional<std::string> enc;
  std::optional<std::string> nonce;
  std::optional<std::string> output;
  bool force = false;
};

Status run_release(GlobalOptions& g, const ReleaseCmdOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(std::string token, read_text_file(o.token, 1u << 20));
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
    token.pop_back();
  }
  if (o.output && *o.output != "-") {
    KEYPORT_TRY(check_output_path(*o.output, o.force));
  }
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.key.target));
  auto r = client.release(o.key.name, o.key.version, token, o.enc, o.nonce);
  if (!r) {
    if (r.error().detail() == "Forbidden") {
      return make_error(ErrorCode::kPolicyDenied, "Forbidden",
                        "the vault refused to release " + o.key.name + ": " + r.error().message());
    }
    return tl::unexpected(r.error());
  }
  const std::string text = dump_json(*r) + "\n";
  if (o.output && *o.output == "-") {
    std::cout << text;
    return {};
  }
  if (o.output) {
    KEYPORT_TRY(write_file_atomic(*o.output, text, WriteOptions{o.force, 0600}));
  }
  // What was released, from the JWS payload (not verified here: keyport enclave unwrap does).
  Json info = Json::object();
  if (auto jws = skr::CompactJws::parse(r->value("value", ""),
                                        skr::JwsLimits{256 * 1024, 128 * 1024, 256 * 1024, 32})) {
    if (auto p = jws->payload_object(skr::JwsLimits{256 * 1024, 128 * 1024, 256 * 1024, 32})) {
      const Json& key = (*p)["response"]["key"]["key"];
      info["kid"] = key.value("kid", "");
      info["kty"] = key.value("kty", "");
      info["enc"] = (*p)["request"].value("enc", "");
    }
  }
  info["file"] = o.output ? Json(*o.output) : Json(nullptr);
  if (g.json) {
    print_json(info);
  } else {
    std::cout << "released " << info.value("kid", o.key.name) << " (" << info.value("kty", "")
              << ", " << info.value("enc", "") << ")"
              << (o.output ? "; wrote the response to " + *o.output : std::string()) << "\n"
              << "  the enclave verifies and unwraps it: keyport enclave unwrap --release "
              << (o.output ? *o.output : std::string("RESPONSE.json"))
              << " --vault-ca <vault>/tls/ca.pem --runtime-key RUNTIME.key" << std::endl;
    if (!o.output) {
      std::cout << text;
    }
  }
  return {};
}

struct TrustOptions {
  std::string data;
  std::string from;
  bool replace = false;
};

// Merges a trusted-authorities file (or a keyport attest folder's) into the vault folder's.
Status run_trust(GlobalOptions& g, const TrustOptions& o) {
  const fs::path dir = o.data.empty() ? fs::path(env_or("KEYPORT_VAULT_DATA")) : fs::path(o.data);
  KEYPORT_ASSIGN_OR_RETURN(vault::TrustResult t, vault::trust_authorities(dir, o.from, o.replace));
  if (g.json) {
    print_json(Json{{"file", t.file.string()}, {"trusted", t.trusted}});
  } else {
    for (const auto& i : t.trusted) {
      std::cout << "the vault now trusts attestation tokens of " << i << "\n";
    }
    std::cout << "wrote " << t.file.string() << " (a running server re-reads it)" << std::endl;
  }
  return {};
}

// --- rotation, clock, platform ------------------------------------------------------------------

struct RotationPolicyOptions {
  KeyRef key;
  std::optional<std::string> file;
  std::optional<std::string> rotate_after;
  std::optional<std::string> rotate_before_expiry;
  std::optional<std::string> notify_before_expiry;
  std::optional<std::string> expires_in;
};

void print_policy(const GlobalOptions& g, const Json& p) {
  if (g.json) {
    print_json(p);
    return;
  }
  std::cout << "policy:   " << p.value("id", "") << "\n";
  const Json attrs = p.value("attributes", Json::object());
  std::cout << "expiry:   "
            << (attrs.contains("expiryTime") ? attrs["expiryTime"].get<std::string>()
                                             : std::string("- (new versions do not expire)"))
            << "\n";
  for (const auto& a : p.value("lifetimeActions", Json::array())) {
    const Json trigger = a.value("trigger", Json::object());
    const std::string type = a.value("action", Json::object()).value("type", "?");
    if (trigger.contains("timeAfterCreate")) {
      std::cout << "action:   " << type << " " << trigger["timeAfterCreate"].get<std::string>()
                << " after the latest version was created\n";
    } else if (trigger.contains("timeBeforeExpiry")) {
      std::cout << "action:   " << type << " " << trigger["timeBeforeExpiry"].get<std::string>()
                << " before the latest version expires\n";
    }
  }
  if (attrs.contains("updated")) {
    std::cout << "updated:  " << time_text(attrs, "updated") << "\n";
  } else {
    std::cout << "(the default policy: none was set)\n";
  }
  std::cout << std::flush;
}

Status run_rotate(GlobalOptions& g, const KeyRef& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json bundle, client.rotate_key(o.name));
  print_bundle(g, bundle);
  return {};
}

struct RandomOptions {
  Target target;
  int count = 32;
  std::optional<std::string> output;
  bool force = false;
};

// Managed HSM's GetRandomBytes: the bytes to a file (atomic, mode 0600), or hex on stdout.
Status run_random(GlobalOptions& g, const RandomOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json answer, client.random_bytes(o.count));
  auto value = answer.find("value");
  if (value == answer.end() || !value->is_string()) {
    return make_error(ErrorCode::kFormat, "the vault's answer has no \"value\"");
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes bytes, base64url_decode(value->get<std::string>()));
  if (o.output) {
    KEYPORT_TRY(write_file_atomic(*o.output, bytes, WriteOptions{o.force, 0600}));
  }
  if (g.json) {
    print_json(Json{{"count", bytes.size()}, {"value", value->get<std::string>()}});
  } else if (!o.output) {
    std::cout << hex_encode(bytes) << "\n" << std::flush;
  }
  return {};
}

Status run_policy_get(GlobalOptions& g, const KeyRef& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json p, client.get_rotation_policy(o.name));
  print_policy(g, p);
  return {};
}

Status run_policy_set(GlobalOptions& g, const RotationPolicyOptions& o) {
  const bool flags =
      o.rotate_after || o.rotate_before_expiry || o.notify_before_expiry || o.expires_in;
  if (o.file.has_value() == flags) {
    return make_error(ErrorCode::kInvalidArgument,
                      "give --file POLICY.json, or the policy as flags (--rotate-after, "
                      "--rotate-before-expiry, --notify-before-expiry, --expires-in)");
  }
  if (o.rotate_after && o.rotate_before_expiry) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a policy rotates either --rotate-after or --rotate-before-expiry");
  }
  Json body = Json::object();
  if (o.file) {
    KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(*o.file, 1 << 20));
    KEYPORT_ASSIGN_OR_RETURN(body, parse_json_strict(text));
  } else {
    Json actions = Json::array();
    if (o.rotate_after) {
      actions.push_back(Json{{"trigger", {{"timeAfterCreate", *o.rotate_after}}},
                             {"action", {{"type", "Rotate"}}}});
    }
    if (o.rotate_before_expiry) {
      actions.push_back(Json{{"trigger", {{"timeBeforeExpiry", *o.rotate_before_expiry}}},
                             {"action", {{"type", "Rotate"}}}});
    }
    if (o.notify_before_expiry) {
      actions.push_back(Json{{"trigger", {{"timeBeforeExpiry", *o.notify_before_expiry}}},
                             {"action", {{"type", "Notify"}}}});
    }
    body["lifetimeActions"] = std::move(actions);
    body["attributes"] = Json::object();
    if (o.expires_in) {
      body["attributes"]["expiryTime"] = *o.expires_in;
    }
  }
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.key.target));
  KEYPORT_ASSIGN_OR_RETURN(Json p, client.set_rotation_policy(o.key.name, body));
  print_policy(g, p);
  return {};
}

// "2026-01-31", "2026-01-31T12:00:00Z", "now" or unix seconds.
Result<std::int64_t> parse_when(const std::string& text) {
  if (text == "now") {
    return static_cast<std::int64_t>(std::time(nullptr));
  }
  if (!text.empty() &&
      std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); }) &&
      text.size() < 12) {
    return static_cast<std::int64_t>(std::stoll(text));
  }
  std::tm tm{};
  const char* end = nullptr;
  if (text.size() == 10) {
    end = strptime(text.c_str(), "%Y-%m-%d", &tm);
  } else {
    end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  if (end == nullptr || *end != '\0') {
    return make_error(ErrorCode::kInvalidArgument,
                      "\"" + text +
                          "\" is not a date: use 2026-01-31, 2026-01-31T12:00:00Z, unix seconds "
                          "or now");
  }
  return static_cast<std::int64_t>(timegm(&tm));
}

std::string utc_text(std::int64_t t) {
  Json j{{"t", t}};
  return time_text(j, "t");
}

std::string local_folder(const std::string& data) {
  return data.empty() ? env_or("KEYPORT_VAULT_DATA") : data;
}

struct ClockOptions {
  std::string data;
  std::optional<std::string> advance;
  bool reset = false;
};

Status run_clock(GlobalOptions& g, const ClockOptions& o) {
  const std::string dir = local_folder(o.data);
  KEYPORT_ASSIGN_OR_RETURN(vault::FolderClock c, vault::folder_clock(dir, o.advance, o.reset));
  if (g.json) {
    print_json(Json{{"data", dir}, {"clock_offset", c.clock_offset}, {"now", c.now}});
  } else {
    std::cout << "vault clock: " << utc_text(c.now) << " (offset " << c.clock_offset
              << " s; a running server sees it at its next request or tick)" << std::endl;
  }
  return {};
}

struct CutoverOptions {
  std::string data;
  std::optional<std::string> before;
  bool clear = false;
};

Status run_cutover(GlobalOptions& g, const CutoverOptions& o) {
  const std::string dir = local_folder(o.data);
  KEYPORT_TRY(vault::check_vault_folder(dir));
  if (o.before.has_value() == o.clear) {
    return make_error(ErrorCode::kInvalidArgument, "give --before DATE or --clear");
  }
  std::optional<std::int64_t> before;
  if (o.before) {
    KEYPORT_ASSIGN_OR_RETURN(before, parse_when(*o.before));
  }
  KEYPORT_ASSIGN_OR_RETURN(std::optional<std::int64_t> set,
                           vault::set_platform_cutover(dir, before));
  if (g.json) {
    print_json(Json{{"data", dir}, {"platform1_before", set ? Json(*set) : Json(nullptr)}});
  } else if (set) {
    std::cout << "versions of -HSM keys created before " << utc_text(*set)
              << " now report hsmPlatform \"1\" (keyport vault report platform lists them)"
              << std::endl;
  } else {
    std::cout << "no platform cut-over: every -HSM version reports hsmPlatform \"2\"" << std::endl;
  }
  return {};
}

Status run_platform_report(GlobalOptions& g, const Target& t) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(t));
  KEYPORT_ASSIGN_OR_RETURN(Json r, client.platform_report());
  if (g.json) {
    print_json(r);
    return {};
  }
  const Json cutover = r.value("cutover", Json());
  if (!cutover.is_number_integer()) {
    std::cout << "no platform cut-over is set (keyport vault platform-cutover --before DATE): "
                 "every -HSM key is on platform 2"
              << std::endl;
    return {};
  }
  std::cout << "keys whose current version is on HSM platform 1 (created before "
            << utc_text(cutover.get<std::int64_t>())
            << "): " << r.value("keys", Json::array()).size() << std::endl;
  std::vector<std::vector<std::string>> rows;
  for (const auto& k : r.value("keys", Json::array())) {
    Json attrs{{"created", k.value("created", 0)}};
    rows.push_back({k.value("name", ""), k.value("kty", ""), time_text(attrs, "created"),
                    k.value("origin", ""), k.value("action", "")});
  }
  if (!rows.empty()) {
    print_table({"NAME", "KTY", "CREATED", "ORIGIN", "ACTION"}, rows);
    for (const auto& k : r.value("keys", Json::array())) {
      std::cout << "  " << k.value("name", "") << ": " << k.value("how", "") << "\n";
    }
    std::cout << std::flush;
  }
  return {};
}

struct WrapOptions {
  KeyRef key;
  std::string alg;
  std::optional<std::string> value_hex;
  std::optional<std::string> input;
  std::optional<std::string> output;
  std::optional<std::string> iv_hex, aad_hex, tag_hex;  // encrypt/decrypt with AES
  bool force = false;
};

// wrapKey / unwrapKey / encrypt / decrypt: the bytes from --value (hex) or --in FILE; the answer
// to -o FILE (raw bytes) or printed base64url, with AES's iv and tag in hex (as --iv and --tag take
// them).
Status run_key_op(GlobalOptions& g, const WrapOptions& o, vault::KeyOperation op) {
  if (o.value_hex.has_value() == o.input.has_value()) {
    return make_error(ErrorCode::kInvalidArgument, "give exactly one of --value HEX or --in FILE");
  }
  if (o.output) {
    KEYPORT_TRY(check_output_path(*o.output, o.force));
  }
  SecretBytes in;
  if (o.value_hex) {
    KEYPORT_ASSIGN_OR_RETURN(Bytes b, hex_decode(*o.value_hex));
    in = SecretBytes(std::move(b));
  } else {
    KEYPORT_ASSIGN_OR_RETURN(in, read_secret_file(*o.input, 1 << 20));
  }
  vault::KeyOperationExtras extras;
  for (const auto& [text, field, flag] :
       {std::tuple{&o.iv_hex, &extras.iv, "--iv"}, std::tuple{&o.aad_hex, &extras.aad, "--aad"},
        std::tuple{&o.tag_hex, &extras.tag, "--tag"}}) {
    if (text->has_value()) {
      auto bytes = hex_decode(**text);
      if (!bytes) {
        return make_error(ErrorCode::kInvalidArgument, std::string(flag) + " is not hex");
      }
      *field = std::move(*bytes);
    }
  }
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.key.target));
  KEYPORT_ASSIGN_OR_RETURN(Json r,
                           client.key_operation(op, o.key.name, o.key.version, o.alg, in, extras));
  KEYPORT_ASSIGN_OR_RETURN(Bytes out, base64url_decode(r.value("value", "")));
  // AES: the IV the vault used and GCM's tag, in hex; decrypt needs them back.
  std::vector<std::pair<std::string, std::string>> symmetric;
  for (const char* m : {"iv", "tag"}) {
    if (r.contains(m) && r[m].is_string()) {
      KEYPORT_ASSIGN_OR_RETURN(Bytes b, base64url_decode(r[m].get<std::string>()));
      symmetric.emplace_back(m, hex_encode(b));
    }
  }
  if (o.output) {
    WriteOptions w;
    w.overwrite = o.force;
    w.mode = 0600;
    KEYPORT_TRY(write_file_atomic(*o.output, out, w));
  }
  const bool secret_out =
      op == vault::KeyOperation::kUnwrapKey || op == vault::KeyOperation::kDecrypt;
  if (g.json) {
    Json j{{"kid", r.value("kid", "")}, {"alg", o.alg}, {"bytes", out.size()}};
    if (!secret_out || !o.output) {
      j["value"] = r.value("value", "");
    }
    for (const auto& [m, hex] : symmetric) {
      j[m] = hex;
    }
    print_json(j);
  } else {
    if (o.output) {
      std::cout << "kid: " << r.value("kid", "") << "\nwrote " << out.size() << " bytes to "
                << *o.output << "\n";
    } else {
      std::cout << r.value("value", "") << "\n";
    }
    for (const auto& [m, hex] : symmetric) {
      std::cout << m << ": " << hex << "\n";
    }
    std::cout << std::flush;
  }
  return {};
}

// --- Managed HSM local RBAC and settings (`keyport vault role ...`, `keyport vault setting ...`)

struct RoleOptions {
  Target target;
  std::string scope = "/";
  std::string name;        // a role definition's or assignment's GUID
  std::string role;        // a role's name or GUID (assignments)
  std::string assignee;    // a principalId
  std::string definition;  // create: JSON text, or @file
  bool custom_only = false;
  std::string value;  // settings
};

void print_role_definitions(GlobalOptions& g, const Json& items) {
  if (g.json) {
    print_json(Json{{"value", items}});
    return;
  }
  for (const Json& d : items) {
    const Json& p = d.value("properties", Json::object());
    std::cout << d.value("name", "") << "  " << p.value("type", "") << "  "
              << p.value("roleName", "") << "\n";
  }
  std::cout << std::flush;
}

void print_role_assignments(GlobalOptions& g, const Json& items) {
  if (g.json) {
    print_json(Json{{"value", items}});
    return;
  }
  for (const Json& a : items) {
    const Json& p = a.value("properties", Json::object());
    std::string role = p.value("roleDefinitionId", "");
    role = role.substr(role.rfind('/') == std::string::npos ? 0 : role.rfind('/') + 1);
    std::cout << a.value("name", "") << "  scope " << p.value("scope", "") << "  role " << role
              << "  principal " << p.value("principalId", "") << "\n";
  }
  std::cout << std::flush;
}

// A role given by GUID or by roleName (as `az keyvault role assignment create --role` takes it).
Result<std::string> resolve_role(vault::Client& client, const std::string& role) {
  if (vault::is_uuid(role)) {
    return ascii_lower(role);
  }
  KEYPORT_ASSIGN_OR_RETURN(Json defs, client.list_role_definitions("/"));
  for (const Json& d : defs) {
    if (iequals(d.value("properties", Json::object()).value("roleName", ""), role)) {
      return d.value("name", "");
    }
  }
  return make_error(ErrorCode::kNotFound, "no role definition is named \"" + role +
                                              "\" (keyport vault role definition list)");
}

Status run_role_definition_list(GlobalOptions& g, const RoleOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json items, client.list_role_definitions(o.scope));
  Json shown = Json::array();
  for (Json& d : items) {
    if (!o.custom_only || d.value("properties", Json::object()).value("type", "") == "CustomRole") {
      shown.push_back(std::move(d));
    }
  }
  print_role_definitions(g, shown);
  return {};
}

Status run_role_definition_show(GlobalOptions& /*g*/, const RoleOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(std::string guid, resolve_role(client, o.name));
  KEYPORT_ASSIGN_OR_RETURN(Json d, client.get_role_definition(o.scope, guid));
  print_json(d);
  return {};
}

// `--role-definition` as az takes it: {"roleName", "description", "actions", "notActions",
// "dataActions", "notDataActions", "assignableScopes", "name"?}, as JSON text or @file.
Status run_role_definition_create(GlobalOptions& g, const RoleOptions& o) {
  std::string text = o.definition;
  if (!text.empty() && text.front() == '@') {
    KEYPORT_ASSIGN_OR_RETURN(text, read_text_file(text.substr(1), 1 << 20));
  }
  KEYPORT_ASSIGN_OR_RETURN(Json def, parse_json_strict(text));
  if (!def.is_object()) {
    return make_error(ErrorCode::kInvalidArgument, "--role-definition must be a JSON object");
  }
  KEYPORT_TRY(json_only_members(def,
                                {"name", "roleName", "description", "actions", "notActions",
                                 "dataActions", "notDataActions", "assignableScopes"},
                                "--role-definition"));
  std::string name = o.name.empty() ? def.value("name", "") : o.name;
  if (name.empty()) {
    name = random_uuid();
  }
  Json perm{{"actions", def.value("actions", Json::array())},
            {"notActions", def.value("notActions", Json::array())},
            {"dataActions", def.value("dataActions", Json::array())},
            {"notDataActions", def.value("notDataActions", Json::array())}};
  Json props{{"roleName", def.value("roleName", "")},
             {"description", def.value("description", "")},
             {"type", "CustomRole"},
             {"permissions", Json::array({perm})},
             {"assignableScopes", def.value("assignableScopes", Json::array({"/"}))}};
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json d, client.set_role_definition(o.scope, name, props));
  if (g.json) {
    print_json(d);
  } else {
    std::cout << "role definition " << d.value("name", "") << " ("
              << d.value("properties", Json::object()).value("roleName", "") << ") saved\n"
              << std::flush;
  }
  return {};
}

Status run_role_definition_delete(GlobalOptions& g, const RoleOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(std::string guid, resolve_role(client, o.name));
  KEYPORT_ASSIGN_OR_RETURN(Json d, client.delete_role_definition(o.scope, guid));
  if (g.json) {
    print_json(d);
  } else {
    std::cout << "role definition " << guid << " deleted\n" << std::flush;
  }
  return {};
}

Status run_role_assignment_list(GlobalOptions& g, const RoleOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  const std::string filter =
      o.assignee.empty() ? std::string() : "principalId eq '" + o.assignee + "'";
  KEYPORT_ASSIGN_OR_RETURN(Json items, client.list_role_assignments(o.scope, filter));
  if (!o.role.empty()) {
    KEYPORT_ASSIGN_OR_RETURN(std::string guid, resolve_role(client, o.role));
    Json kept = Json::array();
    for (Json& a : items) {
      const std::string id = a.value("properties", Json::object()).value("roleDefinitionId", "");
      if (id.size() >= guid.size() && iequals(id.substr(id.size() - guid.size()), guid)) {
        kept.push_back(std::move(a));
      }
    }
    items = std::move(kept);
  }
  print_role_assignments(g, items);
  return {};
}

Status run_role_assignment_create(GlobalOptions& g, const RoleOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(std::string guid, resolve_role(client, o.role));
  const std::string name = o.name.empty() ? random_uuid() : o.name;
  KEYPORT_ASSIGN_OR_RETURN(
      Json a, client.create_role_assignment(
                  o.scope, name,
                  "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/" + guid,
                  o.assignee));
  if (g.json) {
    print_json(a);
  } else {
    print_role_assignments(g, Json::array({a}));
  }
  return {};
}

Status run_role_assignment_delete(GlobalOptions& g, const RoleOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  std::vector<std::string> names;
  if (!o.name.empty()) {
    names.push_back(o.name);
  } else {
    if (o.assignee.empty() || o.role.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "give --name, or --assignee and --role of the assignment to delete");
    }
    KEYPORT_ASSIGN_OR_RETURN(std::string guid, resolve_role(client, o.role));
    KEYPORT_ASSIGN_OR_RETURN(
        Json items,
        client.list_role_assignments(o.scope, "atScope() and principalId eq '" + o.assignee + "'"));
    for (const Json& a : items) {
      const std::string id = a.value("properties", Json::object()).value("roleDefinitionId", "");
      if (id.size() >= guid.size() && iequals(id.substr(id.size() - guid.size()), guid)) {
        names.push_back(a.value("name", ""));
      }
    }
    if (names.empty()) {
      return make_error(ErrorCode::kNotFound, "no assignment of role " + o.role + " to " +
                                                  o.assignee + " at scope " + o.scope);
    }
  }
  Json deleted = Json::array();
  for (const std::string& n : names) {
    KEYPORT_ASSIGN_OR_RETURN(Json a, client.delete_role_assignment(o.scope, n));
    deleted.push_back(std::move(a));
  }
  if (g.json) {
    print_json(Json{{"value", deleted}});
  } else {
    for (const std::string& n : names) {
      std::cout << "role assignment " << n << " deleted\n";
    }
    std::cout << std::flush;
  }
  return {};
}

void print_setting(GlobalOptions& g, const Json& s) {
  if (g.json) {
    print_json(s);
  } else {
    std::cout << s.value("name", "") << " = " << s.value("value", "") << " (" << s.value("type", "")
              << ")\n"
              << std::flush;
  }
}

Status run_setting_list(GlobalOptions& g, const RoleOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json all, client.list_settings());
  if (g.json) {
    print_json(all);
    return {};
  }
  for (const Json& s : all.value("settings", Json::array())) {
    print_setting(g, s);
  }
  return {};
}

Status run_setting_show(GlobalOptions& g, const RoleOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json s, client.get_setting(o.name));
  print_setting(g, s);
  return {};
}

Status run_setting_update(GlobalOptions& g, const RoleOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json s, client.update_setting(o.name, o.value));
  print_setting(g, s);
  return {};
}

void setup_rbac_commands(CLI::App& vault, GlobalOptions& g) {
  auto* role = vault.add_subcommand(
      "role",
      "Managed HSM local RBAC: role definitions and role assignments (as az keyvault role)");
  role->require_subcommand(1);
  role->footer(
      "Managed HSM folders only. Scopes: \"/\" (the HSM), \"/keys\" (every key), \"/keys/NAME\"\n"
      "(one key). A principal (--assignee) is an access-file token's name or a managed\n"
      "identity's object id. See docs/vault.md \"Managed HSM local RBAC\".");
  auto* def = role->add_subcommand("definition", "Role definitions (built-in and custom roles)");
  def->require_subcommand(1);
  auto* asg =
      role->add_subcommand("assignment", "Role assignments: a role for a principal at a scope");
  asg->require_subcommand(1);

  auto add_scope = [](CLI::App& cmd, RoleOptions& o) {
    cmd.add_option("--scope", o.scope, "\"/\" (default), \"/keys\" or \"/keys/NAME\"");
  };
  {
    auto o = std::make_shared<RoleOptions>();
    auto* c = def->add_subcommand("list", "List the role definitions (built-in and custom)");
    add_target_options(*c, o->target);
    add_scope(*c, *o);
    c->add_flag("--custom-role-only", o->custom_only, "Only custom roles");
    add_json_flag(*c, g);
    c->footer("Example: keyport vault role definition list --data ./mhsm --json");
    c->callback(bind_command(g, [&g, o] { return run_role_definition_list(g, *o); }));
  }
  {
    auto o = std::make_shared<RoleOptions>();
    auto* c = def->add_subcommand("show", "Show one role definition (JSON)");
    add_target_options(*c, o->target);
    add_scope(*c, *o);
    c->add_option("--name", o->name, "The role's GUID or roleName")->required();
    add_json_flag(*c, g);
    c->footer(
        "Example: keyport vault role definition show --data ./mhsm --name \"Managed HSM Crypto "
        "User\"");
    c->callback(bind_command(g, [&g, o] { return run_role_definition_show(g, *o); }));
  }
  {
    auto o = std::make_shared<RoleOptions>();
    auto* c = def->add_subcommand("create", "Create or update a custom role");
    add_target_options(*c, o->target);
    add_scope(*c, *o);
    c->add_option("--role-definition", o->definition,
                  "JSON text or @file: {\"roleName\", \"description\", \"dataActions\", "
                  "\"notDataActions\", \"assignableScopes\", \"name\"?}")
        ->required();
    c->add_option("--name", o->name, "The role's GUID (default: its \"name\", else a new one)");
    add_json_flag(*c, g);
    c->footer(
        "Built-in roles cannot be changed. Data actions are Microsoft.KeyVault/managedHsm/...\n"
        "Example: keyport vault role definition create --data ./mhsm --role-definition \\\n"
        "  '{\"roleName\": \"signer\", \"dataActions\": "
        "[\"Microsoft.KeyVault/managedHsm/keys/sign/action\"]}'");
    c->callback(bind_command(g, [&g, o] { return run_role_definition_create(g, *o); }));
  }
  {
    auto o = std::make_shared<RoleOptions>();
    auto* c = def->add_subcommand("delete", "Delete a custom role (not while assigned)");
    add_target_options(*c, o->target);
    add_scope(*c, *o);
    c->add_option("--name", o->name, "The role's GUID or roleName")->required();
    add_json_flag(*c, g);
    c->callback(bind_command(g, [&g, o] { return run_role_definition_delete(g, *o); }));
  }
  {
    auto o = std::make_shared<RoleOptions>();
    auto* c = asg->add_subcommand("list", "List role assignments at a scope and below");
    add_target_options(*c, o->target);
    add_scope(*c, *o);
    c->add_option("--assignee", o->assignee, "Only this principal's");
    c->add_option("--role", o->role, "Only this role's (GUID or roleName)");
    add_json_flag(*c, g);
    c->footer("Example: keyport vault role assignment list --data ./mhsm --assignee admin");
    c->callback(bind_command(g, [&g, o] { return run_role_assignment_list(g, *o); }));
  }
  {
    auto o = std::make_shared<RoleOptions>();
    auto* c = asg->add_subcommand("create", "Assign a role to a principal at a scope");
    add_target_options(*c, o->target);
    add_scope(*c, *o);
    c->add_option("--role", o->role, "The role's GUID or roleName")->required();
    c->add_option("--assignee", o->assignee,
                  "The principal: an access-file token's name or a managed identity's object id")
        ->required();
    c->add_option("--name", o->name, "The assignment's GUID (default: a new one)");
    add_json_flag(*c, g);
    c->footer(
        "Example: keyport vault role assignment create --url https://127.0.0.1:8443 \\\n"
        "  --token-file ./mhsm/admin.token --ca-file ./mhsm/tls/ca.pem \\\n"
        "  --role \"Managed HSM Crypto User\" --assignee ci --scope /keys/signing-key");
    c->callback(bind_command(g, [&g, o] { return run_role_assignment_create(g, *o); }));
  }
  {
    auto o = std::make_shared<RoleOptions>();
    auto* c = asg->add_subcommand("delete", "Delete role assignments");
    add_target_options(*c, o->target);
    add_scope(*c, *o);
    c->add_option("--name", o->name, "The assignment's GUID");
    c->add_option("--assignee", o->assignee, "With --role: the principal's assignments");
    c->add_option("--role", o->role, "With --assignee: of this role (GUID or roleName)");
    add_json_flag(*c, g);
    c->callback(bind_command(g, [&g, o] { return run_role_assignment_delete(g, *o); }));
  }

  auto* setting = vault.add_subcommand(
      "setting", "Managed HSM settings (AllowKeyManagementOperationsThroughARM)");
  setting->require_subcommand(1);
  {
    auto o = std::make_shared<RoleOptions>();
    auto* c = setting->add_subcommand("list", "List the settings");
    add_target_options(*c, o->target);
    add_json_flag(*c, g);
    c->callback(bind_command(g, [&g, o] { return run_setting_list(g, *o); }));
  }
  {
    auto o = std::make_shared<RoleOptions>();
    auto* c = setting->add_subcommand("show", "Show one setting");
    add_target_options(*c, o->target);
    c->add_option("--name", o->name, "The setting's name")->required();
    add_json_flag(*c, g);
    c->callback(bind_command(g, [&g, o] { return run_setting_show(g, *o); }));
  }
  {
    auto o = std::make_shared<RoleOptions>();
    auto* c = setting->add_subcommand("update", "Change a setting");
    add_target_options(*c, o->target);
    c->add_option("--name", o->name, "The setting's name")->required();
    c->add_option("--value", o->value, "Its new value (boolean settings: true or false)")
        ->required();
    add_json_flag(*c, g);
    c->footer(
        "Example: keyport vault setting update --data ./mhsm \\\n"
        "  --name AllowKeyManagementOperationsThroughARM --value true");
    c->callback(bind_command(g, [&g, o] { return run_setting_update(g, *o); }));
  }
}

}  // namespace

void setup_vault_commands(CLI::App& app, GlobalOptions& g) {
  auto* vault = app.add_subcommand(
      "vault", "The simulated Azure Key Vault / Managed HSM: a local folder or its HTTPS server");
  vault->require_subcommand(1);

  auto init = std::make_shared<InitOptions>();
  auto* i = vault->add_subcommand("init", "Create a vault folder (vault.json)");
  i->add_option("--data", init->data, "Vault folder (default $KEYPORT_VAULT_DATA)");
  i->add_option("--flavor", init->flavor, "key-vault (default) or managed-hsm");
  i->add_option("--name", init->name, "Vault name (default keyport)");
  i->add_option("--base-url", init->base_url,
                "Base URL of kids when it is not the server's listen address (a proxy, an alias)");
  i->add_option("--soft-delete-retention-days", init->retention_days,
                "Days a deleted key stays recoverable before the vault purges it (7..90, "
                "default 90; below 90 Key Vault reports CustomizedRecoverable)")
      ->check(CLI::Range(vault::kMinRetentionDays, vault::kMaxRetentionDays));
  i->add_flag("--purge-protection", init->purge_protection,
              "Refuse purge of deleted keys (403); they are purged only when their retention "
              "period ends");
  i->add_option("--backup-domain", init->backup_domain,
                "An existing vault folder whose backup domain the new vault joins (its backups "
                "restore here): its domain keys move token to token, wrapped to a key made in "
                "the new vault's token. The folder must not be in use (stop its server)");
  i->add_flag("--require-activation", init->require_activation,
              "Managed HSM: start un-activated, as Azure's: only the security-domain operations "
              "answer until keyport vault security-domain download (or upload) activates it");
  add_json_flag(*i, g);
  i->callback(bind_command(g, [&g, init] { return run_init(g, *init); }));
  setup_vault_security_domain_commands(*vault, g);

  // Hidden: the existing vault's step of `init --backup-domain`, run by it in a child process.
  auto dexport = std::make_shared<DomainExportOptions>();
  auto* dx = vault->add_subcommand("backup-domain-export",
                                   "(internal) wrap this vault's backup-domain keys to a "
                                   "transfer key; run by vault init --backup-domain");
  dx->group("");
  dx->add_option("--data", dexport->data, "Vault folder")->required();
  dx->add_option("--transfer-key", dexport->transfer_key, "base64url DER public key")->required();
  dx->callback(bind_command(g, [dexport] { return run_domain_export(*dexport); }));

  auto serve = std::make_shared<ServeOptions>();
  auto* s = vault->add_subcommand(
      "serve", "Serve a vault folder over HTTPS with Key Vault's REST API until SIGINT/SIGTERM");
  s->add_option("--data", serve->data, "Vault folder (default $KEYPORT_VAULT_DATA)");
  s->add_option("--listen", serve->listen,
                "host:port to listen on (default 127.0.0.1:8443; port 0 picks a free one)");
  s->add_option("--flavor", serve->flavor,
                "key-vault or managed-hsm: initialises a missing vault, checks an existing one");
  s->add_option("--name", serve->name, "Name of a vault the server initialises (default keyport)");
  s->add_option("--tls-cert", serve->tls_cert,
                "Server certificate PEM (default: DIR/tls, made by "
                "the vault CA)");
  s->add_option("--tls-key", serve->tls_key, "Private key PEM of --tls-cert");
  s->add_option("--access", serve->access,
                "Access file of bearer tokens and permissions (default DIR/access.json)");
  s->add_option("--challenge-resource", serve->challenge_resource,
                "Resource the 401 challenge names (and managed-identity tokens are for): azure "
                "(https://vault.azure.net), self (the base URL's parent origin, e.g. "
                "https://localhost:8443 for https://kpvault.localhost:8443, which Azure SDKs "
                "accept with their defaults) or a URL; default azure for *.vault.azure.net and "
                "*.managedhsm.azure.net base URLs, self otherwise");
  s->add_option("--throttle", serve->throttle,
                "azure: apply Key Vault's documented service limits (transactions per 10 seconds "
                "per vault, weighted by key type and size) and answer 429 with Retry-After "
                "beyond them, to test a pipeline's retry logic (default: no limit)");
  s->add_option("--identity-listen", serve->identity_listen,
                "Also serve Azure's managed-identity token endpoints (App Service, MSI_ENDPOINT, "
                "IMDS) over plain HTTP on this loopback host:port; tokens are issued for the "
                "access file's \"identities\", and the variables applications need are written "
                "to DIR/identity.env");
  s->add_option("--identity-token-lifetime", serve->identity_token_lifetime,
                "Lifetime of managed-identity tokens in seconds (60..86400, default 3600)");
  s->add_flag("--insecure-any-token", serve->insecure_any_token,
              "Accept ANY bearer token as a full administrator (throw-away tests only)");
  s->add_option("--max-body", serve->max_body, "Largest request body in bytes (default 1 MiB)");
  s->add_option("--threads", serve->threads, "Worker threads (default 8)");
  s->add_option("--access-log", serve->access_log, "Append the access log here (default stderr)");
  s->add_option(
      "--backup-storage", serve->backup_storage,
      "Managed HSM full backup and restore: the folder standing in for Azure Blob Storage "
      "(https://ACCOUNT.blob.core.windows.net/CONTAINER is DIR/ACCOUNT.blob.core.windows."
      "net/CONTAINER); unset: full backup is refused");
  s->add_option("--hsm-recycle", serve->hsm_recycle,
                "Finalise and re-initialise the vault's PKCS#11 module after this many token "
                "operations: SoftHSM 2.6 frees session objects only then (default " +
                    std::to_string(vault::kDefaultModuleRecycleOps) + "; 0: never)");
  s->add_option("--trusted-authorities", serve->trusted_authorities,
                "Attestation authorities trusted for key release (default "
                "DIR/trusted-authorities.json; see keyport vault trust)");
  s->callback(bind_command(g, [&g, serve] { return run_serve(g, *serve); }));

  auto create = std::make_shared<CreateOptions>();
  auto* c =
      vault->add_subcommand("create-key", "Create a key in the vault (as az keyvault key create)");
  add_target_options(*c, create->target);
  c->add_option("--name,-n", create->name, "Key name")->required();
  c->add_option("--kty", create->kty, "RSA-HSM, EC-HSM or oct-HSM (RSA and EC: software keys)");
  c->add_option("--size", create->size, "RSA bits (2048, 3072, 4096) or oct bits (128, 192, 256)");
  c->add_option("--curve", create->curve, "EC curve: P-256, P-384, P-521, P-256K");
  c->add_option("--ops", create->ops, "key_ops: encrypt decrypt sign verify wrapKey unwrapKey ...");
  add_for_option(*c, create->for_profile);
  c->add_flag("--kek", create->kek,
              "A BYOK key exchange key: RSA-HSM, key_ops exactly [\"import\"], 4096 bits unless "
              "--size");
  c->add_option("--policy", create->policy,
                "Release policy JSON file: makes the key exportable (Secure Key Release). "
                "Linted first as keyport policy lint does: errors refuse the command, warnings "
                "are printed");
  c->add_flag("--exportable", create->exportable, "Exportable (implied by --policy)");
  c->add_flag("--immutable", create->immutable, "The release policy can never change");
  add_json_flag(*c, g);
  c->callback(bind_command(g, [&g, create] { return run_create(g, *create); }));

  auto download = std::make_shared<DownloadOptions>();
  auto* d = vault->add_subcommand(
      "download", "Write a key's public key as SubjectPublicKeyInfo (as az keyvault key download)");
  add_target_options(*d, download->target);
  d->add_option("--name,-n", download->name, "Key name")->required();
  d->add_option("--version", download->version, "Key version (default: the latest)");
  d->add_option("-o,--file", download->output, "Output file")->required();
  d->add_option("--encoding,-e", download->encoding, "PEM (default) or DER");
  d->add_flag("--force", download->force, "Replace an existing output file");
  add_json_flag(*d, g);
  d->callback(bind_command(g, [&g, download] { return run_download(g, *download); }));

  auto import = std::make_shared<ImportOptions>();
  auto* im = vault->add_subcommand(
      "import", "Import a key: a .byok transfer file (as az keyvault key import) or a plain JWK");
  add_target_options(*im, import->target);
  im->add_option("--name,-n", import->name, "Key name")->required();
  im->add_option("--byok", import->byok, ".byok file wrapped to a KEK of this vault");
  im->add_option("--jwk", import->jwk, "A private JWK file (plain import)");
  im->add_option("--kty", import->kty,
                 "BYOK key type: RSA (default), EC or oct, any case (as keyport byok request)");
  im->add_option("--curve", import->curve, "BYOK EC curve: P-256, P-384, P-521, P-256K");
  im->add_flag("--hsm", import->hsm, "Plain import: make an -HSM key");
  add_json_flag(*im, g);
  im->callback(bind_command(g, [&g, import] { return run_import(g, *import); }));

  auto get = std::make_shared<KeyRef>();
  auto* ge = vault->add_subcommand("get", "Show a key (public part, attributes)");
  add_key_ref(*ge, *get, true);
  add_json_flag(*ge, g);
  ge->callback(bind_command(g, [&g, get] { return run_get(g, *get); }));

  auto list = std::make_shared<Target>();
  auto list_deleted = std::make_shared<bool>(false);
  auto* li = vault->add_subcommand("list", "List the keys (every page)");
  add_target_options(*li, *list);
  li->add_flag("--deleted", *list_deleted, "List soft-deleted keys instead");
  add_json_flag(*li, g);
  li->callback(
      bind_command(g, [&g, list, list_deleted] { return run_list(g, *list, *list_deleted); }));

  auto versions = std::make_shared<KeyRef>();
  auto* ve = vault->add_subcommand("versions", "List the versions of a key, oldest first");
  add_key_ref(*ve, *versions, false);
  add_json_flag(*ve, g);
  ve->callback(bind_command(g, [&g, versions] { return run_versions(g, *versions); }));

  for (const char* what : {"delete", "recover", "purge"}) {
    auto ref = std::make_shared<KeyRef>();
    const std::string w = what;
    auto* cmd = vault->add_subcommand(w, w == "delete"    ? "Soft-delete a key (every version)"
                                         : w == "recover" ? "Recover a soft-deleted key"
                                                          : "Purge a soft-deleted key for good");
    add_key_ref(*cmd, *ref, false);
    add_json_flag(*cmd, g);
    cmd->callback(bind_command(g, [&g, ref, w] { return run_lifecycle(g, *ref, w); }));
  }

  auto backup = std::make_shared<BackupOptions>();
  auto* bk = vault->add_subcommand(
      "backup",
      "Back up a key (every version, attributes, tags, policies) to an opaque blob file that only "
      "a vault of the same backup domain can restore (BackupKey)");
  add_target_options(*bk, backup->key.target);
  bk->add_option("NAME,--name,-n", backup->key.name, "Key name")->required();
  bk->add_option("--out", backup->out, "The blob file to write (create-if-absent)")->required();
  bk->add_flag("--force", backup->force, "Replace an existing output file");
  add_json_flag(*bk, g);
  bk->callback(bind_command(g, [&g, backup] { return run_backup(g, *backup); }));

  auto get_att = std::make_shared<AttestationOptions>();
  auto* ga = vault->add_subcommand(
      "get-attestation",
      "Get a key with its SIMULATED attestation (GetKeyAttestation, Managed HSM): statements "
      "about the key's token object signed by the vault's attestation key");
  add_key_ref(*ga, get_att->key, true);
  ga->add_option("-o,--output", get_att->output, "Write the key bundle (JSON) here");
  ga->add_flag("--force", get_att->force, "Replace an existing output file");
  add_json_flag(*ga, g);
  ga->footer(
      "Example: keyport vault get-attestation --data ./mhsm --name app-key -o app-key.att.json\n"
      "         keyport vault verify-attestation --in app-key.att.json --trust ./mhsm/tls/ca.pem");
  ga->callback(bind_command(g, [&g, get_att] { return run_get_attestation(g, *get_att); }));

  auto verify_att = std::make_shared<AttestationOptions>();
  auto* va = vault->add_subcommand(
      "verify-attestation",
      "Verify a SIMULATED key attestation: the certificate chains to the vault CA, the "
      "statements are signed by it and name the key, the public key is the one attested");
  add_target_options(*va, verify_att->key.target);
  va->add_option("--name,-n", verify_att->key.name, "Ask the vault for this key's attestation");
  va->add_option("--version", verify_att->key.version, "Key version (default: the latest)");
  va->add_option("--in", verify_att->input, "A key bundle from get-attestation -o");
  va->add_option("--trust", verify_att->trust,
                 "The vault CA (default: DIR/tls/ca.pem of --data, or --ca-file of --url)");
  add_json_flag(*va, g);
  va->footer(
      "Exit status 0 when the attestation verifies, 9 when it does not.\n"
      "A verified attestation says what the vault's PKCS#11 token reported (CKA_LOCAL,\n"
      "CKA_NEVER_EXTRACTABLE, ...) and that the vault signed it: it is a simulation, not\n"
      "evidence from HSM hardware.");
  va->callback(
      bind_command(g, [&g, verify_att] { return run_verify_attestation(g, *verify_att); }));

  auto full_backup = std::make_shared<FullBackupOptions>();
  auto* fb = vault->add_subcommand(
      "full-backup",
      "Managed HSM full backup (POST /backup): every key's backup blob and a manifest in a new "
      "folder of a storage container (a local folder standing in for Azure Blob Storage)");
  add_target_options(*fb, full_backup->target);
  fb->add_option("--backup-storage", full_backup->target.backup_storage,
                 "With --data: the folder standing in for Blob Storage (as vault serve "
                 "--backup-storage)");
  fb->add_option("--storage-url", full_backup->storage_url,
                 "The container: https://ACCOUNT.blob.core.windows.net/CONTAINER")
      ->required();
  fb->add_option("--sas-token-file", full_backup->sas_token_file,
                 "A file holding the container's SAS token (never on the command line)")
      ->required();
  add_json_flag(*fb, g);
  fb->footer(
      "Example: keyport vault full-backup --data ./mhsm --backup-storage ./storage \\\n"
      "           --storage-url https://acct.blob.core.windows.net/backups --sas-token-file sas\n"
      "The container folder ./storage/acct.blob.core.windows.net/backups must exist.");
  fb->callback(bind_command(g, [&g, full_backup] { return run_full_backup(g, *full_backup); }));

  auto full_restore = std::make_shared<FullBackupOptions>();
  auto* fr = vault->add_subcommand(
      "full-restore",
      "Managed HSM full restore (PUT /restore) or, with --key, selective key restore "
      "(PUT /keys/{name}/restore) from a full-backup folder: nothing is restored when a name "
      "exists or any blob does not verify");
  add_target_options(*fr, full_restore->target);
  fr->add_option("--backup-storage", full_restore->target.backup_storage,
                 "With --data: the folder standing in for Blob Storage");
  fr->add_option("--folder-url", full_restore->storage_url,
                 "The backup: https://ACCOUNT.blob.core.windows.net/CONTAINER/FOLDER")
      ->required();
  fr->add_option("--sas-token-file", full_restore->sas_token_file,
                 "A file holding the container's SAS token")
      ->required();
  fr->add_option("--key", full_restore->key, "Restore only this key (selective key restore)");
  add_json_flag(*fr, g);
  fr->callback(bind_command(g, [&g, full_restore] { return run_full_restore(g, *full_restore); }));

  auto restore = std::make_shared<RestoreOptions>();
  auto* rs = vault->add_subcommand(
      "restore",
      "Restore a key from a `keyport vault backup` blob (RestoreKey): refused when the name exists "
      "(active or soft-deleted), when the blob comes from another backup domain or was altered");
  add_target_options(*rs, restore->target);
  rs->add_option("FILE", restore->file, "The blob file")->required();
  add_json_flag(*rs, g);
  rs->callback(bind_command(g, [&g, restore] { return run_restore(g, *restore); }));

  auto sign = std::make_shared<SignOptions>();
  auto* si = vault->add_subcommand("sign", "Sign a digest with a key inside the vault");
  add_key_ref(*si, sign->key, true);
  si->add_option("--alg", sign->alg, "RS256/384/512, PS256/384/512, ES256/384/512, ES256K")
      ->required();
  si->add_option("--digest", sign->digest, "The digest to sign, hex");
  si->add_option("--in", sign->data, "A file whose digest (the alg's hash) is signed");
  si->add_option("-o,--output", sign->output, "Write the signature's bytes here");
  si->add_flag("--der", sign->der, "EC: write the signature DER-encoded (as OpenSSL expects)");
  si->add_flag("--force", sign->force, "Replace an existing output file");
  add_json_flag(*si, g);
  si->callback(bind_command(g, [&g, sign] { return run_sign(g, *sign); }));

  auto verify = std::make_shared<SignOptions>();
  auto* vf = vault->add_subcommand("verify", "Ask the vault whether a signature verifies");
  add_key_ref(*vf, verify->key, true);
  vf->add_option("--alg", verify->alg, "The signature algorithm")->required();
  vf->add_option("--digest", verify->digest, "The signed digest, hex");
  vf->add_option("--in", verify->data, "A file whose digest was signed");
  vf->add_option("--signature", verify->signature_file, "The signature's bytes");
  vf->add_option("--value", verify->value, "The signature, base64url");
  vf->add_flag("--der", verify->der, "EC: the --signature file is DER-encoded");
  add_json_flag(*vf, g);
  vf->callback(bind_command(g, [&g, verify] { return run_verify(g, *verify); }));

  auto release = std::make_shared<ReleaseCmdOptions>();
  auto* rl = vault->add_subcommand(
      "release",
      "Secure Key Release: ask the vault to release an exportable key to an attested environment");
  add_key_ref(*rl, release->key, true);
  rl->add_option("--token", release->token, "Attestation token (JWT) file of the target")
      ->required();
  rl->add_option("--enc", release->enc,
                 "CKM_RSA_AES_KEY_WRAP (default), RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384");
  rl->add_option("--nonce", release->nonce, "Nonce echoed in the signed response");
  rl->add_option("-o,--output", release->output,
                 "Write the response {\"value\": JWS} here (- stdout)");
  rl->add_flag("--force", release->force, "Replace an existing output file");
  add_json_flag(*rl, g);
  rl->footer(
      "Exit 9 when the vault refuses (not exportable, disabled, token or policy): the reason is\n"
      "in the vault's audit log only. Example:\n"
      "  keyport attest token --authority ./maa --runtime-key rt.pub -o t.jwt\n"
      "  keyport vault release --data ./vault --name skr-key --token t.jwt -o release.json\n"
      "  keyport enclave unwrap --release release.json --vault-ca ./vault/tls/ca.pem "
      "--runtime-key rt.key -o key.pem");
  rl->callback(bind_command(g, [&g, release] { return run_release(g, *release); }));

  auto trust = std::make_shared<TrustOptions>();
  auto* tr = vault->add_subcommand(
      "trust", "Trust an attestation authority for key release (DIR/trusted-authorities.json)");
  tr->add_option("--data", trust->data, "Vault folder (default $KEYPORT_VAULT_DATA)");
  tr->add_option("--from", trust->from,
                 "A trusted-authorities file, or a keyport attest folder (its "
                 "trusted-authorities.json)")
      ->required();
  tr->add_flag("--replace", trust->replace, "Replace the list instead of merging into it");
  add_json_flag(*tr, g);
  tr->footer("Example: keyport vault trust --data ./vault --from ./maa");
  tr->callback(bind_command(g, [&g, trust] { return run_trust(g, *trust); }));

  auto rotate = std::make_shared<KeyRef>();
  auto* ro = vault->add_subcommand(
      "rotate", "Rotate a key now: a new version with the same type, size and operations");
  add_key_ref(*ro, *rotate, false);
  add_json_flag(*ro, g);
  ro->footer(
      "Older versions stay: they still decrypt, unwrap and verify.\n"
      "Example: keyport vault rotate --data ./vault --name app-key");
  ro->callback(bind_command(g, [&g, rotate] { return run_rotate(g, *rotate); }));

  auto random = std::make_shared<RandomOptions>();
  auto* rn = vault->add_subcommand(
      "random", "Random bytes from a Managed HSM's token (GetRandomBytes, C_GenerateRandom)");
  add_target_options(*rn, random->target);
  rn->add_option("--count", random->count, "How many bytes, 1 to 128 (default 32)");
  rn->add_option("-o,--output", random->output, "Write the bytes here (mode 0600); default: hex");
  rn->add_flag("--force", random->force, "Replace an existing output file");
  add_json_flag(*rn, g);
  rn->footer("Example: keyport vault random --data ./hsm --count 32 -o seed.bin");
  rn->callback(bind_command(g, [&g, random] { return run_random(g, *random); }));

  auto* rp = vault->add_subcommand("rotation-policy", "Show or set a key's rotation policy");
  rp->require_subcommand(1);
  auto policy_get = std::make_shared<KeyRef>();
  auto* rpg = rp->add_subcommand("get", "Show the policy (Key Vault's default when none is set)");
  add_key_ref(*rpg, *policy_get, false);
  add_json_flag(*rpg, g);
  rpg->callback(bind_command(g, [&g, policy_get] { return run_policy_get(g, *policy_get); }));
  auto policy_set = std::make_shared<RotationPolicyOptions>();
  auto* rps = rp->add_subcommand("set", "Replace the policy (Key Vault's rules are enforced)");
  add_key_ref(*rps, policy_set->key, false);
  rps->add_option("--file", policy_set->file, "A KeyRotationPolicy JSON file (REST 7.5 shape)");
  rps->add_option("--rotate-after", policy_set->rotate_after,
                  "Rotate this long after the latest version was created (ISO 8601, >= P7D)");
  rps->add_option("--rotate-before-expiry", policy_set->rotate_before_expiry,
                  "Rotate this long before the latest version expires (needs --expires-in)");
  rps->add_option("--notify-before-expiry", policy_set->notify_before_expiry,
                  "Notify (audit KeyNearExpiry) this long before expiry (needs --expires-in)");
  rps->add_option("--expires-in", policy_set->expires_in,
                  "expiryTime: new versions expire this long after creation (>= P28D)");
  add_json_flag(*rps, g);
  rps->footer(
      "Examples:\n"
      "  keyport vault rotation-policy set --data ./vault --name app-key --rotate-after P90D\n"
      "  keyport vault rotation-policy set --url https://127.0.0.1:8443 --token-file t --name k "
      "\\\n"
      "      --rotate-before-expiry P30D --expires-in P1Y\n"
      "  keyport vault rotation-policy set --data ./vault --name k --file policy.json\n"
      "policy.json: {\"lifetimeActions\":[{\"trigger\":{\"timeAfterCreate\":\"P90D\"},"
      "\"action\":{\"type\":\"Rotate\"}}],\"attributes\":{\"expiryTime\":\"P2Y\"}}");
  rps->callback(bind_command(g, [&g, policy_set] { return run_policy_set(g, *policy_set); }));

  auto clock = std::make_shared<ClockOptions>();
  auto* cl = vault->add_subcommand(
      "clock", "Show or move the vault's clock (tests: scheduled rotation, expiry)");
  cl->add_option("--data", clock->data, "Vault folder (default $KEYPORT_VAULT_DATA)");
  cl->add_option("--advance", clock->advance, "Move the clock forward by an ISO 8601 duration");
  cl->add_flag("--reset", clock->reset, "Back to the system clock");
  add_json_flag(*cl, g);
  cl->footer(
      "The offset is kept in DIR/settings.json, so a running `keyport vault serve` on the folder\n"
      "follows it (at its next request, or within a second).\n"
      "Example: keyport vault clock --data ./vault --advance P31D");
  cl->callback(bind_command(g, [&g, clock] { return run_clock(g, *clock); }));

  auto cutover = std::make_shared<CutoverOptions>();
  auto* co = vault->add_subcommand(
      "platform-cutover", "Declare that versions created before a date are on HSM platform 1");
  co->add_option("--data", cutover->data, "Vault folder (default $KEYPORT_VAULT_DATA)");
  co->add_option("--before", cutover->before,
                 "2026-01-31, 2026-01-31T12:00:00Z, unix seconds, or now");
  co->add_flag("--clear", cutover->clear, "No cut-over: every -HSM version is on platform 2");
  add_json_flag(*co, g);
  co->footer("Example: keyport vault platform-cutover --data ./vault --before 2026-01-01");
  co->callback(bind_command(g, [&g, cutover] { return run_cutover(g, *cutover); }));

  auto* report = vault->add_subcommand("report", "Reports about the vault's keys");
  report->require_subcommand(1);
  auto platform_target = std::make_shared<Target>();
  auto* rpl = report->add_subcommand(
      "platform", "Keys whose current version is on HSM platform 1, and what to do for each");
  add_target_options(*rpl, *platform_target);
  add_json_flag(*rpl, g);
  rpl->footer(
      "Actions: rotate (by hand), rotate-by-policy, reimport (a BYOK key: export it again from\n"
      "its on-prem HSM and import it as a new version), rotate-and-rewrap (a key that wraps data\n"
      "keys: rotate, then re-wrap them with keyport migrate).\n"
      "Example: keyport vault report platform --data ./vault --json");
  rpl->callback(
      bind_command(g, [&g, platform_target] { return run_platform_report(g, *platform_target); }));

  for (const char* what : {"wrap-key", "unwrap-key", "encrypt", "decrypt"}) {
    auto w = std::make_shared<WrapOptions>();
    const std::string name = what;
    const vault::KeyOperation op = name == "wrap-key"     ? vault::KeyOperation::kWrapKey
                                   : name == "unwrap-key" ? vault::KeyOperation::kUnwrapKey
                                   : name == "encrypt"    ? vault::KeyOperation::kEncrypt
                                                          : vault::KeyOperation::kDecrypt;
    auto* cmd = vault->add_subcommand(
        name, name == "wrap-key"     ? "Wrap key bytes with a key inside the vault (wrapKey)"
              : name == "unwrap-key" ? "Unwrap key bytes with a key inside the vault (unwrapKey)"
              : name == "encrypt"    ? "Encrypt bytes with a vault key (RSA: the public part)"
                                     : "Decrypt bytes with a key inside the vault");
    add_key_ref(*cmd, w->key, true);
    const bool wrapping = name == "wrap-key" || name == "unwrap-key";
    cmd->add_option("--alg", w->alg,
                    wrapping ? "RSA-OAEP, RSA-OAEP-256, RSA1_5; oct-HSM: A128KW, A192KW, A256KW, "
                               "CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_PAD"
                             : "RSA-OAEP, RSA-OAEP-256, RSA1_5; oct-HSM: A128GCM, A192GCM, "
                               "A256GCM, A128CBC ... A256CBC, A128CBCPAD ... A256CBCPAD")
        ->required();
    if (!wrapping) {
      cmd->add_option("--iv", w->iv_hex,
                      name == "encrypt"
                          ? "AES-CBC: the IV, hex (16 bytes; default: one from the HSM). AES-GCM "
                            "takes none: the HSM makes it"
                          : "AES: the IV encrypt printed, hex");
      cmd->add_option("--aad", w->aad_hex, "AES-GCM: additional authenticated data, hex");
      if (name == "decrypt") {
        cmd->add_option("--tag", w->tag_hex, "AES-GCM: the tag encrypt printed, hex");
      }
    }
    cmd->add_option("--value", w->value_hex, "The input bytes, hex");
    cmd->add_option("--in", w->input, "A file holding the input bytes");
    cmd->add_option("-o,--output", w->output, "Write the result's bytes here (mode 0600)");
    cmd->add_flag("--force", w->force, "Replace an existing output file");
    add_json_flag(*cmd, g);
    cmd->footer(
        wrapping
            ? "Example: keyport vault wrap-key --data ./vault --name dek-kek --alg A256KW \\\n"
              "           --in dek.bin -o dek.wrapped"
            : "AES-GCM on a Managed HSM oct-HSM key: encrypt prints the ciphertext, then the\n"
              "IV the HSM chose and the tag (hex); decrypt takes them back:\n"
              "  keyport vault encrypt --data ./mhsm --name aes --alg A256GCM --in msg -o msg.enc\n"
              "  keyport vault decrypt --data ./mhsm --name aes --alg A256GCM --in msg.enc \\\n"
              "           --iv IV --tag TAG -o msg.out");
    cmd->callback(bind_command(g, [&g, w, op] { return run_key_op(g, *w, op); }));
  }

  setup_rbac_commands(*vault, g);
}

}  // namespace keyport::cli

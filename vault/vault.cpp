// SPDX-License-Identifier: Apache-2.0
// Vault: open and init, the run/audit machinery every operation goes through, and the token
// housekeeping (module recycling, journal replay, the orphan sweep). The operations themselves
// are in vault_keys.cpp, vault_import.cpp, vault_crypto.cpp, vault_rotation.cpp and release.cpp
// (see vault/vault_impl.h).
#include "vault/vault.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <malloc.h>
#include <chrono>
#include <climits>
#include <mutex>
#include <shared_mutex>

#include "byok/kid.h"
#include "byok/public_key.h"
#include "core/file_io.h"
#include "core/log.h"
#include "vault/vault_impl.h"

#ifndef KEYPORT_VAULT_SOFTHSM_MODULE
#define KEYPORT_VAULT_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif

namespace keyport::vault {
namespace fs = std::filesystem;

namespace {

constexpr const char* kDbFile = "vault.db";
constexpr const char* kLockFile = "vault.lock";

}  // namespace

namespace detail {

std::string label_of(std::string_view name, std::string_view version) {
  return "kv:" + std::string(name) + ":" + std::string(version);
}

// Validates a base URL ("https://host[:port]", no path) and returns it normalised, with its host.
Result<std::pair<std::string, std::string>> normalise_base_url(std::string_view url) {
  std::string u(url);
  while (!u.empty() && u.back() == '/') {
    u.pop_back();
  }
  auto kid = byok::parse_kid(u + "/keys/probe", /*require_version=*/false);
  if (!kid || kid->url != ascii_lower(u) + "/keys/probe") {
    return make_error(ErrorCode::kInvalidArgument,
                      "vault base URL \"" + std::string(url) +
                          "\" must be https://<host>[:port] without a path" +
                          (kid ? std::string() : ": " + kid.error().message()));
  }
  return std::make_pair(ascii_lower(u), kid->host);
}

bool valid_vault_name(std::string_view name) {
  return !name.empty() && name.size() <= 63 && valid_key_name(name);
}

KeyFamily family_of_kty(std::string_view base) {
  if (base == "RSA") {
    return KeyFamily::kRsa;
  }
  if (base == "EC") {
    return KeyFamily::kEc;
  }
  return KeyFamily::kAes;
}

// Splits "RSA-HSM" into ("RSA", true). Returns nullopt for unknown key types.
std::optional<std::pair<std::string, bool>> split_kty(std::string_view kty) {
  for (std::string_view base : {"RSA", "EC", "oct"}) {
    if (kty == base) {
      return std::make_pair(std::string(base), false);
    }
    if (kty == std::string(base) + "-HSM") {
      return std::make_pair(std::string(base), true);
    }
  }
  return std::nullopt;
}

std::string family_title(KeyFamily f) {
  switch (f) {
    case KeyFamily::kRsa:
      return "RSA";
    case KeyFamily::kEc:
      return "EC";
    case KeyFamily::kAes:
      break;
  }
  return "oct";
}

Result<Bytes> spki_of(const KeyVersionRecord& r) {
  Json jwk = r.public_jwk;
  jwk["kty"] = r.spec.family == KeyFamily::kRsa ? "RSA" : "EC";
  auto pub = byok::PublicKey::from_jwk(jwk);
  if (!pub) {
    return internal_error("the stored public key of " + r.name +
                          " is invalid: " + pub.error().message());
  }
  return pub->spki_der();
}

// Maps a token lookup failure for a key the database knows to KeyNotFound (purged meanwhile).
Error lookup_error(const Error& e, const KeyVersionRecord& r) {
  if (e.code() == ErrorCode::kNotFound) {
    return key_not_found(r.name, r.version).value();
  }
  return e;
}
}  // namespace detail

using detail::lookup_error;
using detail::normalise_base_url;
using detail::valid_vault_name;

Clock system_clock() {
  return [] {
    return static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
  };
}
// ---------------------------------------------------------------------------------------------

Vault::Impl::~Impl() {
  pool.reset();
  anchor.reset();
  store.reset();
  token.module.reset();
  if (lock_fd >= 0) {
    ::flock(lock_fd, LOCK_UN);
    ::close(lock_fd);
  }
}

bool Vault::Impl::refresh_settings() {
  if (!settings) {
    return false;
  }
  auto [current, changed] = settings->poll();
  if (changed) {
    clock_offset.store(current.clock_offset);
    platform1_before.store(current.platform1_before.value_or(LLONG_MIN));
    store->set_platform1_before(current.platform1_before);
  }
  return changed;
}

void Vault::Impl::tick() {
  const bool changed = refresh_settings();
  const std::int64_t t = now();
  // Blocking: a request that comes while another thread (the server's ticker) runs due actions
  // waits for them, so it never sees a key half-way through a scheduled rotation.
  std::unique_lock<std::mutex> lock(due_mutex);
  const std::int64_t last = last_due_check.load();
  if (!changed && last != LLONG_MIN && t >= last && t - last < 1) {
    return;
  }
  last_due_check.store(t);
  auto r = due_actions();
  if (!r) {
    log::warn("vault: scheduled key rotation failed: " + r.error().describe());
  }
  auto purged = purge_due();
  if (!purged) {
    log::warn("vault: the scheduled purge of deleted keys failed: " + purged.error().describe());
  }
}

void Vault::Impl::audit(const std::string& caller, const Op& op, const Error* error) {
  if (op.suppress_audit) {
    return;
  }
  AuditRecord a;
  a.time = now();
  a.operation = op.operation;
  a.key_name = op.name;
  a.version = op.version;
  a.caller = caller;
  a.outcome = error == nullptr ? "success" : "failure";
  a.status = error == nullptr ? op.success_status : http_status_for(*error);
  a.code = error == nullptr ? "" : kv_code(*error);
  a.reason = error == nullptr            ? op.note
             : op.failure_reason.empty() ? error->message()
                                         : op.failure_reason;
  auto st = store->append_audit(a);
  if (!st) {
    log::error("vault: cannot write the audit log: " + st.error().describe());
  }
}

void Vault::Impl::maybe_recycle_module() {
  if (recycle_every == 0 || run_depth != 0 ||
      pool->acquisitions() - recycled_at.load() < recycle_every) {
    return;
  }
  // Exclusive: waits for every token operation in flight; no lease is out while it is held.
  std::unique_lock<std::shared_mutex> objects(objects_mutex);
  const std::uint64_t leased = pool->acquisitions();
  if (leased - recycled_at.load() < recycle_every) {
    return;  // another thread recycled meanwhile
  }
  recycled_at = leased;
  const auto t0 = std::chrono::steady_clock::now();
  Result<bool> st = recycle_module();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  if (st && !*st) {
    return;  // someone else in the process uses the module
  }
  if (!st) {
    log::error(
        "vault: re-initialising the PKCS#11 module failed; token operations will fail "
        "until the vault is reopened: " +
        st.error().describe());
    audit_system("ModuleRecycled", "", "failed", &st.error());
    return;
  }
  ++recycles;
  // What the module freed goes back to the system rather than waiting in malloc's free lists
  // of whichever threads freed it.
  ::malloc_trim(0);
  audit_system("ModuleRecycled", "",
               "C_Finalize + C_Initialize after " + std::to_string(recycle_every) +
                   " token operations (frees SoftHSM's session objects), " + std::to_string(ms) +
                   " ms");
}

Result<bool> Vault::Impl::recycle_module() {
  if (auto closed = pool->close_all(); !closed) {
    // Nothing was finalised: a lease outlived the lock (a bug); try again next time.
    log::warn("vault: module recycling skipped: " + closed.error().describe());
    return false;
  }
  anchor.reset();
  // Left: token.module and the pool's reference. Sessions hold one each.
  const bool alone = token.module.use_count() == 2;
  if (alone) {
    handles.clear();
    KEYPORT_TRY(token.module->reinitialize());
    // SoftHSM numbers a token's slot from its serial at C_Initialize; a token initialised in
    // this process sat in the empty slot's number until now.
    p11::Uri uri;
    uri.token = token.info.label;
    uri.serial = token.info.serial;
    KEYPORT_ASSIGN_OR_RETURN(p11::SlotInfo slot, p11::find_token(*token.module, uri));
    token.slot = slot.id;
    pool->retarget(slot.id);
  }
  KEYPORT_ASSIGN_OR_RETURN(p11::Session s, p11::Session::open(token.module, token.slot, true));
  KEYPORT_TRY(s.login(token.pin));
  anchor = std::make_unique<p11::Session>(std::move(s));
  return alone;
}

Result<KeyVersionRecord> Vault::Impl::resolve(Op& op, std::string_view name,
                                              std::string_view version) {
  op.name = std::string(name);
  op.version = std::string(version);
  if (!valid_key_name(name)) {
    return key_not_found(name, version);
  }
  std::string v = ascii_lower(version);
  if (!v.empty() && !valid_version(v)) {
    return key_not_found(name, version);
  }
  KEYPORT_ASSIGN_OR_RETURN(auto key, store->find_key(name));
  if (!key || key->deleted()) {
    return key_not_found(name, version);
  }
  KEYPORT_ASSIGN_OR_RETURN(auto rec, store->find_version(name, v));
  if (!rec) {
    return key_not_found(name, version);
  }
  op.name = rec->name;
  op.version = rec->version;
  return std::move(*rec);
}

Status Vault::Impl::check_usable(const KeyVersionRecord& r, std::string_view kv_op,
                                 bool time_bound) {
  if (!r.enabled) {
    return key_disabled(kv_op);
  }
  if (!r.has_op(kv_op)) {
    return operation_forbidden(kv_op);
  }
  if (time_bound) {
    const std::int64_t t = now();
    if (r.nbf && t < *r.nbf) {
      return key_not_valid_now(kv_op, false);
    }
    if (r.exp && t >= *r.exp) {
      return key_not_valid_now(kv_op, true);
    }
  }
  return {};
}

void Vault::Impl::audit_system(const std::string& operation, const std::string& label,
                               std::string note, const Error* error) {
  Op op;
  op.operation = operation;
  // "kv:<name>:<version>"
  if (label.rfind("kv:", 0) == 0) {
    std::string rest = label.substr(3);
    auto colon = rest.rfind(':');
    op.name = rest.substr(0, colon);
    op.version = colon == std::string::npos ? "" : rest.substr(colon + 1);
  }
  op.note = std::move(note);
  audit(kSystemCaller, op, error);
}

Status Vault::Impl::replay_journal() {
  KEYPORT_ASSIGN_OR_RETURN(auto pending, store->pending());
  for (const auto& p : pending) {
    // Never destroy an object a committed version owns (defensive: commits clear the entry).
    KEYPORT_ASSIGN_OR_RETURN(bool committed, store->cka_id_known(p.cka_id));
    if (committed) {
      KEYPORT_TRY(store->remove_pending(p.cka_id));
      continue;
    }
    handles.forget(p.cka_id);
    auto n = destroy_by_id(*anchor, p.cka_id);
    if (!n) {
      audit_system("JournalReplay", p.label, "", &n.error());
      return tl::unexpected(n.error().with_context("replaying the vault journal"));
    }
    KEYPORT_TRY(store->remove_pending(p.cka_id));
    audit_system(
        "JournalReplay", p.label,
        "destroyed " + std::to_string(*n) + " token object(s) left by an interrupted " + p.reason);
  }
  return {};
}

Status Vault::Impl::sweep_orphans() {
  p11::Template all;
  all.token(true);
  KEYPORT_ASSIGN_OR_RETURN(auto objects, anchor->find_objects(all));
  for (CK_OBJECT_HANDLE h : objects) {
    KEYPORT_ASSIGN_OR_RETURN(std::string label, anchor->get_string(h, CKA_LABEL));
    if (label.rfind("kv:", 0) != 0) {
      continue;
    }
    KEYPORT_ASSIGN_OR_RETURN(auto id, anchor->try_get_bytes(h, CKA_ID));
    if (id && !id->empty()) {
      KEYPORT_ASSIGN_OR_RETURN(bool known, store->cka_id_known(*id));
      if (known) {
        continue;
      }
    }
    KEYPORT_TRY(anchor->destroy_object(h));
    audit_system("OrphanDestroyed", label,
                 "destroyed a token object whose CKA_ID no key version has");
  }
  return {};
}

thread_local int Vault::Impl::run_depth = 0;

// ---------------------------------------------------------------------------------------------

Vault::Vault(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Vault::~Vault() = default;

Status Vault::init(const fs::path& dir, VaultConfig config, const Clock& clock) {
  if (!valid_vault_name(config.name)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "vault name \"" + config.name + "\" must be 1..63 letters, digits and '-'");
  }
  if (config.base_url.empty()) {
    config.base_url =
        "https://" + config.name +
        (config.flavor == Flavor::kManagedHsm ? ".managedhsm.azure.net" : ".vault.azure.net");
  }
  KEYPORT_ASSIGN_OR_RETURN(auto url, normalise_base_url(config.base_url));
  config.base_url = url.first;
  config.created = clock ? clock() : system_clock()();
  if (config.soft_delete_retention_days < kMinRetentionDays ||
      config.soft_delete_retention_days > kMaxRetentionDays) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the soft-delete retention period must be 7 to 90 days (got " +
                          std::to_string(config.soft_delete_retention_days) + ")");
  }
  if (config.activation_required &&
      (config.flavor != Flavor::kManagedHsm || config.backup_domain_join)) {
    return make_error(ErrorCode::kInvalidArgument,
                      config.flavor != Flavor::kManagedHsm
                          ? "only a Managed HSM (--flavor managed-hsm) waits for activation"
                          : "a vault that joins a backup domain cannot also wait for activation: "
                            "its security domain brings its backup domain");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
  }
  return config.save(dir);
}

Result<std::unique_ptr<Vault>> Vault::open(const fs::path& dir, VaultOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  KEYPORT_ASSIGN_OR_RETURN(impl->config, VaultConfig::load(dir));
  KEYPORT_ASSIGN_OR_RETURN(auto url, normalise_base_url(impl->config.base_url));
  impl->config.base_url = url.first;
  impl->host = url.second;
  impl->clock = options.clock ? options.clock : system_clock();
  impl->settings = std::make_unique<SettingsWatcher>(dir);
  impl->crash_point = options.crash_point;
  impl->backup_storage = options.backup_storage;

  impl->lock_fd = ::open((dir / kLockFile).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (impl->lock_fd < 0) {
    return make_error(ErrorCode::kIo, "cannot open " + (dir / kLockFile).string());
  }
  if (::flock(impl->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return make_error(ErrorCode::kAlreadyExists,
                      "the vault folder " + dir.string() + " is in use by another Vault");
  }

  const bool attached = options.module != nullptr;
  if (attached && options.module_recycle_ops.value_or(0) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "module recycling needs a module the vault owns (own-folder mode); an "
                      "attached token's module is shared with the caller");
  }
  if (attached) {
    if (options.token_label.empty()) {
      return make_error(ErrorCode::kInvalidArgument, "attached-token mode needs a token label");
    }
    KEYPORT_ASSIGN_OR_RETURN(
        impl->token,
        attach_token(std::move(options.module), options.token_label, std::move(options.pin)));
  } else {
    const std::string module_path =
        options.softhsm_module.empty() ? KEYPORT_VAULT_SOFTHSM_MODULE : options.softhsm_module;
    KEYPORT_ASSIGN_OR_RETURN(impl->token, open_own_token(dir / "hsm", module_path));
  }
  KEYPORT_ASSIGN_OR_RETURN(p11::Session anchor,
                           p11::Session::open(impl->token.module, impl->token.slot, true));
  KEYPORT_TRY(anchor.login(impl->token.pin));
  impl->anchor = std::make_unique<p11::Session>(std::move(anchor));
  KEYPORT_ASSIGN_OR_RETURN(impl->caps,
                           p11::probe_wrap_capabilities(*impl->anchor, impl->token.info, true));
  KEYPORT_ASSIGN_OR_RETURN(impl->store, Store::open(dir / kDbFile));
  {
    Impl* raw = impl.get();
    KEYPORT_ASSIGN_OR_RETURN(
        impl->rbac,
        Rbac::open(*impl->store, [raw](const std::string& operation, const std::string& caller,
                                       const std::string& name, const Error* error) {
          Op op;
          op.operation = operation;
          op.note = name;  // a role definition's or assignment's GUID, or a setting's name
          if (error != nullptr) {
            Error e = with_kv_detail(*error);
            raw->audit(caller, op, &e);
          } else {
            raw->audit(caller, op, nullptr);
          }
        }));
  }
  impl->pool = std::make_unique<p11::SessionPool>(impl->token.module, impl->token.slot,
                                                  impl->token.pin.clone(),
                                                  std::max<std::size_t>(1, options.max_sessions));
  if (!attached && impl->token.module->owns_initialization()) {
    impl->recycle_every = options.module_recycle_ops.value_or(kDefaultModuleRecycleOps);
  }
  impl->refresh_settings();
  impl->activated.store(!impl->config.activation_required);
  KEYPORT_ASSIGN_OR_RETURN(impl->has_backup_domain, impl->ensure_backup_domain());
  KEYPORT_TRY(impl->replay_journal());
  if (options.sweep_unknown_objects.value_or(!attached)) {
    KEYPORT_TRY(impl->sweep_orphans());
  }
  KEYPORT_TRY(impl->purge_due());
  Op op;
  op.operation = "OpenVault";
  op.note = std::string(attached ? "attached token " : "own token ") + impl->token.info.label +
            " (" + impl->caps.module + ")";
  impl->audit(kSystemCaller, op, nullptr);
  return std::unique_ptr<Vault>(new Vault(std::move(impl)));
}

const VaultConfig& Vault::config() const {
  return m_impl->config;
}

Rbac& Vault::rbac() {
  return *m_impl->rbac;
}

const Rbac& Vault::rbac() const {
  return *m_impl->rbac;
}

const std::string& Vault::host() const {
  return m_impl->host;
}

const p11::WrapCapabilities& Vault::capabilities() const {
  return m_impl->caps;
}

Result<std::optional<KeyVersionRecord>> Vault::peek_latest(std::string_view name) const {
  return m_impl->store->find_version(name, "");
}

std::int64_t Vault::now() const {
  // Callers outside the key operations (token checks) see a clock moved a moment ago too.
  m_impl->refresh_settings();
  return m_impl->now();
}

std::uint64_t Vault::module_recycles() const {
  return m_impl->recycles.load();
}

Result<std::vector<AuditRecord>> Vault::audit_log(std::int64_t after_id) const {
  return m_impl->store->audit_log(after_id);
}

const fs::path& Vault::dir() const {
  return m_impl->dir;
}

}  // namespace keyport::vault

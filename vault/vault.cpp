// SPDX-License-Identifier: Apache-2.0
#include "vault/vault.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <malloc.h>
#include <chrono>
#include <climits>
#include <mutex>
#include <shared_mutex>

#include "byok/byok_file.h"
#include "byok/kid.h"
#include "byok/profile.h"
#include "byok/public_key.h"
#include "core/file_io.h"
#include "core/log.h"
#include "core/random.h"
#include "pkcs11/keygen.h"
#include "pkcs11/names.h"
#include "vault/algorithms.h"
#include "vault/hsm.h"
#include "vault/model.h"
#include "vault/rotation.h"
#include "vault/token.h"

#ifndef KEYPORT_VAULT_SOFTHSM_MODULE
#define KEYPORT_VAULT_SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif

namespace keyport::vault {
namespace fs = std::filesystem;

namespace {

constexpr const char* kVaultFile = "vault.json";
constexpr const char* kDbFile = "vault.db";
constexpr const char* kLockFile = "vault.lock";
constexpr std::int64_t kSecondsPerDay = 86400;
constexpr const char* kSystemCaller = "vault";

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

Result<VaultConfig> read_config(const fs::path& dir) {
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(dir / kVaultFile, 1 << 16));
  KEYPORT_ASSIGN_OR_RETURN(Json j, parse_json_strict(text));
  const std::string where = (dir / kVaultFile).string();
  if (!j.is_object()) {
    return make_error(ErrorCode::kFormat, where + " must hold a JSON object");
  }
  KEYPORT_TRY(json_only_members(j, {"schema", "flavor", "name", "base_url", "created"}, where));
  VaultConfig c;
  KEYPORT_ASSIGN_OR_RETURN(std::string flavor, json_string(j, "flavor", where));
  KEYPORT_ASSIGN_OR_RETURN(c.flavor, parse_flavor(flavor));
  KEYPORT_ASSIGN_OR_RETURN(c.name, json_string(j, "name", where));
  KEYPORT_ASSIGN_OR_RETURN(c.base_url, json_string(j, "base_url", where));
  const Json* created = member(j, "created");
  if (created == nullptr || !created->is_number_integer()) {
    return make_error(ErrorCode::kFormat, where + ": \"created\" must be an integer");
  }
  c.created = created->get<std::int64_t>();
  return c;
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

}  // namespace

std::string_view to_string(Flavor flavor) {
  return flavor == Flavor::kManagedHsm ? "managed-hsm" : "key-vault";
}

Result<Flavor> parse_flavor(std::string_view name) {
  if (name == "key-vault") {
    return Flavor::kKeyVault;
  }
  if (name == "managed-hsm") {
    return Flavor::kManagedHsm;
  }
  return make_error(ErrorCode::kInvalidArgument,
                    "unknown vault flavor \"" + std::string(name) + "\" (key-vault, managed-hsm)");
}

Clock system_clock() {
  return [] {
    return static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
  };
}

// ---------------------------------------------------------------------------------------------

// The audit context of one call: filled in as the operation learns what it works on.
struct Op {
  std::string operation;
  std::string name;
  std::string version;
  std::string note;
  int success_status = 200;
  bool suppress_audit = false;  // a simulated crash writes nothing, as a real one would
  std::string failure_reason;   // audited instead of the error's message (run_key_task)
};

struct Vault::Impl {
  fs::path dir;
  VaultConfig config;
  std::string host;
  Clock clock;
  CrashPoint crash_point = CrashPoint::kNone;
  int lock_fd = -1;
  VaultToken token;
  std::unique_ptr<p11::Session> anchor;  // logged in for the vault's lifetime
  std::unique_ptr<p11::SessionPool> pool;
  p11::WrapCapabilities caps;
  std::unique_ptr<Store> store;
  // Token operations hold it shared; purge holds it exclusively while destroying objects.
  std::shared_mutex objects_mutex;
  // Handles of key objects by CKA_ID: spares a C_FindObjects over the whole token per use.
  KeyObjectCache handles;
  // DIR/settings.json: the clock offset and the HSM platform cut-over.
  std::unique_ptr<SettingsWatcher> settings;
  std::atomic<std::int64_t> clock_offset{0};
  std::atomic<std::int64_t> platform1_before{LLONG_MIN};  // LLONG_MIN: no cut-over
  // Due lifetime actions: one runner at a time, at most once per vault second.
  std::mutex due_mutex;
  std::atomic<std::int64_t> last_due_check{LLONG_MIN};
  // Module recycling (VaultOptions::module_recycle_ops): every `recycle_every` pool leases.
  std::uint64_t recycle_every = 0;
  std::atomic<std::uint64_t> recycled_at{0};  // pool->acquisitions() at the last recycling
  std::atomic<std::uint64_t> recycles{0};

  ~Impl() {
    pool.reset();
    anchor.reset();
    store.reset();
    token.module.reset();
    if (lock_fd >= 0) {
      ::flock(lock_fd, LOCK_UN);
      ::close(lock_fd);
    }
  }

  std::int64_t now() const { return clock() + clock_offset.load(); }

  // Applies a changed DIR/settings.json; returns true when it changed.
  bool refresh_settings() {
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

  // Before every public call: due lifetime actions, unless checked within the last vault second.
  void tick() {
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
  }

  byok::TargetKind target() const {
    return config.flavor == Flavor::kManagedHsm ? byok::TargetKind::kManagedHsm
                                                : byok::TargetKind::kKeyVault;
  }

  void audit(const std::string& caller, const Op& op, const Error* error) {
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

  template <typename T>
  Result<T> finish(const CallContext& ctx, const Op& op, Result<T> r) {
    if (!r) {
      Error e = with_kv_detail(std::move(r).error());
      audit(ctx.caller, op, &e);
      return tl::unexpected(std::move(e));
    }
    audit(ctx.caller, op, nullptr);
    return r;
  }

  // Runs one public operation: fn(op) does the work and fills in the audit context.
  template <typename Fn>
  auto run(const CallContext& ctx, const char* operation, Fn&& fn) {
    tick();
    Op op;
    op.operation = operation;
    ++run_depth;
    auto result = fn(op);
    --run_depth;
    auto out = finish(ctx, op, std::move(result));
    maybe_recycle_module();
    return out;
  }

  // Operations running on this thread (an operation may start another): the module is recycled
  // only by a thread that holds no objects_mutex and no lease, that is at depth 0.
  static thread_local int run_depth;

  void maybe_recycle_module() {
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

  // Under objects_mutex held exclusively. False (nothing done) when something else in the
  // process holds the module (a session of its own): finalising would pull it from under it.
  Result<bool> recycle_module() {
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

  // The active key `name` and its version (latest when empty); KeyNotFound otherwise.
  Result<KeyVersionRecord> resolve(Op& op, std::string_view name, std::string_view version) {
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

  Status check_usable(const KeyVersionRecord& r, std::string_view kv_op, bool time_bound) {
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

  // Returns the name as the vault spells it (names compare without case: an existing key keeps
  // its first spelling), or Conflict when that key is soft-deleted.
  Result<std::string> canonical_live_name(std::string_view name) {
    KEYPORT_ASSIGN_OR_RETURN(auto key, store->find_key(name));
    if (!key) {
      return std::string(name);
    }
    if (key->deleted()) {
      return deleted_but_recoverable(key->name);
    }
    return key->name;
  }

  // Journal guard for a token object being created: the pending row exists before the object,
  // and unless the version is committed (or a crash is simulated) the object and the row are
  // removed on every path.
  class Pending {
   public:
    Pending(Impl& v, const p11::Session& s, Bytes id) : m_v(v), m_s(s), m_id(std::move(id)) {}
    Pending(const Pending&) = delete;
    Pending& operator=(const Pending&) = delete;
    ~Pending() {
      if (!m_begun || m_done) {
        return;
      }
      m_v.handles.forget(m_id);
      auto destroyed = destroy_by_id(m_s, m_id);
      if (!destroyed) {
        log::warn(
            "vault: cannot destroy a half-made key object (the journal keeps it for the "
            "next open): " +
            destroyed.error().describe());
        return;
      }
      auto st = m_v.store->remove_pending(m_id);
      if (!st) {
        log::warn("vault: cannot clear a journal entry: " + st.error().describe());
      }
    }
    Status begin(const std::string& label) {
      KEYPORT_TRY(m_v.store->add_pending({m_id, label, "create", m_v.now()}));
      m_begun = true;
      return {};
    }
    void committed() { m_done = true; }
    void abandon() { m_done = true; }

   private:
    Impl& m_v;
    const p11::Session& m_s;
    Bytes m_id;
    bool m_begun = false;
    bool m_done = false;
  };

  // Commits a new version whose token object exists, or simulates a crash first.
  Result<Json> commit(Op& op, Pending& pending, KeyVersionRecord rec) {
    if (crash_point == CrashPoint::kAfterTokenObject) {
      pending.abandon();
      op.suppress_audit = true;
      return internal_error("simulated crash after the token object was created");
    }
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord stored, store->commit_new_version(std::move(rec)));
    pending.committed();
    op.name = stored.name;
    op.version = stored.version;
    return key_bundle(config.base_url, stored);
  }

  struct CommonIn {
    std::vector<std::string> key_ops;
    bool enabled = true;
    std::optional<std::int64_t> nbf, exp;
    bool exportable = false;
    Json tags = Json::object();
    std::optional<ReleasePolicy> policy;
  };

  // key_ops (from `ops_holder`), attributes, tags and release_policy of a create or import.
  Result<CommonIn> parse_common(const Json& params, const Json& ops_holder, KeyFamily family) {
    CommonIn c;
    if (const Json* ops = member(ops_holder, "key_ops")) {
      KEYPORT_ASSIGN_OR_RETURN(c.key_ops, parse_key_ops(*ops, family));
    } else {
      c.key_ops = default_key_ops(family);
    }
    KEYPORT_ASSIGN_OR_RETURN(AttributesIn a, parse_attributes(params));
    c.enabled = a.enabled.value_or(true);
    c.nbf = a.nbf;
    c.exp = a.exp;
    c.exportable = a.exportable.value_or(false);
    KEYPORT_ASSIGN_OR_RETURN(auto tags, parse_tags(params));
    if (tags) {
      c.tags = std::move(*tags);
    }
    KEYPORT_ASSIGN_OR_RETURN(c.policy, parse_release_policy(params));
    const bool kek = std::find(c.key_ops.begin(), c.key_ops.end(), "import") != c.key_ops.end();
    if (c.exportable && !c.policy) {
      return bad_parameter(
          "A release policy must be provided when creating an exportable key "
          "(attributes.exportable = true needs release_policy).");
    }
    if (c.policy && !c.exportable) {
      return bad_parameter(
          "A release policy can only be set on an exportable key (attributes.exportable = true).");
    }
    if (kek && c.exportable) {
      return bad_parameter("A key exchange key (key_ops [\"import\"]) cannot be exportable.");
    }
    if (!c.exportable &&
        std::find(c.key_ops.begin(), c.key_ops.end(), "export") != c.key_ops.end()) {
      return bad_parameter("The key operation \"export\" needs an exportable key.");
    }
    return c;
  }

  KeyVersionRecord new_record(std::string_view name, const std::string& version, Bytes id,
                              const std::string& kty, const KeySpec& spec, CommonIn c,
                              Json public_jwk, std::string origin) {
    KeyVersionRecord r;
    r.name = std::string(name);
    r.version = version;
    r.kty = kty;
    r.spec = spec;
    r.public_jwk = std::move(public_jwk);
    r.key_ops = std::move(c.key_ops);
    r.enabled = c.enabled;
    r.nbf = c.nbf;
    r.exp = c.exp;
    r.created = now();
    r.updated = r.created;
    r.exportable = c.exportable;
    r.tags = std::move(c.tags);
    r.release_policy = std::move(c.policy);
    r.cka_id = std::move(id);
    r.origin = std::move(origin);
    return r;
  }

  Status check_profile(const KeySpec& spec) {
    auto st = byok::check_target_accepts(target(), spec);
    if (!st) {
      return bad_parameter(st.error().message());
    }
    return {};
  }

  // --- create ---

  Result<Json> create_key(Op& op, std::string_view name, const Json& params,
                          const char* origin = "generated") {
    op.name = std::string(name);
    KEYPORT_TRY(check_key_name(name));
    if (!params.is_object()) {
      return bad_parameter("The request body must be a JSON object (KeyCreateParameters).");
    }
    KEYPORT_ASSIGN_OR_RETURN(std::string kty_in, string_member(params, "kty"));
    auto kty = split_kty(kty_in);
    if (!kty || kty_in == "oct") {
      return bad_parameter("Invalid kty \"" + kty_in +
                           "\": use RSA-HSM, EC-HSM or oct-HSM (RSA and EC also on key-vault).");
    }
    const KeyFamily family = family_of_kty(kty->first);
    const bool hsm = kty->second || config.flavor == Flavor::kManagedHsm;
    KeySpec spec;
    spec.family = family;
    const Json* size = member(params, "key_size");
    if (size != nullptr && !size->is_number_integer()) {
      return bad_parameter("key_size must be an integer.");
    }
    if (family == KeyFamily::kRsa) {
      spec.bits = size ? static_cast<unsigned>(size->get<std::int64_t>()) : 2048;
      if (spec.bits != 2048 && spec.bits != 3072 && spec.bits != 4096) {
        return bad_parameter("RSA key_size must be 2048, 3072 or 4096.");
      }
      if (const Json* pe = member(params, "public_exponent")) {
        if (!pe->is_number_integer() || pe->get<std::int64_t>() != 65537) {
          return bad_parameter("public_exponent must be 65537.");
        }
      }
    } else if (family == KeyFamily::kEc) {
      std::string crv = "P-256";
      if (const Json* c = member(params, "crv")) {
        if (!c->is_string()) {
          return bad_parameter("crv must be a string.");
        }
        crv = c->get<std::string>();
      }
      auto curve = curve_from_jwk_name(crv);
      if (!curve) {
        return bad_parameter("Invalid crv \"" + crv + "\" (P-256, P-384, P-521, P-256K).");
      }
      spec.curve = *curve;
      spec.bits = curve_bits(*curve);
    } else {
      spec.bits = size ? static_cast<unsigned>(size->get<std::int64_t>()) : 256;
      if (spec.bits != 128 && spec.bits != 192 && spec.bits != 256) {
        return bad_parameter("oct-HSM key_size must be 128, 192 or 256.");
      }
      if (config.flavor == Flavor::kKeyVault) {
        return bad_parameter(
            "oct-HSM keys are available only in Managed HSM; this vault is a Key Vault.");
      }
    }
    KEYPORT_TRY(check_profile(spec));
    KEYPORT_ASSIGN_OR_RETURN(CommonIn common, parse_common(params, params, family));
    const bool kek =
        std::find(common.key_ops.begin(), common.key_ops.end(), "import") != common.key_ops.end();
    if (kek && !hsm) {
      return bad_parameter("A key exchange key (key_ops [\"import\"]) must have kty RSA-HSM.");
    }
    KEYPORT_ASSIGN_OR_RETURN(const std::string canonical, canonical_live_name(name));

    const std::string version = new_version_id();
    Bytes id = random_bytes(16);
    const std::string label = label_of(canonical, version);
    // Exclusive: SoftHSM 2.6's file object store fails (CKR_GENERAL_ERROR) when a token object is
    // created while other threads use token objects.
    std::unique_lock<std::shared_mutex> objects(objects_mutex);
    KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
    Pending pending(*this, *lease, id);
    KEYPORT_TRY(pending.begin(label));
    KeyObjectSpec ks{spec, kek, common.exportable};
    KEYPORT_ASSIGN_OR_RETURN(GeneratedKey gen, generate_key(*lease, ks, label, id));
    KEYPORT_TRY(check_key_object(*lease, gen.handle, common.exportable));
    const std::string stored_kty = kty->first + (hsm ? "-HSM" : "");
    op.note = kek ? "key exchange key " + spec.name() : spec.name();
    return commit(op, pending,
                  new_record(canonical, version, std::move(id), stored_kty, spec, std::move(common),
                             std::move(gen.public_jwk), origin));
  }

  // --- import ---

  Result<Json> import_key(Op& op, std::string_view name, const Json& params) {
    op.name = std::string(name);
    KEYPORT_TRY(check_key_name(name));
    if (!params.is_object()) {
      return bad_parameter("The request body must be a JSON object (KeyImportParameters).");
    }
    const Json* key = member(params, "key");
    if (key == nullptr || !key->is_object()) {
      return bad_parameter("The request needs a JSON Web Key in member \"key\".");
    }
    bool hsm_flag = false;
    if (const Json* h = member_ci(params, "hsm")) {
      if (!h->is_boolean()) {
        return bad_parameter("Hsm must be a boolean.");
      }
      hsm_flag = h->get<bool>();
    }
    KEYPORT_ASSIGN_OR_RETURN(std::string kty_in, string_member(*key, "kty"));
    auto kty = split_kty(kty_in);
    if (!kty) {
      return bad_parameter("Invalid kty \"" + kty_in +
                           "\" (RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM).");
    }
    const KeyFamily family = family_of_kty(kty->first);
    if (family == KeyFamily::kAes && config.flavor == Flavor::kKeyVault) {
      KeySpec aes{KeyFamily::kAes, 256, std::nullopt};
      KEYPORT_TRY(check_profile(aes));
    }
    KEYPORT_ASSIGN_OR_RETURN(CommonIn common, parse_common(params, *key, family));
    if (std::find(common.key_ops.begin(), common.key_ops.end(), "import") != common.key_ops.end()) {
      return bad_parameter(
          "An imported key cannot be a key exchange key: create the KEK in the vault "
          "(key_ops [\"import\"]).");
    }
    if (member(*key, "key_hsm") != nullptr) {
      if (!kty->second) {
        return bad_parameter("A key with key_hsm (BYOK) must have kty RSA-HSM, EC-HSM or oct-HSM.");
      }
      return import_byok(op, name, *key, family, std::move(common));
    }
    const bool hsm = hsm_flag || kty->second || config.flavor == Flavor::kManagedHsm;
    return import_plain(op, name, *key, family, kty->first + (hsm ? "-HSM" : ""),
                        std::move(common));
  }

  Result<Json> import_byok(Op& op, std::string_view name, const Json& key, KeyFamily family,
                           CommonIn common) {
    std::optional<Curve> declared_curve;
    if (family == KeyFamily::kEc) {
      const Json* crv = member(key, "crv");
      if (crv == nullptr || !crv->is_string()) {
        return bad_parameter("An EC-HSM key needs crv (P-256, P-384, P-521, P-256K).");
      }
      auto c = curve_from_jwk_name(crv->get_ref<const std::string&>());
      if (!c) {
        return bad_parameter("Invalid crv \"" + crv->get<std::string>() + "\".");
      }
      declared_curve = *c;
    }
    const Json* key_hsm = member(key, "key_hsm");
    if (!key_hsm->is_string()) {
      return bad_parameter("key_hsm must be a base64url string (the whole .byok file).");
    }
    auto blob = decode_base64_any(key_hsm->get_ref<const std::string&>());
    if (!blob) {
      return bad_parameter("key_hsm is neither base64url nor base64.");
    }
    auto file = byok::ByokFile::parse(as_chars(*blob));
    if (!file) {
      return bad_parameter("key_hsm does not hold a valid BYOK transfer blob: " +
                           file.error().message());
    }
    KEYPORT_ASSIGN_OR_RETURN(auto kid, byok::parse_kid(file->kid, true));
    if (kid.host != host) {
      return bad_parameter("The transfer blob is wrapped to KEK " + file->kid +
                           ", a key of another vault (host " + kid.host + "); this vault is " +
                           host + ". Download this vault's KEK and export the key again.");
    }
    const std::string kek_version = ascii_lower(kid.version);
    auto kek_key = store->find_key(kid.key_name);
    auto kek = store->find_version(kid.key_name, kek_version);
    if (!kek_key || !kek) {
      return tl::unexpected(!kek_key ? kek_key.error() : kek.error());
    }
    if (!*kek_key || (*kek_key)->deleted() || !*kek) {
      return bad_parameter("The KEK " + file->kid +
                           " named by the transfer blob does not exist in this vault (or is "
                           "deleted).");
    }
    if (!(*kek)->enabled) {
      return bad_parameter("The KEK " + file->kid + " is disabled.");
    }
    if (!(*kek)->is_kek() || (*kek)->spec.family != KeyFamily::kRsa) {
      return bad_parameter("The key " + file->kid +
                           " is not a key exchange key: its key_ops do not include \"import\".");
    }
    const KeyVersionRecord kek_rec = std::move(**kek);
    const std::string enc(wrap_alg_name(file->enc));
    if (!caps.native_unwrap) {
      if (!caps.composite_unwrap_possible()) {
        return bad_parameter("This vault's HSM (" + caps.module + ", " + caps.token +
                             ") cannot unwrap BYOK transfer blobs (it lacks RSA-OAEP unwrap or "
                             "AES key wrap with padding).");
      }
      if (!caps.hash_ok(wrap_alg_hash(file->enc))) {
        return bad_parameter("enc " + enc + " needs RSA-OAEP with " +
                             std::string(to_string(wrap_alg_hash(file->enc))) +
                             ", which this vault's HSM (" + caps.module + ", " + caps.token +
                             ") cannot do (it offers no CKM_RSA_AES_KEY_WRAP and accepts only "
                             "OAEP-SHA1); export with enc CKM_RSA_AES_KEY_WRAP.");
      }
    }
    const std::size_t modulus_bytes = kek_rec.spec.bits / 8;
    KeySpec spec;
    spec.family = family;
    spec.curve = declared_curve;
    if (family == KeyFamily::kAes) {
      // The KWP part is 8 + the key's length for an AES key (a multiple of 8: no padding).
      const std::size_t ct = file->ciphertext.size();
      const std::size_t key_bytes = ct > modulus_bytes + 8 ? ct - modulus_bytes - 8 : 0;
      if (key_bytes != 16 && key_bytes != 24 && key_bytes != 32) {
        return bad_parameter(
            "The transfer blob does not hold an AES key of 128, 192 or 256 bits "
            "(declared kty oct-HSM).");
      }
      spec.bits = static_cast<unsigned>(key_bytes * 8);
      if (const Json* ks = member(key, "key_size")) {
        if (!ks->is_number_integer() || ks->get<std::int64_t>() != spec.bits) {
          return bad_parameter("key_size does not match the AES key in the transfer blob.");
        }
      }
      KEYPORT_TRY(check_profile(spec));
    } else if (family == KeyFamily::kEc) {
      spec.bits = curve_bits(*declared_curve);
      KEYPORT_TRY(check_profile(spec));
    }
    KEYPORT_ASSIGN_OR_RETURN(const std::string canonical, canonical_live_name(name));

    const std::string version = new_version_id();
    Bytes id = random_bytes(16);
    const std::string label = label_of(canonical, version);
    // Exclusive: SoftHSM 2.6's file object store fails (CKR_GENERAL_ERROR) when a token object is
    // created while other threads use token objects.
    std::unique_lock<std::shared_mutex> objects(objects_mutex);
    KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
    auto kek_handle = handles.find(*lease, kek_rec.cka_id, KeyFamily::kRsa);
    if (!kek_handle) {
      return tl::unexpected(lookup_error(kek_handle.error(), kek_rec));
    }
    Pending pending(*this, *lease, id);
    KEYPORT_TRY(pending.begin(label));
    KeyObjectSpec ks{spec, false, common.exportable};
    p11::Template t = key_object_template(ks, label, id, /*with_size=*/false);
    auto h = p11::unwrap_rsa_aes(*lease, caps, p11::WrapStrategy::kAuto, file->enc, *kek_handle,
                                 modulus_bytes, file->ciphertext, t);
    if (!h) {
      const Error& e = h.error();
      if (e.code() == ErrorCode::kIntegrityFailure || e.code() == ErrorCode::kUnsupported) {
        return bad_parameter("The transfer blob cannot be imported as " + family_title(family) +
                             "-HSM with KEK " + file->kid + ": " + e.message());
      }
      return tl::unexpected(e);
    }
    // From here the object exists: `pending` destroys it on every failure path.
    Json public_jwk = Json::object();
    if (family == KeyFamily::kRsa) {
      KEYPORT_ASSIGN_OR_RETURN(Bytes n, lease->get_bytes(*h, CKA_MODULUS));
      KEYPORT_ASSIGN_OR_RETURN(Bytes e, lease->get_bytes(*h, CKA_PUBLIC_EXPONENT));
      auto jwk = rsa_public_jwk(n, e);
      if (!jwk) {
        return bad_parameter("The imported RSA key is not acceptable: " + jwk.error().message());
      }
      KEYPORT_ASSIGN_OR_RETURN(auto pub, byok::PublicKey::from_rsa_components(n, e));
      spec.bits = pub.bits();
      KEYPORT_TRY(check_profile(spec));
      public_jwk = std::move(*jwk);
    } else if (family == KeyFamily::kEc) {
      KEYPORT_ASSIGN_OR_RETURN(Bytes params, lease->get_bytes(*h, CKA_EC_PARAMS));
      auto curve = curve_from_oid_der(params);
      if (!curve || *curve != *declared_curve) {
        return bad_parameter(
            "The transfer blob holds an EC key on " +
            (curve ? std::string(curve_jwk_name(*curve)) : std::string("an unsupported curve")) +
            ", not the declared crv " + std::string(curve_jwk_name(*declared_curve)) + ".");
      }
      KEYPORT_ASSIGN_OR_RETURN(Bytes point,
                               ec_public_point_by_signing(*lease, *h, *declared_curve));
      KEYPORT_ASSIGN_OR_RETURN(public_jwk, ec_public_jwk(*declared_curve, point));
    } else {
      KEYPORT_ASSIGN_OR_RETURN(CK_ULONG type, lease->get_ulong(*h, CKA_KEY_TYPE));
      if (type != CKK_AES) {
        return bad_parameter("The transfer blob does not hold an AES key.");
      }
    }
    KEYPORT_TRY(check_key_object(*lease, *h, common.exportable));
    op.note = "BYOK " + spec.name() + ", enc " + enc + ", KEK " + file->kid;
    return commit(op, pending,
                  new_record(canonical, version, std::move(id), family_title(family) + "-HSM", spec,
                             std::move(common), std::move(public_jwk), "byok"));
  }

  Result<Json> import_plain(Op& op, std::string_view name, const Json& key, KeyFamily family,
                            const std::string& kty, CommonIn common) {
    KeySpec spec;
    spec.family = family;
    p11::Template t;
    Bytes rsa_n, rsa_e, ec_point;
    if (family == KeyFamily::kRsa) {
      KEYPORT_ASSIGN_OR_RETURN(rsa_n, base64url_member(key, "n"));
      KEYPORT_ASSIGN_OR_RETURN(rsa_e, base64url_member(key, "e"));
      auto pub = byok::PublicKey::from_rsa_components(rsa_n, rsa_e);
      if (!pub) {
        return bad_parameter("The RSA key's n and e are not acceptable: " + pub.error().message());
      }
      spec.bits = pub->bits();
      KEYPORT_TRY(check_profile(spec));
      rsa_n = pub->rsa_modulus();
      rsa_e = pub->rsa_exponent();
      t = key_object_template({spec, false, common.exportable}, "", {}, false);
      t.modulus(rsa_n).public_exponent(rsa_e);
      const std::pair<const char*, CK_ATTRIBUTE_TYPE> parts[] = {
          {"d", CKA_PRIVATE_EXPONENT}, {"p", CKA_PRIME_1},     {"q", CKA_PRIME_2},
          {"dp", CKA_EXPONENT_1},      {"dq", CKA_EXPONENT_2}, {"qi", CKA_COEFFICIENT}};
      std::vector<SecretBytes> values;
      for (const auto& part : parts) {
        KEYPORT_ASSIGN_OR_RETURN(SecretBytes v, base64url_secret_member(key, part.first));
        values.push_back(std::move(v));
      }
      KEYPORT_ASSIGN_OR_RETURN(bool consistent,
                               rsa_private_consistent(rsa_n, rsa_e, values[0], values[1], values[2],
                                                      values[3], values[4], values[5]));
      if (!consistent) {
        return bad_parameter(
            "The RSA private key parts (n, e, d, p, q, dp, dq, qi) are not consistent.");
      }
      for (std::size_t i = 0; i < values.size(); ++i) {
        t.set_secret(parts[i].second, std::move(values[i]));
      }
    } else if (family == KeyFamily::kEc) {
      KEYPORT_ASSIGN_OR_RETURN(std::string crv, string_member(key, "crv"));
      auto curve = curve_from_jwk_name(crv);
      if (!curve) {
        return bad_parameter("Invalid crv \"" + crv + "\" (P-256, P-384, P-521, P-256K).");
      }
      spec.curve = *curve;
      spec.bits = curve_bits(*curve);
      KEYPORT_TRY(check_profile(spec));
      Json pub_jwk = Json{{"kty", "EC"}, {"crv", std::string(curve_jwk_name(*curve))}};
      for (const char* m : {"x", "y"}) {
        const Json* v = member(key, m);
        if (v == nullptr) {
          return bad_parameter(std::string("An EC key needs member \"") + m + "\".");
        }
        pub_jwk[m] = *v;
      }
      auto pub = byok::PublicKey::from_jwk(pub_jwk);
      if (!pub) {
        return bad_parameter("The EC key's x and y are not acceptable: " + pub.error().message());
      }
      ec_point = pub->ec_point();
      KEYPORT_ASSIGN_OR_RETURN(SecretBytes d, base64url_secret_member(key, "d"));
      if (d.size() != curve_field_bytes(*curve)) {
        return bad_parameter("Member \"d\" must be exactly " +
                             std::to_string(curve_field_bytes(*curve)) + " bytes for " + crv + ".");
      }
      t = key_object_template({spec, false, common.exportable}, "", {}, false);
      t.ec_params(curve_oid_der(*curve)).set_secret(CKA_VALUE, std::move(d));
    } else {
      KEYPORT_ASSIGN_OR_RETURN(SecretBytes k, base64url_secret_member(key, "k"));
      if (k.size() != 16 && k.size() != 24 && k.size() != 32) {
        return bad_parameter("Member \"k\" must be a 128, 192 or 256-bit AES key.");
      }
      spec.bits = static_cast<unsigned>(k.size() * 8);
      KEYPORT_TRY(check_profile(spec));
      t = key_object_template({spec, false, common.exportable}, "", {}, false);
      t.set_secret(CKA_VALUE, std::move(k));
    }
    KEYPORT_ASSIGN_OR_RETURN(const std::string canonical, canonical_live_name(name));

    const std::string version = new_version_id();
    Bytes id = random_bytes(16);
    const std::string label = label_of(canonical, version);
    t.label(label).id(id);
    // Exclusive: SoftHSM 2.6's file object store fails (CKR_GENERAL_ERROR) when a token object is
    // created while other threads use token objects.
    std::unique_lock<std::shared_mutex> objects(objects_mutex);
    KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
    Pending pending(*this, *lease, id);
    KEYPORT_TRY(pending.begin(label));
    auto h = lease->create_object(t);
    if (!h) {
      if (h.error().code() == ErrorCode::kPkcs11 || h.error().code() == ErrorCode::kUnsupported) {
        return bad_parameter("The HSM refused the key material (" + h.error().describe() + ").");
      }
      return tl::unexpected(h.error());
    }
    // Prove the private part matches the public part, inside the token.
    Json public_jwk = Json::object();
    if (family == KeyFamily::kRsa) {
      Bytes digest = random_bytes(32);
      CK_MECHANISM mech{CKM_RSA_PKCS, nullptr, 0};
      auto sig = token_sign(*lease, *h, mech, digest_info(HashAlg::kSha256, digest));
      KEYPORT_ASSIGN_OR_RETURN(public_jwk, rsa_public_jwk(rsa_n, rsa_e));
      KeyVersionRecord probe;
      probe.spec = spec;
      probe.public_jwk = public_jwk;
      KEYPORT_ASSIGN_OR_RETURN(Bytes spki, spki_of(probe));
      bool ok = false;
      if (sig) {
        KEYPORT_ASSIGN_OR_RETURN(ok, verify_digest(spki, *find_sign_alg("RS256"), digest, *sig));
      }
      if (!ok) {
        return bad_parameter("The RSA private key does not match its public key (n, e).");
      }
    } else if (family == KeyFamily::kEc) {
      auto point = ec_public_point_by_signing(*lease, *h, *spec.curve);
      if (!point || *point != ec_point) {
        return bad_parameter("The EC private key d does not match its public key (x, y).");
      }
      KEYPORT_ASSIGN_OR_RETURN(public_jwk, ec_public_jwk(*spec.curve, ec_point));
    }
    KEYPORT_TRY(check_key_object(*lease, *h, common.exportable));
    op.note = "JWK import " + spec.name();
    return commit(op, pending,
                  new_record(canonical, version, std::move(id), kty, spec, std::move(common),
                             std::move(public_jwk), "import"));
  }

  // --- read, update, delete ---

  Result<Json> get_key(Op& op, std::string_view name, std::string_view version) {
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
    if (!r.enabled) {
      return key_disabled("get");
    }
    return key_bundle(config.base_url, r);
  }

  Result<Json> list_keys() {
    KEYPORT_ASSIGN_OR_RETURN(auto keys, store->keys());
    Json values = Json::array();
    for (const auto& k : keys) {
      if (k.deleted()) {
        continue;
      }
      KEYPORT_ASSIGN_OR_RETURN(auto latest, store->find_version(k.name, ""));
      if (latest) {
        values.push_back(key_item(config.base_url, *latest, false));
      }
    }
    return list_result(std::move(values));
  }

  Result<Json> list_key_versions(Op& op, std::string_view name) {
    op.name = std::string(name);
    if (!valid_key_name(name)) {
      return key_not_found(name);
    }
    KEYPORT_ASSIGN_OR_RETURN(auto key, store->find_key(name));
    if (!key || key->deleted()) {
      return key_not_found(name);
    }
    op.name = key->name;
    KEYPORT_ASSIGN_OR_RETURN(auto versions, store->versions(name));
    Json values = Json::array();
    for (const auto& v : versions) {
      values.push_back(key_item(config.base_url, v, true));
    }
    return list_result(std::move(values));
  }

  Result<Json> update_key(Op& op, std::string_view name, std::string_view version,
                          const Json& params) {
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
    if (!params.is_object()) {
      return bad_parameter("The request body must be a JSON object (KeyUpdateParameters).");
    }
    std::vector<std::string> changed;
    if (const Json* ops = member(params, "key_ops")) {
      KEYPORT_ASSIGN_OR_RETURN(auto new_ops, parse_key_ops(*ops, r.spec.family));
      const bool now_kek = std::find(new_ops.begin(), new_ops.end(), "import") != new_ops.end();
      if (now_kek != r.is_kek()) {
        return bad_parameter(
            "The key operation \"import\" cannot be added to or removed from an existing key: a "
            "key exchange key is created as one.");
      }
      if (!r.exportable && std::find(new_ops.begin(), new_ops.end(), "export") != new_ops.end()) {
        return bad_parameter("The key operation \"export\" needs an exportable key.");
      }
      r.key_ops = std::move(new_ops);
      changed.push_back("key_ops");
    }
    KEYPORT_ASSIGN_OR_RETURN(AttributesIn a, parse_attributes(params));
    if (a.exportable && *a.exportable != r.exportable) {
      return bad_parameter("attributes.exportable cannot be changed after a key is created.");
    }
    if (a.enabled) {
      r.enabled = *a.enabled;
      changed.push_back("enabled");
    }
    if (a.nbf) {
      r.nbf = a.nbf;
      changed.push_back("nbf");
    }
    if (a.exp) {
      r.exp = a.exp;
      changed.push_back("exp");
    }
    if (r.nbf && r.exp && *r.exp < *r.nbf) {
      return bad_parameter("attributes.exp must not be earlier than attributes.nbf.");
    }
    KEYPORT_ASSIGN_OR_RETURN(auto tags, parse_tags(params));
    if (tags) {
      r.tags = std::move(*tags);
      changed.push_back("tags");
    }
    KEYPORT_ASSIGN_OR_RETURN(auto policy, parse_release_policy(params));
    if (policy) {
      if (r.release_policy && r.release_policy->immutable && !(*policy == *r.release_policy)) {
        return bad_parameter(
            "The release policy of this key is immutable: it cannot be changed or made mutable.");
      }
      if (!r.exportable) {
        return bad_parameter(
            "A release policy can only be set on an exportable key (attributes.exportable).");
      }
      r.release_policy = std::move(*policy);
      changed.push_back("release_policy");
    }
    r.updated = now();
    KEYPORT_TRY(store->update_version(r));
    std::string note;
    for (const auto& c : changed) {
      note += (note.empty() ? "" : ", ") + c;
    }
    op.note = note.empty() ? "no change" : "updated " + note;
    return key_bundle(config.base_url, r);
  }

  Result<std::pair<KeyRecord, KeyVersionRecord>> deleted_key(Op& op, std::string_view name) {
    op.name = std::string(name);
    if (!valid_key_name(name)) {
      return deleted_key_not_found(name);
    }
    KEYPORT_ASSIGN_OR_RETURN(auto key, store->find_key(name));
    if (!key || !key->deleted()) {
      return deleted_key_not_found(name);
    }
    KEYPORT_ASSIGN_OR_RETURN(auto latest, store->find_version(name, ""));
    if (!latest) {
      return internal_error("the deleted key " + key->name + " has no versions");
    }
    op.name = key->name;
    op.version = latest->version;
    return std::make_pair(std::move(*key), std::move(*latest));
  }

  Result<Json> delete_key(Op& op, std::string_view name) {
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord latest, resolve(op, name, ""));
    const std::int64_t t = now();
    KEYPORT_TRY(store->mark_deleted(latest.name, t, t + kRecoverableDays * kSecondsPerDay));
    KEYPORT_ASSIGN_OR_RETURN(auto deleted, deleted_key(op, latest.name));
    return deleted_key_bundle(config.base_url, deleted.first, deleted.second);
  }

  Result<Json> list_deleted_keys() {
    KEYPORT_ASSIGN_OR_RETURN(auto keys, store->keys());
    Json values = Json::array();
    for (const auto& k : keys) {
      if (!k.deleted()) {
        continue;
      }
      KEYPORT_ASSIGN_OR_RETURN(auto latest, store->find_version(k.name, ""));
      if (latest) {
        values.push_back(deleted_key_item(config.base_url, k, *latest));
      }
    }
    return list_result(std::move(values));
  }

  Result<Json> recover_deleted_key(Op& op, std::string_view name) {
    KEYPORT_ASSIGN_OR_RETURN(auto deleted, deleted_key(op, name));
    KEYPORT_TRY(store->mark_recovered(deleted.first.name));
    return key_bundle(config.base_url, deleted.second);
  }

  Status purge_deleted_key(Op& op, std::string_view name) {
    op.success_status = 204;
    KEYPORT_ASSIGN_OR_RETURN(auto deleted, deleted_key(op, name));
    op.version.clear();
    std::unique_lock<std::shared_mutex> objects(objects_mutex);
    KEYPORT_ASSIGN_OR_RETURN(auto journal, store->purge(deleted.first.name, now()));
    KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
    std::size_t destroyed = 0;
    std::size_t deferred = 0;
    for (const auto& p : journal) {
      handles.forget(p.cka_id);
      auto n = destroy_by_id(*lease, p.cka_id);
      if (!n) {
        log::warn("vault: purge of " + p.label +
                  " deferred to the next open: " + n.error().describe());
        ++deferred;
        continue;
      }
      destroyed += *n;
      auto st = store->remove_pending(p.cka_id);
      if (!st) {
        log::warn("vault: cannot clear a journal entry: " + st.error().describe());
      }
    }
    op.note = "purged " + std::to_string(journal.size()) + " version(s), destroyed " +
              std::to_string(destroyed) + " token object(s)" +
              (deferred == 0 ? "" : ", " + std::to_string(deferred) + " deferred");
    return {};
  }

  // --- crypto ---

  Result<SignAlg> sign_alg_for(const KeyVersionRecord& r, const Json& params) {
    KEYPORT_ASSIGN_OR_RETURN(std::string name, string_member(params, "alg"));
    auto alg = find_sign_alg(name);
    if (!alg) {
      return bad_parameter("Invalid signature algorithm \"" + name + "\".");
    }
    const bool rsa_alg = alg->scheme != SignScheme::kEcdsa;
    if (rsa_alg != (r.spec.family == KeyFamily::kRsa) || r.spec.family == KeyFamily::kAes) {
      return bad_parameter("Algorithm " + name + " cannot be used with a " +
                           family_title(r.spec.family) + " key.");
    }
    if (alg->curve && r.spec.curve != alg->curve) {
      return bad_parameter("Algorithm " + name + " needs curve " +
                           std::string(curve_jwk_name(*alg->curve)) + "; this key is on " +
                           std::string(curve_jwk_name(*r.spec.curve)) + ".");
    }
    return *alg;
  }

  Result<Json> sign(Op& op, std::string_view name, std::string_view version, const Json& params) {
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
    KEYPORT_TRY(check_usable(r, "sign", true));
    KEYPORT_ASSIGN_OR_RETURN(SignAlg alg, sign_alg_for(r, params));
    KEYPORT_ASSIGN_OR_RETURN(Bytes digest, base64url_member(params, "value"));
    if (digest.size() != hash_length(alg.hash)) {
      return bad_parameter("The digest for " + std::string(alg.name) + " must be " +
                           std::to_string(hash_length(alg.hash)) + " bytes.");
    }
    op.note = std::string(alg.name);
    std::shared_lock<std::shared_mutex> objects(objects_mutex);
    KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
    auto h = handles.find(*lease, r.cka_id, r.spec.family);
    if (!h) {
      return tl::unexpected(lookup_error(h.error(), r));
    }
    Result<Bytes> sig = Bytes{};
    switch (alg.scheme) {
      case SignScheme::kPkcs1: {
        CK_MECHANISM mech{CKM_RSA_PKCS, nullptr, 0};
        sig = token_sign(*lease, *h, mech, digest_info(alg.hash, digest));
        break;
      }
      case SignScheme::kPss: {
        const p11::ShaMechanisms m = p11::sha_mechanisms(hash_length(alg.hash));
        CK_RSA_PKCS_PSS_PARAMS pss{m.hash, m.mgf, hash_length(alg.hash)};
        CK_MECHANISM mech{CKM_RSA_PKCS_PSS, &pss, sizeof pss};
        sig = token_sign(*lease, *h, mech, digest);
        break;
      }
      case SignScheme::kEcdsa: {
        CK_MECHANISM mech{CKM_ECDSA, nullptr, 0};
        sig = token_sign(*lease, *h, mech, digest);
        break;
      }
    }
    if (!sig) {
      return tl::unexpected(sig.error());
    }
    return operation_result(kid_of(config.base_url, r.name, r.version), *sig);
  }

  Result<Json> verify(Op& op, std::string_view name, std::string_view version, const Json& params) {
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
    KEYPORT_TRY(check_usable(r, "verify", false));
    KEYPORT_ASSIGN_OR_RETURN(SignAlg alg, sign_alg_for(r, params));
    KEYPORT_ASSIGN_OR_RETURN(Bytes digest, base64url_member(params, "digest"));
    KEYPORT_ASSIGN_OR_RETURN(Bytes signature, base64url_member(params, "value"));
    if (digest.size() != hash_length(alg.hash)) {
      return bad_parameter("The digest for " + std::string(alg.name) + " must be " +
                           std::to_string(hash_length(alg.hash)) + " bytes.");
    }
    KEYPORT_ASSIGN_OR_RETURN(Bytes spki, spki_of(r));
    KEYPORT_ASSIGN_OR_RETURN(bool ok, verify_digest(spki, alg, digest, signature));
    op.note = std::string(alg.name) + (ok ? ": valid" : ": invalid");
    return Json{{"value", ok}};
  }

  // encrypt and wrapKey for RSA keys: the public operation, in OpenSSL.
  Result<Json> rsa_encrypt(Op& op, const KeyVersionRecord& r, const Json& params) {
    KEYPORT_ASSIGN_OR_RETURN(std::string alg_name, string_member(params, "alg"));
    auto padding = find_rsa_enc_alg(alg_name);
    if (!padding) {
      return bad_parameter("Invalid algorithm \"" + alg_name +
                           "\" for an RSA key (RSA1_5, "
                           "RSA-OAEP, RSA-OAEP-256).");
    }
    KEYPORT_ASSIGN_OR_RETURN(SecretBytes plaintext, base64url_secret_member(params, "value"));
    KEYPORT_ASSIGN_OR_RETURN(Bytes spki, spki_of(r));
    KEYPORT_ASSIGN_OR_RETURN(
        Bytes ct, rsa_public_encrypt(spki, *padding, plaintext.reveal(SecretAccess::unsafe())));
    op.note = alg_name;
    return operation_result(kid_of(config.base_url, r.name, r.version), ct);
  }

  // decrypt and unwrapKey for RSA keys: the private operation, in the token.
  Result<Json> rsa_decrypt(Op& op, const KeyVersionRecord& r, const Json& params) {
    KEYPORT_ASSIGN_OR_RETURN(std::string alg_name, string_member(params, "alg"));
    auto padding = find_rsa_enc_alg(alg_name);
    if (!padding) {
      return bad_parameter("Invalid algorithm \"" + alg_name +
                           "\" for an RSA key (RSA1_5, "
                           "RSA-OAEP, RSA-OAEP-256).");
    }
    KEYPORT_ASSIGN_OR_RETURN(Bytes ct, base64url_member(params, "value"));
    const std::size_t k = r.spec.bits / 8;
    if (ct.size() != k) {
      return bad_parameter("The ciphertext must be " + std::to_string(k) +
                           " bytes long for this key.");
    }
    op.note = alg_name;
    std::shared_lock<std::shared_mutex> objects(objects_mutex);
    KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
    auto h = handles.find(*lease, r.cka_id, KeyFamily::kRsa);
    if (!h) {
      return tl::unexpected(lookup_error(h.error(), r));
    }
    Result<SecretBytes> plain = SecretBytes{};
    if (*padding == RsaPadding::kPkcs1) {
      CK_MECHANISM mech{CKM_RSA_PKCS, nullptr, 0};
      plain = token_decrypt(*lease, *h, mech, ct, k);
    } else {
      const HashAlg hash = *padding == RsaPadding::kOaepSha1 ? HashAlg::kSha1 : HashAlg::kSha256;
      const p11::ShaMechanisms m = p11::sha_mechanisms(hash_length(hash));
      CK_RSA_PKCS_OAEP_PARAMS oaep{m.hash, m.mgf, CKZ_DATA_SPECIFIED, nullptr, 0};
      CK_MECHANISM mech{CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep};
      plain = token_decrypt(*lease, *h, mech, ct, k);
      if (!plain && plain.error().code() == ErrorCode::kUnsupported) {
        // SoftHSM 2.6.1 refuses OAEP with SHA-256: raw RSA in the token, OAEP decoding here
        // (what libp11's engine does).
        CK_MECHANISM raw{CKM_RSA_X_509, nullptr, 0};
        auto em = token_decrypt(*lease, *h, raw, ct, k);
        plain = em ? oaep_decode(hash, *em, k) : Result<SecretBytes>(tl::unexpected(em.error()));
        op.note += " (raw RSA in the token, OAEP decoded on the host)";
      }
    }
    if (!plain) {
      if (plain.error().code() == ErrorCode::kIntegrityFailure) {
        return bad_parameter("Decryption failed: " + std::string(kIntegrityMessage) + ".");
      }
      return tl::unexpected(plain.error());
    }
    return operation_result(kid_of(config.base_url, r.name, r.version),
                            plain->reveal(SecretAccess::unsafe()));
  }

  Result<Json> encrypt(Op& op, std::string_view name, std::string_view version,
                       const Json& params) {
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
    KEYPORT_TRY(check_usable(r, "encrypt", true));
    if (r.spec.family == KeyFamily::kRsa) {
      return rsa_encrypt(op, r, params);
    }
    return bad_parameter("This simulator does not implement encrypt for " +
                         family_title(r.spec.family) +
                         " keys (oct keys: use wrapKey with A128KW/A192KW/A256KW).");
  }

  Result<Json> decrypt(Op& op, std::string_view name, std::string_view version,
                       const Json& params) {
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
    KEYPORT_TRY(check_usable(r, "decrypt", false));
    if (r.spec.family == KeyFamily::kRsa) {
      return rsa_decrypt(op, r, params);
    }
    return bad_parameter("This simulator does not implement decrypt for " +
                         family_title(r.spec.family) +
                         " keys (oct keys: use unwrapKey with A128KW/A192KW/A256KW).");
  }

  Result<unsigned> aes_kw_alg_for(Op& op, const KeyVersionRecord& r, const Json& params) {
    KEYPORT_ASSIGN_OR_RETURN(std::string alg_name, string_member(params, "alg"));
    auto bits = find_aes_kw_alg(alg_name);
    if (!bits) {
      return bad_parameter("Invalid algorithm \"" + alg_name +
                           "\" for an oct key (A128KW, A192KW, A256KW).");
    }
    if (*bits != r.spec.bits) {
      return bad_parameter("Algorithm " + alg_name + " needs a " + std::to_string(*bits) +
                           "-bit key; this key has " + std::to_string(r.spec.bits) + " bits.");
    }
    op.note = alg_name;
    return *bits;
  }

  Result<Json> wrap_key(Op& op, std::string_view name, std::string_view version,
                        const Json& params) {
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
    KEYPORT_TRY(check_usable(r, "wrapKey", true));
    if (r.spec.family == KeyFamily::kRsa) {
      return rsa_encrypt(op, r, params);
    }
    if (r.spec.family != KeyFamily::kAes) {
      return bad_parameter("wrapKey is not available for EC keys.");
    }
    KEYPORT_TRY(aes_kw_alg_for(op, r, params));
    KEYPORT_ASSIGN_OR_RETURN(SecretBytes key_bytes, base64url_secret_member(params, "value"));
    if (key_bytes.size() < 16 || key_bytes.size() % 8 != 0 || key_bytes.size() > 4096) {
      return bad_parameter(
          "AES key wrap (RFC 3394) needs a key of 16 or more bytes, a multiple "
          "of 8.");
    }
    std::shared_lock<std::shared_mutex> objects(objects_mutex);
    KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
    auto h = handles.find(*lease, r.cka_id, KeyFamily::kAes);
    if (!h) {
      return tl::unexpected(lookup_error(h.error(), r));
    }
    KEYPORT_ASSIGN_OR_RETURN(Bytes wrapped, token_aes_kw_wrap(*lease, *h, key_bytes));
    return operation_result(kid_of(config.base_url, r.name, r.version), wrapped);
  }

  Result<Json> unwrap_key(Op& op, std::string_view name, std::string_view version,
                          const Json& params) {
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, version));
    KEYPORT_TRY(check_usable(r, "unwrapKey", false));
    if (r.spec.family == KeyFamily::kRsa) {
      return rsa_decrypt(op, r, params);
    }
    if (r.spec.family != KeyFamily::kAes) {
      return bad_parameter("unwrapKey is not available for EC keys.");
    }
    KEYPORT_TRY(aes_kw_alg_for(op, r, params));
    KEYPORT_ASSIGN_OR_RETURN(Bytes wrapped, base64url_member(params, "value"));
    if (wrapped.size() < 24 || wrapped.size() % 8 != 0) {
      return bad_parameter("An RFC 3394 wrapped key is 24 or more bytes, a multiple of 8.");
    }
    std::shared_lock<std::shared_mutex> objects(objects_mutex);
    KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
    auto h = handles.find(*lease, r.cka_id, KeyFamily::kAes);
    if (!h) {
      return tl::unexpected(lookup_error(h.error(), r));
    }
    auto key_bytes = token_aes_kw_unwrap(*lease, *h, wrapped);
    if (!key_bytes) {
      if (key_bytes.error().code() == ErrorCode::kIntegrityFailure) {
        return bad_parameter("Unwrap failed: " + std::string(kIntegrityMessage) + ".");
      }
      return tl::unexpected(key_bytes.error());
    }
    return operation_result(kid_of(config.base_url, r.name, r.version),
                            key_bytes->reveal(SecretAccess::unsafe()));
  }

  // --- rotation ---

  Result<RotationPolicy> policy_of(const std::string& name,
                                   std::optional<RotationPolicyRecord>* record = nullptr) {
    KEYPORT_ASSIGN_OR_RETURN(auto rec, store->find_rotation_policy(name));
    if (record != nullptr) {
      *record = rec;
    }
    if (!rec) {
      return default_rotation_policy();
    }
    return rotation_policy_from_json(rec->policy);
  }

  Result<Json> rotate_key(Op& op, std::string_view name, const std::string& why) {
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, ""));
    Json params = Json::object();
    params["kty"] = r.kty;
    if (r.spec.family == KeyFamily::kEc) {
      params["crv"] = std::string(curve_jwk_name(*r.spec.curve));
    } else {
      params["key_size"] = r.spec.bits;
    }
    params["key_ops"] = r.key_ops;
    params["tags"] = r.tags;
    Json attrs{{"enabled", true}};
    if (r.exportable) {
      attrs["exportable"] = true;
    }
    KEYPORT_ASSIGN_OR_RETURN(RotationPolicy policy, policy_of(r.name));
    if (policy.expiry_time) {
      attrs["exp"] = now() + policy.expiry_seconds;
    }
    params["attributes"] = std::move(attrs);
    if (r.release_policy) {
      params["release_policy"] = Json{{"contentType", r.release_policy->content_type},
                                      {"data", base64url_encode(r.release_policy->data)},
                                      {"immutable", r.release_policy->immutable}};
    }
    KEYPORT_ASSIGN_OR_RETURN(Json bundle, create_key(op, r.name, params, "rotated"));
    op.note = "rotated " + r.version + " (" + why + ")" +
              (policy.expiry_time ? ", expires in " + *policy.expiry_time : "");
    return bundle;
  }

  Result<Json> get_rotation_policy(Op& op, std::string_view name) {
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, ""));
    op.version.clear();
    std::optional<RotationPolicyRecord> rec;
    KEYPORT_ASSIGN_OR_RETURN(RotationPolicy policy, policy_of(r.name, &rec));
    op.note = rec ? "policy set" : "default policy";
    return rotation_policy_response(config.base_url, r.name, policy,
                                    rec ? std::optional<std::int64_t>(rec->created) : std::nullopt,
                                    rec ? std::optional<std::int64_t>(rec->updated) : std::nullopt);
  }

  Result<Json> update_rotation_policy(Op& op, std::string_view name, const Json& body) {
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, resolve(op, name, ""));
    op.version.clear();
    KEYPORT_ASSIGN_OR_RETURN(RotationPolicy policy, parse_rotation_policy(body));
    RotationPolicyRecord rec;
    rec.name = r.name;
    rec.policy = rotation_policy_to_json(policy);
    rec.created = now();
    rec.updated = rec.created;
    KEYPORT_ASSIGN_OR_RETURN(RotationPolicyRecord stored, store->put_rotation_policy(rec));
    last_due_check.store(LLONG_MIN);  // the next call checks the new policy
    op.note = dump_json(stored.policy["lifetimeActions"]);
    return rotation_policy_response(config.base_url, stored.name, policy, stored.created,
                                    stored.updated);
  }

  Result<std::size_t> due_actions() {
    KEYPORT_ASSIGN_OR_RETURN(auto policies, store->rotation_policies());
    const CallContext system{kSystemCaller};
    std::size_t rotated = 0;
    for (const auto& rec : policies) {
      KEYPORT_ASSIGN_OR_RETURN(auto key, store->find_key(rec.name));
      if (!key || key->deleted()) {
        continue;
      }
      KEYPORT_ASSIGN_OR_RETURN(auto latest, store->find_version(rec.name, ""));
      if (!latest) {
        continue;
      }
      KEYPORT_ASSIGN_OR_RETURN(RotationPolicy policy, rotation_policy_from_json(rec.policy));
      const std::int64_t t = now();
      if (const LifetimeAction* a = policy.find(LifetimeActionType::kRotate)) {
        std::optional<std::int64_t> due;
        if (a->after_create) {
          due = latest->created + a->seconds;
        } else if (latest->exp) {
          due = *latest->exp - a->seconds;
        }
        if (due && t >= *due) {
          Op op;
          op.operation = "RotateKey";
          auto r = rotate_key(op, rec.name,
                              std::string("rotation policy: ") +
                                  (a->after_create ? "timeAfterCreate " : "timeBeforeExpiry ") +
                                  a->duration);
          auto done = finish(system, op, std::move(r));
          if (!done) {
            log::warn("vault: the scheduled rotation of " + rec.name +
                      " failed: " + done.error().describe());
          } else {
            ++rotated;
          }
          continue;
        }
      }
      if (const LifetimeAction* n = policy.find(LifetimeActionType::kNotify)) {
        if (!n->after_create && latest->exp && rec.notified_version != latest->version &&
            t >= *latest->exp - n->seconds) {
          Op op;
          op.operation = "KeyNearExpiry";
          op.name = latest->name;
          op.version = latest->version;
          op.note = "Notify (timeBeforeExpiry " + n->duration +
                    "): the Event Grid event Key Vault would publish";
          audit(kSystemCaller, op, nullptr);
          KEYPORT_TRY(store->set_notified_version(rec.name, latest->version));
        }
      }
    }
    return rotated;
  }

  // --- HSM platform ---

  Result<Json> platform_report(Op& op) {
    KEYPORT_ASSIGN_OR_RETURN(auto keys, store->keys());
    const std::int64_t cutover = platform1_before.load();
    Json out = Json::object();
    out["vault"] = config.base_url;
    out["now"] = now();
    out["cutover"] = cutover != LLONG_MIN ? Json(cutover) : Json(nullptr);
    Json entries = Json::array();
    for (const auto& k : keys) {
      if (k.deleted()) {
        continue;
      }
      KEYPORT_ASSIGN_OR_RETURN(auto versions, store->versions(k.name));
      if (versions.empty() || versions.back().hsm_platform != "1") {
        continue;
      }
      const KeyVersionRecord& latest = versions.back();
      std::size_t on_platform1 = 0;
      for (const auto& v : versions) {
        on_platform1 += v.hsm_platform == "1" ? 1 : 0;
      }
      std::optional<RotationPolicyRecord> rec;
      KEYPORT_ASSIGN_OR_RETURN(RotationPolicy policy, policy_of(latest.name, &rec));
      const LifetimeAction* rotate = rec ? policy.find(LifetimeActionType::kRotate) : nullptr;
      std::optional<std::int64_t> next;
      if (rotate != nullptr && rotate->after_create) {
        next = latest.created + rotate->seconds;
      } else if (rotate != nullptr && latest.exp) {
        next = *latest.exp - rotate->seconds;
      }
      const bool portable = latest.origin == "byok" || latest.origin == "import";
      const bool wraps = latest.has_op("wrapKey") || latest.has_op("unwrapKey") ||
                         latest.has_op("encrypt") || latest.has_op("decrypt");
      std::string action;
      std::string how;
      if (portable) {
        action = "reimport";
        how =
            "re-import the portable key from its on-prem HSM as a new version: keyport byok "
            "export --kek <this vault's KEK> ... then keyport vault import --name " +
            latest.name + " --byok FILE";
      } else if (wraps) {
        action = "rotate-and-rewrap";
        how = std::string(rotate != nullptr
                              ? "its rotation policy rotates it"
                              : "rotate it: keyport vault rotate --name " + latest.name) +
              "; then re-wrap the data keys wrapped under the old version " + latest.version +
              " (keyport migrate run --keyring K --from vault:DIR#" + latest.name + "/" +
              latest.version + " --to vault:DIR#" + latest.name + ")";
      } else if (rotate != nullptr) {
        action = "rotate-by-policy";
        how = "its rotation policy rotates it; to rotate now: keyport vault rotate --name " +
              latest.name;
      } else {
        action = "rotate";
        how = "rotate it by hand (keyport vault rotate --name " + latest.name +
              ") or give it a rotation policy (keyport vault rotation-policy set)";
      }
      Json e = Json::object();
      e["name"] = latest.name;
      e["kid"] = kid_of(config.base_url, latest.name, latest.version);
      e["kty"] = latest.kty;
      e["created"] = latest.created;
      e["origin"] = latest.origin;
      e["hsmPlatform"] = latest.hsm_platform;
      e["versions_on_platform1"] = on_platform1;
      e["rotation_policy"] = rotate != nullptr;
      e["next_rotation"] = next ? Json(*next) : Json(nullptr);
      e["action"] = action;
      e["how"] = how;
      entries.push_back(std::move(e));
    }
    op.note = std::to_string(entries.size()) + " key(s) on platform 1";
    out["keys"] = std::move(entries);
    return out;
  }

  // --- open-time maintenance ---

  void audit_system(const std::string& operation, const std::string& label, std::string note,
                    const Error* error = nullptr) {
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

  Status replay_journal() {
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
      audit_system("JournalReplay", p.label,
                   "destroyed " + std::to_string(*n) + " token object(s) left by an interrupted " +
                       p.reason);
    }
    return {};
  }

  Status sweep_orphans() {
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
};

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
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return make_error(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
  }
  Json j = Json::object();
  j["schema"] = 1;
  j["flavor"] = std::string(to_string(config.flavor));
  j["name"] = config.name;
  j["base_url"] = config.base_url;
  j["created"] = config.created;
  return write_file_atomic(dir / kVaultFile, dump_json(j, 2) + "\n");
}

Result<std::unique_ptr<Vault>> Vault::open(const fs::path& dir, VaultOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  KEYPORT_ASSIGN_OR_RETURN(impl->config, read_config(dir));
  KEYPORT_ASSIGN_OR_RETURN(auto url, normalise_base_url(impl->config.base_url));
  impl->config.base_url = url.first;
  impl->host = url.second;
  impl->clock = options.clock ? options.clock : system_clock();
  impl->settings = std::make_unique<SettingsWatcher>(dir);
  impl->crash_point = options.crash_point;

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
  impl->pool = std::make_unique<p11::SessionPool>(impl->token.module, impl->token.slot,
                                                  impl->token.pin.clone(),
                                                  std::max<std::size_t>(1, options.max_sessions));
  if (!attached && impl->token.module->owns_initialization()) {
    impl->recycle_every = options.module_recycle_ops.value_or(kDefaultModuleRecycleOps);
  }
  impl->refresh_settings();
  KEYPORT_TRY(impl->replay_journal());
  if (options.sweep_unknown_objects.value_or(!attached)) {
    KEYPORT_TRY(impl->sweep_orphans());
  }
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

const std::string& Vault::host() const {
  return m_impl->host;
}

const p11::WrapCapabilities& Vault::capabilities() const {
  return m_impl->caps;
}

Result<Json> Vault::create_key(const CallContext& ctx, std::string_view name, const Json& params) {
  return m_impl->run(ctx, "CreateKey",
                     [&](Op& op) { return m_impl->create_key(op, name, params); });
}

Result<Json> Vault::import_key(const CallContext& ctx, std::string_view name, const Json& params) {
  return m_impl->run(ctx, "ImportKey",
                     [&](Op& op) { return m_impl->import_key(op, name, params); });
}

Result<Json> Vault::get_key(const CallContext& ctx, std::string_view name,
                            std::string_view version) {
  return m_impl->run(ctx, "GetKey", [&](Op& op) { return m_impl->get_key(op, name, version); });
}

Result<Json> Vault::list_keys(const CallContext& ctx) {
  return m_impl->run(ctx, "GetKeys", [&](Op&) { return m_impl->list_keys(); });
}

Result<Json> Vault::list_key_versions(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "GetKeyVersions",
                     [&](Op& op) { return m_impl->list_key_versions(op, name); });
}

Result<Json> Vault::update_key(const CallContext& ctx, std::string_view name,
                               std::string_view version, const Json& params) {
  return m_impl->run(ctx, "UpdateKey",
                     [&](Op& op) { return m_impl->update_key(op, name, version, params); });
}

Result<Json> Vault::delete_key(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "DeleteKey", [&](Op& op) { return m_impl->delete_key(op, name); });
}

Result<Json> Vault::get_deleted_key(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "GetDeletedKey", [&](Op& op) {
    return m_impl->deleted_key(op, name).map([this](const auto& d) {
      return deleted_key_bundle(m_impl->config.base_url, d.first, d.second);
    });
  });
}

Result<Json> Vault::list_deleted_keys(const CallContext& ctx) {
  return m_impl->run(ctx, "GetDeletedKeys", [&](Op&) { return m_impl->list_deleted_keys(); });
}

Result<Json> Vault::recover_deleted_key(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "RecoverDeletedKey",
                     [&](Op& op) { return m_impl->recover_deleted_key(op, name); });
}

Status Vault::purge_deleted_key(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "PurgeDeletedKey",
                     [&](Op& op) { return m_impl->purge_deleted_key(op, name); });
}

Result<Json> Vault::sign(const CallContext& ctx, std::string_view name, std::string_view version,
                         const Json& params) {
  return m_impl->run(ctx, "Sign", [&](Op& op) { return m_impl->sign(op, name, version, params); });
}

Result<Json> Vault::verify(const CallContext& ctx, std::string_view name, std::string_view version,
                           const Json& params) {
  return m_impl->run(ctx, "Verify",
                     [&](Op& op) { return m_impl->verify(op, name, version, params); });
}

Result<Json> Vault::encrypt(const CallContext& ctx, std::string_view name, std::string_view version,
                            const Json& params) {
  return m_impl->run(ctx, "Encrypt",
                     [&](Op& op) { return m_impl->encrypt(op, name, version, params); });
}

Result<Json> Vault::decrypt(const CallContext& ctx, std::string_view name, std::string_view version,
                            const Json& params) {
  return m_impl->run(ctx, "Decrypt",
                     [&](Op& op) { return m_impl->decrypt(op, name, version, params); });
}

Result<Json> Vault::wrap_key(const CallContext& ctx, std::string_view name,
                             std::string_view version, const Json& params) {
  return m_impl->run(ctx, "WrapKey",
                     [&](Op& op) { return m_impl->wrap_key(op, name, version, params); });
}

Result<Json> Vault::unwrap_key(const CallContext& ctx, std::string_view name,
                               std::string_view version, const Json& params) {
  return m_impl->run(ctx, "UnwrapKey",
                     [&](Op& op) { return m_impl->unwrap_key(op, name, version, params); });
}

Result<Json> Vault::rotate_key(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "RotateKey",
                     [&](Op& op) { return m_impl->rotate_key(op, name, "on demand"); });
}

Result<Json> Vault::get_rotation_policy(const CallContext& ctx, std::string_view name) {
  return m_impl->run(ctx, "GetKeyRotationPolicy",
                     [&](Op& op) { return m_impl->get_rotation_policy(op, name); });
}

Result<Json> Vault::update_rotation_policy(const CallContext& ctx, std::string_view name,
                                           const Json& policy) {
  return m_impl->run(ctx, "UpdateKeyRotationPolicy",
                     [&](Op& op) { return m_impl->update_rotation_policy(op, name, policy); });
}

Result<std::size_t> Vault::run_due_rotations() {
  m_impl->refresh_settings();
  std::lock_guard<std::mutex> lock(m_impl->due_mutex);
  m_impl->last_due_check.store(m_impl->now());
  return m_impl->due_actions();
}

Result<Json> Vault::platform_report(const CallContext& ctx) {
  return m_impl->run(ctx, "PlatformReport", [&](Op& op) { return m_impl->platform_report(op); });
}

std::int64_t Vault::now() const {
  return m_impl->now();
}

std::uint64_t Vault::module_recycles() const {
  return m_impl->recycles.load();
}

Result<std::vector<AuditRecord>> Vault::audit_log(std::int64_t after_id) const {
  return m_impl->store->audit_log(after_id);
}

Result<Json> Vault::run_key_task(const CallContext& ctx, std::string_view operation,
                                 std::string_view name, std::string_view version,
                                 const KeyTask& task) {
  const std::string op_name(operation);
  return m_impl->run(ctx, op_name.c_str(), [&](Op& op) -> Result<Json> {
    KEYPORT_ASSIGN_OR_RETURN(KeyVersionRecord r, m_impl->resolve(op, name, version));
    WithObject with_object = [&](const ObjectTask& fn) -> Status {
      std::shared_lock<std::shared_mutex> objects(m_impl->objects_mutex);
      KEYPORT_ASSIGN_OR_RETURN(auto lease, m_impl->pool->acquire());
      auto h = m_impl->handles.find(*lease, r.cka_id, r.spec.family);
      if (!h) {
        return tl::unexpected(lookup_error(h.error(), r));
      }
      return fn(*lease, *h);
    };
    std::string reason;
    Result<Json> out = task(r, with_object, reason);
    if (out) {
      op.note = std::move(reason);
    } else {
      op.failure_reason = std::move(reason);
    }
    return out;
  });
}

const fs::path& Vault::dir() const {
  return m_impl->dir;
}

}  // namespace keyport::vault

// SPDX-License-Identifier: Apache-2.0
// INTERNAL to keyport::vault (not installed, not for other libraries): the implementation of
// Vault, shared by the files that implement it, one per concern:
//   vault.cpp           open, init, the audit log, the run/tick machinery, module recycling,
//                       journal replay and the orphan sweep (token housekeeping);
//   vault_keys.cpp      create, get, list, update, delete, recover, purge;
//   vault_import.cpp    ImportKey (BYOK transfer blobs and plain JWKs);
//   vault_crypto.cpp    sign, verify, encrypt, decrypt, wrapKey, unwrapKey;
//   vault_rotation.cpp  rotation, rotation policies, due lifetime actions, the platform report;
//   vault_backup.cpp    BackupKey, RestoreKey and the backup domain's keys in the token;
//   vault_security_domain.cpp  the Managed HSM security domain and activation;
//   release.cpp         Secure Key Release (through run_key_task).
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "byok/profile.h"
#include "core/error.h"
#include "core/json.h"
#include "pkcs11/session.h"
#include "pkcs11/session_pool.h"
#include "pkcs11/wrap.h"
#include "vault/algorithms.h"
#include "vault/backup_blob.h"
#include "vault/errors.h"
#include "vault/hsm.h"
#include "vault/model.h"
#include "vault/rbac.h"
#include "vault/rotation.h"
#include "vault/signing.h"
#include "vault/store.h"
#include "vault/token.h"
#include "vault/vault.h"

namespace keyport::vault {

inline constexpr std::int64_t kSecondsPerDay = 86400;
// Every key version's token object is made CKA_EXTRACTABLE=TRUE (passed as
// KeyObjectSpec::exportable, which sets CKA_EXTRACTABLE), whatever the key's `exportable`
// attribute says, so that BackupKey can wrap it under the backup-domain key (C_WrapKey needs an
// extractable key). The vault wraps a key only in BackupKey (domain key) and, for exportable keys,
// in release; docs/threat-model.md (T21) says why not CKA_WRAP_WITH_TRUSTED. Objects made before
// this are not extractable: BackupKey refuses them.
inline constexpr bool kTokenExtractable = true;
// The caller the audit log names for what the vault does by itself.
inline constexpr const char* kSystemCaller = "vault";

namespace detail {

// "kv:<name>:<version>": the label of a key version's token object.
std::string label_of(std::string_view name, std::string_view version);
// Validates a base URL ("https://host[:port]", no path) and returns it normalised, with its host.
Result<std::pair<std::string, std::string>> normalise_base_url(std::string_view url);
bool valid_vault_name(std::string_view name);
KeyFamily family_of_kty(std::string_view base);
// Splits "RSA-HSM" into ("RSA", true). Returns nullopt for unknown key types.
std::optional<std::pair<std::string, bool>> split_kty(std::string_view kty);
// "RSA", "EC" or "oct".
std::string family_title(KeyFamily f);
// The DER SubjectPublicKeyInfo of an RSA or EC version's stored public key.
Result<Bytes> spki_of(const KeyVersionRecord& r);
// Maps a token lookup failure for a key the database knows to KeyNotFound (purged meanwhile).
Error lookup_error(const Error& e, const KeyVersionRecord& r);

}  // namespace detail

// The audit context of one call: filled in as the operation learns what it works on.
// The two backup-domain keys' values (the security domain carries them; nothing else reads them).
struct DomainKeyValues {
  SecretBytes wrap;
  SecretBytes mac;
};

struct Op {
  std::string operation;
  std::string name;
  std::string version;
  std::string note;
  int success_status = 200;
  bool suppress_audit = false;  // a simulated crash writes nothing, as a real one would
  std::string failure_reason;   // audited instead of the error's message (run_key_task)
};

// Work on the token object of one key version: a leased, logged-in session and the object.
using ObjectTask = std::function<Status(const p11::Session&, CK_OBJECT_HANDLE)>;
// Runs an ObjectTask on the resolved version's object, holding the object lock shared (no purge
// meanwhile); KeyNotFound when the object is gone.
using WithObject = std::function<Status(const ObjectTask&)>;
// A key operation: `record` is the resolved version. `audit_reason`, when the task sets it, is
// what the audit row records: the success note, or on failure the real reason of a refusal
// whose returned error must not tell the caller why.
using KeyTask = std::function<Result<Json>(
    const KeyVersionRecord& record, const WithObject& with_object, std::string& audit_reason)>;

struct Vault::Impl {
  std::filesystem::path dir;
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
  // Managed HSM local RBAC and settings (vault/rbac.h), loaded from the store at open.
  std::unique_ptr<Rbac> rbac;
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
  // The key attestation signing identity (vault/attestation.h), loaded on first use and again
  // after a day (it is reissued 30 days before it expires).
  std::mutex attestation_mutex;
  std::shared_ptr<const SigningIdentity> attestation_identity;
  std::int64_t attestation_identity_loaded = 0;
  // Full backup and restore (vault_full_backup.cpp): the storage folder and the jobs' statuses.
  std::filesystem::path backup_storage;
  std::mutex jobs_mutex;
  std::map<std::string, Json> jobs;  // jobId -> operation status

  ~Impl();

  // Runs fn(session, handle) on the token object of the version `r` (looked up as `family`),
  // holding the object lock shared (no purge meanwhile) and a pooled session: the frame of every
  // token operation on an existing key. fn returns a Result or Status, returned as it is.
  template <typename Fn>
  auto with_key_object(const KeyVersionRecord& r, KeyFamily family, Fn&& fn)
      -> decltype(fn(std::declval<const p11::Session&>(), CK_OBJECT_HANDLE{})) {
    std::shared_lock<std::shared_mutex> objects(objects_mutex);
    KEYPORT_ASSIGN_OR_RETURN(auto lease, pool->acquire());
    auto h = handles.find(*lease, r.cka_id, family);
    if (!h) {
      return tl::unexpected(detail::lookup_error(h.error(), r));
    }
    return fn(*lease, *h);
  }

  std::int64_t now() const { return clock() + clock_offset.load(); }

  // What KeyAttributes say of this vault's recovery settings.
  Recovery recovery() const {
    return Recovery{config.recovery_level(), config.soft_delete_retention_days};
  }

  byok::TargetKind target() const {
    return config.flavor == Flavor::kManagedHsm ? byok::TargetKind::kManagedHsm
                                                : byok::TargetKind::kKeyVault;
  }

  // --- the run machinery, the audit log, housekeeping (vault.cpp) ---

  // Applies a changed DIR/settings.json; returns true when it changed.
  bool refresh_settings();
  // Before every public call: due lifetime actions, unless checked within the last vault second.
  void tick();
  void audit(const std::string& caller, const Op& op, const Error* error);
  void audit_system(const std::string& operation, const std::string& label, std::string note,
                    const Error* error = nullptr);

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
    if (!activated.load() && !is_security_domain_operation(operation)) {
      using R = decltype(fn(op));
      return finish(ctx, op, R(not_activated_error()));
    }
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

  // HSMSecurityDomain_*: the only operations of a Managed HSM that is not activated.
  static bool is_security_domain_operation(std::string_view operation) {
    return operation.starts_with("HSMSecurityDomain");
  }
  // The refusal of everything else before activation (403 Forbidden).
  tl::unexpected<Error> not_activated_error() const;

  void maybe_recycle_module();
  // Under objects_mutex held exclusively. False (nothing done) when something else in the
  // process holds the module (a session of its own): finalising would pull it from under it.
  Result<bool> recycle_module();

  // The active key `name` and its version (latest when empty); KeyNotFound otherwise.
  Result<KeyVersionRecord> resolve(Op& op, std::string_view name, std::string_view version);

  Status check_usable(const KeyVersionRecord& r, std::string_view kv_op, bool time_bound);

  Status replay_journal();
  Status sweep_orphans();

  // --- key management (vault_keys.cpp) ---

  // Journal guard for a token object being created: the pending row exists before the object,
  // and unless the version is committed (or a crash is simulated) the object and the row are
  // removed on every path.
  class Pending {
   public:
    Pending(Impl& v, const p11::Session& s, Bytes id) : m_v(v), m_s(s), m_id(std::move(id)) {}
    Pending(const Pending&) = delete;
    Pending& operator=(const Pending&) = delete;
    ~Pending();
    Status begin(const std::string& label);
    void committed() { m_done = true; }
    void abandon() { m_done = true; }

   private:
    Impl& m_v;
    const p11::Session& m_s;
    Bytes m_id;
    bool m_begun = false;
    bool m_done = false;
  };

  struct CommonIn {
    std::vector<std::string> key_ops;
    bool enabled = true;
    std::optional<std::int64_t> nbf, exp;
    bool exportable = false;
    Json tags = Json::object();
    std::optional<ReleasePolicy> policy;
  };

  // Returns the name as the vault spells it (names compare without case: an existing key keeps
  // its first spelling), or Conflict when that key is soft-deleted.
  Result<std::string> canonical_live_name(std::string_view name);

  // Commits a new version whose token object exists, or simulates a crash first.
  Result<Json> commit(Op& op, Pending& pending, KeyVersionRecord rec);

  // key_ops (from `ops_holder`), attributes, tags and release_policy of a create or import.
  Result<CommonIn> parse_common(const Json& params, const Json& ops_holder, KeyFamily family);

  KeyVersionRecord new_record(std::string_view name, const std::string& version, Bytes id,
                              const std::string& kty, const KeySpec& spec, CommonIn c,
                              Json public_jwk, std::string origin);

  Status check_profile(const KeySpec& spec);

  Result<Json> create_key(Op& op, std::string_view name, const Json& params,
                          const char* origin = "generated");

  Result<Json> get_key(Op& op, std::string_view name, std::string_view version);

  Result<Json> list_keys();

  Result<Json> list_key_versions(Op& op, std::string_view name);

  Result<Json> update_key(Op& op, std::string_view name, std::string_view version,
                          const Json& params);

  Result<std::pair<KeyRecord, KeyVersionRecord>> deleted_key(Op& op, std::string_view name);

  Result<Json> delete_key(Op& op, std::string_view name);

  Result<Json> list_deleted_keys();

  Result<Json> recover_deleted_key(Op& op, std::string_view name);

  Status purge_deleted_key(Op& op, std::string_view name);

  // Destroys the versions' token objects and the rows of a deleted key (purge's work, also the
  // vault's own purge when the scheduledPurgeDate has passed). Returns the audit note.
  Result<std::string> purge_now(const std::string& name);

  // Purges every deleted key whose scheduledPurgeDate is at or before now(). Runs from tick()
  // (before every public call, at most once per vault second) and at open; audited as
  // "PurgeDeletedKey" by caller "vault". Returns how many keys were purged.
  Result<std::size_t> purge_due();

  // --- backup and restore (vault_backup.cpp) ---

  // At open, before anything else uses the token: makes sure the token holds the backup-domain
  // keys of config.backup_domain (a new domain id is made and vault.json rewritten when the
  // folder has none). Returns false (backups unavailable, logged) when the keys cannot be made.
  Result<bool> ensure_backup_domain();
  bool has_backup_domain = false;
  // Generates the domain keys of `domain` the token lacks; true when it made any.
  Result<bool> make_domain_keys(const p11::Session& s, const std::string& domain);
  // The values of the domain keys, for the security domain (vault_security_domain.cpp) only: each
  // wrapped by an ephemeral token key and unwrapped as a non-sensitive session key.
  Result<DomainKeyValues> read_domain_keys(const p11::Session& s, const std::string& domain);
  // Stores received domain key values as the token objects of `domain` (kAlreadyExists when the
  // token holds keys of that domain).
  Status store_domain_keys(const p11::Session& s, const std::string& domain,
                           const DomainKeyValues& values);

  Result<Json> backup_key(Op& op, std::string_view name);

  Result<Json> restore_key(Op& op, const Json& params);
  // RestoreKey of a decoded blob (restore_key and the full restore's keys).
  Result<Json> restore_blob(Op& op, std::span<const std::uint8_t> blob);
  // A blob's contents once its frame, domain and MAC (in the token) checked out; the one
  // BadParameter for any altered byte (the reason in op.failure_reason).
  Result<BackupContents> authentic_backup(Op& op, const p11::Session& s,
                                          std::span<const std::uint8_t> blob);

  // The backup-domain join, Vault::begin_backup_domain_join and the two after it.
  Result<Bytes> begin_backup_domain_join(Op& op);
  Result<std::string> export_backup_domain(Op& op, std::span<const std::uint8_t> spki);
  Status finish_backup_domain_join(Op& op, std::string_view document);

  // --- the Managed HSM security domain (vault_security_domain.cpp) ---

  // False from `vault init --require-activation` until a security-domain download or upload.
  std::atomic<bool> activated{true};
  Result<Json> sd_download(Op& op, const Json& certificate_set);
  Result<Json> sd_transfer_key(Op& op);
  Result<Json> sd_upload(Op& op, const Json& body);
  Result<Json> sd_status() const;
  mutable std::mutex sd_mutex;  // the latest operation's status, and one operation at a time
  Json sd_last_status;

  // --- import (vault_import.cpp) ---

  Result<Json> import_key(Op& op, std::string_view name, const Json& params);

  Result<Json> import_byok(Op& op, std::string_view name, const Json& key, KeyFamily family,
                           CommonIn common);

  Result<Json> import_plain(Op& op, std::string_view name, const Json& key, KeyFamily family,
                            const std::string& kty, CommonIn common);

  // --- key operations (vault_crypto.cpp) ---

  Result<SignAlg> sign_alg_for(const KeyVersionRecord& r, const Json& params);

  Result<Json> sign(Op& op, std::string_view name, std::string_view version, const Json& params);

  Result<Json> verify(Op& op, std::string_view name, std::string_view version, const Json& params);

  // encrypt and wrapKey for RSA keys: the public operation, in OpenSSL.
  Result<Json> rsa_encrypt(Op& op, const KeyVersionRecord& r, const Json& params);

  // decrypt and unwrapKey for RSA keys: the private operation, in the token.
  Result<Json> rsa_decrypt(Op& op, const KeyVersionRecord& r, const Json& params);

  Result<Json> encrypt(Op& op, std::string_view name, std::string_view version, const Json& params);

  Result<Json> decrypt(Op& op, std::string_view name, std::string_view version, const Json& params);

  // Full backup and restore (vault_full_backup.cpp).
  Result<std::filesystem::path> storage_container(const Json& sas);
  Result<Json> full_backup(Op& op, const Json& params);
  Result<Json> full_restore(Op& op, const Json& params, std::string_view only_key);
  Json start_job();
  Json finish_job(Json job, const Result<std::string>& outcome);
  Result<Json> job_status(std::string_view job_id);

  // GetKeyAttestation (vault_attestation.cpp).
  Result<Json> key_attestation(Op& op, std::string_view name, std::string_view version);

  // encrypt and decrypt for oct-HSM keys: AES-GCM/CBC/CBCPAD in the token.
  Result<AesEncAlg> aes_enc_alg_for(Op& op, const KeyVersionRecord& r, const Json& params);
  Result<Json> aes_encrypt(Op& op, const KeyVersionRecord& r, const Json& params);
  Result<Json> aes_decrypt(Op& op, const KeyVersionRecord& r, const Json& params);

  Result<AesKwAlg> aes_kw_alg_for(Op& op, const KeyVersionRecord& r, const Json& params);

  // wrapKey (wrapping) and unwrapKey: an RSA key encrypts or decrypts; an AES key runs `aes_kw`
  // once the checks both operations share have passed.
  Result<Json> key_wrap_op(
      Op& op, std::string_view name, std::string_view version, const Json& params, bool wrapping,
      const std::function<Result<Json>(const KeyVersionRecord&, AesKwAlg)>& aes_kw);

  Result<Json> wrap_key(Op& op, std::string_view name, std::string_view version,
                        const Json& params);

  Result<Json> unwrap_key(Op& op, std::string_view name, std::string_view version,
                          const Json& params);

  // --- rotation and the HSM platform (vault_rotation.cpp) ---

  Result<RotationPolicy> policy_of(const std::string& name,
                                   std::optional<RotationPolicyRecord>* record = nullptr);

  Result<Json> rotate_key(Op& op, std::string_view name, const std::string& why);

  Result<Json> get_rotation_policy(Op& op, std::string_view name);

  Result<Json> update_rotation_policy(Op& op, std::string_view name, const Json& body);

  Result<std::size_t> due_actions();

  Result<Json> platform_report(Op& op);

  // --- release (release.cpp) ---

  // Resolves the active key `name` (version: latest when empty; KeyNotFound otherwise), runs
  // `task` and writes one audit row named `operation` with the outcome.
  Result<Json> run_key_task(const CallContext& ctx, std::string_view operation,
                            std::string_view name, std::string_view version, const KeyTask& task);
};

}  // namespace keyport::vault

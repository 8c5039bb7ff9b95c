// SPDX-License-Identifier: Apache-2.0
// A simulated Azure Key Vault / Managed HSM as a library: the key store behind a REST server.
//
// A vault lives in one data folder:
//   vault.json  flavor ("key-vault" or "managed-hsm"), vault name, base URL, created time;
//   vault.db    SQLite (WAL): keys, versions, attributes, tags, release policies, soft-deleted
//               keys, a journal of token objects being created or destroyed, and an audit log
//               of every operation (never secrets);
//   hsm/        in own-folder mode: the vault's own SoftHSM2 token folder (softhsm2.conf,
//               tokens/, and the randomly generated user PIN in hsm/pin, mode 0600). THIS IS A
//               SIMULATION: the PIN sits next to the token it protects.
//   vault.lock  held (flock) while a Vault is open, so one folder is served by one Vault.
//
// Key material lives only in the vault token (CKA_TOKEN, CKA_SENSITIVE=TRUE; CKA_EXTRACTABLE=FALSE
// unless the key is exportable); private keys never leave it in clear. Each key version is its own
// token object labelled "kv:<name>:<version>" whose random 16-byte CKA_ID is recorded in vault.db.
//
// Every operation takes the JSON body of the matching Key Vault REST API 7.5 request and returns
// the JSON body of its response (KeyBundle, KeyListResult, DeletedKeyBundle, KeyOperationResult,
// KeyVerifyResult), so that a REST server is a thin layer: route, authenticate, call, serialise.
// Errors carry the Key Vault error code in Error::detail(); vault/errors.h maps them to HTTP
// statuses and error bodies. Every call, success or refusal, appends one audit row.
//
// Thread safety: a Vault may be used from any number of threads at once. PKCS#11 work runs on a
// pool of sessions (one session per call, at most VaultOptions::max_sessions open at a time);
// vault.db is one SQLite connection behind a mutex, held only for short statements and
// transactions, never across token operations.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "core/secret.h"
#include "pkcs11/module.h"
#include "pkcs11/wrap.h"
#include "vault/config.h"
#include "vault/errors.h"
#include "vault/store.h"

namespace keyport::vault {

// The vault's notion of "now", in unix seconds. Injected so that tests (and the key-rotation
// work) can move time; defaults to the system clock.
using Clock = std::function<std::int64_t()>;
// Returns a Clock reading the system clock.
Clock system_clock();

// A clock that moves only when told to. Thread-safe.
class ManualClock {
 public:
  explicit ManualClock(std::int64_t start) : m_now(start) {}
  std::int64_t now() const { return m_now.load(); }
  void set(std::int64_t t) { m_now.store(t); }
  void advance(std::int64_t seconds) { m_now.fetch_add(seconds); }
  // Returns a Clock reading this object (which must outlive every Vault using it).
  Clock clock() const {
    return [this] { return now(); };
  }

 private:
  std::atomic<std::int64_t> m_now;
};

// Test-only fault injection: where a create or import stops as if the process had died.
enum class CrashPoint {
  kNone,
  // After the token object of a new version exists, before its database row is committed.
  kAfterTokenObject,
};

// VaultOptions::module_recycle_ops in own-folder mode unless set.
inline constexpr std::uint64_t kDefaultModuleRecycleOps = 1024;

struct VaultOptions {
  // Attached-token mode (tests, real HSMs): when `module` is set the vault uses the initialised
  // token `token_label` of that already loaded module, logging in with `pin`; hsm/ is not used.
  std::shared_ptr<p11::Module> module;
  std::string token_label;
  SecretBytes pin;

  // Own-folder mode (module unset): the SoftHSM2 library to load for hsm/. SoftHSM reads
  // SOFTHSM2_CONF once, in C_Initialize: Vault::open sets it to hsm/softhsm2.conf before loading
  // the module, and refuses (kUnsupported) when this process already has the library loaded for
  // anything else (another vault folder, tests' token folder): use attached-token mode then.
  std::string softhsm_module;  // empty: the build's default SoftHSM2 module

  Clock clock;  // empty: system_clock()
  // Upper bound on concurrently open PKCS#11 sessions (calls beyond it wait).
  std::size_t max_sessions = 8;
  // At open, destroy token objects labelled "kv:*" whose CKA_ID no version in vault.db has.
  // nullopt: on in own-folder mode (the token belongs to the vault alone), off in attached mode
  // (the token may hold another vault's objects). Interrupted creates and purges are always
  // cleaned up through the journal, whatever this says.
  std::optional<bool> sweep_unknown_objects;
  // SoftHSM 2.6 frees a session object (made by every create, wrap and release) only in
  // C_Finalize: about 200 bytes each stay allocated until then (docs/threat-model.md, T15). When
  // the vault owns its module (own-folder mode, and this process initialised it), it finalises and
  // initialises the module again after this many token operations, waiting for the operations in
  // flight. nullopt: kDefaultModuleRecycleOps in own-folder mode; 0: never. Attached mode shares
  // the module with its caller and refuses a non-zero value.
  std::optional<std::uint64_t> module_recycle_ops;
  CrashPoint crash_point = CrashPoint::kNone;  // tests only
  // Managed HSM full backup and restore: the folder standing in for Azure Blob Storage. A
  // storageResourceUri https://ACCOUNT.blob.core.windows.net/CONTAINER is the folder
  // backup_storage/ACCOUNT.blob.core.windows.net/CONTAINER. Empty: full backup and restore are
  // refused (fail closed).
  std::filesystem::path backup_storage;
};

// Who is calling: recorded in the audit log with every operation.
struct CallContext {
  std::string caller;  // e.g. the authenticated principal, "cli", "test"
};

class Rbac;

class Vault {
 public:
  // Writes `dir`/vault.json for a new vault (creating `dir` if needed). Returns kAlreadyExists
  // when vault.json exists, kInvalidArgument for a bad name or base URL, kIo on write failure.
  // The token and the database are created by the first open().
  static Status init(const std::filesystem::path& dir, VaultConfig config, const Clock& clock = {});

  // Opens the vault in `dir`: reads vault.json, locks the folder, loads or attaches the token
  // (own-folder mode creates hsm/ and its token on first use), probes the token's wrap
  // capabilities, opens vault.db, replays the journal and (see VaultOptions) sweeps orphans.
  // Returns the vault, or kNotFound (no vault.json), kAlreadyExists (folder in use),
  // kUnsupported (module already loaded for something else), kAuth (PIN), kPkcs11, kIo.
  static Result<std::unique_ptr<Vault>> open(const std::filesystem::path& dir,
                                             VaultOptions options = {});

  ~Vault();
  Vault(const Vault&) = delete;
  Vault& operator=(const Vault&) = delete;

  const VaultConfig& config() const;
  // "myvault.vault.azure.net" or "127.0.0.1:8443" (lower case).
  const std::string& host() const;
  // Managed HSM local RBAC and the Managed HSM settings (vault/rbac.h): role definitions, role
  // assignments, settings, and the check the REST server makes on managed-hsm folders.
  Rbac& rbac();
  const Rbac& rbac() const;
  // What the vault token can do for BYOK import (probed once at open).
  const p11::WrapCapabilities& capabilities() const;

  // --- Key management (REST: keys.json of API 7.5) ---

  // CreateKey (POST /keys/{name}/create, body KeyCreateParameters: kty, key_size,
  // public_exponent, crv, key_ops, attributes, tags, release_policy). Returns the new version's
  // KeyBundle, or BadParameter (bad name or parameters), Conflict (name soft-deleted).
  Result<Json> create_key(const CallContext& ctx, std::string_view name, const Json& params);

  // ImportKey (PUT /keys/{name}, body KeyImportParameters: key, Hsm/hsm, attributes, tags,
  // release_policy). `key` is either a BYOK key (kty RSA-HSM/EC-HSM/oct-HSM, crv for EC, key_hsm
  // = base64url or base64 of a whole .byok file wrapped to a KEK of this vault) or a plain
  // private JWK (RSA n,e,d,p,q,dp,dq,qi; EC crv,x,y,d; oct k). Importing to an existing name adds
  // a version. Returns the new version's KeyBundle, or BadParameter (any problem with the blob,
  // its KEK or the key; the store is unchanged), Conflict (name soft-deleted).
  Result<Json> import_key(const CallContext& ctx, std::string_view name, const Json& params);

  // GetKey (GET /keys/{name}/{version}; empty version = latest). Returns the KeyBundle with the
  // public key only (RSA n/e, EC crv/x/y, nothing for oct), or KeyNotFound, Forbidden
  // (KeyDisabled: the version is disabled).
  Result<Json> get_key(const CallContext& ctx, std::string_view name,
                       std::string_view version = {});

  // GetKeys (GET /keys). Returns a KeyListResult of KeyItems (kid without version, attributes and
  // tags of the latest version) for every key that is not soft-deleted.
  Result<Json> list_keys(const CallContext& ctx);

  // GetKeyVersions (GET /keys/{name}/versions). Returns a KeyListResult of KeyItems (versioned
  // kid), oldest first, or KeyNotFound.
  Result<Json> list_key_versions(const CallContext& ctx, std::string_view name);

  // UpdateKey (PATCH /keys/{name}/{version}; empty version = latest; body KeyUpdateParameters:
  // key_ops, attributes {enabled, nbf, exp}, tags, release_policy). Returns the updated KeyBundle,
  // or KeyNotFound, BadParameter (invalid values; changing an immutable release policy;
  // changing `exportable`; adding or removing `import`).
  Result<Json> update_key(const CallContext& ctx, std::string_view name, std::string_view version,
                          const Json& params);

  // DeleteKey (DELETE /keys/{name}): soft-deletes every version. Returns the DeletedKeyBundle
  // (latest version, recoveryId, deletedDate, scheduledPurgeDate = deletedDate + 90 days), or
  // KeyNotFound.
  Result<Json> delete_key(const CallContext& ctx, std::string_view name);

  // GetDeletedKey (GET /deletedkeys/{name}). Returns the DeletedKeyBundle, or KeyNotFound.
  Result<Json> get_deleted_key(const CallContext& ctx, std::string_view name);

  // GetDeletedKeys (GET /deletedkeys). Returns a DeletedKeyListResult of DeletedKeyItems.
  Result<Json> list_deleted_keys(const CallContext& ctx);

  // RecoverDeletedKey (POST /deletedkeys/{name}/recover). Returns the KeyBundle of the latest
  // version, or KeyNotFound (not deleted).
  Result<Json> recover_deleted_key(const CallContext& ctx, std::string_view name);

  // PurgeDeletedKey (DELETE /deletedkeys/{name}; REST answers 204). Destroys every version's
  // token object and forgets the key. Returns OK, or KeyNotFound (not deleted).
  Status purge_deleted_key(const CallContext& ctx, std::string_view name);

  // BackupKey (POST /keys/{name}/backup). Returns {"value": base64url blob} holding every version
  // (attributes, tags, release policy, key material wrapped in the token under the backup
  // domain's key) and the rotation policy, authenticated by the domain's MAC key in the token
  // (vault/backup_blob.h). KeyNotFound when the key is missing or soft-deleted; BadParameter when
  // a version's token object predates backups (not extractable); Forbidden when the vault has no
  // backup-domain keys (attached token whose keys could not be made).
  Result<Json> backup_key(const CallContext& ctx, std::string_view name);

  // RestoreKey (POST /keys/restore, body {"value": blob}). Recreates the key with every version
  // and returns the KeyBundle of the latest. Refused with nothing changed (no row, no token
  // object): Conflict when the name exists, active or soft-deleted; BadParameter when the blob is
  // malformed, from another backup domain, or altered in any byte.
  Result<Json> restore_key(const CallContext& ctx, const Json& params);

  // The vault's backup domain (a UUID; vault.json "backup_domain"; empty while it joins one).
  const std::string& backup_domain() const;

  // Joining another vault's backup domain (`keyport vault init --backup-domain`; docs/vault.md).
  // Three small steps, so that the two vaults need not be open in one process (two own-folder
  // vaults cannot be: SoftHSM reads its configuration once per process); only a public key and
  // wrapped keys pass between them, and the domain keys never exist outside a token unwrapped.
  //
  // 1. The joining vault (made by Vault::init with VaultConfig::backup_domain_join): makes an
  //    RSA-3072 transfer key pair in its token (private key "kp:backup-domain-transfer":
  //    non-extractable, unwrap only; a stale one is replaced) and returns the public key, DER
  //    SubjectPublicKeyInfo. FailedPrecondition when the vault is not joining.
  Result<Bytes> begin_backup_domain_join(const CallContext& ctx);
  // 2. A vault of the domain: wraps its two domain keys in its token (RSA-OAEP + AES-KWP, the BYOK
  //    transfer wrap) to `transfer_spki` (RSA, at least 3072 bits) and returns the transfer
  //    document (vault/backup_blob.h DomainKeyTransfer, JSON). Forbidden when this vault has no
  //    domain keys; FailedPrecondition when it is itself joining; InvalidArgument for a bad key.
  Result<std::string> export_backup_domain(const CallContext& ctx,
                                           std::span<const std::uint8_t> transfer_spki);
  // 3. The joining vault: unwraps the domain keys under its transfer key into its token (same
  //    labels and templates as the domain's own), records the domain in vault.json (and drops
  //    "backup_domain_join"), destroys the transfer key. Nothing changes on failure: kFormat for a
  //    malformed document, InvalidArgument when it was made for another transfer key,
  //    AlreadyExists when the token already holds that domain's keys, IntegrityFailure when the
  //    token refuses to unwrap.
  Status finish_backup_domain_join(const CallContext& ctx, std::string_view transfer_document);

  // --- The Managed HSM security domain (docs/vault.md "Security domain") ---
  //
  // A Managed HSM made with VaultConfig::activation_required answers every other operation with
  // 403 Forbidden until one of these activates it. The file is Azure's (vault/security_domain.h);
  // what it carries is the backup domain's two keys, so an HSM that receives it restores the full
  // backups of the HSM that made it.

  // False until activation (`vault init --require-activation`); true for every other vault.
  bool activated() const;
  // OK once activated; else the 403 Forbidden every other operation gets meanwhile.
  Status require_activated() const;
  // HSMSecurityDomain_Download (POST /securitydomain/download, body CertificateSet): makes the
  // backup domain in the token, returns {"value": <security domain JSON text>} and activates the
  // HSM. BadParameter (Managed HSM only; 3..10 RSA >= 2048 certificates with x5c, quorum 2..10),
  // Conflict when the HSM is already activated.
  Result<Json> security_domain_download(const CallContext& ctx, const Json& certificate_set);
  // HSMSecurityDomain_TransferKey (GET /securitydomain/upload): makes the exchange key, an RSA-3072
  // pair in the token (private key non-extractable, decrypt only) with a certificate of the vault
  // CA, and returns {"key_format": "jwk", "transfer_key": <JWK with x5c, as a JSON string>}.
  // Conflict once activated.
  Result<Json> security_domain_transfer_key(const CallContext& ctx);
  // HSMSecurityDomain_Upload (POST /securitydomain/upload, body {"value": <restore blob>}): opens
  // the blob with the exchange key, stores the backup domain's keys in the token and activates
  // the HSM. Returns the operation status. BadParameter (not a restore blob; made for another
  // exchange key; altered: one message), Conflict when activated. Nothing changes on failure.
  Result<Json> security_domain_upload(const CallContext& ctx, const Json& body);
  // HSMSecurityDomain_DownloadPending / _UploadPending: {"status": "Success" | "Failed",
  // "status_details": ...} of the latest security-domain operation (both routes: azure-cli 2.45
  // polls the upload route after a download). NotFound before any.
  Result<Json> security_domain_status(const CallContext& ctx, bool upload);

  // --- Cryptographic operations (empty version = latest) ---

  // Sign (body KeySignParameters {alg, value = base64url digest}). alg RS256/384/512,
  // PS256/384/512 (RSA), ES256/ES384/ES512/ES256K (EC; must match the curve). Returns
  // KeyOperationResult {kid, value = base64url signature; r||s for EC}, or BadParameter (alg,
  // digest length), Forbidden (disabled, op not in key_ops, outside nbf/exp), KeyNotFound.
  Result<Json> sign(const CallContext& ctx, std::string_view name, std::string_view version,
                    const Json& params);

  // Verify (body KeyVerifyParameters {alg, digest, value = signature}). Returns KeyVerifyResult
  // {value: bool}; a wrong signature is {value: false}, not an error.
  Result<Json> verify(const CallContext& ctx, std::string_view name, std::string_view version,
                      const Json& params);

  // Encrypt (body KeyOperationsParameters {alg, value}): RSA1_5, RSA-OAEP, RSA-OAEP-256 (public
  // operation, done by OpenSSL). Returns KeyOperationResult {kid, value = ciphertext}.
  Result<Json> encrypt(const CallContext& ctx, std::string_view name, std::string_view version,
                       const Json& params);

  // Decrypt (body {alg, value = ciphertext}): RSA1_5 and RSA-OAEP by C_Decrypt in the token;
  // RSA-OAEP-256 by C_Decrypt(CKM_RSA_X_509) in the token and OAEP-SHA256 decoding on the host
  // (SoftHSM 2.6.1 refuses OAEP-SHA256). Any decryption failure is one BadParameter error.
  Result<Json> decrypt(const CallContext& ctx, std::string_view name, std::string_view version,
                       const Json& params);

  // WrapKey (body {alg, value = key bytes}): RSA-OAEP, RSA-OAEP-256, RSA1_5 (as encrypt) for RSA
  // keys; A128KW/A192KW/A256KW (RFC 3394 in the token, alg size = key size) for oct keys.
  Result<Json> wrap_key(const CallContext& ctx, std::string_view name, std::string_view version,
                        const Json& params);

  // UnwrapKey (body {alg, value = wrapped key}): the inverse of wrap_key. Returns
  // KeyOperationResult {kid, value = the key bytes}.
  Result<Json> unwrap_key(const CallContext& ctx, std::string_view name, std::string_view version,
                          const Json& params);

  // --- Rotation (REST 7.5: RotateKey, GetKeyRotationPolicy, UpdateKeyRotationPolicy) ---

  // RotateKey (POST /keys/{name}/rotate): a new version generated in the vault token with the
  // latest version's kty, size or curve, key_ops, tags, exportable and release policy; exp = now +
  // the policy's expiryTime when it has one. Older versions stay usable (decrypt, unwrapKey,
  // verify, and everything else their key_ops allow). Returns the new KeyBundle, or KeyNotFound.
  Result<Json> rotate_key(const CallContext& ctx, std::string_view name);

  // GetKeyRotationPolicy (GET /keys/{name}/rotationpolicy). Returns the key's KeyRotationPolicy,
  // or Key Vault's default (Notify 30 days before expiry) when none was set; KeyNotFound.
  Result<Json> get_rotation_policy(const CallContext& ctx, std::string_view name);

  // UpdateKeyRotationPolicy (PUT /keys/{name}/rotationpolicy, body KeyRotationPolicy). Validates
  // with Key Vault's rules (vault/rotation.h, docs/rotation.md) and returns the stored policy, or
  // BadParameter, KeyNotFound.
  Result<Json> update_rotation_policy(const CallContext& ctx, std::string_view name,
                                      const Json& policy);

  // Runs the lifetime actions that are due at now(): Rotate (a new version, audited as RotateKey
  // by caller "vault") and Notify (audited once per version as KeyNearExpiry). Every public call
  // runs this first (at most once per vault second unless the clock or settings moved); the
  // server also calls it from a background tick. Returns the number of rotations made.
  Result<std::size_t> run_due_rotations();

  // GetRandomBytes (POST /rng): {"value": <base64url of `count` bytes from the vault token's
  // C_GenerateRandom>}. Managed HSM only (Key Vault has no such operation: kUnsupported, 400);
  // `count` 1 to 128 (the REST specification's bounds), else BadParameter.
  Result<Json> get_random_bytes(const CallContext& ctx, const Json& params);
  // GetKeyAttestation (GET /keys/{name}[/{version}]/attestation): the KeyBundle with
  // attributes.attestation, a SIMULATED attestation of the version's token object signed by the
  // vault's attestation key (vault/attestation.h). Managed HSM only (BadParameter on a Key
  // Vault); KeyNotFound as GetKey.
  Result<Json> get_key_attestation(const CallContext& ctx, std::string_view name,
                                   std::string_view version);

  // Managed HSM full backup and restore (vault/vault_full_backup.cpp; docs/vault.md "Full backup
  // and restore"). Each begin_* runs the job before it answers, and answers as Azure's 202 does:
  // {status: "InProgress", jobId, startTime, ...}; the *_status calls give the outcome by jobId
  // ({status: Succeeded|Failed, statusDetails, error, startTime, endTime, jobId[,
  // azureStorageBlobContainerUri]}; kept in memory: 404 JobNotFound after a restart). Managed HSM
  // only; BadParameter for a bad body or when no backup storage is configured.
  // FullBackup: POST /backup {storageResourceUri, token}: every key's BackupKey blob and a
  // manifest in a new folder mhsm-NAME-YYYYMMDDHHMMSS of the container.
  Result<Json> begin_full_backup(const CallContext& ctx, const Json& params);
  Result<Json> full_backup_status(const CallContext& ctx, std::string_view job_id);
  // FullRestoreOperation: PUT /restore {sasTokenParameters, folderToRestore}: every key of the
  // folder, none when any name exists or any blob does not verify.
  Result<Json> begin_full_restore(const CallContext& ctx, const Json& params);
  // SelectiveKeyRestoreOperation: PUT /keys/{name}/restore {sasTokenParameters, folder}.
  Result<Json> begin_selective_key_restore(const CallContext& ctx, std::string_view name,
                                           const Json& params);
  Result<Json> restore_status(const CallContext& ctx, std::string_view job_id);

  // --- HSM platform ---

  // The keys whose latest version is on HSM platform "1" (created before the folder's
  // platform1_before setting; see vault/rotation.h VaultSettings), each with what to do: rotate
  // (by its policy or by hand), re-import the portable key as a new version (BYOK/JWK-imported
  // keys), or rotate and re-wrap the data keys it protects. {"cutover", "keys": [...]}.
  Result<Json> platform_report(const CallContext& ctx);

  // The latest version of `name` as stored, without an audit row or a permission check (the
  // server's --throttle reads the key's type and size from it); nullopt when there is none.
  Result<std::optional<KeyVersionRecord>> peek_latest(std::string_view name) const;

  // The vault's "now" (unix seconds): the clock plus the folder's clock_offset setting as the
  // settings file says now (one stat(2)).
  std::int64_t now() const;

  // --- Audit ---

  // How often the module was finalised and initialised again (VaultOptions::module_recycle_ops).
  std::uint64_t module_recycles() const;

  // Returns audit rows with id > after_id, oldest first.
  Result<std::vector<AuditRecord>> audit_log(std::int64_t after_id = 0) const;

  // The vault's data folder.
  const std::filesystem::path& dir() const;

 private:
  // The implementation: vault/vault_impl.h, internal to this library. Secure Key Release
  // (release.cpp) runs its key operation through it.
  struct Impl;
  friend class ReleaseService;

  explicit Vault(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace keyport::vault

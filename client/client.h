// SPDX-License-Identifier: Apache-2.0
// A Key Vault REST client for keyport's simulated vault (and, over HTTPS, anything that speaks the
// same API 7.5 routes): one interface, two transports.
//
//   Client::connect(HttpsOptions)  a running `keyport vault serve` (or any Key Vault endpoint) over
//                                  HTTPS with a bearer token (cpp-httplib, kept-alive connection);
//   Client::open_folder(dir)       a vault data folder opened in this process: the server's REST
//                                  routes (vault::RestApi) run in-process as a caller named "cli"
//                                  with every permission, so both transports send the same
//                                  requests and get the same answers.
//
// Every operation returns the JSON body of the REST answer (KeyBundle, KeyListResult items,
// KeyOperationResult, ...). A Key Vault error answer becomes an Error whose category follows the
// HTTP status (error_from_response) with the Key Vault code in detail(); a transport failure is
// kIo.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "byok/import_request.h"
#include "core/error.h"
#include "core/json.h"
#include "core/secret.h"
#include "vault/vault.h"

namespace keyport::vault {

// The api-version the client sends (the REST reference the vault follows).
inline constexpr std::string_view kClientApiVersion = "7.5";

// Turns a Key Vault error answer into an Error whose category gives the CLI's exit code: 404 ->
// kNotFound, 401 -> kAuth, 403 -> kPermissionDenied, 409 -> kAlreadyExists, 5xx -> kUnavailable
// (the vault failed on its side: retry later), any other status -> kInvalidArgument. The Key Vault
// error code (or "HTTP<status>") goes into detail().
Error error_from_response(int status, std::string_view body);

// One request and its answer, however the vault is reached.
class Transport {
 public:
  virtual ~Transport() = default;
  // `target` is a path with an optional, percent-encoded query ("/keys?maxresults=5"); the
  // api-version is added when the target has none. `body` is JSON text. Returns the status and
  // the raw body, or kIo when no answer came.
  struct Answer {
    int status = 0;
    std::string body;
  };
  virtual Result<Answer> send(std::string_view method, const std::string& target,
                              const std::optional<std::string>& body) = 0;
};

// How to reach a vault over HTTPS.
struct HttpsOptions {
  std::string url;      // https://host[:port] (IPv6 in brackets); no path
  SecretBytes token;    // the bearer token (sent in the Authorization header only)
  std::string ca_file;  // PEM of the CA to trust; empty: the system's trust store
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds read_timeout{120};
  std::chrono::seconds write_timeout{60};
  // Larger answers are refused (kFormat) as they arrive, whatever Content-Length says.
  std::size_t max_response_bytes = 16u << 20;
};

// How to open a vault folder in this process.
struct FolderOptions {
  VaultOptions vault;  // as Vault::open takes them (own-folder mode unless `module` is set)
};

// The KeyImportParameters body that uploads a .byok file: byok::build_import_request's body, as
// `keyport byok request` prints it. A kty spelled "RSA-HSM"/"EC-HSM"/"oct-HSM" is taken as
// RSA/EC/oct; any case is accepted.
Result<std::string> byok_import_body(std::span<const std::uint8_t> byok_file,
                                     byok::ImportRequestOptions options);

enum class KeyOperation { kEncrypt, kDecrypt, kWrapKey, kUnwrapKey };
// The symmetric members of KeyOperationsParameters (AES on oct-HSM keys): the IV (AES-CBC; AES-GCM
// decrypt), the additional authenticated data and the tag (AES-GCM). Absent members are not sent.
struct KeyOperationExtras {
  std::optional<Bytes> iv;
  std::optional<Bytes> aad;
  std::optional<Bytes> tag;
};
// The path segment: "encrypt", "decrypt", "wrapkey", "unwrapkey".
std::string_view to_string(KeyOperation op);

class Client {
 public:
  // Over HTTPS. kInvalidArgument for a URL that is not https://host[:port], kNotFound for a
  // missing CA file, kAuth for an empty token. Nothing is sent yet. Ignores SIGPIPE for the
  // process: a server closing a kept-alive connection must not kill the caller.
  static Result<Client> connect(HttpsOptions options);
  // A vault folder opened in this process (Vault::open's errors; kAlreadyExists says the folder
  // is in use, e.g. by `keyport vault serve`).
  static Result<Client> open_folder(const std::filesystem::path& dir, FolderOptions options = {});
  // Any other transport (tests).
  explicit Client(std::unique_ptr<Transport> transport);

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // A Key Vault key name (^[0-9a-zA-Z-]{1,127}$): kInvalidArgument (detail BadParameter)
  // otherwise. create_key and the imports check it before anything is sent, so that "a/b" is a bad
  // name rather than another route.
  static Status check_key_name(std::string_view name);

  // --- key management ---
  Result<Json> create_key(std::string_view name, const Json& params);
  // PUT /keys/{name} with a body made by byok_import_body (or any KeyImportParameters text).
  Result<Json> import_key(std::string_view name, const std::string& body);
  // A .byok file: the body from byok_import_body(file, options); the name is options.name.
  Result<Json> import_byok(std::span<const std::uint8_t> byok_file,
                           const byok::ImportRequestOptions& options);
  // A plain private JWK (its text), imported as {"key": jwk, "hsm": true when asked}.
  Result<Json> import_jwk(std::string_view name, const SecretBytes& jwk_text, bool hsm);
  Result<Json> get_key(std::string_view name, std::string_view version = {});
  Result<Json> update_key(std::string_view name, std::string_view version, const Json& params);
  // Every item of every page (nextLink followed to the end). `page_size` asks for pages of at
  // most that many items (maxresults, 1..25); the vault's default otherwise.
  Result<Json> list_keys(std::optional<unsigned> page_size = std::nullopt);
  Result<Json> list_deleted_keys(std::optional<unsigned> page_size = std::nullopt);
  Result<Json> list_versions(std::string_view name,
                             std::optional<unsigned> page_size = std::nullopt);
  Result<Json> delete_key(std::string_view name);
  Result<Json> get_deleted_key(std::string_view name);
  Result<Json> recover_deleted_key(std::string_view name);
  Status purge_deleted_key(std::string_view name);

  // --- key operations (empty version: the latest) ---
  Result<Json> sign(std::string_view name, std::string_view version, std::string_view alg,
                    std::span<const std::uint8_t> digest);
  // The KeyVerifyResult ({"value": bool}); a wrong signature is not an error here.
  Result<Json> verify(std::string_view name, std::string_view version, std::string_view alg,
                      std::span<const std::uint8_t> digest,
                      std::span<const std::uint8_t> signature);
  Result<Json> key_operation(KeyOperation op, std::string_view name, std::string_view version,
                             std::string_view alg, const SecretBytes& value,
                             const KeyOperationExtras& extras = {});
  // Secure Key Release: `target` is the attestation token; enc and nonce optional.
  Result<Json> release(std::string_view name, std::string_view version, std::string_view target,
                       const std::optional<std::string>& enc,
                       const std::optional<std::string>& nonce);

  // --- rotation and reports ---
  Result<Json> rotate_key(std::string_view name);
  // BackupKey: POST /keys/{name}/backup. Returns the blob's text (base64url, opaque).
  Result<std::string> backup_key(std::string_view name);
  // RestoreKey: POST /keys/restore {"value": blob}. Returns the restored key's KeyBundle.
  Result<Json> restore_key(std::string_view blob);
  Result<Json> get_rotation_policy(std::string_view name);
  Result<Json> set_rotation_policy(std::string_view name, const Json& policy);
  // Managed HSM's GetRandomBytes: {"value": base64url of `count` bytes}.
  Result<Json> random_bytes(int count);
  // Managed HSM full backup (POST /backup) and full or selective restore (PUT /restore,
  // PUT /keys/{name}/restore): starts the job, then polls its status route until it is no longer
  // InProgress, and returns the final operation status. A job that Failed is an error carrying
  // the job's error code as detail.
  Result<Json> full_backup(std::string_view storage_uri, const SecretBytes& sas_token);
  Result<Json> full_restore(std::string_view storage_uri, std::string_view folder,
                            const SecretBytes& sas_token, std::string_view key_name = {});
  // GetKeyAttestation (Managed HSM, api-version 7.6): the KeyBundle with attributes.attestation.
  Result<Json> key_attestation(std::string_view name, std::string_view version = {});
  // keyport's own route: {"cutover", "keys": [...]} (Vault::platform_report).
  Result<Json> platform_report();

  // --- Managed HSM security domain (data plane 7.2) ---
  // POST /securitydomain/download with a CertificateSet (vault/security_domain.h
  // download_request_json): the answer, {"value": <security domain text>}. A status that says
  // Failed afterwards is an error.
  Result<Json> security_domain_download(const Json& certificate_set);
  // GET /securitydomain/upload: {"key_format", "transfer_key": <JWK text with x5c>}.
  Result<Json> security_domain_transfer_key();
  // POST /securitydomain/upload {"value": restore_blob}, then the upload status until it is no
  // longer InProgress; a Failed status is an error carrying its details.
  Result<Json> security_domain_upload(std::string_view restore_blob);
  // GET /securitydomain/{download|upload}/pending.
  Result<Json> security_domain_status(bool upload);

  // --- Managed HSM local RBAC and settings (Managed HSM data plane 7.2 / 7.4) ---
  // `scope` is "/", "/keys" or "/keys/<name>"; `filter` is the $filter ("" for none). Lists
  // follow nextLink to the end and return the items.
  Result<Json> list_role_definitions(std::string_view scope, std::string_view filter = {});
  Result<Json> get_role_definition(std::string_view scope, std::string_view name);
  // PUT {"properties": properties} (roleName, description, permissions, assignableScopes).
  Result<Json> set_role_definition(std::string_view scope, std::string_view name,
                                   const Json& properties);
  Result<Json> delete_role_definition(std::string_view scope, std::string_view name);
  Result<Json> list_role_assignments(std::string_view scope, std::string_view filter = {});
  Result<Json> get_role_assignment(std::string_view scope, std::string_view name);
  // `role_definition_id`: the definition's id or its GUID.
  Result<Json> create_role_assignment(std::string_view scope, std::string_view name,
                                      std::string_view role_definition_id,
                                      std::string_view principal_id);
  Result<Json> delete_role_assignment(std::string_view scope, std::string_view name);
  // {"settings": [{name, type, value}]}, one setting, or the updated one.
  Result<Json> list_settings();
  Result<Json> get_setting(std::string_view name);
  Result<Json> update_setting(std::string_view name, std::string_view value);

  // Any route: the parsed answer (null for 204 or an empty body) or the vault's error.
  Result<Json> call(std::string_view method, const std::string& target,
                    const std::optional<std::string>& body = std::nullopt);

 private:
  Result<Json> list_all(std::string target);
  std::unique_ptr<Transport> m_transport;
};

}  // namespace keyport::vault

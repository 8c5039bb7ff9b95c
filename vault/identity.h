// SPDX-License-Identifier: Apache-2.0
// Managed identity for the simulated vault: the token endpoints Azure's credential chains call
// (App Service's IDENTITY_ENDPOINT + IDENTITY_HEADER, MSI_ENDPOINT + MSI_SECRET, Cloud Shell's
// MSI_ENDPOINT, the VM's IMDS path), the tokens they hand out, and the vault's check of them.
//
// Tokens are compact JWTs: header {"alg":"HS256","typ":"JWT","kid":...}, claims aud, iss, iat,
// nbf, exp, tid, oid, sub, appid, idtyp, ver, jti, xms_mirid, shaped as Entra ID's access tokens
// for managed identities. They are signed with HMAC-SHA256 under the vault folder's
// DIR/identity.key (32 random bytes, mode 0600): the vault is the only party that checks them.
// SIMULATED: Entra ID signs with RS256 keys it publishes; Azure clients never check a token's
// signature, so they cannot tell the difference.
//
// The vault accepts an identity token when its signature, kid and alg are right, nbf <= now < exp
// (the vault's clock), aud is the vault's challenge resource (a trailing '/' ignored), tid is the
// simulated tenant, and its oid is still an identity of the access file, whose permissions apply
// (so removing an identity from the file revokes its tokens on the next request).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/secret.h"
#include "vault/access.h"

namespace keyport::vault {

// The tenant of the simulated vault's challenge and tokens.
inline constexpr std::string_view kSimulatedTenant = "00000000-0000-0000-0000-000000000000";
// The signing key's file in a vault folder.
inline constexpr const char* kIdentityKeyFile = "identity.key";

struct IdentityClaims {
  std::string aud;
  std::string iss;
  std::string tid;
  std::string oid;
  std::string appid;
  std::int64_t iat = 0;
  std::int64_t nbf = 0;
  std::int64_t exp = 0;
};

class IdentityTokens {
 public:
  // Reads the key file, creating it (mode 0600, atomically) when it does not exist.
  static Result<IdentityTokens> open(const std::filesystem::path& key_file);
  explicit IdentityTokens(SecretBytes key);

  struct Issued {
    std::string access_token;
    std::int64_t not_before = 0;
    std::int64_t expires_on = 0;
  };
  Issued issue(const ManagedIdentity& who, std::string_view resource, std::int64_t now,
               std::chrono::seconds lifetime) const;

  // The claims of a token this key signed: kAuth when it is not a JWT of ours (shape, alg, kid,
  // signature: one message, no oracle), kFormat never escapes.
  Result<IdentityClaims> verify(std::string_view token) const;

  // Three base64url parts separated by dots.
  static bool looks_like_jwt(std::string_view token);

 private:
  SecretBytes m_key;
  std::string m_kid;
};

// Why a verified token may not call a vault whose challenge names `resource`, at `now`; "" when
// it may. Messages follow Key Vault's (AKV10022 for the audience).
std::string identity_claims_refusal(const IdentityClaims& claims, std::int64_t now,
                                    std::string_view resource);

// One request to the identity endpoint, independent of the transport.
struct IdentityRequest {
  std::string method;
  std::string path;                                          // decoded, without the query
  std::vector<std::pair<std::string, std::string>> query;    // decoded
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case
  std::string content_type;
  std::string body;
};

struct IdentityResponse {
  int status = 200;
  std::string body;    // JSON
  std::string caller;  // the identity a token was issued to, for the access log ("-" otherwise)
};

// The token endpoints. Paths: /msi/token (GET with X-IDENTITY-HEADER: App Service 2019-08-01;
// GET with `secret`: 2017-09-01; POST with Metadata: true and a form body: Cloud Shell) and
// /metadata/identity/oauth2/token (GET with Metadata: true: IMDS 2018-02-01). A request names its
// identity by client_id (clientid), object_id (principal_id) or mi_res_id (msi_res_id, matched by
// its last segment), or none: the system-assigned identity.
class IdentityEndpoint {
 public:
  // The current identities of the access file, or the error that keeps it from loading (every
  // token request is then refused).
  using Lookup = std::function<Result<std::vector<ManagedIdentity>>()>;

  IdentityEndpoint(const IdentityTokens& tokens, Lookup lookup, std::function<std::int64_t()> now,
                   SecretBytes secret, std::chrono::seconds lifetime);

  IdentityResponse handle(const IdentityRequest& request) const noexcept;

  // The environment an application needs, one NAME=value per line: IDENTITY_ENDPOINT,
  // IDENTITY_HEADER, MSI_ENDPOINT, MSI_SECRET, AZURE_POD_IDENTITY_AUTHORITY_HOST (the IMDS host
  // for azure-identity). `origin` is http://127.0.0.1:PORT.
  std::string environment(const std::string& origin) const;

 private:
  IdentityResponse dispatch(const IdentityRequest& request) const;

  const IdentityTokens& m_tokens;
  Lookup m_lookup;
  std::function<std::int64_t()> m_now;
  SecretBytes m_secret;
  std::chrono::seconds m_lifetime;
};

}  // namespace keyport::vault

namespace keyport::vault {

// The identity endpoint over plain HTTP on a loopback address, as Azure's are (IMDS and the App
// Service endpoint are plain HTTP reachable only from inside the host). Runs its own listener and
// workers; stop() (or the destructor) ends them.
class IdentityServer {
 public:
  // `listen` is "127.0.0.1:PORT" or "[::1]:PORT" (port 0: any); a non-loopback address is refused
  // (kInvalidArgument): the endpoint hands out tokens to whoever asks with the right header.
  // `on_request` (may be empty) gets one line per answered request for the access log.
  static Result<std::unique_ptr<IdentityServer>> start(
      const std::string& listen, const IdentityEndpoint& endpoint,
      std::function<void(const std::string&)> on_request);
  ~IdentityServer();
  IdentityServer(const IdentityServer&) = delete;
  IdentityServer& operator=(const IdentityServer&) = delete;

  const std::string& origin() const;  // http://127.0.0.1:PORT
  void stop();

  struct Impl;

 private:
  explicit IdentityServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

}  // namespace keyport::vault

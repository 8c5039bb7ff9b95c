// SPDX-License-Identifier: Apache-2.0
// Target: managed identity (vault/identity.h) with hostile input: bearer tokens through
// IdentityTokens::verify and the vault's claim check, and token requests through the
// IdentityEndpoint (query strings and Cloud Shell form bodies).
//
// Input: byte 0 even: the rest is a bearer token, verified with a fixed key (the corpus holds
// tokens that key signed, so mutations reach the claim parsing). Byte 0 odd: byte 1 picks the
// request shape (App Service GET, IMDS GET, Cloud Shell POST; with or without the right
// header), the rest is the query string (GET) or the form body (POST).
// Invariants: a token that verifies has claims the check can judge; looks_like_jwt is necessary
// for verify; the endpoint never answers 5xx (the access list loads), every answer is a strict
// JSON object, errors carry "error" and "error_description", and a 200 carries a token that
// verifies, for the resource asked, for a known identity. max_len 8 KiB.
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/json.h"
#include "tests/fuzz/fuzz.h"
#include "vault/identity.h"

namespace {

using namespace keyport;
using namespace keyport::vault;

const IdentityTokens& tokens() {
  static const IdentityTokens t(SecretBytes(Bytes(32, 0x42)));
  return t;
}

std::vector<ManagedIdentity> identities() {
  ManagedIdentity app;
  app.name = "app";
  app.client_id = "11111111-1111-4111-8111-111111111111";
  app.object_id = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
  app.system_assigned = true;
  ManagedIdentity reader;
  reader.name = "reader";
  reader.client_id = "22222222-2222-4222-8222-222222222222";
  reader.object_id = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
  return {app, reader};
}

const IdentityEndpoint& endpoint() {
  static const IdentityEndpoint e(
      tokens(), []() -> Result<std::vector<ManagedIdentity>> { return identities(); },
      [] { return std::int64_t{1'800'000'000}; }, SecretBytes::from_string("fuzz-secret"),
      std::chrono::seconds(3600));
  return e;
}

std::vector<std::pair<std::string, std::string>> split_query(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    std::size_t amp = text.find('&', at);
    if (amp == std::string::npos) {
      amp = text.size();
    }
    const std::string pair = text.substr(at, amp - at);
    const std::size_t eq = pair.find('=');
    auto k = percent_decode(pair.substr(0, eq));
    auto v = percent_decode(eq == std::string::npos ? "" : pair.substr(eq + 1));
    if (k && v && !k->empty()) {
      out.emplace_back(*k, *v);
    }
    at = amp + 1;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(8 * 1024);
  if (size < 2) {
    return 0;
  }
  const std::string rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  if ((data[0] & 1) == 0) {
    const std::string token(reinterpret_cast<const char*>(data) + 1, size - 1);
    auto claims = tokens().verify(token);
    if (claims) {
      KEYPORT_FUZZ_CHECK(IdentityTokens::looks_like_jwt(token));
      (void)identity_claims_refusal(*claims, 1'800'000'000, "https://localhost:8443");
    }
    return 0;
  }
  IdentityRequest r;
  const int shape = data[1] % 6;
  const bool right_header = data[1] / 6 % 2 == 0;
  if (shape == 0 || shape == 1) {
    r.method = "GET";
    r.path = "/msi/token";
    r.headers = {{shape == 0 ? "x-identity-header" : "secret",
                  right_header ? "fuzz-secret" : "fuzz-secreT"}};
    r.query = split_query(rest);
  } else if (shape == 2 || shape == 3) {
    r.method = "GET";
    r.path = shape == 2 ? "/metadata/identity/oauth2/token" : "/metadata/identity/oauth2/token/";
    if (right_header) {
      r.headers = {{"metadata", "true"}};
    }
    r.query = split_query(rest);
  } else {
    r.method = shape == 4 ? "POST" : "PUT";
    r.path = "/msi/token";
    r.headers = {{"metadata", right_header ? "true" : "false"}};
    r.content_type = "application/x-www-form-urlencoded";
    r.body = rest;
  }
  IdentityResponse answer = endpoint().handle(r);
  KEYPORT_FUZZ_CHECK(answer.status < 500);
  auto body = parse_json_strict(answer.body);
  KEYPORT_FUZZ_CHECK(body && body->is_object());
  if (answer.status != 200) {
    KEYPORT_FUZZ_CHECK(body->contains("error") && body->contains("error_description"));
    return 0;
  }
  KEYPORT_FUZZ_CHECK(answer.caller == "app" || answer.caller == "reader");
  auto claims = tokens().verify((*body)["access_token"].get<std::string>());
  KEYPORT_FUZZ_CHECK(claims.has_value());
  KEYPORT_FUZZ_CHECK(claims->aud == (*body)["resource"].get<std::string>());
  return 0;
}

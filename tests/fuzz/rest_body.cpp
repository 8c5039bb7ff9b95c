// SPDX-License-Identifier: Apache-2.0
// Target: the vault's REST request handling (vault/server.h RestApi, as the CLI's local-folder
// mode and the HTTPS server run it) with hostile JSON bodies, on a scratch own-folder vault made
// once per process (SoftHSM token in a temporary folder, removed at exit) holding an RSA, an EC
// and an AES key.
//
// Input: byte 0 picks the operation, byte 1 the key (and version), byte 2 the Content-Type, the
// rest is the body. Operations: create (bodies naming RSA are skipped: a SoftHSM RSA key
// generation per run would slow the fuzzer a hundredfold; the vault tests cover RSA creation),
// import, update, sign, verify, encrypt, decrypt, wrapkey, unwrapkey, and Managed HSM local RBAC's
// PUT of a role definition and of a role assignment (byte 1 picks the scope) and PATCH of a
// setting (vault/rbac.h).
// Invariants: no 5xx (a hostile body is the client's error, never the server's); every non-empty
// answer is a strict JSON object; an error answer carries a non-empty error.code and message; a
// 2xx answer to an operation on a key names that key's kid.
// max_len 16 KiB.
#include <stdlib.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "core/json.h"
#include "tests/fuzz/fuzz.h"
#include "vault/access.h"
#include "vault/server.h"
#include "vault/vault.h"

namespace {

namespace fs = std::filesystem;
using keyport::Json;
using namespace keyport::vault;

struct Fixture {
  fs::path dir;
  std::unique_ptr<Vault> vault;
  std::unique_ptr<RestApi> api;
  Principal admin;
  std::string rsa_version;
};

fs::path g_dir;
void remove_dir() {
  std::error_code ec;
  if (!g_dir.empty())
    fs::remove_all(g_dir, ec);
}

std::string make_key(Vault& v, const std::string& name, const Json& params) {
  auto b = v.create_key(CallContext{"fuzz"}, name, params);
  KEYPORT_FUZZ_CHECK(b.has_value());
  std::string kid = (*b)["key"]["kid"].get<std::string>();
  return kid.substr(kid.rfind('/') + 1);
}

Fixture& fixture() {
  static Fixture f = [] {
    Fixture x;
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp != nullptr ? tmp : "/tmp") + "/keyport-fuzz-rest-XXXXXX";
    KEYPORT_FUZZ_CHECK(::mkdtemp(templ.data()) != nullptr);
    x.dir = templ;
    g_dir = x.dir;
    std::atexit(remove_dir);
    VaultConfig config;
    config.flavor = Flavor::kManagedHsm;
    config.name = "fuzz";
    config.base_url = "https://127.0.0.1:8443";
    KEYPORT_FUZZ_CHECK(Vault::init(x.dir, config).has_value());
    auto v = Vault::open(x.dir);
    KEYPORT_FUZZ_CHECK(v.has_value());
    x.vault = std::move(*v);
    x.rsa_version = make_key(*x.vault, "rsa", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}});
    make_key(*x.vault, "ec", Json{{"kty", "EC-HSM"}, {"crv", "P-256"}});
    make_key(*x.vault, "oct", Json{{"kty", "oct-HSM"}, {"key_size", 256}});
    make_key(*x.vault, "upd", Json{{"kty", "oct-HSM"}, {"key_size", 128}});
    x.api = std::make_unique<RestApi>(*x.vault, nullptr);
    x.admin.name = "fuzz";
    x.admin.permissions = all_permissions();
    return x;
  }();
  return f;
}

struct Route {
  const char* method;
  const char* suffix;  // after /keys/<name>[/<version>]
};
constexpr Route kRoutes[] = {
    {"POST", "/create"},
    {"PUT", ""},
    {"PATCH", ""},
    {"POST", "/sign"},
    {"POST", "/verify"},
    {"POST", "/encrypt"},
    {"POST", "/decrypt"},
    {"POST", "/wrapkey"},
    {"POST", "/unwrapkey"},
    {"PUT", "@roleDefinitions"},
    {"PUT", "@roleAssignments"},
    {"PATCH", "@settings"},
};
constexpr const char* kScopes[] = {"/", "//keys", "//keys/oct", "/keys/missing", "//secrets"};
constexpr const char* kContentTypes[] = {"application/json", "application/json; charset=utf-8", "",
                                         "text/plain", "application/x-www-form-urlencoded"};

bool names_rsa(std::string_view body) {
  std::string lower(body);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("rsa") != std::string::npos || lower.find("\\u") != std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(16 * 1024);
  if (size < 3)
    return 0;
  Fixture& f = fixture();
  const Route& route = kRoutes[data[0] % std::size(kRoutes)];
  const std::string suffix = route.suffix;
  RestRequest req;
  req.method = route.method;
  req.body.assign(reinterpret_cast<const char*>(data + 3), size - 3);
  req.content_type = kContentTypes[data[2] % std::size(kContentTypes)];
  req.query = {{"api-version", "7.5"}};

  std::string name;
  std::string version;
  if (suffix == "@settings") {
    req.path = "/settings/AllowKeyManagementOperationsThroughARM";
  } else if (suffix[0] == '@') {
    req.path = std::string(kScopes[data[1] % std::size(kScopes)]) +
               "/providers/Microsoft.Authorization/" + suffix.substr(1) +
               "/6f0c7a51-7f2e-4c1b-9a43-3d1e0b2c4d5e";
  } else if (suffix == "/create") {
    if (names_rsa(req.body))
      return 0;
    name = "created";
  } else if (suffix.empty() && req.method == "PUT") {
    name = "imported";
  } else if (suffix.empty()) {
    name = "upd";
  } else {
    static const char* const kNames[] = {"rsa", "ec", "oct", "missing", "rsa", "rsa"};
    const unsigned pick = data[1] % std::size(kNames);
    name = kNames[pick];
    if (pick == 4)
      version = f.rsa_version;
    if (pick == 5)
      version = "00000000000000000000000000000000";
  }
  if (req.path.empty()) {
    req.path = "/keys/" + name + (version.empty() ? "" : "/" + version) + suffix;
  }

  RestResponse r = f.api->handle_as(f.admin, req);
  if (r.status >= 500) {
    std::fprintf(stderr, "%s %s -> %d %s\n", req.method.c_str(), req.path.c_str(), r.status,
                 r.body.c_str());
  }
  KEYPORT_FUZZ_CHECK(r.status >= 200 && r.status < 500);
  if (r.body.empty()) {
    KEYPORT_FUZZ_CHECK(r.status == 204);
    return 0;
  }
  auto doc = keyport::parse_json_strict(r.body);
  KEYPORT_FUZZ_CHECK(doc.has_value() && doc->is_object());
  if (r.status >= 400) {
    KEYPORT_FUZZ_CHECK(doc->contains("error") && (*doc)["error"].is_object());
    const Json& e = (*doc)["error"];
    KEYPORT_FUZZ_CHECK(e.contains("code") && e["code"].is_string() &&
                       !e["code"].get<std::string>().empty());
    KEYPORT_FUZZ_CHECK(e.contains("message") && e["message"].is_string());
  } else if (doc->contains("kid")) {
    const std::string kid = (*doc)["kid"].get<std::string>();
    KEYPORT_FUZZ_CHECK(kid.find("/keys/" + name + "/") != std::string::npos);
  }
  return 0;
}

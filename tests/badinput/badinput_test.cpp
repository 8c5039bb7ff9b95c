// SPDX-License-Identifier: Apache-2.0
// The bad-input corpus (tests/badinput/cases.json, made by make_cases.py): malformed inputs to the
// keyport CLI and to the vault's REST API, each with the error it must give. For every case:
//  - no crash: the process exits normally (no signal) and prints no sanitizer report, and the
//    vault server is still running afterwards;
//  - the expected exit code, or the expected HTTP status and Key Vault error code;
//  - nothing written: the run folder (token folder by name) is byte-for-byte unchanged;
//  - vault state unchanged: every row of its keys and versions tables is the same, and the audit
//    log grew by at most the one row that records the refused operation.
// A case with "known_issue" records a gap that is reported but not yet fixed (owned elsewhere):
// when it still misbehaves the test warns instead of failing (no crash and no sanitizer report
// are still required); when it behaves, the warning says to drop the note.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "core/encoding.h"
#include "core/json.h"
#include "core/x509.h"
#include "tests/badinput/cases.h"
#include "tests/cli/cli_rig.h"
#include "tests/hardening/child.h"
#include "tests/support/support.h"
#include "tests/vault/rest_rig.h"

using namespace keyport;
using keyport::test::Child;
namespace fs = std::filesystem;

namespace {

// Name -> size and modification time of every file under `root` ("hsm" entries by name only:
// SoftHSM may rewrite its token files on login). Skips `skip` (relative names).
std::map<std::string, std::string> snapshot(const fs::path& root,
                                            const std::vector<std::string>& skip) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const std::string rel = fs::relative(it->path(), root).string();
    bool skipped = false;
    for (const auto& s : skip) {
      skipped = skipped || rel == s || rel.rfind(s + "/", 0) == 0;
    }
    if (skipped) {
      if (it->is_directory()) {
        it.disable_recursion_pending();
      }
      continue;
    }
    if (rel.rfind("hsm", 0) == 0 || it->is_directory()) {
      out[rel] = "";
      continue;
    }
    struct stat st {};
    ::stat(it->path().c_str(), &st);
    out[rel] = std::to_string(st.st_size) + "@" + std::to_string(st.st_mtim.tv_sec) + "." +
               std::to_string(st.st_mtim.tv_nsec);
  }
  return out;
}

std::string describe_diff(const std::map<std::string, std::string>& a,
                          const std::map<std::string, std::string>& b) {
  std::string d;
  for (const auto& [k, v] : b) {
    auto it = a.find(k);
    if (it == a.end()) {
      d += "  new: " + k + "\n";
    } else if (it->second != v) {
      d += "  changed: " + k + "\n";
    }
  }
  for (const auto& [k, v] : a) {
    if (b.count(k) == 0) {
      d += "  removed: " + k + "\n";
    }
  }
  return d;
}

struct VaultState {
  std::string rows;  // keys and versions, every column
  long long audit = 0;
  std::string last_audit_outcome;
};

VaultState read_vault(const fs::path& db) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(h, 5000);
  VaultState s;
  auto dump = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(h, sql, -1, &st, nullptr) == SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const unsigned char* t = sqlite3_column_text(st, i);
        s.rows += t == nullptr ? "<null>" : reinterpret_cast<const char*>(t);
        s.rows += "|";
      }
      s.rows += "\n";
    }
    sqlite3_finalize(st);
  };
  dump("SELECT * FROM keys ORDER BY name");
  dump("SELECT * FROM versions ORDER BY seq");
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(
              h, "SELECT count(*), (SELECT outcome FROM audit ORDER BY id DESC LIMIT 1) FROM audit",
              -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  s.audit = sqlite3_column_int64(st, 0);
  const unsigned char* o = sqlite3_column_text(st, 1);
  s.last_audit_outcome = o == nullptr ? "" : reinterpret_cast<const char*>(o);
  sqlite3_finalize(st);
  sqlite3_close(h);
  return s;
}

bool sanitizer_report(const std::string& text) {
  return text.find("AddressSanitizer") != std::string::npos ||
         text.find("LeakSanitizer") != std::string::npos ||
         text.find("runtime error:") != std::string::npos;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Everything the cases need: a token with keys, a KEK, a vault server with a signing key.
struct World {
  test::cli::Rig rig{"badinput"};
  fs::path work = rig.dir();
  fs::path vault_dir = work / "vault";
  std::unique_ptr<Child> server;
  std::string url;
  std::string identity_url;  // http://127.0.0.1:PORT
  fs::path token_file;
  fs::path ca_file;

  World() {
    rig.generate("ec-p256", "app-ec");
    auto kek = test::cli::make_rsa_key(2048);
    test::cli::write_public_pem(*kek, work / "kek.pem");
    test::cli::write_text(work / "existing.byok", "{}");
    fs::create_directories(work / "logs");
    server = std::make_unique<Child>(
        std::vector<std::string>{KEYPORT_CLI_BINARY, "vault", "serve", "--data", vault_dir.string(),
                                 "--listen", "127.0.0.1:0", "--identity-listen", "127.0.0.1:0"},
        std::vector<std::string>{}, work / "logs", "server");
    INFO(server->output());
    REQUIRE(server->wait_for_file(vault_dir / "server.json"));
    auto sj = parse_json_strict(slurp(vault_dir / "server.json"));
    REQUIRE(sj.has_value());
    url = (*sj)["url"].get<std::string>();
    identity_url = (*sj)["identity_endpoint"].get<std::string>();
    token_file = vault_dir / "admin.token";
    ca_file = vault_dir / "tls" / "ca.pem";
    auto c = client();
    auto created = c.post("/keys/signer/create", Json{{"kty", "EC-HSM"}, {"crv", "P-256"}});
    INFO(created.describe());
    REQUIRE(created.status == 200);
    auto rsa = c.post("/keys/rsa/create", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}});
    INFO(rsa.describe());
    REQUIRE(rsa.status == 200);
    // Backup blobs of this vault's domain (its domain is made at the server's first open): the
    // whole blob of "signer" (a name that exists), one byte short, one payload byte flipped.
    auto backup = c.post("/keys/signer/backup", Json::object());
    INFO(backup.describe());
    REQUIRE(backup.status == 200);
    const std::string blob = backup.json["value"].get<std::string>();
    auto bytes = base64url_decode(blob);
    REQUIRE(bytes.has_value());
    test::cli::write_text(work / "signer.blob", blob + "\n");
    Bytes shorter(bytes->begin(), bytes->end() - 1);
    test::cli::write_text(work / "signer-truncated.blob", base64url_encode(shorter) + "\n");
    Bytes flipped = *bytes;
    flipped[flipped.size() / 2] ^= 0x01;
    test::cli::write_text(work / "signer-flipped.blob", base64url_encode(flipped) + "\n");
    // Security-domain wrapping keys: three self-signed RSA-2048 certificates sd-k0..2.cer, each
    // with its private key beside it (sd-k0..2.key, as az expects), and two private keys with no
    // certificate beside them (sd-lone0..1.key).
    for (int i = 0; i < 3; ++i) {
      const std::string stem = "sd-k" + std::to_string(i);
      auto key = test::cli::make_rsa_key(2048);
      x509::CertificateRequest req;
      req.common_name = stem;
      auto cert = x509::make_certificate(req, *key, *key, nullptr);
      REQUIRE(cert.has_value());
      auto pem = x509::private_key_pem(*key);
      REQUIRE(pem.has_value());
      const std::string key_pem(as_chars(pem->reveal(SecretAccess::unsafe())));
      test::cli::write_text(work / (stem + ".cer"), x509::certificate_pem(**cert));
      test::cli::write_text(work / (stem + ".key"), key_pem);
      if (i < 2) {
        test::cli::write_text(work / ("sd-lone" + std::to_string(i) + ".key"), key_pem);
      }
    }
  }

  test::RestClient client() const {
    std::string t = slurp(token_file);
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) {
      t.pop_back();
    }
    return test::RestClient(url, ca_file, t);
  }

  std::string expand(const std::string& arg, const fs::path& in, const fs::path& out) const {
    std::string s = arg;
    auto rep = [&](const std::string& key, const std::string& value) {
      for (auto pos = s.find(key); pos != std::string::npos;
           pos = s.find(key, pos + value.size())) {
        s.replace(pos, key.size(), value);
      }
    };
    rep("{in}", in.string());
    rep("{out}", out.string());
    rep("{kek}", (work / "kek.pem").string());
    rep("{work}", work.string());
    rep("{url}", url);
    rep("{ca}", ca_file.string());
    rep("{policy}",
        (test::source_dir() / "tests/fuzz/policy_corpus/valid-sevsnp-allof.json").string());
    rep("{authority}",
        (test::source_dir() / "tests/fuzz/data/attestation-trusted-authorities.json").string());
    return s;
  }

  void check_server_alive() {
    INFO(server->output());
    REQUIRE(server->running());
    REQUIRE(!sanitizer_report(server->output()));
  }
};

void run_cli_cases(World& w, bool first_half) {
  const Json cases = test::load_badinput_cases();
  std::size_t n = 0;
  std::size_t index = 0;
  for (const auto& c : cases) {
    if (c["kind"] != "cli") {
      continue;
    }
    if ((index++ % 2 == 0) != first_half) {
      continue;
    }
    const std::string id = c["id"].get<std::string>();
    INFO("case " << id);
    const fs::path in = c.contains("input") ? test::source_dir() / "tests/badinput/inputs" /
                                                  c["input"].get<std::string>()
                                            : fs::path();
    const fs::path out = w.work / ("out-" + id);
    std::vector<std::string> argv{KEYPORT_CLI_BINARY};
    for (const auto& a : c["args"]) {
      const std::string s = a.get<std::string>();
      if (s == "{vault}") {
        argv.insert(argv.end(), {"--url", w.url, "--token-file", w.token_file.string(), "--ca-file",
                                 w.ca_file.string()});
      } else {
        argv.push_back(w.expand(s, in, out));
      }
    }
    const auto before = snapshot(w.work, {"vault", "logs"});
    const VaultState vbefore = read_vault(w.vault_dir / "vault.db");
    Child k(argv,
            {"SOFTHSM2_CONF=" + w.rig.conf().string(), "KEYPORT_PIN=" + w.rig.pin(),
             "KEYPORT_VAULT_URL=", "KEYPORT_VAULT_DATA=", "KEYPORT_VAULT_TOKEN="},
            w.work / "logs", "case");
    auto st = k.wait(180);
    const std::string output = k.output();
    INFO(output);
    REQUIRE(st.has_value());
    CHECK(WIFEXITED(*st));
    CHECK_FALSE(sanitizer_report(output));
    w.check_server_alive();
    ++n;
    const int want = c["exit"].get<int>();
    const int got = WIFEXITED(*st) ? WEXITSTATUS(*st) : -1;
    if (c.contains("known_issue") && got != want) {
      // A gap recorded in the corpus (reported, owned elsewhere): visible, not failing CI.
      WARN("known issue, case " << id << ": exit " << got << " instead of " << want << ": "
                                << c["known_issue"].get<std::string>());
      continue;
    }
    if (c.contains("known_issue")) {
      WARN("case " << id << " now gives the expected exit: drop its known_issue");
    }
    CHECK(got == want);
    if (c.contains("stderr_contains")) {
      CHECK(output.find(c["stderr_contains"].get<std::string>()) != std::string::npos);
    }
    const auto after = snapshot(w.work, {"vault", "logs"});
    INFO("files:\n" << describe_diff(before, after));
    CHECK(after == before);
    const VaultState vafter = read_vault(w.vault_dir / "vault.db");
    CHECK(vafter.rows == vbefore.rows);
    CHECK(vafter.audit <= vbefore.audit + 1);
  }
  CHECK(n >= 80);
  WARN("CLI bad-input cases run: " << n);
}

}  // namespace

TEST_CASE("bad input to the CLI (first half of the corpus): clear refusal, nothing written",
          "[hardening][badinput]") {
  World w;
  run_cli_cases(w, true);
  CHECK(w.server->signal_and_wait(SIGTERM) == 0);
}

TEST_CASE("bad input to the CLI (second half of the corpus): clear refusal, nothing written",
          "[hardening][badinput]") {
  World w;
  run_cli_cases(w, false);
  CHECK(w.server->signal_and_wait(SIGTERM) == 0);
}

TEST_CASE("bad input to the REST API: the Key Vault error, no 5xx, vault state unchanged",
          "[hardening][badinput]") {
  World w;
  auto client = w.client();
  const Json cases = test::load_badinput_cases();
  std::size_t n = 0;
  for (const auto& c : cases) {
    if (c["kind"] != "rest") {
      continue;
    }
    const std::string id = c["id"].get<std::string>();
    INFO("case " << id);
    test::Call call(c["method"].get<std::string>(), c["path"].get<std::string>());
    if (c.contains("body")) {
      call.body = c["body"].get<std::string>();
    } else if (c.contains("body_b64")) {
      auto raw = base64_decode(c["body_b64"].get<std::string>());
      REQUIRE(raw.has_value());
      call.body = std::string(raw->begin(), raw->end());
    } else if (c.contains("body_repeat")) {
      const Json& r = c["body_repeat"];
      call.body = r["prefix"].get<std::string>() +
                  std::string(r["count"].get<std::size_t>(), r["fill"].get<std::string>()[0]) +
                  r["suffix"].get<std::string>();
    }
    call.content_type = c["content_type"].get<std::string>();
    const std::string auth = c["auth"].get<std::string>();
    if (auth == "none") {
      call.with_token = false;
    } else if (auth == "wrong") {
      call.token = "this-is-not-a-token-of-this-vault-000000";
    } else if (auth == "basic") {
      call.with_token = false;
      call.headers.emplace("Authorization", "Basic YWRtaW46YWRtaW4=");
    } else if (auth == "token") {
      call.token = c["token"].get<std::string>();
    }
    const VaultState before = read_vault(w.vault_dir / "vault.db");
    test::Answer a = client.send(call);
    INFO(a.describe());
    CHECK((a.status < 500 || a.status == 501));
    w.check_server_alive();
    const bool as_expected =
        a.status == c["status"].get<int>() && a.code() == c["code"].get<std::string>();
    if (c.contains("known_issue") && !as_expected) {
      WARN("known issue, case " << id << ": " << a.status << " " << a.code() << " instead of "
                                << c["status"].get<int>() << " " << c["code"].get<std::string>()
                                << ": " << c["known_issue"].get<std::string>());
      ++n;
      continue;
    }
    CHECK(a.status == c["status"].get<int>());
    CHECK(a.code() == c["code"].get<std::string>());
    const VaultState after = read_vault(w.vault_dir / "vault.db");
    CHECK(after.rows == before.rows);
    CHECK(after.audit <= before.audit + 1);
    const bool audited_as_success =
        after.audit == before.audit + 1 && after.last_audit_outcome == "success";
    if (c.contains("known_issue") && audited_as_success) {
      WARN("known issue, case " << id << ": audited as a success: "
                                << c["known_issue"].get<std::string>());
    } else {
      CHECK_FALSE(audited_as_success);
      if (c.contains("known_issue")) {
        WARN("case " << id << " now behaves as expected: drop its known_issue");
      }
    }
    ++n;
  }
  CHECK(n >= 70);
  WARN("REST bad-input cases run: " << n);
  CHECK(w.server->signal_and_wait(SIGTERM) == 0);
}

TEST_CASE("bad input to the managed-identity endpoint: an OAuth error, no 5xx, never a token",
          "[hardening][badinput]") {
  World w;
  const std::string origin = w.identity_url;
  REQUIRE(origin.rfind("http://127.0.0.1:", 0) == 0);
  httplib::Client http(origin);
  http.set_read_timeout(static_cast<time_t>(30 * test::time_scale()));
  std::size_t n = 0;
  for (const auto& c : test::load_badinput_cases()) {
    if (c["kind"] != "identity") {
      continue;
    }
    INFO("case " << c["id"].get<std::string>());
    httplib::Headers headers;
    for (auto it = c["headers"].begin(); it != c["headers"].end(); ++it) {
      headers.emplace(it.key(), it.value().get<std::string>());
    }
    const std::string path = c["path"].get<std::string>();
    httplib::Result r = c["method"] == "POST"
                            ? http.Post(path, headers, c.value("body", std::string()),
                                        "application/x-www-form-urlencoded")
                            : http.Get(path, headers);
    REQUIRE(r);
    INFO(r->status << " " << r->body);
    CHECK(r->status == c["status"].get<int>());
    auto body = parse_json_strict(r->body);
    REQUIRE(body.has_value());
    CHECK((*body)["error"] == c["error"]);
    CHECK_FALSE(body->contains("access_token"));
    w.check_server_alive();
    ++n;
  }
  CHECK(n >= 10);
  // The endpoint runs on keyport::http with small limits: a 20 KiB form is refused before it is
  // read, in the endpoint's OAuth error shape, and the endpoint still answers afterwards.
  httplib::Result big =
      http.Post("/msi/token", httplib::Headers{{"Metadata", "true"}},
                "resource=" + std::string(20 * 1024, 'x'), "application/x-www-form-urlencoded");
  REQUIRE(big);
  CHECK(big->status == 413);
  auto body = parse_json_strict(big->body);
  REQUIRE(body.has_value());
  CHECK((*body)["error"] == "invalid_request");
  httplib::Client again(origin);
  httplib::Result after = again.Get("/metadata/identity/oauth2/token?api-version=2018-02-01",
                                    httplib::Headers{{"Metadata", "true"}});
  REQUIRE(after);
  CHECK(after->status == 400);
  CHECK(w.server->signal_and_wait(SIGTERM) == 0);
}

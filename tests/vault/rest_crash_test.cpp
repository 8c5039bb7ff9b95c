// SPDX-License-Identifier: Apache-2.0
// A `keyport vault serve` process killed with SIGKILL in the middle of a stream of BYOK imports,
// then restarted on the same folder: every key the vault lists is whole (readable and usable),
// every import the client saw succeed is there, and the vault's token holds exactly one object per
// key version (counted by pkcs11-tool, not by keyport): no half key, no orphan.
#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "core/random.h"
#include "tests/support/softhsm.h"
#include "tests/vault/rest_rig.h"
#include "tests/vault/vault_rig.h"
#include "vault/store.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

// The labels of the key objects in the server's own token, listed by pkcs11-tool with the
// folder's SoftHSM configuration and PIN.
std::multiset<std::string> token_labels(const fs::path& data) {
  const fs::path out = data.parent_path() / "objects.txt";
  const std::string cmd = "SOFTHSM2_CONF=" + (data / "hsm" / "softhsm2.conf").string() +
                          " pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --token-label "
                          "keyport-vault --login --pin \"$(cat " +
                          (data / "hsm" / "pin").string() + ")\" --list-objects > " + out.string() +
                          " 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::multiset<std::string> labels;
  std::ifstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    const auto pos = line.find("label:");
    if (pos == std::string::npos) {
      continue;
    }
    std::string label = line.substr(pos + 6);
    label.erase(0, label.find_first_not_of(' '));
    label.erase(label.find_last_not_of(" \r") + 1);
    if (label.rfind("kv:", 0) == 0) {
      labels.insert(label);
    }
  }
  return labels;
}

}  // namespace

TEST_CASE(
    "a vault server killed with SIGKILL during imports restarts with no half key and no orphan",
    "[vault][rest][durability]") {
  test::Onprem onprem;
  const fs::path dir = test::make_scratch_subdir("serve-crash");
  const fs::path data = dir / "vault";
  test::ServerProcess proc(data, {"--flavor", "key-vault"});
  proc.start();
  test::RestClient http = proc.client();
  test::Answer kek = http.post("/keys/KEK/create", test::kek_params(2048));
  REQUIRE(kek.status == 200);
  const std::string kid = kek.json["key"]["kid"].get<std::string>();
  const byok::PublicKey kek_pub = test::public_key_of(kek.json);
  auto ec = onprem.generate(*parse_key_spec("ec-p256"), "crash-ec");
  constexpr int kImports = 40;
  std::vector<std::string> files;
  for (int i = 0; i < kImports; ++i) {
    files.push_back(onprem.export_to(ec, kek_pub, kid).to_json());
  }

  // A client streams imports; the server dies under it. The kill is placed in the stream, not in
  // time, so that it lands mid-stream however fast the machine is: once import `at` (random, from
  // the 9th to the 4th last) is on its way, after a random part of the time one import took so far.
  std::set<std::string> acknowledged;
  std::atomic<int> sent{0};
  std::atomic<bool> client_done{false};
  std::thread client([&] {
    test::RestClient c = proc.client();
    for (int i = 0; i < kImports; ++i) {
      sent.store(i + 1);
      test::Answer a =
          c.put("/keys/k" + std::to_string(i), test::byok_body(files[i], "EC-HSM", "P-256"));
      if (a.status == 200) {
        acknowledged.insert("k" + std::to_string(i));
      } else if (a.status == 0) {
        break;  // the server is gone
      }
    }
    client_done.store(true);
  });
  const int at = 9 + static_cast<int>(random_bytes(1)[0] % (kImports - 12));
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(test::wait_until([&] { return sent.load() >= at || client_done.load(); }, 300,
                           std::chrono::milliseconds(1)));
  const double per_import_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / at;
  const double jitter_ms = per_import_ms * random_bytes(1)[0] / 256.0;
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(jitter_ms));
  const bool ended_first = client_done.load();
  proc.kill_hard();
  client.join();
  INFO("acknowledged " << acknowledged.size() << " of " << sent.load() << " sent; killed at import "
                       << at << " + " << jitter_ms << " ms (" << per_import_ms << " ms an import)");
  CHECK_FALSE(ended_first);
  CHECK(acknowledged.size() < static_cast<std::size_t>(kImports));  // it died mid-stream

  proc.start();
  test::RestClient again = proc.client();
  test::Answer list =
      again.send(test::Call{"GET", "/keys?api-version=7.5&maxresults=25", std::nullopt});
  REQUIRE(list.status == 200);
  std::set<std::string> listed;
  std::multiset<std::string> expected_labels;
  Json page = list.json;
  for (;;) {
    for (const auto& item : page["value"]) {
      const std::string k = item["kid"].get<std::string>();
      listed.insert(k.substr(k.rfind('/') + 1));
    }
    if (!page["nextLink"].is_string()) {
      break;
    }
    const std::string link = page["nextLink"].get<std::string>();
    test::Answer p = again.send(test::Call{"GET", link.substr(link.find("/keys")), std::nullopt});
    REQUIRE(p.status == 200);
    page = p.json;
  }
  // Everything acknowledged survived; at most the one in flight more.
  for (const auto& name : acknowledged) {
    CHECK(listed.count(name) == 1u);
  }
  CHECK(listed.size() <= acknowledged.size() + 2);  // KEK + the import in flight
  // Every listed key is whole: its versions read, and it signs.
  const Bytes digest = test::digest_of("ES256", random_bytes(8));
  for (const auto& name : listed) {
    INFO(name);
    test::Answer versions = again.get("/keys/" + name + "/versions");
    REQUIRE(versions.status == 200);
    for (const auto& v : versions.json["value"]) {
      const std::string k = v["kid"].get<std::string>();
      expected_labels.insert("kv:" + name + ":" + k.substr(k.rfind('/') + 1));
    }
    if (name != "KEK") {
      test::Answer sig = again.post("/keys/" + name + "/sign",
                                    Json{{"alg", "ES256"}, {"value", base64url_encode(digest)}});
      CHECK(sig.status == 200);
    }
  }
  // The interrupted names can be imported now (to the KEK's kid on the new port).
  test::Answer kek2 = again.get("/keys/KEK");
  REQUIRE(kek2.status == 200);
  for (int i = 0; i < kImports; ++i) {
    const std::string name = "k" + std::to_string(i);
    if (listed.count(name) == 0) {
      const std::string file =
          onprem.export_to(ec, kek_pub, kek2.json["key"]["kid"].get<std::string>()).to_json();
      test::Answer a = again.put("/keys/" + name, test::byok_body(file, "EC-HSM", "P-256"));
      INFO(a.describe());
      CHECK(a.status == 200);
      expected_labels.insert("kv:" + name + ":" + test::version_of(a.json));
      break;
    }
  }
  CHECK(proc.stop() == 0);
  // One token object per version, counted by pkcs11-tool.
  CHECK(token_labels(data) == expected_labels);
}

// The audit log under group commit (vault/store.h): a request is answered only after its audit
// row is durable, so after SIGKILL every answered request -- 404s of reads and 200s of imports,
// from concurrent clients -- has its row, and every successful ImportKey row names a key that is
// there.
TEST_CASE("after SIGKILL of the server every answered request has its audit row",
          "[vault][rest][durability][audit]") {
  test::Onprem onprem;
  const fs::path dir = test::make_scratch_subdir("serve-crash-audit");
  const fs::path data = dir / "vault";
  test::ServerProcess proc(data, {"--flavor", "key-vault"});
  proc.start();
  test::RestClient http = proc.client();
  test::Answer kek = http.post("/keys/KEK/create", test::kek_params(2048));
  REQUIRE(kek.status == 200);
  const std::string kid = kek.json["key"]["kid"].get<std::string>();
  const byok::PublicKey kek_pub = test::public_key_of(kek.json);
  auto ec = onprem.generate(*parse_key_spec("ec-p256"), "crash-audit-ec");
  constexpr int kImports = 30;
  std::vector<std::string> files;
  for (int i = 0; i < kImports; ++i) {
    files.push_back(onprem.export_to(ec, kek_pub, kid).to_json());
  }

  std::mutex m;
  std::set<std::string> answered_reads;    // names GET answered 404 for
  std::set<std::string> answered_imports;  // names PUT answered 200 for
  std::atomic<int> answers{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&, t] {
      test::RestClient c = proc.client();
      for (int i = 0; i < 100000; ++i) {
        const std::string name = "miss-" + std::to_string(t) + "-" + std::to_string(i);
        test::Answer a = c.get("/keys/" + name);
        if (a.status == 0) {
          break;
        }
        if (a.status == 404) {
          std::lock_guard<std::mutex> lock(m);
          answered_reads.insert(name);
        }
        ++answers;
      }
    });
  }
  clients.emplace_back([&] {
    test::RestClient c = proc.client();
    for (int i = 0; i < kImports; ++i) {
      const std::string name = "imp" + std::to_string(i);
      test::Answer a = c.put("/keys/" + name, test::byok_body(files[i], "EC-HSM", "P-256"));
      if (a.status == 0) {
        break;
      }
      if (a.status == 200) {
        std::lock_guard<std::mutex> lock(m);
        answered_imports.insert(name);
      }
      ++answers;
    }
  });
  // A hang guard only: the clients answer 60 requests in well under a second on a quiet machine.
  REQUIRE(
      test::wait_until([&] { return answers.load() >= 60; }, 300, std::chrono::milliseconds(2)));
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(random_bytes(1)[0] % 40)));
  proc.kill_hard();
  for (auto& c : clients) {
    c.join();
  }
  INFO(answered_reads.size() << " reads and " << answered_imports.size()
                             << " imports answered before the kill");
  REQUIRE(!answered_reads.empty());

  // Restart (journal replay), stop, then read the store as the vault left it.
  proc.start();
  test::Answer list = proc.client().get("/keys?maxresults=25");
  REQUIRE(list.status == 200);
  REQUIRE(proc.stop() == 0);
  auto store = vault::Store::open(data / "vault.db");
  REQUIRE(store);
  auto log = (*store)->audit_log(0);
  REQUIRE(log);
  std::set<std::string> read_rows, import_rows;
  for (const auto& a : *log) {
    if (a.operation == "GetKey" && a.outcome == "failure") {
      read_rows.insert(a.key_name);
    } else if (a.operation == "ImportKey" && a.outcome == "success") {
      import_rows.insert(a.key_name);
    }
  }
  for (const auto& name : answered_reads) {
    INFO(name);
    CHECK(read_rows.count(name) == 1u);
  }
  for (const auto& name : answered_imports) {
    INFO(name);
    CHECK(import_rows.count(name) == 1u);
  }
  // Consistent: a successful import row means the key version was committed before it.
  for (const auto& name : import_rows) {
    INFO(name);
    auto v = (*store)->find_version(name, "");
    REQUIRE(v);
    CHECK(v->has_value());
  }
}

// SPDX-License-Identifier: Apache-2.0
// A `keyport vault serve` process killed with SIGKILL in the middle of a stream of BYOK imports,
// then restarted on the same folder: every key the vault lists is whole (readable and usable),
// every import the client saw succeed is there, and the vault's token holds exactly one object per
// key version (counted by pkcs11-tool, not by keyport): no half key, no orphan.
#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "core/random.h"
#include "tests/support/softhsm.h"
#include "tests/vault/rest_rig.h"
#include "tests/vault/vault_rig.h"

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

  // A client streams imports; the server dies under it.
  std::set<std::string> acknowledged;
  std::atomic<int> sent{0};
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
  });
  while (sent.load() < 8) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(random_bytes(1)[0] % 40)));
  proc.kill_hard();
  client.join();
  INFO("acknowledged " << acknowledged.size() << " of " << sent.load() << " sent");
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

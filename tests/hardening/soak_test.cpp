// SPDX-License-Identifier: Apache-2.0
// Load and soak: 8 clients of mixed operations against a `keyport vault serve` process: get,
// list, versions, sign, verify, encrypt, decrypt, wrapkey, unwrapkey, update, and create + delete +
// purge of short-lived keys; a warm-up at full load (KEYPORT_SOAK_WARMUP_REQUESTS, default
// 33,000), then a measured window (KEYPORT_SOAK_REQUESTS, default 16,000). Both are counted in
// requests, not seconds, so that a slow or loaded machine measures the same work as a fast one
// (about 120 s and 60 s at 276 requests/s). The warm-up lasts until memory reaches its steady
// state: thread pools, the session pool and SQLite's page caches fill in seconds, but each of the
// 8 worker threads' malloc arenas keeps growing (260-370 KiB to 420-480 KiB, /proc/<pid>/smaps)
// for about 25,000 requests before levelling off, while the live heap stays flat. Measured at
// 280 requests/s: RSS +8.9 % from 20 s to 320 s, of which +0.9 % from 125 s to 320 s. A window
// opened before that measures the allocator filling up, not a leak.
// Asserts over the measured window: no 5xx and no failed request (warm-up included); resident
// memory at the end within 5 % of what it was when the window opened; no more open file
// descriptors once the clients are gone than before they came (under load the count moves with
// connections being recycled, so it is reported, not compared). Label "soak". Prints operations,
// rate, and the RSS series (one sample per 1,000 requests) and descriptor figures.
// KEYPORT_SOAK_OPS runs only some operation kinds (comma-separated, default all; to find which
// one grows memory): get, list, versions, sign (sign + verify), encrypt (encrypt + decrypt),
// wrapkey (wrapkey + unwrapkey), update, create (create + delete + purge), missing (404 get),
// badbody (400 sign). An unknown name fails the test.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "core/encoding.h"
#include "core/json.h"
#include "tests/hardening/child.h"
#include "tests/support/support.h"
#include "tests/vault/rest_rig.h"

using namespace keyport;
using keyport::test::Child;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
    s.pop_back();
  }
  return s;
}

struct Stats {
  std::atomic<std::size_t> ok{0};
  std::atomic<std::size_t> failed{0};
  std::atomic<std::size_t> server_errors{0};
  std::mutex m;
  std::vector<std::string> failures;  // the first few, for the report
  void fail(const std::string& what, const test::Answer& a) {
    ++failed;
    if (a.status >= 500 || a.status == 0) {
      ++server_errors;
    }
    std::lock_guard<std::mutex> lock(m);
    if (failures.size() < 10) {
      failures.push_back(what + ": " + a.describe());
    }
  }
};

}  // namespace

TEST_CASE("8 clients for 16,000 requests of mixed operations: no failure, no memory or fd growth",
          "[hardening][soak]") {
  const char* env_requests = std::getenv("KEYPORT_SOAK_REQUESTS");
  const long window = env_requests != nullptr ? std::atol(env_requests) : 16000;
  const char* env_warm = std::getenv("KEYPORT_SOAK_WARMUP_REQUESTS");
  const long warm = env_warm != nullptr ? std::atol(env_warm) : 33000;
  REQUIRE(window >= 1000);
  REQUIRE(warm >= 0);
  // The operation kinds the clients pick from (indexes into the switch below).
  static const std::vector<std::string> kOps = {"get",     "list",    "versions", "sign",
                                                "encrypt", "wrapkey", "update",   "create",
                                                "missing", "badbody"};
  std::vector<unsigned> ops_on;
  if (const char* env_ops = std::getenv("KEYPORT_SOAK_OPS"); env_ops != nullptr && *env_ops) {
    std::stringstream list(env_ops);
    std::string name;
    while (std::getline(list, name, ',')) {
      auto it = std::find(kOps.begin(), kOps.end(), name);
      INFO("KEYPORT_SOAK_OPS: unknown operation \"" << name << "\"");
      REQUIRE(it != kOps.end());
      ops_on.push_back(static_cast<unsigned>(it - kOps.begin()));
    }
  } else {
    for (unsigned i = 0; i < kOps.size(); ++i) {
      ops_on.push_back(i);
    }
  }
  REQUIRE(!ops_on.empty());
  std::string ops_label;
  for (unsigned i : ops_on) {
    ops_label += (ops_label.empty() ? "" : ",") + kOps[i];
  }
  const fs::path dir = test::make_scratch_subdir("soak");
  const fs::path data = dir / "vault";
  Child server(
      {KEYPORT_CLI_BINARY, "vault", "serve", "--data", data.string(), "--listen", "127.0.0.1:0",
       "--flavor", "managed-hsm", "--access-log", (dir / "access.log").string()},
      {}, dir, "serve");
  INFO(server.output());
  REQUIRE(server.wait_for_file(data / "server.json"));
  auto sj = parse_json_strict(slurp(data / "server.json"));
  REQUIRE(sj.has_value());
  const std::string url = (*sj)["url"].get<std::string>();
  const fs::path ca = data / "tls" / "ca.pem";
  const std::string token = slurp(data / "admin.token");

  {
    test::RestClient setup(url, ca, token);
    for (const auto& [name, body] : std::vector<std::pair<std::string, Json>>{
             {"ec", Json{{"kty", "EC-HSM"}, {"crv", "P-256"}}},
             {"rsa", Json{{"kty", "RSA-HSM"}, {"key_size", 2048}}},
             {"aes", Json{{"kty", "oct-HSM"}, {"key_size", 256}}}}) {
      auto a = setup.post("/keys/" + name + "/create", body);
      INFO(a.describe());
      REQUIRE(a.status == 200);
    }
  }

  // Descriptors with no client connected, before the load (compared with the same after it).
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const std::size_t fd_idle_before = server.fd_count();
  Stats stats;
  std::atomic<bool> stop{false};
  auto client_loop = [&](int id) {
    test::RestClient c(url, ca, token);
    std::mt19937 rng(static_cast<unsigned>(id) * 7919u + 1u);
    const std::string digest = base64url_encode(Bytes(32, static_cast<std::uint8_t>(id)));
    const std::string plain = base64url_encode(as_bytes("soak message " + std::to_string(id)));
    const std::string key32 = base64url_encode(Bytes(32, 0x42));
    std::size_t n = 0;
    while (!stop.load()) {
      const unsigned op = ops_on[rng() % ops_on.size()];
      ++n;
      auto expect = [&](const char* what, const test::Answer& a, int status = 200) {
        if (a.status == status) {
          ++stats.ok;
          return true;
        }
        stats.fail(what, a);
        return false;
      };
      switch (op) {
        case 0:
          expect("get", c.get("/keys/ec"));
          break;
        case 1:
          expect("list", c.get("/keys"));
          break;
        case 2:
          expect("versions", c.get("/keys/rsa/versions"));
          break;
        case 3: {
          auto s = c.post("/keys/ec/sign", Json{{"alg", "ES256"}, {"value", digest}});
          if (expect("sign", s)) {
            auto v = c.post("/keys/ec/verify",
                            Json{{"alg", "ES256"}, {"digest", digest}, {"value", s.json["value"]}});
            if (expect("verify", v) && !v.json.value("value", false)) {
              stats.fail("verify said false", v);
            }
          }
          break;
        }
        case 4: {
          auto e = c.post("/keys/rsa/encrypt", Json{{"alg", "RSA-OAEP-256"}, {"value", plain}});
          if (expect("encrypt", e)) {
            auto d = c.post("/keys/rsa/decrypt",
                            Json{{"alg", "RSA-OAEP-256"}, {"value", e.json["value"]}});
            if (expect("decrypt", d) && d.json.value("value", "") != plain) {
              stats.fail("decrypt gave other bytes", d);
            }
          }
          break;
        }
        case 5: {
          auto w = c.post("/keys/aes/wrapkey", Json{{"alg", "A256KW"}, {"value", key32}});
          if (expect("wrapkey", w)) {
            auto u =
                c.post("/keys/aes/unwrapkey", Json{{"alg", "A256KW"}, {"value", w.json["value"]}});
            if (expect("unwrapkey", u) && u.json.value("value", "") != key32) {
              stats.fail("unwrapkey gave other bytes", u);
            }
          }
          break;
        }
        case 6:
          expect("update", c.patch("/keys/ec", Json{{"tags", {{"client", std::to_string(id)}}}}));
          break;
        case 7: {
          // A short-lived key: create, delete, purge (names are per client and per iteration).
          const std::string name = "tmp-" + std::to_string(id) + "-" + std::to_string(n);
          if (expect("create", c.post("/keys/" + name + "/create",
                                      Json{{"kty", "oct-HSM"}, {"key_size", 128}})) &&
              expect("delete", c.del("/keys/" + name))) {
            expect("purge", c.del("/deletedkeys/" + name), 204);
          }
          break;
        }
        case 8:
          expect("missing key", c.get("/keys/nosuch"), 404);
          break;
        default:
          expect("bad body", c.post("/keys/ec/sign", Json{{"alg", "XS256"}, {"value", digest}}),
                 400);
          break;
      }
    }
  };

  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back(client_loop, i);
  }
  // Counts requests, answered or not; a hang guard of 1 s per 10 requests (scaled) bounds each
  // wait.
  auto requests = [&] { return stats.ok.load() + stats.failed.load(); };
  const auto wait_for_requests = [&](std::size_t n, const std::function<void()>& each_poll) {
    const auto budget = test::time_budget(static_cast<double>(n) / 10.0 + 60);
    const auto t0 = std::chrono::steady_clock::now();
    while (requests() < n && std::chrono::steady_clock::now() - t0 < budget && server.running()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      each_poll();
    }
    return requests() >= n;
  };
  const bool warmed = wait_for_requests(static_cast<std::size_t>(warm), [] {});
  const double warm_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::size_t rss_warm = server.rss_kib();
  const std::size_t fd_warm = server.fd_count();
  const std::size_t ops_warm = requests();
  std::size_t rss_peak = rss_warm;
  std::string series = std::to_string(rss_warm);
  std::size_t next_sample = ops_warm + 1000;
  const bool measured = wait_for_requests(ops_warm + static_cast<std::size_t>(window), [&] {
    const std::size_t rss = server.rss_kib();
    rss_peak = std::max(rss_peak, rss);
    if (requests() >= next_sample) {
      series += " " + std::to_string(rss);
      next_sample += 1000;
    }
  });
  const std::size_t rss_end = server.rss_kib();
  const std::size_t fd_end = server.fd_count();
  stop = true;
  for (auto& t : clients) {
    t.join();
  }
  // Connections close with their clients; wait for the server to notice (a hang guard).
  std::size_t fd_idle_after = server.fd_count();
  test::wait_until([&] { return (fd_idle_after = server.fd_count()) <= fd_idle_before; }, 10,
                   std::chrono::milliseconds(100));
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::size_t ops = stats.ok.load() + stats.failed.load();
  const double growth =
      rss_warm == 0 ? 0.0 : 100.0 * (double(rss_end) - double(rss_warm)) / double(rss_warm);
  std::ostringstream report;
  report << "soak: " << ops << " requests in " << elapsed << " s (" << (double(ops) / elapsed)
         << "/s, " << (stats.ok.load() - ops_warm) << " after warm-up), failed " << stats.failed
         << ", 5xx " << stats.server_errors << "; RSS " << rss_warm << " KiB after a warm-up of "
         << ops_warm << " requests in " << warm_s << " s, " << rss_end << " KiB at the end ("
         << growth << " %), peak " << rss_peak << " KiB; every 1,000 requests: " << series
         << " KiB; fds under load " << fd_warm << " -> " << fd_end << ", idle " << fd_idle_before
         << " -> " << fd_idle_after << "; operations " << ops_label;
  WARN(report.str());
  for (const auto& f : stats.failures) {
    UNSCOPED_INFO(f);
  }
  INFO("the warm-up or the window did not reach its request count within its hang guard");
  REQUIRE(warmed);
  REQUIRE(measured);
  CHECK(stats.failed == 0);
  CHECK(stats.server_errors == 0);
  REQUIRE(rss_warm > 0);
  CHECK(growth < 5.0);
  CHECK(fd_idle_after <= fd_idle_before);
  CHECK(server.running());
  CHECK(server.signal_and_wait(SIGTERM) == 0);
  {
    std::ofstream f(test::binary_dir() / "soak-figures.txt");
    f << report.str() << "\n";
  }
}

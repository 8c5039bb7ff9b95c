// SPDX-License-Identifier: Apache-2.0
// cli/main.cpp's last line of defence: an exception nobody wrapped ends the process with a message
// and exit 1, not std::terminate. Reached for real: `keyport vault get --url` against a server in
// this process whose KeyBundle has a number where the key object belongs (nlohmann throws when
// the printer reads it).
#include <catch2/catch.hpp>

#include <httplib.h>

#include <thread>

#include "core/file_io.h"
#include "core/x509.h"
#include "tests/support/support.h"

using namespace keyport;

namespace {

// A TLS server with a fresh local CA that answers every GET with `body`.
class MalformedVault {
 public:
  MalformedVault(const std::filesystem::path& tls_dir, std::string body)
      : m_server((tls_dir / x509::kTlsCertFile).c_str(), (tls_dir / x509::kTlsKeyFile).c_str()) {
    REQUIRE(m_server.is_valid());
    m_server.Get(".*", [body](const httplib::Request&, httplib::Response& res) {
      res.set_content(body, "application/json");
    });
    m_port = m_server.bind_to_any_port("127.0.0.1");
    REQUIRE(m_port > 0);
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
  }
  ~MalformedVault() {
    m_server.stop();
    m_thread.join();
  }
  MalformedVault(const MalformedVault&) = delete;
  MalformedVault& operator=(const MalformedVault&) = delete;
  int port() const { return m_port; }

 private:
  httplib::SSLServer m_server;
  int m_port = 0;
  std::thread m_thread;
};

}  // namespace

TEST_CASE("an exception nobody wrapped ends keyport with exit 1 and an internal error message",
          "[cli]") {
  const std::filesystem::path dir = test::make_scratch_subdir("catch-all");
  auto tls = x509::make_local_tls("keyport test CA");
  REQUIRE_OK(tls);
  REQUIRE_OK(x509::write_local_tls(dir, *tls, false));
  REQUIRE_OK(write_file_atomic(dir / "token", std::string_view("test-token-0123456789")));
  MalformedVault server(dir, R"({"key": 7, "attributes": {}})");

  std::string output;
  const int rc =
      test::run_command(std::string(KEYPORT_CLI_BINARY) +
                            " vault get --url https://127.0.0.1:" + std::to_string(server.port()) +
                            " --token-file '" + (dir / "token").string() + "' --ca-file '" +
                            (dir / x509::kTlsCaFile).string() + "' --name k",
                        &output);
  INFO(output);
  CHECK(rc == 1);  // std::terminate would be 134 (SIGABRT)
  CHECK(output.find("keyport: internal error: ") != std::string::npos);
  CHECK(output.find("terminate called") == std::string::npos);
}

// SPDX-License-Identifier: Apache-2.0
#include "tests/vault/rest_rig.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/file_io.h"
#include "tests/support/softhsm.h"
#include "tests/support/support.h"

extern char** environ;

namespace keyport::test {
namespace fs = std::filesystem;

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string keyport_binary() {
  return KEYPORT_CLI_BINARY;
}

// --- Answer / RestClient ----------------------------------------------------------------------

std::string Answer::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

std::string Answer::describe() const {
  return status == 0 ? "no answer: " + error : std::to_string(status) + " " + body;
}

std::string Answer::code() const {
  if (json.is_object() && json.contains("error") && json["error"].contains("code")) {
    return json["error"]["code"].get<std::string>();
  }
  return {};
}

RestClient::RestClient(const std::string& url, const fs::path& ca_file, std::string token)
    : m_url(url), m_token(std::move(token)) {
  ::signal(SIGPIPE, SIG_IGN);
  const std::string hostport = url.substr(url.find("://") + 3);
  const auto colon = hostport.rfind(':');
  m_client = std::make_unique<httplib::SSLClient>(hostport.substr(0, colon),
                                                  std::stoi(hostport.substr(colon + 1)));
  m_client->set_ca_cert_path(ca_file.string());
  m_client->enable_server_certificate_verification(true);
  m_client->set_keep_alive(true);
  m_client->set_connection_timeout(10);
  m_client->set_read_timeout(120);
}

Answer RestClient::send(const Call& call) {
  httplib::Request req;
  req.method = call.method;
  req.path = call.target;
  req.headers = call.headers;
  if (call.with_token) {
    req.headers.emplace("Authorization", "Bearer " + call.token.value_or(m_token));
  }
  if (call.body) {
    req.body = *call.body;
    req.headers.emplace("Content-Type", call.content_type);
  }
  Answer a;
  auto res = m_client->send(req);
  if (!res) {
    a.error = httplib::to_string(res.error());
    return a;
  }
  a.status = res->status;
  a.body = res->body;
  a.headers = res->headers;
  if (!a.body.empty()) {
    auto j = parse_json_strict(a.body);
    if (j) {
      a.json = std::move(*j);
    }
  }
  return a;
}

std::string RestClient::with_api(const std::string& path) const {
  return path + (path.find('?') == std::string::npos ? "?" : "&") + "api-version=" + api;
}

Answer RestClient::get(const std::string& path) {
  return send(Call{"GET", with_api(path), std::nullopt});
}

Answer RestClient::post(const std::string& path, const Json& body) {
  return send(Call{"POST", with_api(path), dump_json(body)});
}

Answer RestClient::put(const std::string& path, const Json& body) {
  return send(Call{"PUT", with_api(path), dump_json(body)});
}

Answer RestClient::patch(const std::string& path, const Json& body) {
  return send(Call{"PATCH", with_api(path), dump_json(body)});
}

Answer RestClient::del(const std::string& path) {
  return send(Call{"DELETE", with_api(path), std::nullopt});
}

// --- RestRig ----------------------------------------------------------------------------------

RestRig::RestRig(vault::Flavor flavor, const std::string& stem, const std::optional<Json>& access)
    : session(SoftHsm::get().login(kVaultToken)) {
  dir = make_scratch_subdir(stem);
  options.data_dir = dir;
  options.listen = "127.0.0.1:0";
  options.flavor = flavor;
  options.vault_name = stem;
  options.access_log = dir / "access.log";
  if (access) {
    REQUIRE_OK(write_file_atomic(dir / "access.json", dump_json(*access, 2)));
  }
  options.open_vault = [](const fs::path& d) {
    vault::VaultOptions o;
    o.module = SoftHsm::get().module();
    o.token_label = kVaultToken;
    o.pin = SecretBytes::from_string(kVaultPin);
    return vault::Vault::open(d, std::move(o));
  };
  options.print = [this](const std::string& line) { printed.push_back(line); };
  start();
}

void RestRig::start() {
  auto s = vault::Server::start(options);
  REQUIRE_OK(s);
  server = std::move(*s);
}

void RestRig::stop() {
  server.reset();
}

std::string RestRig::admin_token() const {
  if (!fs::exists(dir / "admin.token")) {
    return {};
  }
  std::string t = slurp(dir / "admin.token");
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) {
    t.pop_back();
  }
  return t;
}

RestClient RestRig::client(const std::string& token) const {
  return RestClient(server->url(), ca_file(), token);
}

std::size_t RestRig::token_objects() const {
  p11::Template t;
  t.token(true);
  auto found = session.find_objects(t);
  REQUIRE_OK(found);
  return found->size();
}

// --- ServerProcess ----------------------------------------------------------------------------

ServerProcess::ServerProcess(fs::path data_dir, std::vector<std::string> extra_args,
                             std::vector<std::string> extra_env)
    : m_dir(std::move(data_dir)), m_args(std::move(extra_args)), m_env(std::move(extra_env)) {}

ServerProcess::~ServerProcess() {
  if (m_pid > 0) {
    ::kill(m_pid, SIGKILL);
    int st = 0;
    ::waitpid(m_pid, &st, 0);
  }
}

void ServerProcess::start() {
  REQUIRE(m_pid < 0);
  fs::create_directories(m_dir);
  std::error_code ec;
  fs::remove(m_dir / "server.json", ec);
  std::vector<std::string> args{keyport_binary(), "vault",    "serve",      "--data",
                                m_dir.string(),   "--listen", "127.0.0.1:0"};
  args.insert(args.end(), m_args.begin(), m_args.end());
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    env_strings.emplace_back(*e);
  }
  env_strings.insert(env_strings.end(), m_env.begin(), m_env.end());
  std::vector<char*> envp;
  for (auto& e : env_strings) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);

  ++m_runs;
  const std::string out = (m_dir / ("server-" + std::to_string(m_runs) + ".out")).string();
  const std::string err = (m_dir / ("server-" + std::to_string(m_runs) + ".err")).string();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int rc = posix_spawn(&m_pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);

  bool exited = false;
  const bool ready = test::wait_until(
      [&] {
        int st = 0;
        if (::waitpid(m_pid, &st, WNOHANG) == m_pid) {
          exited = true;
          return true;
        }
        if (!fs::exists(m_dir / "server.json")) {
          return false;
        }
        auto j = parse_json_strict(slurp(m_dir / "server.json"));
        if (j && j->contains("url")) {
          m_url = (*j)["url"].get<std::string>();
          return true;
        }
        return false;
      },
      60, std::chrono::milliseconds(20));
  if (exited) {
    m_pid = -1;
    INFO(output());
    FAIL("keyport vault serve exited before it was ready");
  }
  if (!ready) {
    INFO(output());
    FAIL("keyport vault serve did not write server.json within "
         << test::time_budget(60).count() / 1000 << " s");
  }
}

int ServerProcess::stop() {
  REQUIRE(m_pid > 0);
  ::kill(m_pid, SIGTERM);
  int st = 0;
  if (test::wait_until([&] { return ::waitpid(m_pid, &st, WNOHANG) == m_pid; }, 60,
                       std::chrono::milliseconds(20))) {
    m_pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  WARN("keyport vault serve did not exit within " << test::time_budget(60).count() / 1000
                                                  << " s of SIGTERM; killed");
  ::kill(m_pid, SIGKILL);
  ::waitpid(m_pid, &st, 0);
  m_pid = -1;
  return -1;
}

void ServerProcess::kill_hard() {
  REQUIRE(m_pid > 0);
  ::kill(m_pid, SIGKILL);
  int st = 0;
  ::waitpid(m_pid, &st, 0);
  m_pid = -1;
}

std::string ServerProcess::token() const {
  std::string t = slurp(token_file());
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) {
    t.pop_back();
  }
  return t;
}

std::string ServerProcess::output() const {
  std::string all;
  for (int i = 1; i <= m_runs; ++i) {
    for (const char* ext : {".out", ".err"}) {
      fs::path p = m_dir / ("server-" + std::to_string(i) + ext);
      if (fs::exists(p)) {
        std::ifstream in(p);
        std::ostringstream ss;
        ss << in.rdbuf();
        all += "--- " + p.filename().string() + "\n" + ss.str();
      }
    }
  }
  return all;
}

}  // namespace keyport::test

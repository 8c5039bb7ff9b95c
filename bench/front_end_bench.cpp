// SPDX-License-Identifier: Apache-2.0
// The vault's REST server under the hostile clients of issue 18's probe, in one process on
// SoftHSM2 (the server runs in this process, so VmRSS is the server's, plus the attackers' few
// KiB and the benchmark's own clients):
//
//  1. quiet: a legitimate client's GET /keys/{name} over HTTPS, each on a new TLS connection
//     (connect, handshake, request: what a starved server delays), N times, 50 ms apart;
//  2. the same while 50 sockets never send a TLS hello and 8 clients send their bodies at one
//     byte a second, all reconnecting whenever the server closes them (the probe found the GET
//     delayed to 59 s and 13 s by these on cpp-httplib's thread-per-connection pool);
//  3. the same with, in addition, S connections streaming chunked bodies without a token as fast
//     as they can, reconnecting after each 413 (the probe: 256 MiB grew the server by 528 MiB).
//
// For each phase: the GET median and 90th percentile, the ratio to the quiet median, and the
// largest VmRSS sampled during the phase against the quiet one. The target: GET median
// under 50 ms and VmRSS under 2x idle during phase 2.
//
//   keyport_bench_front_end [--gets N] [--silent N] [--slow N] [--streamers S]
//
// It prints figures and ratios; it asserts nothing.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "bench/attached_vault.h"
#include "pkcs11/module.h"
#include "pkcs11/session.h"
#include "pkcs11/token.h"
#include "vault/server.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

using bench::must;

int tcp_connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) {
      ::close(fd);
    }
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Whether the server closed or answered on `fd` (anything to read, or the end).
bool socket_readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

// A TLS client connection of an attacker (no certificate check: the attacker does not care).
struct TlsConn {
  int fd = -1;
  SSL* ssl = nullptr;
  bool open(SSL_CTX* ctx, int port) {
    close();
    fd = tcp_connect(port);
    if (fd < 0) {
      return false;
    }
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) {
      ERR_clear_error();
      close();
      return false;
    }
    return true;
  }
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const int n = SSL_write(ssl, bytes.data(), static_cast<int>(bytes.size()));
      if (n <= 0) {
        ERR_clear_error();
        return false;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // Whether the server answered or closed (TLS 1.3 session tickets alone are not an answer).
  bool server_spoke() {
    if (!socket_readable(fd)) {
      return false;
    }
    const int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    char buf[512];
    const int n = SSL_read(ssl, buf, sizeof buf - 1);
    const int err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, n);
    ::fcntl(fd, F_SETFL, flags);
    ERR_clear_error();
    if (n > 0) {
      answer.assign(buf, static_cast<std::size_t>(n));
    }
    return err != SSL_ERROR_WANT_READ;
  }
  std::string answer;  // the start of what the server said
  void close() {
    if (ssl != nullptr) {
      SSL_free(ssl);
      ssl = nullptr;
    }
    if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ~TlsConn() { close(); }
};

struct Attack {
  int port = 0;
  SSL_CTX* ctx = nullptr;
  int silent = 50;
  int slow = 8;
  int streamers = 0;
  std::atomic<bool> stop{false};
  std::atomic<long> reconnects{0};
  std::atomic<long long> streamed{0};
  std::atomic<long> refused_413{0};
  std::vector<std::thread> threads;

  void start() {
    // Silent sockets and slow bodies: one thread, one byte per slow client per second.
    threads.emplace_back([this] {
      std::vector<int> quiet(static_cast<std::size_t>(silent), -1);
      std::vector<TlsConn> trickle(static_cast<std::size_t>(slow));
      const std::string head =
          "PUT /keys/slow?api-version=7.5 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n";
      auto next_byte = bench::now_seconds();
      while (!stop) {
        for (int& fd : quiet) {
          if (fd < 0 || socket_readable(fd)) {
            if (fd >= 0) {
              ::close(fd);
              ++reconnects;
            }
            fd = tcp_connect(port);
          }
        }
        const bool tick = bench::now_seconds() >= next_byte;
        for (auto& c : trickle) {
          if (c.fd < 0 || c.server_spoke() || (tick && !c.send("{"))) {
            if (c.fd >= 0) {
              ++reconnects;
            }
            if (c.open(ctx, port)) {
              c.send(head);
            }
          }
        }
        if (tick) {
          next_byte += 1.0;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      for (int fd : quiet) {
        if (fd >= 0) {
          ::close(fd);
        }
      }
    });
    // Chunked streams past the body limit, without a token.
    for (int s = 0; s < streamers; ++s) {
      threads.emplace_back([this] {
        const std::string chunk = "10000\r\n" + std::string(0x10000, 's') + "\r\n";
        while (!stop) {
          TlsConn c;
          if (!c.open(ctx, port)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            continue;
          }
          c.send(
              "PUT /keys/big?api-version=7.5 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
          long long sent = 0;
          bool spoke = false;
          while (!stop && sent < (256ll << 20) && !(spoke = c.server_spoke()) && c.send(chunk)) {
            sent += static_cast<long long>(chunk.size());
          }
          streamed += sent;
          if (spoke && c.answer.rfind("HTTP/1.1 413", 0) == 0) {
            ++refused_413;
          }
        }
      });
    }
  }
  void finish() {
    stop = true;
    for (auto& t : threads) {
      t.join();
    }
    threads.clear();
  }
};

struct Phase {
  double median_ms = 0;
  double p90_ms = 0;
  long rss_max = 0;
  int failed = 0;
};

Phase measure(int gets, const std::string& url, const fs::path& ca, const std::string& token) {
  Phase p;
  std::vector<double> ms;
  std::atomic<bool> done{false};
  std::atomic<long> rss_max{bench::vm_rss_kib()};
  std::thread sampler([&] {
    while (!done) {
      const long r = bench::vm_rss_kib();
      if (r > rss_max) {
        rss_max = r;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  for (int i = 0; i < gets; ++i) {
    bench::HttpsClient c(url, ca, token);
    c.http->set_keep_alive(false);
    c.http->set_read_timeout(120);
    const double t0 = bench::now_seconds();
    auto res = c.send("GET", "/keys/k");
    const double t = bench::now_seconds() - t0;
    if (!res || res->status != 200) {
      ++p.failed;
    } else {
      ms.push_back(t * 1000);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  done = true;
  sampler.join();
  p.median_ms = bench::median(ms);
  std::sort(ms.begin(), ms.end());
  p.p90_ms = ms.empty() ? 0 : ms[std::min(ms.size() - 1, ms.size() * 9 / 10)];
  p.rss_max = rss_max;
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  int gets = 60, silent = 50, slow = 8, streamers = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--gets")) {
      gets = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--silent")) {
      silent = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--slow")) {
      slow = std::atoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--streamers")) {
      streamers = std::atoi(argv[i + 1]);
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  const fs::path dir =
      fs::path(KEYPORT_BINARY_DIR) / "bench-tmp" / ("front-end-" + std::to_string(::getpid()));
  auto attached = bench::start_attached_vault(dir, vault::Flavor::kKeyVault);
  auto& server = attached.server;
  auto& slot = attached.slot;
  const std::string& token = attached.token;
  const std::string& url = attached.url;
  const fs::path& ca = attached.ca;
  {
    bench::HttpsClient admin(url, ca, token);
    Json params{{"kty", "EC-HSM"}, {"crv", "P-256"}};
    admin.call("POST", "/keys/k/create", &params);
    for (int i = 0; i < 20; ++i) {  // warm-up
      admin.call("GET", "/keys/k");
    }
  }
  SSL_CTX* attacker_ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_verify(attacker_ctx, SSL_VERIFY_NONE, nullptr);

  std::printf(
      "keyport front-end benchmark: the vault's REST server, SoftHSM %s, %d GETs per phase "
      "(a new TLS connection each, 50 ms apart), %u cores\n",
      slot.token->firmware().c_str(), gets, std::thread::hardware_concurrency());
  std::printf("%-34s %10s %10s %8s %10s %8s %s\n", "phase", "GET med", "GET p90", "ratio",
              "VmRSS max", "x idle", "attack");
  std::fflush(stdout);
  const Phase quiet = measure(gets, url, ca, token);
  auto print_row = [&](const std::string& name, const Phase& p, const std::string& attack) {
    const std::string failed = p.failed > 0 ? " FAILED GETs: " + std::to_string(p.failed) : "";
    std::printf("%-34s %8.1f ms %7.1f ms %8.2f %7ld MiB %8.2f %s%s\n", name.c_str(), p.median_ms,
                p.p90_ms, p.median_ms / quiet.median_ms, p.rss_max / 1024,
                static_cast<double>(p.rss_max) / quiet.rss_max, attack.c_str(), failed.c_str());
    std::fflush(stdout);
  };
  print_row("quiet", quiet, "");
  std::vector<int> stream_counts{0};
  if (streamers > 0) {
    stream_counts.push_back(streamers);
  }
  for (int with_streams : stream_counts) {
    Attack attack;
    attack.port = server->port();
    attack.ctx = attacker_ctx;
    attack.silent = silent;
    attack.slow = slow;
    attack.streamers = with_streams;
    attack.start();
    std::this_thread::sleep_for(std::chrono::seconds(2));  // every attacker connected
    const Phase p = measure(gets, url, ca, token);
    attack.finish();
    char what[160];
    std::snprintf(what, sizeof what, "%ld reconnects, %lld MiB streamed, %ld x 413",
                  attack.reconnects.load(), attack.streamed.load() >> 20,
                  attack.refused_413.load());
    print_row(std::to_string(silent) + " silent + " + std::to_string(slow) + " slow" +
                  (with_streams > 0 ? " + " + std::to_string(with_streams) + " streams" : ""),
              p, what);
  }
  std::printf("goal (issue 18): GET median < 50 ms and VmRSS < 2x idle under attack\n");
  SSL_CTX_free(attacker_ctx);
  server.reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}

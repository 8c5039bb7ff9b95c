// SPDX-License-Identifier: Apache-2.0
// The HTTP front end's event loop (http/server.h) on Boost.Asio, with asio::ssl over keyport's
// OpenSSL: one I/O thread runs every connection (TLS handshake, reading through RequestParser,
// deadlines, writing, lingering close); complete requests go to a fixed pool of handler workers,
// whose answers are posted back to the I/O thread. This is the only file of keyport that includes
// Boost (its headers are heavy; keeping them here keeps the compile cost in one place).
#include "http/server.h"

#include <openssl/ssl.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "core/log.h"
#include "core/net.h"
#include "http/parser.h"

namespace keyport::http {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

// Types held by Server::Impl live in a named namespace (ARCHITECTURE.md, unity builds).
namespace detail {

// A fixed pool of handler threads. The queue holds at most one job per connection (a connection
// reads its next request only after the answer to the previous one was written).
class WorkerPool {
 public:
  void start(std::size_t threads) {
    for (std::size_t i = 0; i < threads; ++i) {
      m_threads.emplace_back([this] { run(); });
    }
  }
  void post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_jobs.push_back(std::move(job));
    }
    m_cv.notify_one();
  }
  // Runs the jobs already queued, then joins the threads.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_stopping = true;
    }
    m_cv.notify_all();
    for (auto& t : m_threads) {
      if (t.joinable()) {
        t.join();
      }
    }
    m_threads.clear();
  }

 private:
  void run() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(m_mutex);
        m_cv.wait(lock, [this] { return m_stopping || !m_jobs.empty(); });
        if (m_jobs.empty()) {
          return;
        }
        job = std::move(m_jobs.front());
        m_jobs.pop_front();
      }
      job();
    }
  }

  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<std::function<void()>> m_jobs;
  std::vector<std::thread> m_threads;
  bool m_stopping = false;
};

class Connection;

}  // namespace detail

struct Server::Impl {
  explicit Impl(Options o) : options(std::move(o)) {}

  Options options;
  asio::io_context io{1};
  std::optional<asio::ssl::context> tls;
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread io_thread;
  detail::WorkerPool workers;
  int port = 0;

  mutable std::mutex mutex;
  std::condition_variable cv;
  std::unordered_map<detail::Connection*, std::weak_ptr<detail::Connection>> connections;
  bool stopping = false;
  bool stopped = false;

  void accept();
  void run_io();
  Response error(int status, std::string_view message) const;
  Response run_handler(const Request& request) const;
  void finish(const Request& request, Response& response, Clock::time_point start) const;
  void forget(detail::Connection* c) {
    std::lock_guard<std::mutex> lock(mutex);
    connections.erase(c);
    cv.notify_all();
  }
};

namespace detail {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl& server, tcp::socket socket)
      : m_server(server),
        m_timer(server.io),
        m_parser(server.options.limits),
        m_limits(server.options.limits) {
    error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    const auto peer = socket.remote_endpoint(ec);
    m_remote = ec ? std::string("-") : peer.address().to_string();
    if (server.tls) {
      m_tls.emplace(std::move(socket), *server.tls);
    } else {
      m_plain.emplace(std::move(socket));
    }
  }
  ~Connection() { m_server.forget(this); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start() {
    if (m_tls) {
      m_phase = Phase::kHandshake;
      arm(m_limits.handshake_timeout);
      m_tls->async_handshake(asio::ssl::stream_base::server,
                             [self = shared_from_this()](const error_code& ec) {
                               if (self->m_phase != Phase::kHandshake) {
                                 return;
                               }
                               if (ec || self->m_timed_out) {
                                 self->close_now();
                                 return;
                               }
                               self->wait_for_request();
                             });
    } else {
      wait_for_request();
    }
  }

  // The server stops: idle and half-read connections close now; a request in a handler or an
  // answer being written finishes first, then the connection closes.
  void server_stopping() {
    m_close_after = true;
    switch (m_phase) {
      case Phase::kHandler:
      case Phase::kWriting:
        break;
      default:
        close_now();
        break;
    }
  }

 private:
  enum class Phase { kHandshake, kWaiting, kHead, kBody, kHandler, kWriting, kLinger, kClosed };

  tcp::socket& socket() { return m_tls ? m_tls->next_layer() : *m_plain; }

  // --- deadlines: one timer, re-armed at each phase; a total deadline, never extended per read.
  void arm(std::chrono::milliseconds after) {
    const std::uint64_t gen = ++m_gen;
    m_timed_out = false;
    m_timer.expires_after(after);
    m_timer.async_wait([self = shared_from_this(), gen](const error_code& ec) {
      if (ec || gen != self->m_gen) {
        return;
      }
      self->on_deadline();
    });
  }
  void disarm() {
    ++m_gen;
    m_timer.cancel();
  }
  void on_deadline() {
    m_timed_out = true;
    switch (m_phase) {
      case Phase::kHead:
      case Phase::kBody: {
        // The pending read ends with operation_aborted; on_read answers 408.
        error_code ec;
        socket().cancel(ec);
        break;
      }
      case Phase::kHandler:
        break;
      default:
        close_now();
        break;
    }
  }

  // --- reading
  void wait_for_request() {
    m_phase = Phase::kWaiting;
    m_parser.reset();
    m_continue_sent = false;
    if (!m_pending.empty()) {
      process();  // pipelined bytes already here
      return;
    }
    arm(m_first ? m_limits.header_timeout : m_limits.idle_timeout);
    read();
  }

  void read() {
    auto done = [self = shared_from_this()](const error_code& ec, std::size_t n) {
      self->on_read(ec, n);
    };
    if (m_tls) {
      m_tls->async_read_some(asio::buffer(m_buf), std::move(done));
    } else {
      m_plain->async_read_some(asio::buffer(m_buf), std::move(done));
    }
  }

  void on_read(const error_code& ec, std::size_t n) {
    if (m_phase == Phase::kClosed) {
      return;
    }
    if (m_timed_out) {
      if (m_phase == Phase::kHead || m_phase == Phase::kBody) {
        refuse(Refusal{408, m_phase == Phase::kHead
                                ? "The request head did not arrive within " +
                                      std::to_string(m_limits.header_timeout.count()) + " ms."
                                : "The request body did not arrive within " +
                                      std::to_string(m_limits.body_timeout.count()) + " ms."});
      } else {
        close_now();
      }
      return;
    }
    if (ec) {
      close_now();  // the client went away (or the server is stopping)
      return;
    }
    m_pending.append(m_buf.data(), n);
    process();
  }

  void process() {
    while (true) {
      const bool was_started = m_parser.started();
      const std::size_t used = m_parser.feed(m_pending);
      m_pending.erase(0, used);
      if (!was_started && m_parser.started()) {
        m_start = Clock::now();
        m_phase = Phase::kHead;
        arm(m_limits.header_timeout);
      }
      switch (m_parser.state()) {
        case RequestParser::State::kFailed:
          refuse(m_parser.refusal());
          return;
        case RequestParser::State::kDone:
          dispatch();
          return;
        case RequestParser::State::kBody:
          if (m_phase == Phase::kHead) {
            m_phase = Phase::kBody;
            arm(m_limits.body_timeout);
            // RFC 9110 §10.1.1: 100 only when the head was accepted (a body over the limit was
            // refused with 413 above) and the client has not started sending the body anyway.
            if (m_parser.expects_continue() && m_pending.empty() && !m_continue_sent) {
              send_continue();
              return;
            }
          }
          break;
        case RequestParser::State::kHead:
          break;
      }
      if (m_pending.empty()) {
        read();
        return;
      }
      if (used == 0) {
        refuse(Refusal{500, "The request parser made no progress."});
        return;
      }
    }
  }

  void send_continue() {
    m_continue_sent = true;
    m_out = "HTTP/1.1 100 Continue\r\n\r\n";
    write([](Connection& self, const error_code& ec) {
      if (ec || self.m_timed_out) {
        self.close_now();
        return;
      }
      self.process();
    });
  }

  // --- answering
  void dispatch() {
    m_phase = Phase::kHandler;
    disarm();
    Request request = m_parser.take_request();
    request.remote_addr = m_remote;
    Job job{shared_from_this(), std::move(request), m_parser.keep_alive(), m_start};
    m_server.workers.post([job = std::move(job)]() mutable {
      Server::Impl& server = job.self->m_server;
      Response response = server.run_handler(job.request);
      server.finish(job.request, response, job.start);
      const bool head = job.request.method == "HEAD";
      const int minor = job.request.version_minor;
      auto self = job.self;
      asio::post(server.io, [self, response = std::move(response), keep = job.keep_alive, head,
                             minor]() mutable { self->send(response, keep, head, minor); });
    });
  }

  // What the front end answers itself; the connection closes after it.
  void refuse(const Refusal& refusal) {
    // What was parsed goes to on_done; the body read so far is dropped now rather than kept
    // while the connection lingers.
    const Refusal copy = refusal;
    const auto start = m_parser.started() ? m_start : Clock::now();
    Request request = m_parser.take_request();
    std::string().swap(request.body);
    m_parser.reset();
    request.remote_addr = m_remote;
    Response response = m_server.error(copy.status, copy.message);
    m_server.finish(request, response, start);
    send(response, false, false, request.version_minor);
  }

  void send(const Response& response, bool keep_alive, bool head, int minor) {
    if (m_phase == Phase::kClosed) {
      return;
    }
    const bool close = !keep_alive || m_close_after;
    m_out = serialize_response(response, close, head, minor);
    m_phase = Phase::kWriting;
    arm(m_limits.write_timeout);
    write([close](Connection& self, const error_code& ec) {
      if (ec || self.m_timed_out) {
        self.close_now();
        return;
      }
      if (self.m_close_after) {
        // The server is stopping: no lingering (the request was read whole).
        error_code ignored;
        self.socket().shutdown(tcp::socket::shutdown_send, ignored);
        self.close_now();
        return;
      }
      if (close) {
        self.linger();
        return;
      }
      self.m_first = false;
      self.wait_for_request();
    });
  }

  template <typename Next>
  void write(Next next) {
    auto done = [self = shared_from_this(), next](const error_code& ec, std::size_t) {
      if (self->m_phase == Phase::kClosed) {
        return;
      }
      next(*self, ec);
    };
    if (m_tls) {
      asio::async_write(*m_tls, asio::buffer(m_out), std::move(done));
    } else {
      asio::async_write(*m_plain, asio::buffer(m_out), std::move(done));
    }
  }

  // --- closing
  // After an answer that closes the connection: TLS close_notify, then our half of TCP, then
  // read and discard what the client still sends until it closes its half or linger_timeout,
  // so that the answer is not lost to a reset caused by unread data.
  void linger() {
    m_phase = Phase::kLinger;
    std::string().swap(m_out);
    std::string().swap(m_pending);
    arm(m_limits.linger_timeout);
    if (m_tls) {
      m_tls->async_shutdown(
          [self = shared_from_this()](const error_code&) { self->half_close_and_drain(); });
    } else {
      half_close_and_drain();
    }
  }
  void half_close_and_drain() {
    if (m_phase != Phase::kLinger) {
      return;
    }
    error_code ec;
    socket().shutdown(tcp::socket::shutdown_send, ec);
    drain();
  }
  void drain() {
    socket().async_read_some(asio::buffer(m_buf),
                             [self = shared_from_this()](const error_code& ec, std::size_t) {
                               if (self->m_phase != Phase::kLinger) {
                                 return;
                               }
                               if (ec) {
                                 self->close_now();
                                 return;
                               }
                               self->drain();
                             });
  }
  void close_now() {
    if (m_phase == Phase::kClosed) {
      return;
    }
    m_phase = Phase::kClosed;
    disarm();
    error_code ec;
    socket().close(ec);
    std::string().swap(m_pending);
    std::string().swap(m_out);
  }

  struct Job {
    std::shared_ptr<Connection> self;
    Request request;
    bool keep_alive = false;
    Clock::time_point start;
  };

  Server::Impl& m_server;
  std::optional<tcp::socket> m_plain;
  std::optional<asio::ssl::stream<tcp::socket>> m_tls;
  asio::steady_timer m_timer;
  std::uint64_t m_gen = 0;
  bool m_timed_out = false;
  Phase m_phase = Phase::kWaiting;
  RequestParser m_parser;
  Limits m_limits;
  std::array<char, 16 * 1024> m_buf{};
  std::string m_pending;  // received and not yet parsed (at most one read's worth)
  std::string m_out;      // being written
  std::string m_remote;
  Clock::time_point m_start = Clock::now();
  bool m_first = true;
  bool m_close_after = false;
  bool m_continue_sent = false;
};

}  // namespace detail

// --- Server::Impl -----------------------------------------------------------------------------

void Server::Impl::accept() {
  acceptor.async_accept(io, [this](const error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
      return;
    }
    if (ec) {
      // Out of file descriptors and the like: try again a little later rather than spin.
      accept_retry.expires_after(std::chrono::milliseconds(100));
      accept_retry.async_wait([this](const error_code& e) {
        if (!e) {
          accept();
        }
      });
      return;
    }
    bool refuse = false;
    {
      std::lock_guard<std::mutex> lock(mutex);
      refuse = stopping || connections.size() >= options.limits.max_connections;
    }
    if (refuse) {
      error_code ignored;
      socket.close(ignored);
    } else {
      auto c = std::make_shared<detail::Connection>(*this, std::move(socket));
      {
        std::lock_guard<std::mutex> lock(mutex);
        connections.emplace(c.get(), c);
      }
      c->start();
    }
    accept();
  });
}

void Server::Impl::run_io() {
  while (true) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      log::error(std::string("http: the I/O loop failed: ") + e.what());
    } catch (...) {
      log::error("http: the I/O loop failed");
    }
  }
}

Response Server::Impl::error(int status, std::string_view message) const {
  if (options.error_response) {
    try {
      Response r = options.error_response(status, message);
      r.status = status;
      return r;
    } catch (...) {
      // fall through to the plain answer
    }
  }
  Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::string(message) + "\n";
  return r;
}

Response Server::Impl::run_handler(const Request& request) const {
  try {
    if (options.handler) {
      return options.handler(request);
    }
  } catch (...) {
    // answered below
  }
  return error(500, "The server failed to handle the request.");
}

void Server::Impl::finish(const Request& request, Response& response,
                          Clock::time_point start) const {
  try {
    if (options.stamp) {
      options.stamp(request, response);
    }
  } catch (...) {
    // the answer goes out unstamped
  }
  try {
    if (options.on_done) {
      options.on_done(request, response,
                      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start));
    }
  } catch (...) {
    // a failing access log does not fail the request
  }
}

// --- Server -----------------------------------------------------------------------------------

Server::Server(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

Server::~Server() {
  stop();
}

int Server::port() const {
  return m_impl->port;
}

std::size_t Server::connections() const {
  std::lock_guard<std::mutex> lock(m_impl->mutex);
  return m_impl->connections.size();
}

Result<std::unique_ptr<Server>> Server::start(Options options) {
  const Limits& l = options.limits;
  if (!options.handler) {
    return make_error(ErrorCode::kInvalidArgument, "the HTTP server needs a handler");
  }
  if (options.threads < 1 || options.threads > 1024) {
    return make_error(ErrorCode::kInvalidArgument, "the HTTP server needs 1 to 1024 threads");
  }
  if (l.max_header_bytes < 256 || l.max_headers < 1 || l.max_connections < 1) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the HTTP server's limits are too small (headers >= 256 bytes, >= 1 field, "
                      ">= 1 connection)");
  }
  for (auto t :
       {l.handshake_timeout, l.header_timeout, l.body_timeout, l.idle_timeout, l.write_timeout}) {
    if (t.count() <= 0) {
      return make_error(ErrorCode::kInvalidArgument, "the HTTP server's timeouts must be positive");
    }
  }
  auto where = parse_host_port(options.listen, PortZero::kAllow);
  if (!where) {
    return tl::unexpected(where.error().with_context("listen"));
  }
  SSL_CTX* tls = options.tls;
  auto impl = std::make_unique<Impl>(std::move(options));
  if (tls != nullptr) {
    if (SSL_CTX_up_ref(tls) != 1) {
      return make_error(ErrorCode::kCrypto, "cannot take a reference to the TLS context");
    }
    impl->tls.emplace(tls);  // owns the reference from here on
    impl->options.tls = nullptr;
  }

  // The address: a literal, or a name resolved once (the first address wins).
  error_code ec;
  tcp::endpoint endpoint;
  const auto address = asio::ip::make_address(where->host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, where->port);
  } else {
    tcp::resolver resolver(impl->io);
    const auto found = resolver.resolve(where->host, std::to_string(where->port),
                                        tcp::resolver::numeric_service, ec);
    if (ec || found.empty()) {
      return make_error(ErrorCode::kIo, "cannot listen on " + impl->options.listen + ": " +
                                            (ec ? ec.message() : "no address"));
    }
    endpoint = found.begin()->endpoint();
  }
  auto& acceptor = impl->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor.bind(endpoint, ec);
  }
  if (!ec) {
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (!ec) {
    impl->port = acceptor.local_endpoint(ec).port();
  }
  if (ec) {
    return make_error(ErrorCode::kIo,
                      "cannot listen on " + impl->options.listen + ": " + ec.message());
  }

  impl->workers.start(impl->options.threads);
  impl->work.emplace(asio::make_work_guard(impl->io));
  impl->accept();
  Impl* raw = impl.get();
  impl->io_thread = std::thread([raw] { raw->run_io(); });
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void Server::stop() {
  Impl& s = *m_impl;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.stopped) {
      return;
    }
    s.stopped = true;
    s.stopping = true;
  }
  asio::post(s.io, [&s] {
    error_code ignored;
    s.acceptor.close(ignored);
    s.accept_retry.cancel();
    std::vector<std::shared_ptr<detail::Connection>> live;
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      for (auto& [raw, weak] : s.connections) {
        if (auto c = weak.lock()) {
          live.push_back(std::move(c));
        }
      }
    }
    for (auto& c : live) {
      c->server_stopping();
    }
  });
  {
    std::unique_lock<std::mutex> lock(s.mutex);
    s.cv.wait(lock, [&s] { return s.connections.empty(); });
  }
  s.work.reset();
  s.io.stop();
  if (s.io_thread.joinable()) {
    s.io_thread.join();
  }
  s.workers.stop();
}

}  // namespace keyport::http

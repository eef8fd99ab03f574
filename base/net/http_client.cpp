#include "base/net/http_client.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <mutex>
#include <random>
#include <unordered_map>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "base/net/url.hpp"

namespace anvil::net {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr size_t kErrorBodyBytes = 4096;
constexpr uint32_t kHeaderLimit = 64 * 1024;

using TcpStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using WireRequest = http::request<http::string_body>;
using EventSink = std::function<void(const SseEvent&)>;

// One HTTP/1.1 connection, owned by one attempt at a time or by the pool.
// Its sockets use the io_context's plain executor; every operation completes
// on the executor of the coroutine awaiting it (asio dispatches to the
// handler's associated executor), so any strand may borrow it.
struct Connection {
  std::unique_ptr<TcpStream> tcp;  // http
  std::unique_ptr<TlsStream> tls;  // https
  beast::flat_buffer buffer;
  Clock::time_point idle_since;

  TcpStream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *tcp; }
};

// Whether an idle pooled socket is still usable: not if the peer closed it
// (EOF pending) or, on plain HTTP, sent something unsolicited (an error
// response before closing). On TLS pending bytes may be a late TLS 1.3 session
// ticket, so they keep the connection; a close_notify there surfaces as a
// reset before any response byte, which run_attempt() treats as stale.
bool still_open(Connection& c) {
  auto& sock = c.lowest().socket();
  if (!sock.is_open()) return false;
  char byte;
  const ssize_t n = ::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return c.tls != nullptr;
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::mt19937_64& rng() {
  thread_local std::mt19937_64 r{std::random_device{}()};
  return r;
}

std::string new_request_id() {
  char buf[33];
  const uint64_t a = rng()(), b = rng()();
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return buf;
}

bool iequals(std::string_view a, std::string_view b) {
  return beast::iequals(beast::string_view(a.data(), a.size()), beast::string_view(b.data(), b.size()));
}

bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (c <= 0x20 || c >= 0x7f || std::string_view("\"(),/:;<=>?@[\\]{}").find(char(c)) != std::string_view::npos)
      return false;
  return true;
}

// How an attempt ended; decides retry and the error code.
enum class Failure { none, http_status, connect, connect_timeout, timeout, reset, tls, too_large, bad_response };

struct Attempt {
  Failure failure = Failure::none;
  Error error;            // for failures other than none/http_status
  HttpResponse response;  // for none/http_status
  bool write_failed = false;
  bool got_response_bytes = false;
  bool reusable = false;  // the connection may serve another request
};

struct Opened {
  std::unique_ptr<Connection> conn;
  Failure failure = Failure::none;
  Error error;
};

Failure classify_io(const error_code& ec) {
  if (ec == beast::error::timeout) return Failure::timeout;
  if (ec == http::error::body_limit || ec == http::error::header_limit || ec == http::error::buffer_overflow)
    return Failure::too_large;
  if (ec == http::error::partial_message || ec == http::error::end_of_stream) return Failure::reset;
  if (ec.category() == http::make_error_code(http::error::bad_version).category()) return Failure::bad_response;
  if (ec == ssl::error::stream_truncated) return Failure::reset;
  if (ec.category() == asio::error::get_ssl_category()) return Failure::tls;
  return Failure::reset;  // eof, connection_reset, broken_pipe, operation_aborted after close, ...
}

const char* code_for(Failure f) {
  switch (f) {
    case Failure::connect: return "connect_failed";
    case Failure::connect_timeout:
    case Failure::timeout: return "timeout";
    case Failure::reset: return "connection_reset";
    case Failure::tls: return "tls_failed";
    case Failure::too_large: return "response_too_large";
    case Failure::bad_response: return "bad_response";
    case Failure::http_status: return "http_status";
    case Failure::none: break;
  }
  return "internal";
}

Attempt failed(Failure f, std::string message) {
  Attempt a;
  a.failure = f;
  a.error = make_error("outbound", code_for(f), std::move(message));
  return a;
}

WireRequest build_request(const ClientOptions& opts, const HttpRequest& req, const Url& url, bool sse) {
  WireRequest m;
  m.version(11);
  m.method_string(req.method);
  m.target(url.target);
  m.set(http::field::host, url.authority);
  m.set(http::field::user_agent, opts.user_agent);
  if (sse) m.set(http::field::accept, "text/event-stream");
  m.set("X-Request-Id", req.request_id);
  if (!req.idempotency_key.empty()) m.set("Idempotency-Key", req.idempotency_key);
  for (const auto& [name, value] : req.headers) {
    const bool replaces = iequals(name, "host") || iequals(name, "user-agent") || iequals(name, "x-request-id") ||
                          iequals(name, "idempotency-key") || (sse && iequals(name, "accept"));
    if (replaces)
      m.set(name, value);
    else
      m.insert(name, value);
  }
  m.body() = req.body;
  m.prepare_payload();
  m.keep_alive(true);
  return m;
}

}  // namespace

struct HttpClient::Impl {
  asio::io_context& io;
  ClientOptions opts;
  ssl::context tls_ctx{ssl::context::tls_client};
  std::string tls_setup_error;  // non-empty: every https call fails with tls_failed
  Metrics metrics;

  mutable std::mutex mu;
  // Per pool key, oldest first; checkout takes the newest (warmest).
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle;  // GUARDED_BY(mu)

  Impl(asio::io_context& io_, ClientOptions o) : io(io_), opts(std::move(o)) {
    SSL_CTX_set_min_proto_version(tls_ctx.native_handle(), TLS1_2_VERSION);
    error_code ec;
    tls_ctx.set_default_verify_paths(ec);
    if (ec) tls_setup_error = "system CA store: " + ec.message();
    if (!opts.ca_file.empty()) {
      tls_ctx.load_verify_file(opts.ca_file, ec);
      if (ec) tls_setup_error = "ca_file " + opts.ca_file + ": " + ec.message();
    }
    tls_ctx.set_verify_mode(ssl::verify_peer);
  }

  std::unique_ptr<Connection> checkout(const std::string& key) {
    std::vector<std::unique_ptr<Connection>> dead;  // closed outside the lock
    std::unique_ptr<Connection> found;
    {
      std::lock_guard lock(mu);
      auto it = idle.find(key);
      if (it == idle.end()) return nullptr;
      auto& list = it->second;
      const auto now = Clock::now();
      while (!list.empty() && !found) {
        std::unique_ptr<Connection> c = std::move(list.back());
        list.pop_back();
        if (now - c->idle_since < opts.idle_timeout && still_open(*c))
          found = std::move(c);
        else
          dead.push_back(std::move(c));
      }
    }
    metrics.stale_connections += dead.size();
    return found;
  }

  void checkin(const std::string& key, std::unique_ptr<Connection> c) {
    c->lowest().expires_never();
    c->idle_since = Clock::now();
    std::vector<std::unique_ptr<Connection>> dead;
    {
      std::lock_guard lock(mu);
      auto& list = idle[key];
      // Drop the expired ones from the old end while we hold the list.
      const auto cutoff = c->idle_since - opts.idle_timeout;
      size_t expired = 0;
      while (expired < list.size() && list[expired]->idle_since < cutoff) ++expired;
      for (size_t i = 0; i < expired; ++i) dead.push_back(std::move(list[i]));
      list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(expired));
      if (list.size() < opts.max_idle_per_host)
        list.push_back(std::move(c));
      else
        dead.push_back(std::move(c));
    }
  }
};

namespace {

using Impl = HttpClient::Impl;

// DNS (skipped for IP literals), TCP connect and, for https, the TLS
// handshake with SNI and hostname verification, all before `deadline`.
asio::awaitable<Opened> open_connection(Impl& impl, const Url& url, Clock::time_point deadline) {
  Opened out;
  auto ex = co_await asio::this_coro::executor;
  error_code ec;
  std::vector<tcp::endpoint> endpoints;
  const asio::ip::address literal = asio::ip::make_address(url.host, ec);
  const bool is_ip = !ec;
  if (is_ip) {
    endpoints.emplace_back(literal, url.port);
  } else {
    // getaddrinfo cannot be interrupted: cancel() only stops the wait for it.
    auto resolver = std::make_shared<tcp::resolver>(ex);
    asio::steady_timer guard(ex, deadline);
    guard.async_wait([resolver](error_code e) {
      if (!e) resolver->cancel();
    });
    const std::string service = std::to_string(url.port);
    tcp::resolver::results_type results =
        co_await resolver->async_resolve(url.host, service, asio::redirect_error(asio::use_awaitable, ec));
    guard.cancel();
    if (ec) {
      out.failure = Clock::now() >= deadline ? Failure::connect_timeout : Failure::connect;
      out.error = make_error("outbound", code_for(out.failure), "DNS lookup of " + url.host + " failed: " + ec.message());
      co_return out;
    }
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }

  auto stream = std::make_unique<TcpStream>(impl.io.get_executor());
  stream->expires_at(deadline);
  co_await stream->async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.failure = ec == beast::error::timeout ? Failure::connect_timeout : Failure::connect;
    out.error = make_error("outbound", code_for(out.failure),
                           "connect to " + url.authority + " failed: " + ec.message());
    co_return out;
  }
  stream->socket().set_option(tcp::no_delay(true), ec);
  impl.metrics.connections_opened++;

  auto conn = std::make_unique<Connection>();
  if (!url.tls) {
    conn->tcp = std::move(stream);
    out.conn = std::move(conn);
    co_return out;
  }

  if (!impl.tls_setup_error.empty()) {
    out.failure = Failure::tls;
    out.error = make_error("outbound", "tls_failed", impl.tls_setup_error);
    co_return out;
  }
  conn->tls = std::make_unique<TlsStream>(std::move(*stream), impl.tls_ctx);
  if (!is_ip) SSL_set_tlsext_host_name(conn->tls->native_handle(), url.host.c_str());
  conn->tls->set_verify_callback(ssl::host_name_verification(url.host));
  co_await conn->tls->async_handshake(ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    Failure f = classify_io(ec);
    // Nothing was sent yet: a reset during the handshake is a connect failure.
    out.failure = f == Failure::timeout ? Failure::connect_timeout : f == Failure::tls ? Failure::tls : Failure::connect;
    std::string why = ec.message();
    const long verify = SSL_get_verify_result(conn->tls->native_handle());
    if (verify != X509_V_OK) why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    out.error = make_error("outbound", code_for(out.failure), "TLS handshake with " + url.authority + " failed: " + why);
    co_return out;
  }
  out.conn = std::move(conn);
  co_return out;
}

void fill_response(http::response_parser<http::string_body>& parser, HttpResponse& out) {
  auto& msg = parser.get();
  out.status = static_cast<int>(msg.result_int());
  out.headers.clear();
  for (const auto& field : msg) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out.headers.emplace_back(std::move(name), std::string(field.value()));
  }
  out.body = std::move(msg.body());
}

Attempt io_failure(const error_code& ec, const char* phase, const Url& url) {
  Failure f = classify_io(ec);
  std::string what = f == Failure::timeout ? "timed out" : ec.message();
  return failed(f, std::string(phase) + " " + url.authority + ": " + what);
}

// Sends one request on an open connection and reads the response (or, for a
// 2xx answer to stream(), its events).
template <class Stream>
asio::awaitable<Attempt> exchange(Impl& impl, Stream& stream, Connection& conn, const Url& url,
                                  const WireRequest& req, Clock::time_point deadline,
                                  std::chrono::milliseconds read_gap, const EventSink* sink, bool* delivered) {
  error_code ec;
  conn.lowest().expires_at(deadline);
  co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    Attempt a = io_failure(ec, "sending to", url);
    a.write_failed = true;
    co_return a;
  }

  http::response_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  if (sink)
    // The SSE parser bounds each event instead. Not boost::none: Beast 1.74
    // compares a Content-Length against the optional and fails on none.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  else
    parser.body_limit(impl.opts.max_body_bytes);
  if (req.method() == http::verb::head) parser.skip(true);

  co_await http::async_read_header(stream, conn.buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    Attempt a = io_failure(ec, "reading the response of", url);
    a.got_response_bytes = parser.got_some();
    co_return a;
  }

  const int status = static_cast<int>(parser.get().result_int());
  const bool deliver = sink && status >= 200 && status <= 299;
  if (!deliver) {
    co_await http::async_read(stream, conn.buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      Attempt a = io_failure(ec, "reading the response of", url);
      a.got_response_bytes = true;
      co_return a;
    }
  } else {
    SseParser sse(impl.opts.max_body_bytes);
    EventSink emit = [&](const SseEvent& ev) {
      *delivered = true;
      impl.metrics.events++;
      (*sink)(ev);
    };
    while (!parser.is_done()) {
      conn.lowest().expires_after(read_gap);
      co_await http::async_read_some(stream, conn.buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      std::string& chunk = parser.get().body();
      bool fits = true;
      if (!chunk.empty()) {
        fits = sse.feed(chunk, emit);
        chunk.clear();
      }
      if (ec) {
        Attempt a = io_failure(ec, "reading the event stream of", url);
        a.got_response_bytes = true;
        co_return a;
      }
      if (!fits) {
        Attempt a = failed(Failure::too_large, "an event from " + url.authority + " exceeds the body limit");
        a.got_response_bytes = true;
        co_return a;
      }
    }
  }

  Attempt a;
  a.got_response_bytes = true;
  a.reusable = parser.keep_alive();
  fill_response(parser, a.response);
  if (status < 200 || status > 399) a.failure = Failure::http_status;
  co_return a;
}

// One attempt: a pooled connection if there is a live one, else a new one. A
// pooled connection that fails before any response byte arrived (the server
// closed it while idle) is replaced once without using up an attempt, when
// the request surely did not reach the server or may be repeated.
asio::awaitable<Attempt> run_attempt(Impl& impl, const Url& url, const std::string& key, const WireRequest& req,
                                     Clock::time_point deadline, Clock::time_point connect_deadline,
                                     std::chrono::milliseconds read_gap, const EventSink* sink, bool* delivered,
                                     bool idempotent) {
  std::unique_ptr<Connection> conn = impl.checkout(key);
  bool reused = conn != nullptr;
  for (;;) {
    if (!conn) {
      Opened opened = co_await open_connection(impl, url, connect_deadline);
      if (!opened.conn) {
        Attempt a;
        a.failure = opened.failure;
        a.error = std::move(opened.error);
        co_return a;
      }
      conn = std::move(opened.conn);
    } else {
      impl.metrics.connections_reused++;
    }

    Attempt a;
    if (conn->tls)
      a = co_await exchange(impl, *conn->tls, *conn, url, req, deadline, read_gap, sink, delivered);
    else
      a = co_await exchange(impl, *conn->tcp, *conn, url, req, deadline, read_gap, sink, delivered);

    if (a.failure == Failure::none || a.failure == Failure::http_status) {
      // Bytes after the response would be parsed as the next response.
      if (a.reusable && conn->buffer.size() == 0) impl.checkin(key, std::move(conn));
      co_return a;
    }
    const bool stale = reused && a.failure == Failure::reset && !a.got_response_bytes && !*delivered &&
                       (a.write_failed || idempotent) && Clock::now() < deadline;
    if (!stale) co_return a;
    impl.metrics.stale_connections++;
    conn.reset();
    reused = false;
  }
}

std::string path_of(const Url& url) { return url.target.substr(0, url.target.find('?')); }

Error final_error(Attempt& a, uint32_t attempts) {
  if (a.failure == Failure::http_status) {
    const auto& r = a.response;
    return make_error("outbound", "http_status", "HTTP " + std::to_string(r.status),
                      obj({{"status", r.status},
                           {"body", r.body.substr(0, kErrorBodyBytes)},
                           {"attempts", int64_t(attempts)}}));
  }
  Error e = std::move(a.error);
  e.metadata = obj({{"attempts", int64_t(attempts)}});
  return e;
}

void record_duration(HttpClient::Metrics& m, Clock::duration d) {
  const double seconds = std::chrono::duration<double>(d).count();
  size_t i = 0;
  while (i < std::size(HttpClient::Metrics::kBuckets) && seconds > HttpClient::Metrics::kBuckets[i]) ++i;
  m.duration_buckets[i]++;
  m.duration_us_sum += uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

struct InFlight {
  HttpClient::Metrics& m;
  explicit InFlight(HttpClient::Metrics& metrics) : m(metrics) { m.in_flight++; }
  ~InFlight() { m.in_flight--; }
};

asio::awaitable<Result<HttpResponse>> perform(std::shared_ptr<Impl> keep, HttpRequest req, EventSink on_event) {
  Impl& impl = *keep;
  HttpClient::Metrics& metrics = impl.metrics;
  const auto started = Clock::now();
  metrics.requests++;
  InFlight in_flight(metrics);

  Result<Url> parsed = parse_url(req.url);
  if (!parsed) {
    metrics.failures++;
    spdlog::warn("outbound {} failed: {}", req.method, parsed.error().message);
    co_return parsed.take_error();
  }
  const Url& url = parsed.value();
  bool bad_header = !is_token(req.method) || has_crlf(req.idempotency_key) || has_crlf(req.request_id);
  for (const auto& [name, value] : req.headers) bad_header = bad_header || !is_token(name) || has_crlf(value);
  if (bad_header) {
    metrics.failures++;
    co_return make_error("outbound", "invalid_request",
                         "method or header of the request to " + url.authority + " is not valid HTTP");
  }

  if (req.request_id.empty()) req.request_id = new_request_id();
  const EventSink* sink = on_event ? &on_event : nullptr;
  const WireRequest wire = build_request(impl.opts, req, url, sink != nullptr);
  const std::string key = url.pool_key();
  const std::string path = path_of(url);
  const bool idempotent = is_idempotent_method(req.method) || !req.idempotency_key.empty() || req.retry_non_idempotent;
  const auto budget_deadline = started + req.retry.retry_budget;
  const uint32_t max_attempts = std::max<uint32_t>(1, req.retry.max_attempts);
  auto ex = co_await asio::this_coro::executor;
  bool delivered = false;

  for (uint32_t attempt = 1;; ++attempt) {
    const auto attempt_start = Clock::now();
    const auto deadline = std::min(attempt_start + req.total_timeout, budget_deadline);
    const auto connect_deadline = std::min(attempt_start + req.connect_timeout, deadline);
    metrics.attempts++;
    if (attempt > 1) metrics.retries++;

    Attempt a = co_await run_attempt(impl, url, key, wire, deadline, connect_deadline, req.total_timeout, sink,
                                     &delivered, idempotent);
    const auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    if (a.failure == Failure::timeout || a.failure == Failure::connect_timeout) metrics.timeouts++;
    if (a.failure == Failure::none || a.failure == Failure::http_status) {
      const int cls = a.response.status / 100;
      if (cls >= 1 && cls <= 5) metrics.responses_by_class[cls]++;
    }

    if (a.failure == Failure::none) {
      record_duration(metrics, Clock::now() - started);
      spdlog::debug("outbound {} {}{} status={} requestId={} idempotencyKey={} retryAttempt={} durationMs={}",
                    req.method, url.authority, path, a.response.status, req.request_id, req.idempotency_key,
                    attempt - 1, elapsed_ms);
      a.response.attempts = attempt;
      co_return std::move(a.response);
    }

    bool retryable = false;
    switch (a.failure) {
      case Failure::connect:
      case Failure::connect_timeout: retryable = true; break;  // nothing reached the server
      case Failure::timeout:
      case Failure::reset: retryable = idempotent; break;
      case Failure::http_status: retryable = idempotent && is_retryable_status(a.response.status); break;
      default: break;
    }
    if (delivered) retryable = false;

    std::chrono::milliseconds wait{0};
    bool budget_spent = false;
    if (retryable && attempt < max_attempts) {
      wait = backoff_delay(req.retry, attempt, rng());
      const int s = a.response.status;
      if (a.failure == Failure::http_status && (s == 429 || s == 503)) {
        if (auto ra = a.response.header("retry-after")) {
          if (auto after = parse_retry_after(*ra, std::chrono::system_clock::now())) wait = std::max(wait, *after);
        }
      }
      budget_spent = Clock::now() + wait >= budget_deadline;
    }
    const int status = a.failure == Failure::http_status ? a.response.status : 0;
    Error err = final_error(a, attempt);

    if (!retryable || attempt >= max_attempts || budget_spent) {
      metrics.failures++;
      record_duration(metrics, Clock::now() - started);
      spdlog::warn(
          "outbound {} {}{} failed: {}.{} {} status={} requestId={} idempotencyKey={} retryAttempt={} "
          "durationMs={}{}",
          req.method, url.authority, path, err.group, err.code, err.message, status, req.request_id,
          req.idempotency_key, attempt - 1, elapsed_ms, budget_spent ? " (retry budget spent)" : "");
      co_return err;
    }

    spdlog::warn(
        "outbound {} {}{} retrying in {}ms after {}.{} {} status={} requestId={} idempotencyKey={} retryAttempt={} "
        "durationMs={}",
        req.method, url.authority, path, wait.count(), err.group, err.code, err.message, status, req.request_id,
        req.idempotency_key, attempt, elapsed_ms);
    asio::steady_timer timer(ex, wait);
    error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view lower) const {
  for (const auto& [name, value] : headers)
    if (name == lower) return value;
  return std::nullopt;
}

HttpClient::HttpClient(asio::io_context& io, ClientOptions opts) : impl_(std::make_shared<Impl>(io, std::move(opts))) {}

HttpClient::~HttpClient() {
  // In-flight calls hold their own reference; idle connections close now.
  std::unordered_map<std::string, std::vector<std::unique_ptr<Connection>>> idle;
  {
    std::lock_guard lock(impl_->mu);
    idle.swap(impl_->idle);
  }
}

asio::awaitable<Result<HttpResponse>> HttpClient::request(HttpRequest req) {
  return perform(impl_, std::move(req), nullptr);
}

asio::awaitable<Result<HttpResponse>> HttpClient::stream(HttpRequest req, std::function<void(const SseEvent&)> on_event) {
  if (!on_event) on_event = [](const SseEvent&) {};
  return perform(impl_, std::move(req), std::move(on_event));
}

const HttpClient::Metrics& HttpClient::metrics() const { return impl_->metrics; }

size_t HttpClient::idle_connections() const {
  std::lock_guard lock(impl_->mu);
  size_t n = 0;
  for (const auto& [key, list] : impl_->idle) n += list.size();
  return n;
}

std::string HttpClient::metrics_text() const {
  const Metrics& m = impl_->metrics;
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out += fmt::format("# HELP anvil_outbound_{0} {1}\n# TYPE anvil_outbound_{0} counter\nanvil_outbound_{0} {2}\n",
                       name, help, v);
  };
  counter("requests_total", "Outbound HTTP calls (request and stream).", m.requests);
  counter("attempts_total", "Outbound HTTP attempts, retries included.", m.attempts);
  counter("retries_total", "Outbound HTTP attempts after the first.", m.retries);
  counter("failures_total", "Outbound HTTP calls that returned an error.", m.failures);
  counter("timeouts_total", "Outbound HTTP attempts that timed out.", m.timeouts);
  counter("connections_opened_total", "Outbound connections opened.", m.connections_opened);
  counter("connections_reused_total", "Outbound attempts served by a pooled keep-alive connection.",
          m.connections_reused);
  counter("stale_connections_total", "Pooled connections found closed or expired.", m.stale_connections);
  counter("sse_events_total", "Server-sent events delivered.", m.events);
  out += "# HELP anvil_outbound_responses_total Final outbound responses by status class.\n"
         "# TYPE anvil_outbound_responses_total counter\n";
  for (int c = 1; c <= 5; ++c)
    out += fmt::format("anvil_outbound_responses_total{{class=\"{}xx\"}} {}\n", c, m.responses_by_class[c].load());
  out += fmt::format(
      "# HELP anvil_outbound_in_flight Outbound calls in progress.\n# TYPE anvil_outbound_in_flight gauge\n"
      "anvil_outbound_in_flight {}\n",
      m.in_flight.load());
  out += fmt::format(
      "# HELP anvil_outbound_idle_connections Idle pooled connections.\n"
      "# TYPE anvil_outbound_idle_connections gauge\nanvil_outbound_idle_connections {}\n",
      idle_connections());
  out += "# HELP anvil_outbound_duration_seconds Outbound call duration, retries included.\n"
         "# TYPE anvil_outbound_duration_seconds histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < std::size(Metrics::kBuckets); ++i) {
    cumulative += m.duration_buckets[i];
    out += fmt::format("anvil_outbound_duration_seconds_bucket{{le=\"{}\"}} {}\n", Metrics::kBuckets[i], cumulative);
  }
  cumulative += m.duration_buckets[std::size(Metrics::kBuckets)];
  out += fmt::format("anvil_outbound_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
  out += fmt::format("anvil_outbound_duration_seconds_sum {}\n", double(m.duration_us_sum.load()) / 1e6);
  out += fmt::format("anvil_outbound_duration_seconds_count {}\n", cumulative);
  return out;
}

}  // namespace anvil::net

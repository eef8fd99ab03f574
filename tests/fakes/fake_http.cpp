#include "tests/fakes/fake_http.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "base/net/url.hpp"
#include "base/value/asio.hpp"

namespace anvil::fakes {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

std::optional<std::string> RecordedRequest::header(std::string_view lower) const {
  for (const auto& [name, value] : headers)
    if (name == lower) return value;
  return std::nullopt;
}

FakeResponse FakeResponse::text(int status, std::string body) {
  FakeResponse r;
  r.status = status;
  r.headers = {{"Content-Type", "text/plain"}};
  r.body = std::move(body);
  return r;
}

FakeResponse FakeResponse::json(int status, std::string body) {
  FakeResponse r = text(status, std::move(body));
  r.headers = {{"Content-Type", "application/json"}};
  return r;
}

FakeResponse FakeResponse::retry_after(int status, std::string value) {
  FakeResponse r = text(status, "retry later");
  r.headers.emplace_back("Retry-After", std::move(value));
  return r;
}

FakeResponse FakeResponse::hang() {
  FakeResponse r;
  r.fault = Fault::hang;
  return r;
}

FakeResponse FakeResponse::reset_mid_body(std::string body, size_t sent_bytes) {
  FakeResponse r = text(200, std::move(body));
  r.fault = Fault::reset_mid_body;
  r.reset_after_bytes = std::min(sent_bytes, r.body.size());
  return r;
}

FakeResponse FakeResponse::close() {
  FakeResponse r;
  r.fault = Fault::close;
  return r;
}

FakeResponse FakeResponse::events(std::vector<SseChunk> chunks) {
  FakeResponse r;
  r.headers = {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}};
  r.sse = std::move(chunks);
  return r;
}

FakeResponse FakeResponse::after(std::chrono::milliseconds d) && {
  delay = d;
  return std::move(*this);
}

FakeResponse FakeResponse::live_events(LivePoll poll) {
  FakeResponse r;
  r.headers = {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}};
  r.live = std::move(poll);
  return r;
}

FakeResponse FakeResponse::with_header(std::string name, std::string value) && {
  headers.emplace_back(std::move(name), std::move(value));
  return std::move(*this);
}

std::string utc_now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::vector<std::string> path_segments(std::string_view path, bool decode) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    auto end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    if (end > pos) {
      auto seg = path.substr(pos, end - pos);
      out.push_back(decode ? net::percent_decode(seg) : std::string(seg));
    }
    pos = end + 1;
  }
  return out;
}

TlsFiles write_self_signed_cert(const std::string& dir) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  if (!key || !cert) throw std::runtime_error("write_self_signed_cert: OpenSSL key/cert allocation failed");
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), static_cast<long>(std::random_device{}() & 0x7fffffff));
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  const std::pair<int, const char*> exts[] = {{NID_basic_constraints, "critical,CA:TRUE"},
                                              {NID_key_usage, "critical,digitalSignature,keyCertSign"},
                                              {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"}};
  for (const auto& [nid, value] : exts) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert, key, EVP_sha256());

  TlsFiles files{dir + "/fake-cert.pem", dir + "/fake-key.pem"};
  FILE* f = std::fopen(files.cert_file.c_str(), "w");
  if (!f) throw std::runtime_error("write_self_signed_cert: cannot write " + files.cert_file);
  PEM_write_X509(f, cert);
  std::fclose(f);
  f = std::fopen(files.key_file.c_str(), "w");
  if (!f) throw std::runtime_error("write_self_signed_cert: cannot write " + files.key_file);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(cert);
  EVP_PKEY_free(key);
  return files;
}

namespace {

struct Route {
  Handler handler;                   // either a handler
  std::vector<FakeResponse> script;  // or a script
  size_t next = 0;
};

// What stop() needs to close a live connection from its own strand.
struct Live {
  asio::any_io_executor strand;
  std::function<void()> close;
};

}  // namespace

struct FakeHttpServer::State : std::enable_shared_from_this<FakeHttpServer::State> {
  Options options;
  asio::io_context io;
  std::optional<ssl::context> tls;
  tcp::acceptor acceptor{io};
  asio::strand<asio::io_context::executor_type> accept_strand = asio::make_strand(io);  // accept loop + close
  uint16_t port = 0;
  std::vector<std::thread> threads;
  std::atomic<uint64_t> accepted{0};
  std::atomic<bool> stopped{false};

  mutable std::mutex mu;
  std::map<std::pair<std::string, std::string>, Route> routes;  // GUARDED_BY(mu)
  std::vector<RecordedRequest> recorded;                        // GUARDED_BY(mu)
  std::unordered_map<uint64_t, Live> live;                      // GUARDED_BY(mu)
  Handler fallback;                                             // GUARDED_BY(mu)

  FakeResponse respond(const RecordedRequest& req) {
    Handler handler;
    {
      std::lock_guard lock(mu);
      if (options.record) recorded.push_back(req);
      auto it = routes.find({req.method, req.path});
      if (it == routes.end()) {
        if (!fallback) return FakeResponse::text(404, "no route " + req.method + " " + req.path);
        handler = fallback;
      } else if (!it->second.handler) {
        Route& r = it->second;
        const size_t i = std::min(r.next, r.script.size() - 1);
        ++r.next;
        return r.script[i];
      } else {
        handler = it->second.handler;
      }
    }
    return handler(req);
  }
};

namespace {

using State = FakeHttpServer::State;

std::string status_line(int status) {
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason.empty() ? "Unknown" : reason) + "\r\n";
}

template <class Stream>
asio::awaitable<bool> write_raw(Stream& stream, const std::string& bytes) {
  error_code ec;
  co_await asio::async_write(stream, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

template <class Stream>
asio::awaitable<void> sleep_for(Stream& stream, std::chrono::milliseconds d) {
  if (d.count() <= 0) co_return;
  asio::steady_timer timer(stream.get_executor(), d);
  error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

// Answers one request; false when the connection must end.
template <class Stream>
asio::awaitable<bool> answer(Stream& stream, const FakeResponse& r, bool keep_alive) {
  co_await sleep_for(stream, r.delay);
  using Fault = FakeResponse::Fault;
  if (r.fault == Fault::close) co_return false;
  if (r.fault == Fault::hang) {
    // Never answer: wait for the client to give up (or stop() to close).
    char sink[512];
    error_code ec;
    while (!ec) co_await stream.async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
    co_return false;
  }

  std::string head = status_line(r.status);
  for (const auto& [name, value] : r.headers) head += name + ": " + value + "\r\n";
  if (r.live) {
    head += "Transfer-Encoding: chunked\r\n\r\n";
    if (!co_await write_raw(stream, head)) co_return false;
    auto& sock = beast::get_lowest_layer(stream).socket();
    auto quiet = std::chrono::steady_clock::now();
    for (bool more = true; more && sock.is_open();) {
      std::string text;
      more = r.live(text);
      if (text.empty() && std::chrono::steady_clock::now() - quiet > std::chrono::milliseconds(500)) text = ":\n\n";
      if (!text.empty()) {
        quiet = std::chrono::steady_clock::now();
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", text.size());
        const std::string framed = size + text + "\r\n";
        if (!co_await write_raw(stream, framed)) co_return false;
      }
      if (more) co_await sleep_for(stream, std::chrono::milliseconds(5));
    }
    const std::string last = "0\r\n\r\n";
    co_return co_await write_raw(stream, last) && keep_alive;
  }
  if (!r.sse.empty()) {
    head += "Transfer-Encoding: chunked\r\n\r\n";
    if (!co_await write_raw(stream, head)) co_return false;
    for (const SseChunk& chunk : r.sse) {
      co_await sleep_for(stream, chunk.delay);
      if (chunk.text.empty()) continue;  // an empty chunk would end the body
      char size[32];
      std::snprintf(size, sizeof size, "%zx\r\n", chunk.text.size());
      const std::string framed = size + chunk.text + "\r\n";
      if (!co_await write_raw(stream, framed)) co_return false;
    }
    const std::string last = "0\r\n\r\n";
    co_return co_await write_raw(stream, last) && keep_alive;
  }

  head += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (!keep_alive) head += "Connection: close\r\n";
  head += "\r\n";
  if (r.fault == Fault::reset_mid_body) {
    const std::string partial = head + r.body.substr(0, r.reset_after_bytes);
    co_await write_raw(stream, partial);
    auto& sock = beast::get_lowest_layer(stream).socket();
    error_code ec;
    sock.set_option(asio::socket_base::linger(true, 0), ec);
    sock.close(ec);
    co_return false;
  }
  const std::string all = head + r.body;
  co_return co_await write_raw(stream, all) && keep_alive;
}

template <class Stream>
asio::awaitable<void> serve(std::shared_ptr<State> st, Stream& stream, uint64_t id) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    error_code ec;
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    auto& msg = parser.get();
    RecordedRequest rec;
    rec.connection = id;
    rec.method = std::string(msg.method_string());
    rec.target = std::string(msg.target());
    rec.path = rec.target.substr(0, rec.target.find('?'));
    for (const auto& field : msg) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      rec.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    rec.body = std::move(msg.body());
    const bool keep_alive = msg.keep_alive();
    const FakeResponse response = st->respond(rec);
    const bool more = co_await answer(stream, response, keep_alive);
    if (!more) co_return;
  }
}

asio::awaitable<void> plain_session(std::shared_ptr<State> st, tcp::socket socket, uint64_t id) {
  auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
  {
    std::lock_guard lock(st->mu);
    std::weak_ptr<beast::tcp_stream> weak = stream;
    st->live[id] = Live{stream->get_executor(), [weak] {
                          error_code ec;
                          if (auto s = weak.lock()) s->socket().close(ec);
                        }};
  }
  co_await serve(st, *stream, id);
  std::lock_guard lock(st->mu);
  st->live.erase(id);
}

asio::awaitable<void> tls_session(std::shared_ptr<State> st, tcp::socket socket, uint64_t id) {
  auto stream = std::make_shared<beast::ssl_stream<beast::tcp_stream>>(std::move(socket), *st->tls);
  {
    std::lock_guard lock(st->mu);
    std::weak_ptr<beast::ssl_stream<beast::tcp_stream>> weak = stream;
    st->live[id] = Live{stream->get_executor(), [weak] {
                          error_code ec;
                          if (auto s = weak.lock()) beast::get_lowest_layer(*s).socket().close(ec);
                        }};
  }
  error_code ec;
  beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(10));
  co_await stream->async_handshake(ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
  beast::get_lowest_layer(*stream).expires_never();
  if (!ec) co_await serve(st, *stream, id);
  std::lock_guard lock(st->mu);
  st->live.erase(id);
}

asio::awaitable<void> accept_loop(std::shared_ptr<State> st) {
  for (;;) {
    error_code ec;
    asio::any_io_executor strand = asio::make_strand(st->io);
    tcp::socket socket = co_await st->acceptor.async_accept(strand, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (st->stopped || !st->acceptor.is_open()) co_return;
      continue;  // e.g. EMFILE under load: keep serving the others
    }
    const uint64_t id = ++st->accepted;
    if (st->tls)
      asio::co_spawn(strand, tls_session(st, std::move(socket), id), asio::detached);
    else
      asio::co_spawn(strand, plain_session(st, std::move(socket), id), asio::detached);
  }
}

}  // namespace

FakeHttpServer::FakeHttpServer() : FakeHttpServer(Options{}) {}

FakeHttpServer::FakeHttpServer(Options options) : state_(std::make_shared<State>()) {
  State& st = *state_;
  st.options = std::move(options);
  if (st.options.tls) {
    st.tls.emplace(ssl::context::tls_server);
    st.tls->use_certificate_chain_file(st.options.tls->cert_file);
    st.tls->use_private_key_file(st.options.tls->key_file, ssl::context::pem);
  }
  const tcp::endpoint at(asio::ip::make_address("127.0.0.1"), st.options.port);
  st.acceptor.open(at.protocol());
  st.acceptor.set_option(asio::socket_base::reuse_address(true));
  st.acceptor.bind(at);
  st.acceptor.listen(asio::socket_base::max_listen_connections);
  st.port = st.acceptor.local_endpoint().port();
  asio::co_spawn(st.accept_strand, accept_loop(state_), asio::detached);
  for (int i = 0; i < std::max(1, st.options.threads); ++i) st.threads.emplace_back([s = state_] { s->io.run(); });
}

FakeHttpServer::~FakeHttpServer() { stop(); }

void FakeHttpServer::stop() {
  State& st = *state_;
  if (st.stopped.exchange(true)) return;
  asio::post(st.accept_strand, [s = state_] {
    error_code ec;
    s->acceptor.close(ec);
  });
  {
    std::lock_guard lock(st.mu);
    for (auto& [id, live] : st.live) asio::post(live.strand, live.close);
  }
  // Sessions end once their sockets are closed; a session sleeping in a long
  // `delay` would hold run() open, so give them a moment, then stop hard.
  std::promise<void> drained;
  auto done = drained.get_future();
  std::thread waiter([&st, &drained] {
    for (auto& t : st.threads) t.join();
    drained.set_value();
  });
  if (done.wait_for(std::chrono::seconds(2)) != std::future_status::ready) st.io.stop();
  waiter.join();
  st.threads.clear();
}

uint16_t FakeHttpServer::port() const { return state_->port; }

std::string FakeHttpServer::url(std::string_view path) const {
  return std::string(state_->tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port()) + std::string(path);
}

std::string FakeHttpServer::localhost_url(std::string_view path) const {
  return std::string(state_->tls ? "https" : "http") + "://localhost:" + std::to_string(port()) + std::string(path);
}

void FakeHttpServer::route(std::string method, std::string path, Handler handler) {
  std::lock_guard lock(state_->mu);
  state_->routes[{std::move(method), std::move(path)}] = Route{std::move(handler), {}, 0};
}

void FakeHttpServer::fallback(Handler handler) {
  std::lock_guard lock(state_->mu);
  state_->fallback = std::move(handler);
}

void FakeHttpServer::route(std::string method, std::string path, FakeResponse response) {
  script(std::move(method), std::move(path), {std::move(response)});
}

void FakeHttpServer::script(std::string method, std::string path, std::vector<FakeResponse> responses) {
  if (responses.empty()) responses.push_back(FakeResponse::text(500, "empty script"));
  std::lock_guard lock(state_->mu);
  state_->routes[{std::move(method), std::move(path)}] = Route{nullptr, std::move(responses), 0};
}

std::vector<RecordedRequest> FakeHttpServer::requests() const {
  std::lock_guard lock(state_->mu);
  return state_->recorded;
}

std::vector<RecordedRequest> FakeHttpServer::requests(std::string_view method, std::string_view path) const {
  std::vector<RecordedRequest> out;
  std::lock_guard lock(state_->mu);
  for (const auto& r : state_->recorded)
    if (r.method == method && r.path == path) out.push_back(r);
  return out;
}

void FakeHttpServer::clear_requests() {
  std::lock_guard lock(state_->mu);
  state_->recorded.clear();
}

uint64_t FakeHttpServer::connections() const { return state_->accepted; }

}  // namespace anvil::fakes

// anvil-loadgen: a native closed-loop load generator speaking the RivetKit
// client protocol (bare encoding) over HTTP/1.1 and WebSocket, so that the
// client is not the bottleneck. Drives Anvil and the reference alike.
//
//   anvil-loadgen http  --base URL --conc N --seconds S [--actors N]
//   anvil-loadgen h2    --base https://… --conc N --seconds S [--actors N] [--conns N]
//                       (HTTP/2: N streams in flight over --conns connections, default 1)
//   anvil-loadgen cold  --base URL --conc N --count N [--seconds S] [--rate R (open loop)]
//   anvil-loadgen ws    --base URL --conns N --inflight N --seconds S [--action increment|getCount]
//   anvil-loadgen fanout --base URL --subscribers N --events N
//   anvil-loadgen idle  --base URL --conc N --count N [--seconds S]   (idler.ping on new keys)
// An https:// base makes the HTTP modes speak TLS (ALPN http/1.1; h2 for
// `h2`), with any certificate accepted. Prints one JSON object on stdout.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nghttp2/nghttp2.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Url {
  std::string host, port, path;  // path: base path without trailing '/'
  bool tls = false;              // https://
};

using TlsSocket = net::ssl::stream<tcp::socket&>;

// The client TLS context: no certificate check (the node's may be self-signed).
net::ssl::context& tls_context() {
  static net::ssl::context ctx = [] {
    net::ssl::context c(net::ssl::context::tls_client);
    c.set_verify_mode(net::ssl::verify_none);
    return c;
  }();
  return ctx;
}

// A TLS client over `sock` (connected), handshaken offering `alpn` (wire form).
std::unique_ptr<TlsSocket> tls_handshake(tcp::socket& sock, std::string_view alpn) {
  auto t = std::make_unique<TlsSocket>(sock, tls_context());
  SSL_set_alpn_protos(t->native_handle(), reinterpret_cast<const unsigned char*>(alpn.data()),
                      static_cast<unsigned>(alpn.size()));
  t->handshake(net::ssl::stream_base::client);
  return t;
}
constexpr std::string_view kAlpnHttp11("\x08http/1.1", 9);
constexpr std::string_view kAlpnH2("\x02h2", 3);

Url parse_url(const std::string& s) {
  std::string rest = s.substr(s.find("://") + 3);
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  Url u;
  u.tls = s.rfind("https://", 0) == 0;
  u.path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
  size_t colon = hostport.rfind(':');
  u.host = hostport.substr(0, colon);
  u.port = colon == std::string::npos ? (u.tls ? "443" : "80") : hostport.substr(colon + 1);
  return u;
}

struct Args {
  std::map<std::string, std::string> kv;
  std::string get(const std::string& k, const std::string& d) const {
    auto it = kv.find(k);
    return it == kv.end() ? d : it->second;
  }
  long num(const std::string& k, long d) const { return std::stol(get(k, std::to_string(d))); }
};

// Latency recorder (microseconds); percentiles over every sample.
class Stats {
 public:
  void add(double us) {
    std::lock_guard lk(mu_);
    samples_.push_back(us);
  }
  void error() { ++errors_; }
  std::string json(double seconds, const char* unit = "ops") {
    std::lock_guard lk(mu_);
    std::sort(samples_.begin(), samples_.end());
    auto pct = [&](double p) {
      if (samples_.empty()) return 0.0;
      size_t i = std::min(samples_.size() - 1, static_cast<size_t>(p * samples_.size()));
      return samples_[i] / 1000.0;
    };
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "\"%s\":%zu,\"errors\":%lu,\"seconds\":%.2f,\"per_second\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
                  "\"p999_ms\":%.3f,\"max_ms\":%.3f",
                  unit, samples_.size(), errors_.load(), seconds, samples_.size() / seconds, pct(0.5), pct(0.99),
                  pct(0.999), samples_.empty() ? 0.0 : samples_.back() / 1000.0);
    return buf;
  }

 private:
  std::mutex mu_;
  std::vector<double> samples_;
  std::atomic<unsigned long> errors_{0};
};

// One keep-alive HTTP/1.1 connection (TLS for an https:// base).
class HttpConn {
 public:
  explicit HttpConn(const Url& u) : u_(u), stream_(ioc_) { connect(); }
  void connect() {
    tcp::resolver r(ioc_);
    net::connect(stream_, r.resolve(u_.host, u_.port));
    stream_.set_option(tcp::no_delay(true));
    if (u_.tls) tls_ = tls_handshake(stream_, kAlpnHttp11);
  }
  // Returns the status (0 on a transport error, after reconnecting).
  unsigned request(http::verb verb, const std::string& target, const std::string& body,
                   const std::vector<std::pair<std::string, std::string>>& headers, std::string* out = nullptr) {
    try {
      http::request<http::string_body> req{verb, target, 11};
      req.set(http::field::host, u_.host);
      for (auto& [k, v] : headers) req.set(k, v);
      req.body() = body;
      req.prepare_payload();
      http::response<http::string_body> res;
      if (tls_) {
        http::write(*tls_, req);
        http::read(*tls_, buf_, res);
      } else {
        http::write(stream_, req);
        http::read(stream_, buf_, res);
      }
      if (out) *out = res.body();
      return res.result_int();
    } catch (const std::exception&) {
      beast::error_code ec;
      tls_.reset();
      stream_.close(ec);
      buf_.consume(buf_.size());
      try {
        connect();
      } catch (...) {
      }
      return 0;
    }
  }

 private:
  Url u_;
  net::io_context ioc_;
  tcp::socket stream_;
  std::unique_ptr<TlsSocket> tls_;
  beast::flat_buffer buf_;
};

// Closed-loop HTTP/1.1 keep-alive load from one thread: `conns` connections,
// each sending its next request (pre-built bytes, no per-request header
// objects) as soon as the previous reply is complete. Replies are framed by
// Content-Length or chunked encoding. Much cheaper per request than a
// blocking client thread per connection, so the server under test gets the
// CPU (client and server share the machine).
class HttpLoad {
 public:
  // Fills `target`/`body` for connection `conn`'s next request; false: done.
  using NextFn = std::function<bool(long conn, std::string& target, std::string& body)>;

  HttpLoad(const Url& u, long conns, NextFn next, Stats& stats, const std::atomic<bool>& stop)
      : u_(u), next_(std::move(next)), stats_(stats), stop_(stop) {
    tcp::resolver r(ioc_);
    auto eps = r.resolve(u.host, u.port);
    for (long i = 0; i < conns; ++i) {
      auto c = std::make_unique<Conn>(ioc_, i);
      net::connect(c->sock, eps);
      c->sock.set_option(tcp::no_delay(true));
      if (u.tls) c->tls = tls_handshake(c->sock, kAlpnHttp11);
      conns_.push_back(std::move(c));
    }
  }
  void run() {
    for (auto& c : conns_) send(*c);
    ioc_.run();
  }

  // Open loop: request i is due at start + i/rate and goes out on an idle
  // connection (or, if none is idle, as soon as one is). `stats` gets the
  // latency from send, `from_due` the latency from the due time.
  void run_open(double rate, long count, Stats& from_due) {
    rate_ = rate;
    count_ = count;
    from_due_ = &from_due;
    for (auto& c : conns_) idle_.push_back(c.get());
    start_ = Clock::now() + std::chrono::milliseconds(20);
    schedule();
    ioc_.run();
  }

 private:
  struct Conn {
    Conn(net::io_context& io, long i) : sock(io), index(i) {}
    tcp::socket sock;
    std::unique_ptr<TlsSocket> tls;  // https://
    long index;
    std::string req, in, target, body;
    size_t have = 0;
    Clock::time_point t0, due;
  };

  Clock::time_point due_of(long i) const {
    return start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(i / rate_));
  }

  void schedule() {
    if (issued_ >= count_) return;
    timer_.expires_at(due_of(issued_));
    timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      const auto now = Clock::now();
      for (; issued_ < count_ && due_of(issued_) <= now; ++issued_) {
        if (idle_.empty()) {
          backlog_.push_back(due_of(issued_));
        } else {
          Conn* c = idle_.back();
          idle_.pop_back();
          c->due = due_of(issued_);
          send(*c);
        }
      }
      schedule();
    });
  }

  // A reply is complete: the connection takes its next request.
  void next_request(Conn& c) {
    if (!from_due_) return send(c);
    from_due_->add(std::chrono::duration<double, std::micro>(Clock::now() - c.due).count());
    if (backlog_.empty()) {
      idle_.push_back(&c);
      return;
    }
    c.due = backlog_.front();
    backlog_.pop_front();
    send(c);
  }

  void send(Conn& c) {
    if (stop_ || !next_(c.index, c.target, c.body)) return;
    c.req.clear();
    c.req += "POST ";
    c.req += c.target;
    c.req += " HTTP/1.1\r\nHost: ";
    c.req += u_.host;
    c.req += "\r\nx-rivet-encoding: bare\r\ncontent-type: application/octet-stream\r\ncontent-length: ";
    c.req += std::to_string(c.body.size());
    c.req += "\r\n\r\n";
    c.req += c.body;
    c.t0 = Clock::now();
    auto on_written = [this, &c](beast::error_code ec, size_t) {
      if (ec) return fail(c);
      read(c);
    };
    if (c.tls)
      net::async_write(*c.tls, net::buffer(c.req), on_written);
    else
      net::async_write(c.sock, net::buffer(c.req), on_written);
  }

  void read(Conn& c) {
    if (c.in.size() < c.have + 16384) c.in.resize(c.have + 16384);
    auto buf = net::buffer(c.in.data() + c.have, c.in.size() - c.have);
    if (c.tls)
      c.tls->async_read_some(buf, [this, &c](beast::error_code ec, size_t n) { on_read(c, ec, n); });
    else
      c.sock.async_read_some(buf, [this, &c](beast::error_code ec, size_t n) { on_read(c, ec, n); });
  }

  void on_read(Conn& c, beast::error_code ec, size_t n) {
    if (ec) return fail(c);
    c.have += n;
    long consumed = 0;
    int status = parse(std::string_view(c.in.data(), c.have), consumed);
    if (status == 0) return read(c);  // incomplete
    if (status < 0) return fail(c);
    if (status == 200)
      stats_.add(std::chrono::duration<double, std::micro>(Clock::now() - c.t0).count());
    else
      stats_.error();
    std::memmove(c.in.data(), c.in.data() + consumed, c.have - consumed);
    c.have -= consumed;
    next_request(c);
  }

  void fail(Conn& c) {
    stats_.error();
    beast::error_code ec;
    c.sock.close(ec);
  }

  static std::string lower(std::string_view s) {
    std::string o(s);
    for (auto& ch : o) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return o;
  }

  // The status of the complete reply at the start of `in` (setting
  // `consumed`), 0 if incomplete, -1 if malformed.
  static int parse(std::string_view in, long& consumed) {
    size_t hdr_end = in.find("\r\n\r\n");
    if (hdr_end == std::string_view::npos) return 0;
    if (in.size() < 12 || in.substr(0, 5) != "HTTP/") return -1;
    int status = std::atoi(std::string(in.substr(9, 3)).c_str());
    std::string head = lower(in.substr(0, hdr_end));
    size_t body = hdr_end + 4;
    if (auto p = head.find("\r\ncontent-length:"); p != std::string::npos) {
      size_t len = std::strtoul(head.c_str() + p + 17, nullptr, 10);
      if (in.size() < body + len) return 0;
      consumed = static_cast<long>(body + len);
      return status;
    }
    if (head.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
      size_t pos = body;
      for (;;) {
        size_t eol = in.find("\r\n", pos);
        if (eol == std::string_view::npos) return 0;
        size_t size = std::strtoul(std::string(in.substr(pos, eol - pos)).c_str(), nullptr, 16);
        if (size == 0) {
          size_t end = in.find("\r\n\r\n", eol);  // no trailers: "0\r\n\r\n"
          if (end == std::string_view::npos) return 0;
          consumed = static_cast<long>(end + 4);
          return status;
        }
        if (in.size() < eol + 2 + size + 2) return 0;
        pos = eol + 2 + size + 2;
      }
    }
    consumed = static_cast<long>(body);  // no body
    return status;
  }

  Url u_;
  net::io_context ioc_{1};
  net::steady_timer timer_{ioc_};
  double rate_ = 0;
  long count_ = 0, issued_ = 0;
  Clock::time_point start_;
  Stats* from_due_ = nullptr;
  std::vector<Conn*> idle_;
  std::deque<Clock::time_point> backlog_;
  NextFn next_;
  Stats& stats_;
  const std::atomic<bool>& stop_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

const std::string kBareIncrement("\x04\x00\x02\x81\x01", 5);  // args [1]
const std::string kBareNoArgs("\x04\x00\x01\x80", 4);          // args []
const std::vector<std::pair<std::string, std::string>> kBareHeaders = {
    {"x-rivet-encoding", "bare"}, {"content-type", "application/octet-stream"}};

std::string json_field(const std::string& body, const std::string& field) {
  auto p = body.find("\"" + field + "\":\"");
  if (p == std::string::npos) return "";
  p += field.size() + 4;
  return body.substr(p, body.find('"', p) - p);
}

// PUT /actors get-or-create; returns the actor id.
std::string put_actor(HttpConn& c, const Url& u, const std::string& name, const std::string& key) {
  std::string out;
  c.request(http::verb::put, u.path + "/actors?namespace=default",
            "{\"name\":\"" + name + "\",\"key\":\"" + key +
                "\",\"runner_name_selector\":\"default\",\"crash_policy\":\"sleep\"}",
            {{"content-type", "application/json"}}, &out);
  return json_field(out, "actor_id");
}

std::string run_id() { return std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 100000000); }

// Creates `actors` counters and wakes each once; their increment targets
// (empty if creation failed).
std::vector<std::string> counter_targets(const Url& u, const Args& a, long actors) {
  std::vector<std::string> targets;
  HttpConn setup(u);
  const std::string prefix = "bench-" + a.get("set", run_id()) + "-";
  for (long i = 0; i < actors; ++i) {
    auto id = put_actor(setup, u, "counter", prefix + std::to_string(i));
    if (id.empty()) return {};
    targets.push_back(u.path + "/gateway/" + id + "/action/increment");
  }
  // Warm: wake every actor once.
  for (auto& t : targets) setup.request(http::verb::post, t, kBareIncrement, kBareHeaders);
  return targets;
}

// (a) stateless HTTP actions, closed loop.
std::string bench_http(const Url& u, const Args& a) {
  const long conc = a.num("conc", 1), seconds = a.num("seconds", 8), actors = a.num("actors", 1);
  const std::vector<std::string> targets = counter_targets(u, a, actors);
  if (targets.empty()) return "{\"error\":\"could not create actors\"}";
  Stats stats;
  std::atomic<bool> stop{false};
  std::vector<size_t> cursor(conc);
  for (long t = 0; t < conc; ++t) cursor[t] = t;
  HttpLoad load(u, conc, [&](long c, std::string& target, std::string& body) {
    target = targets[cursor[c]++ % targets.size()];
    body = kBareIncrement;
    return true;
  }, stats, stop);
  auto t0 = Clock::now();
  std::thread timer([&] {
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    stop = true;
  });
  load.run();  // returns once every connection's last reply is in
  timer.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  return "{\"test\":\"http\",\"tls\":" + std::string(u.tls ? "true" : "false") + ",\"conc\":" +
         std::to_string(conc) + ",\"actors\":" + std::to_string(actors) + "," + stats.json(secs) + "}";
}

// Closed-loop HTTP/2 load from one thread (nghttp2's client session over
// TLS, ALPN h2): each connection keeps its share of `streams` requests in
// flight, starting the next as soon as one completes.
class H2Load {
 public:
  H2Load(const Url& u, long conns, long streams, Stats& stats, const std::atomic<bool>& stop,
         std::function<std::string()> next_target)
      : u_(u), stats_(stats), stop_(stop), next_target_(std::move(next_target)) {
    tcp::resolver r(ioc_);
    auto eps = r.resolve(u.host, u.port);
    for (long i = 0; i < conns; ++i) {
      auto c = std::make_unique<Conn>(ioc_);
      c->load = this;
      c->streams = streams / conns + (i < streams % conns ? 1 : 0);
      net::connect(c->sock, eps);
      c->sock.set_option(tcp::no_delay(true));
      c->tls = tls_handshake(c->sock, kAlpnH2);
      nghttp2_session_callbacks* cbs = nullptr;
      nghttp2_session_callbacks_new(&cbs);
      nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
      nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
      nghttp2_session_client_new(&c->session, cbs, c.get());
      nghttp2_session_callbacks_del(cbs);
      nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, nullptr, 0);
      conns_.push_back(std::move(c));
    }
  }
  ~H2Load() {
    for (auto& c : conns_) nghttp2_session_del(c->session);
  }
  void run() {
    for (auto& c : conns_) {
      for (long i = 0; i < c->streams; ++i) start(*c);
      flush(*c);
      read(*c);
    }
    ioc_.run();
  }

 private:
  struct Stream {
    Clock::time_point t0;
    int status = 0;
    size_t sent = 0;  // body bytes handed to nghttp2
  };
  struct Conn {
    explicit Conn(net::io_context& io) : sock(io) {}
    tcp::socket sock;
    std::unique_ptr<TlsSocket> tls;
    nghttp2_session* session = nullptr;
    H2Load* load = nullptr;
    long streams = 0, active = 0;
    std::map<int32_t, Stream> inflight;
    std::string in = std::string(16384, '\0'), out;
    bool writing = false, dead = false;
  };

  static ssize_t read_body(nghttp2_session*, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source*, void* user) {
    Stream& st = static_cast<Conn*>(user)->inflight[id];
    const size_t n = std::min(length, kBareIncrement.size() - st.sent);
    std::memcpy(buf, kBareIncrement.data() + st.sent, n);
    st.sent += n;
    if (st.sent == kBareIncrement.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    if (namelen == 7 && std::memcmp(name, ":status", 7) == 0)
      static_cast<Conn*>(user)->inflight[f->hd.stream_id].status =
          std::atoi(std::string(reinterpret_cast<const char*>(value), valuelen).c_str());
    return 0;
  }

  static int on_close(nghttp2_session*, int32_t id, uint32_t code, void* user) {
    Conn& c = *static_cast<Conn*>(user);
    auto it = c.inflight.find(id);
    if (it != c.inflight.end()) {
      if (code == NGHTTP2_NO_ERROR && it->second.status == 200)
        c.load->stats_.add(std::chrono::duration<double, std::micro>(Clock::now() - it->second.t0).count());
      else
        c.load->stats_.error();
      c.inflight.erase(it);
    }
    --c.active;
    c.load->start(c);
    return 0;
  }

  void start(Conn& c) {
    if (stop_ || c.dead) return;
    const std::string target = next_target_();
    const std::string length = std::to_string(kBareIncrement.size());
    auto nv = [](std::string_view n, std::string_view v) {
      return nghttp2_nv{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(n.data())),
                        const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(v.data())), n.size(), v.size(),
                        NGHTTP2_NV_FLAG_NONE};
    };
    const nghttp2_nv nva[] = {nv(":method", "POST"),
                              nv(":scheme", "https"),
                              nv(":authority", u_.host),
                              nv(":path", target),
                              nv("x-rivet-encoding", "bare"),
                              nv("content-type", "application/octet-stream"),
                              nv("content-length", length)};
    nghttp2_data_provider body{};
    body.read_callback = read_body;
    const int32_t id = nghttp2_submit_request(c.session, nullptr, nva, std::size(nva), &body, nullptr);
    if (id < 0) {
      stats_.error();
      return;
    }
    c.inflight[id].t0 = Clock::now();
    ++c.active;
  }

  void flush(Conn& c) {
    if (c.writing || c.dead) return;
    c.out.clear();
    for (;;) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(c.session, &data);
      if (n <= 0) break;
      c.out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      if (c.out.size() > 65536) break;
    }
    if (c.out.empty()) {
      if (stop_ && c.active == 0) close(c);
      return;
    }
    c.writing = true;
    net::async_write(*c.tls, net::buffer(c.out), [this, &c](beast::error_code ec, size_t) {
      c.writing = false;
      if (ec) return fail(c);
      flush(c);
    });
  }

  void read(Conn& c) {
    if (c.dead) return;
    c.tls->async_read_some(net::buffer(c.in), [this, &c](beast::error_code ec, size_t n) {
      if (ec) return fail(c);
      if (nghttp2_session_mem_recv(c.session, reinterpret_cast<const uint8_t*>(c.in.data()), n) < 0) return fail(c);
      flush(c);
      read(c);
    });
  }

  void fail(Conn& c) {
    if (c.dead) return;
    if (!(stop_ && c.active == 0)) stats_.error();
    close(c);
  }

  void close(Conn& c) {
    c.dead = true;
    beast::error_code ec;
    c.sock.close(ec);
  }

  Url u_;
  net::io_context ioc_{1};
  Stats& stats_;
  const std::atomic<bool>& stop_;
  std::function<std::string()> next_target_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

// (a) over HTTP/2: the same actions as `http`, `conc` streams in flight.
std::string bench_h2(const Url& u, const Args& a) {
  const long conc = a.num("conc", 1), seconds = a.num("seconds", 8), actors = a.num("actors", 1),
             conns = std::max(1L, a.num("conns", 1));
  if (!u.tls) return "{\"error\":\"h2 needs an https:// base\"}";
  const std::vector<std::string> targets = counter_targets(u, a, actors);
  if (targets.empty()) return "{\"error\":\"could not create actors\"}";
  Stats stats;
  std::atomic<bool> stop{false};
  size_t cursor = 0;
  H2Load load(u, conns, conc, stats, stop, [&] { return targets[cursor++ % targets.size()]; });
  auto t0 = Clock::now();
  std::thread timer([&] {
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    stop = true;
  });
  load.run();  // returns once every stream's last reply is in
  timer.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  return "{\"test\":\"h2\",\"conc\":" + std::to_string(conc) + ",\"conns\":" + std::to_string(conns) +
         ",\"actors\":" + std::to_string(actors) + "," + stats.json(secs) + "}";
}

// (c) cold start: getOrCreate on a new key + first action, in one request.
std::string bench_cold(const Url& u, const Args& a, const char* actor = "counter", const std::string& body = kBareIncrement,
                       const char* action = "increment", const char* test = "cold") {
  const long conc = a.num("conc", 32), count = a.num("count", 1000), seconds = a.num("seconds", 100);
  // --rate R: open loop. Request i is due at start + i/R; `from_due` counts
  // from that due time, so a server that falls behind is charged for the
  // queueing it causes (no coordinated omission). 0 = closed loop.
  const double rate = std::stod(a.get("rate", "0"));
  const std::string set = run_id();
  Stats stats;     // send -> reply
  Stats from_due;  // open loop: due time -> reply (includes any wait to be sent)
  std::atomic<long> next{0};
  auto deadline = Clock::now() + std::chrono::seconds(seconds);
  auto target_of = [&](long i) {
    return u.path + "/gateway/" + actor + "/action/" + action +
           "?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=" + test + "-" + set + "-" +
           std::to_string(i) + "&rvt-crash-policy=sleep";
  };
  if (rate <= 0) {
    // Closed loop: one client thread, `conc` connections.
    std::atomic<bool> stop{false};
    auto t0 = Clock::now();
    HttpLoad load(u, conc, [&](long, std::string& target, std::string& b) {
      long i = next++;
      if (i >= count || Clock::now() > deadline) return false;
      target = target_of(i);
      b = body;
      return true;
    }, stats, stop);
    load.run();
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    return std::string("{\"test\":\"") + test + "\",\"requested\":" + std::to_string(count) + ",\"conc\":" +
           std::to_string(conc) + ",\"offered_per_second\":0," + stats.json(secs, "done") + "}";
  }
  // Open loop on one client thread.
  auto t0 = Clock::now();
  std::atomic<bool> stop{false};
  HttpLoad load(u, conc, [&](long, std::string& target, std::string& b) {
    target = target_of(next++);
    b = body;
    return true;
  }, stats, stop);
  load.run_open(rate, count, from_due);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  return std::string("{\"test\":\"") + test + "\",\"requested\":" + std::to_string(count) + ",\"conc\":" +
         std::to_string(conc) + ",\"offered_per_second\":" + std::to_string(rate) + "," + stats.json(secs, "done") +
         (rate > 0 ? ",\"from_due\":{" + from_due.json(secs, "done") + "}" : std::string()) + "}";
}

// LEB128 varint.
void put_uint(std::string& s, uint64_t v) {
  while (v >= 0x80) {
    s += static_cast<char>(v | 0x80);
    v >>= 7;
  }
  s += static_cast<char>(v);
}
uint64_t get_uint(const std::string& s, size_t& p) {
  uint64_t v = 0;
  for (int shift = 0; p < s.size(); shift += 7) {
    uint8_t b = static_cast<uint8_t>(s[p++]);
    v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  return v;
}

struct WsClient {
  net::io_context ioc;
  websocket::stream<tcp::socket> ws{ioc};
  beast::flat_buffer buf;
  WsClient(const Url& u, const std::string& id) {
    tcp::resolver r(ioc);
    net::connect(ws.next_layer(), r.resolve(u.host, u.port));
    ws.next_layer().set_option(tcp::no_delay(true));
    ws.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
      req.set(http::field::sec_websocket_protocol, "rivet, rivet_encoding.bare");
    }));
    ws.handshake(u.host, u.path + "/gateway/" + id + "/connect");
    ws.binary(true);
    read();  // Init
  }
  std::string read() {
    buf.consume(buf.size());
    ws.read(buf);
    return beast::buffers_to_string(buf.data());
  }
  static std::string action_message(uint64_t id, const std::string& name) {
    std::string f("\x04\x00\x00", 3);
    put_uint(f, id);
    put_uint(f, name.size());
    f += name;
    if (name == "increment")
      f += std::string("\x02\x81\x01", 3);  // args CBOR [1]
    else
      f += std::string("\x01\x80", 2);  // args CBOR []
    return f;
  }
  void action(uint64_t id, const std::string& name) { ws.write(net::buffer(action_message(id, name))); }
  // Appends one masked binary client frame (RFC 6455 §5.3) to `out`, so
  // that a window of requests goes out in one write, as a browser batches.
  static void append_client_frame(std::string& out, const std::string& payload) {
    out += static_cast<char>(0x82);
    const size_t n = payload.size();
    if (n < 126) {
      out += static_cast<char>(0x80 | n);
    } else {
      out += static_cast<char>(0x80 | 126);
      out += static_cast<char>(n >> 8);
      out += static_cast<char>(n & 0xff);
    }
    static thread_local uint32_t seed = 0x9e3779b9u ^ static_cast<uint32_t>(reinterpret_cast<uintptr_t>(&out));
    seed = seed * 1664525u + 1013904223u;
    char key[4] = {static_cast<char>(seed), static_cast<char>(seed >> 8), static_cast<char>(seed >> 16),
                   static_cast<char>(seed >> 24)};
    out.append(key, 4);
    for (size_t i = 0; i < n; ++i) out += static_cast<char>(payload[i] ^ key[i & 3]);
  }
  void write_raw(const std::string& bytes) { net::write(ws.next_layer(), net::buffer(bytes)); }
  void subscribe(const std::string& event) {
    std::string f("\x04\x00\x01", 3);
    put_uint(f, event.size());
    f += event;
    f += '\x01';
    ws.write(net::buffer(f));
  }
};

// (b) WebSocket action round-trips with `inflight` outstanding per connection.
std::string bench_ws(const Url& u, const Args& a) {
  const long conns = a.num("conns", 1), inflight = a.num("inflight", 1), seconds = a.num("seconds", 8);
  const std::string action = a.get("action", "increment");  // getCount: a read, no write to wait for
  std::string id;
  {
    HttpConn setup(u);
    id = put_actor(setup, u, "counter", "bench-ws-" + run_id());
  }
  Stats stats;
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (long c = 0; c < conns; ++c)
    ts.emplace_back([&] {
      try {
        WsClient ws(u, id);
        std::map<uint64_t, Clock::time_point> pending;
        uint64_t next = 0;
        while (!stop) {
          std::string burst;
          while (static_cast<long>(pending.size()) < inflight) {
            pending[next] = Clock::now();
            WsClient::append_client_frame(burst, WsClient::action_message(next++, action));
          }
          if (!burst.empty()) ws.write_raw(burst);
          std::string m = ws.read();
          if (m.size() > 3 && m[2] == 2) {  // ActionResponse
            size_t p = 3;
            uint64_t rid = get_uint(m, p);
            auto it = pending.find(rid);
            if (it != pending.end()) {
              stats.add(std::chrono::duration<double, std::micro>(Clock::now() - it->second).count());
              pending.erase(it);
            }
          } else if (m.size() > 3 && m[2] == 1) {
            stats.error();
            pending.clear();
          }
        }
        ws.ws.close(websocket::close_code::normal);
      } catch (const std::exception&) {
        stats.error();
      }
    });
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  return "{\"test\":\"ws\",\"action\":\"" + action + "\",\"conns\":" + std::to_string(conns) + ",\"inflight\":" + std::to_string(inflight) + "," +
         stats.json(secs, "round_trips") + "}";
}

// (f) event fan-out: `subscribers` connections subscribed to newCount; one
// HTTP increment per event; latency until the last subscriber got it.
std::string bench_fanout(const Url& u, const Args& a) {
  const long subs = a.num("subscribers", 100), events = a.num("events", 200);
  std::string id;
  HttpConn c(u);
  id = put_actor(c, u, "counter", "bench-fan-" + run_id());
  std::vector<std::unique_ptr<WsClient>> clients;
  for (long i = 0; i < subs; ++i) {
    clients.push_back(std::make_unique<WsClient>(u, id));
    clients.back()->subscribe("newCount");
    clients.back()->action(0, "getCount");  // round-trip: subscription registered
    clients.back()->read();
  }
  std::atomic<long> received{0};
  std::vector<std::thread> readers;
  std::vector<std::atomic<long>> per_event(events + 1);
  for (auto& cl : clients)
    readers.emplace_back([&, p = cl.get()] {
      try {
        for (long n = 0; n < events; ++n) {
          std::string m = p->read();
          if (m.size() > 3 && m[2] == 3) ++received;
        }
      } catch (...) {
      }
    });
  Stats stats;
  auto t0 = Clock::now();
  for (long e = 0; e < events; ++e) {
    long target = (e + 1) * subs;
    auto s = Clock::now();
    c.request(http::verb::post, u.path + "/gateway/" + id + "/action/increment", kBareIncrement, kBareHeaders);
    while (received < target && Clock::now() - s < std::chrono::seconds(5)) std::this_thread::yield();
    stats.add(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
  }
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& cl : clients) cl->ws.next_layer().close();
  for (auto& r : readers) r.join();
  char buf[128];
  std::snprintf(buf, sizeof buf, ",\"deliveries\":%ld,\"deliveries_per_second\":%.1f", received.load(), received / secs);
  return "{\"test\":\"fanout\",\"subscribers\":" + std::to_string(subs) + "," + stats.json(secs, "events") + buf + "}";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: anvil-loadgen http|h2|cold|ws|fanout|idle --base URL [options]\n";
    return 2;
  }
  Args a;
  for (int i = 2; i + 1 < argc; i += 2) a.kv[std::string(argv[i]).substr(2)] = argv[i + 1];
  Url u = parse_url(a.get("base", "http://127.0.0.1:6420"));
  std::string mode = argv[1];
  std::string out;
  if (mode == "http") out = bench_http(u, a);
  else if (mode == "h2") out = bench_h2(u, a);
  else if (mode == "cold") out = bench_cold(u, a);
  else if (mode == "idle") out = bench_cold(u, a, "idler", kBareNoArgs, "ping", "idle");
  else if (mode == "ws") out = bench_ws(u, a);
  else if (mode == "fanout") out = bench_fanout(u, a);
  else {
    std::cerr << "unknown mode " << mode << "\n";
    return 2;
  }
  std::cout << out << std::endl;
  return 0;
}

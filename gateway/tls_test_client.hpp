// Test support for the gateway's TLS tests: a blocking TLS client on
// 127.0.0.1 (OpenSSL, any certificate accepted, ALPN of the test's choice)
// and an HTTP/2 client on top of it (nghttp2's client session) that can
// stream a request body in pieces and read the server's settings.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace anvil::gateway::testing {

class TlsClient {
 public:
  // Connects and handshakes offering `alpn` (e.g. {"h2", "http/1.1"}).
  TlsClient(uint16_t port, const std::vector<std::string>& alpn) {
    // OpenSSL writes with write(2): a peer that closed would kill the test with SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    std::string wire;
    for (const auto& p : alpn) wire += static_cast<char>(p.size()) + p;
    if (!wire.empty())
      SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()), static_cast<unsigned>(wire.size()));
    ok_ = SSL_connect(ssl_) == 1;
  }
  ~TlsClient() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  bool ok() const { return ok_; }
  std::string alpn() const {
    const unsigned char* p = nullptr;
    unsigned n = 0;
    SSL_get0_alpn_selected(ssl_, &p, &n);
    return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
  }

  bool write(std::string_view data) {
    while (!data.empty()) {
      int n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // What arrives within `timeout` ("" if nothing); nullopt once the
  // connection is closed.
  std::optional<std::string> read(std::chrono::milliseconds timeout) {
    if (SSL_pending(ssl_) == 0) {
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (r == 0) return std::string();
      if (r < 0) return std::nullopt;
    }
    char buf[16384];
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n <= 0) {
      int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ) return std::string();  // a TLS record not yet complete
      return std::nullopt;
    }
    return std::string(buf, static_cast<size_t>(n));
  }

  // Reads until the peer closes (or `limit` passes); what arrived.
  std::string read_to_close(std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    std::string all;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      auto got = read(std::chrono::milliseconds(50));
      if (!got) break;
      all += *got;
    }
    return all;
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool ok_ = false;
};

struct H2Response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool done = false;         // the stream closed
  uint32_t close_code = 0;   // its error code (NGHTTP2_NO_ERROR when it ended normally)
  bool reset = false;        // the server sent RST_STREAM

  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return v;
    return std::nullopt;
  }
};

class H2Client {
 public:
  // `big_windows`: grant the server 16 MiB per stream and 64 MiB per
  // connection; otherwise HTTP/2's 64 KiB defaults (the server must then
  // send a large body in window-sized pieces).
  explicit H2Client(TlsClient& tls, bool big_windows = true) : tls_(tls) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame);
    nghttp2_session_client_new(&session_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 16 << 20}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, big_windows ? 1 : 0);
    if (big_windows) nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 64 << 20);
  }
  ~H2Client() { nghttp2_session_del(session_); }
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;

  // A request; `body` nullopt: none (END_STREAM on HEADERS). `open_body`:
  // the body stays open for send_data().
  int32_t request(const std::string& method, const std::string& path,
                  std::vector<std::pair<std::string, std::string>> headers = {},
                  std::optional<std::string> body = std::nullopt, bool open_body = false) {
    headers.insert(headers.begin(), {{":method", method}, {":scheme", "https"}, {":authority", "localhost"},
                                     {":path", path}});
    std::vector<nghttp2_nv> nva;
    for (auto& [k, v] : headers)
      nva.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(k.data()), reinterpret_cast<uint8_t*>(v.data()), k.size(),
                               v.size(), NGHTTP2_NV_FLAG_NONE});
    auto out = std::make_unique<Outgoing>();
    nghttp2_data_provider prd{};
    prd.source.ptr = out.get();
    prd.read_callback = read_body;
    const bool with_body = body.has_value() || open_body;
    if (body) out->data = std::move(*body);
    out->end = !open_body;
    int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), with_body ? &prd : nullptr, this);
    if (id > 0) outgoing_[id] = std::move(out);
    flush();
    return id;
  }

  // More of an open body (`end`: the last piece).
  void send_data(int32_t id, std::string_view chunk, bool end) {
    Outgoing& o = *outgoing_.at(id);
    o.data.append(chunk);
    o.end = end;
    nghttp2_session_resume_data(session_, id);
    flush();
  }

  // Sends what is queued and reads for up to `timeout`; false once closed.
  bool pump(std::chrono::milliseconds timeout) {
    if (!flush()) return false;
    auto got = tls_.read(timeout);
    if (!got) {
      closed_ = true;
      return false;
    }
    if (!got->empty() &&
        nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(got->data()), got->size()) < 0) {
      closed_ = true;
      return false;
    }
    return flush();
  }

  H2Response& wait(int32_t id, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!responses_[id].done && !closed_ && std::chrono::steady_clock::now() < deadline)
      pump(std::chrono::milliseconds(20));
    return responses_[id];
  }

  // Reads (bounded) until the server closes the connection.
  bool wait_closed(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!closed_ && std::chrono::steady_clock::now() < deadline) pump(std::chrono::milliseconds(20));
    return closed_;
  }

  uint32_t remote_setting(nghttp2_settings_id id) { return nghttp2_session_get_remote_settings(session_, id); }
  bool goaway() const { return goaway_; }
  bool closed() const { return closed_; }

 private:
  struct Outgoing {
    std::string data;
    size_t pos = 0;
    bool end = true;
  };

  bool flush() {
    for (;;) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) return false;
      if (n == 0) return true;
      if (!tls_.write(std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n)))) {
        closed_ = true;
        return false;
      }
    }
  }

  static H2Client& self(void* p) { return *static_cast<H2Client*>(p); }

  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source* source, void*) {
    auto* o = static_cast<Outgoing*>(source->ptr);
    const size_t n = std::min(length, o->data.size() - o->pos);
    if (n == 0 && !o->end) return NGHTTP2_ERR_DEFERRED;
    std::memcpy(buf, o->data.data() + o->pos, n);
    o->pos += n;
    if (o->end && o->pos == o->data.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* p) {
    auto& r = self(p).responses_[frame->hd.stream_id];
    std::string n(reinterpret_cast<const char*>(name), namelen), v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status")
      r.status = std::stoi(v);
    else
      r.headers.emplace_back(std::move(n), std::move(v));
    return 0;
  }

  static int on_data(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* p) {
    self(p).responses_[id].body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int on_close(nghttp2_session*, int32_t id, uint32_t code, void* p) {
    auto& r = self(p).responses_[id];
    r.done = true;
    r.close_code = code;
    return 0;
  }

  static int on_frame(nghttp2_session*, const nghttp2_frame* frame, void* p) {
    if (frame->hd.type == NGHTTP2_GOAWAY) self(p).goaway_ = true;
    if (frame->hd.type == NGHTTP2_RST_STREAM) self(p).responses_[frame->hd.stream_id].reset = true;
    return 0;
  }

  TlsClient& tls_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, std::unique_ptr<Outgoing>> outgoing_;
  std::map<int32_t, H2Response> responses_;
  bool goaway_ = false, closed_ = false;
};

}  // namespace anvil::gateway::testing

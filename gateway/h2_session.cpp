#include "gateway/h2_session.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <map>

#include <boost/asio/redirect_error.hpp>
#include <boost/beast/core.hpp>
#include <spdlog/spdlog.h>

namespace anvil::gateway {
namespace beast = boost::beast;
using Clock = std::chrono::steady_clock;

namespace {

// Flow-control windows we grant: a 1 MiB body needs no WINDOW_UPDATE round
// trip per 64 KiB (the protocol's default). Bodies are bounded by
// max_body_bytes per stream either way.
constexpr int32_t kStreamWindow = 1 << 20;
constexpr int32_t kConnectionWindow = 16 << 20;
constexpr size_t kWriteChunk = 64 * 1024;  // bytes gathered from nghttp2 per write

// One request stream, from its HEADERS until nghttp2 closes it.
struct H2Stream {
  http::Request req;
  size_t header_bytes = 0;
  bool headers_done = false;  // the header block ended (END_HEADERS)
  bool headers_too_large = false;
  bool head = false;
  bool answered = false;       // a response is submitted (or the handler has the request)
  bool answered_early = false;  // answered before the client's END_STREAM: reset after
  Clock::time_point deadline = Clock::time_point::max();  // headers, then body, due by
  std::string out;  // the response body, read by nghttp2 under flow control
  size_t out_pos = 0;
};

bool hop_by_hop(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade" || name == "content-length";
}

class H2Connection : public std::enable_shared_from_this<H2Connection> {
 public:
  H2Connection(TlsStream& stream, const ServerOptions& opts, Handler handler, bool from_loopback)
      : stream_(stream),
        opts_(opts),
        handler_(std::move(handler)),
        from_loopback_(from_loopback),
        wake_(stream.get_executor()),
        writer_done_(stream.get_executor()),
        watchdog_(stream.get_executor()) {}
  ~H2Connection() {
    if (session_) nghttp2_session_del(session_);
  }
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  bool init() {
    nghttp2_session_callbacks* cbs = nullptr;
    if (nghttp2_session_callbacks_new(&cbs) != 0) return false;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    const int rv = nghttp2_session_server_new(&session_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) return false;
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
         static_cast<uint32_t>(std::min<size_t>(opts_.h2_max_concurrent_streams, UINT32_MAX))},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kStreamWindow)},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
         static_cast<uint32_t>(std::min<size_t>(opts_.max_header_bytes, UINT32_MAX))},
    };
    return nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings)) == 0 &&
           nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow) == 0;
  }

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    idle_since_ = Clock::now();
    auto ex = stream_.get_executor();
    asio::co_spawn(ex, write_loop(self), asio::detached);
    asio::co_spawn(ex, watch(self), asio::detached);
    co_await read_loop();
    reader_done_ = true;
    wake_.cancel();
    while (writer_running_) {
      writer_done_.expires_at(Clock::time_point::max());
      boost::system::error_code ec;
      co_await writer_done_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    closed_ = true;
    watchdog_.cancel();
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  }

 private:
  static H2Connection& self_of(void* user_data) { return *static_cast<H2Connection*>(user_data); }

  H2Stream* find(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  // --- nghttp2 callbacks (called from mem_recv / mem_send on the strand) ---

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    auto& c = self_of(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    auto s = std::make_unique<H2Stream>();
    s->req.from_loopback = c.from_loopback_;
    s->deadline = Clock::now() + c.opts_.header_timeout;
    c.streams_[frame->hd.stream_id] = std::move(s);
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                       const uint8_t* value, size_t valuelen, uint8_t, void* user_data) {
    auto& c = self_of(user_data);
    H2Stream* s = c.find(frame->hd.stream_id);
    if (!s || s->answered) return 0;
    // RFC 9113 §6.5.2's measure: name + value + 32 per field.
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > c.opts_.max_header_bytes) {
      s->headers_too_large = true;
      s->req.headers.clear();
      return 0;
    }
    if (s->headers_too_large) return 0;
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":method") {
      s->req.method = std::string(v);
    } else if (n == ":path") {
      const size_t q = v.find('?');
      s->req.path = std::string(v.substr(0, q));
      if (q != v.npos) s->req.query = std::string(v.substr(q + 1));
    } else if (n == ":authority") {
      s->req.headers.emplace_back("host", std::string(v));
    } else if (!n.empty() && n[0] == ':') {
      // :scheme (and nothing else nghttp2 lets through) carries nothing the routes read.
    } else if (n == "cookie") {
      // HTTP/2 may split cookies into fields; HTTP/1.1 readers expect one (RFC 9113 §8.2.3).
      auto it = std::find_if(s->req.headers.begin(), s->req.headers.end(),
                             [](const auto& h) { return h.first == "cookie"; });
      if (it == s->req.headers.end())
        s->req.headers.emplace_back("cookie", std::string(v));
      else
        it->second.append("; ").append(v);
    } else {
      s->req.headers.emplace_back(std::string(n), std::string(v));  // names arrive lowercased
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    auto& c = self_of(user_data);
    const int32_t id = frame->hd.stream_id;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    H2Stream* s = c.find(id);
    if (!s || s->answered) return 0;
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS) {
      s->headers_done = true;
      if (s->headers_too_large) {
        c.answer_error(id, *s,
                       make_error("actor", "invalid_request",
                                  "Request headers are too large. Exceeded limit of " +
                                      std::to_string(c.opts_.max_header_bytes) + " bytes."),
                       431);
        return 0;
      }
      if (auto len = s->req.header("content-length")) {
        size_t n = 0;
        const bool numeric = !len->empty() && std::all_of(len->begin(), len->end(), [](char ch) {
          return ch >= '0' && ch <= '9';
        });
        if (numeric && len->size() < 20) n = std::stoull(std::string(*len));
        if (numeric && (len->size() >= 20 || n > c.opts_.max_body_bytes)) {
          c.body_too_large(id, *s);
          return 0;
        }
      }
      s->deadline = Clock::now() + c.opts_.body_timeout;
    }
    if (end) c.dispatch(id, *s);
    return 0;
  }

  static int on_data_chunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* user_data) {
    auto& c = self_of(user_data);
    H2Stream* s = c.find(id);
    if (!s || s->answered) return 0;  // answered early: the rest of the body is dropped
    if (s->req.body.size() + len > c.opts_.max_body_bytes) {
      c.body_too_large(id, *s);
      return 0;
    }
    s->req.body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    auto& c = self_of(user_data);
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    H2Stream* s = c.find(frame->hd.stream_id);
    // The whole answer is out while the client still sends: stop it (RFC 9113 §8.1).
    if (s && s->answered_early && nghttp2_session_get_stream_remote_close(session, frame->hd.stream_id) == 0)
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t, void* user_data) {
    auto& c = self_of(user_data);
    c.streams_.erase(id);  // a handler still running for it finds no stream and drops its answer
    if (c.streams_.empty()) c.idle_since_ = Clock::now();
    return 0;
  }

  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* data_flags,
                           nghttp2_data_source* source, void*) {
    auto* s = static_cast<H2Stream*>(source->ptr);
    const size_t n = std::min(length, s->out.size() - s->out_pos);
    std::memcpy(buf, s->out.data() + s->out_pos, n);
    s->out_pos += n;
    if (s->out_pos == s->out.size()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  // --- requests and responses ---

  void body_too_large(int32_t id, H2Stream& s) {
    answer_error(id, s,
                 make_error("message", "incoming_too_long",
                            "Request body is too large. Exceeded limit of " + std::to_string(opts_.max_body_bytes) +
                                " bytes."),
                 413);
  }

  void answer_error(int32_t id, H2Stream& s, const Error& e, int status) {
    s.answered = true;
    s.answered_early = nghttp2_session_get_stream_remote_close(session_, id) == 0;
    s.deadline = Clock::time_point::max();
    s.req.body.clear();
    s.req.body.shrink_to_fit();
    submit(id, s, http::error_response(e, status));
  }

  void dispatch(int32_t id, H2Stream& s) {
    s.answered = true;
    s.deadline = Clock::time_point::max();
    s.head = s.req.method == "HEAD";
    asio::co_spawn(stream_.get_executor(), respond(shared_from_this(), id, std::move(s.req)), asio::detached);
  }

  static asio::awaitable<void> respond(std::shared_ptr<H2Connection> self, int32_t id, http::Request req) {
    http::Response out;
    try {
      out = co_await self->handler_(std::move(req));
    } catch (const std::exception& e) {
      spdlog::error("request handler threw: {}", e.what());
      out = http::error_response(internal_error());
    }
    if (self->closed_) co_return;
    if (H2Stream* s = self->find(id)) self->submit(id, *s, std::move(out));
  }

  void submit(int32_t id, H2Stream& s, http::Response res) {
    const std::string status = std::to_string(res.status);
    const bool has_body = !s.head && !res.body.empty();
    const std::string length = std::to_string(res.body.size());
    std::vector<std::string> names;
    names.reserve(res.headers.size());
    std::vector<nghttp2_nv> nva;
    nva.reserve(res.headers.size() + 2);
    auto add = [&nva](std::string_view n, std::string_view v) {
      nva.push_back(nghttp2_nv{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(n.data())),
                               const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(v.data())), n.size(), v.size(),
                               NGHTTP2_NV_FLAG_NONE});
    };
    add(":status", status);
    for (const auto& [k, v] : res.headers) {
      std::string& n = names.emplace_back(k);
      for (auto& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (hop_by_hop(n)) continue;
      add(n, v);
    }
    if (res.status != 204 && res.status != 304) add("content-length", length);
    s.out = std::move(res.body);
    s.out_pos = 0;
    nghttp2_data_provider body{};
    body.source.ptr = &s;
    body.read_callback = read_body;
    // nghttp2 copies the header fields; the body is read from `s` until the stream closes.
    const int rv = nghttp2_submit_response(session_, id, nva.data(), nva.size(), has_body ? &body : nullptr);
    if (rv != 0) spdlog::debug("h2 stream {}: cannot submit the response: {}", id, nghttp2_strerror(rv));
    wake_.cancel();
  }

  // --- the connection's loops ---

  asio::awaitable<void> read_loop() {
    std::vector<uint8_t> buf(16 * 1024);
    while (!stop_) {
      boost::system::error_code ec;
      const size_t n =
          co_await stream_.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      const ssize_t rv = nghttp2_session_mem_recv(session_, buf.data(), n);
      wake_.cancel();
      if (rv < 0) {
        spdlog::debug("h2: {}", nghttp2_strerror(static_cast<int>(rv)));
        break;
      }
      if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) break;
    }
  }

  static asio::awaitable<void> write_loop(std::shared_ptr<H2Connection> self) { co_await self->writes(); }

  asio::awaitable<void> writes() {
    std::string out;
    while (!stop_) {
      out.clear();
      while (out.size() < kWriteChunk) {
        const uint8_t* data = nullptr;
        const ssize_t n = nghttp2_session_mem_send(session_, &data);
        if (n < 0) {
          spdlog::debug("h2: {}", nghttp2_strerror(static_cast<int>(n)));
          stop_ = true;
          break;
        }
        if (n == 0) break;
        out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      }
      if (!out.empty()) {
        boost::system::error_code ec;
        writing_since_ = Clock::now();
        writing_ = true;
        co_await asio::async_write(stream_, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
        writing_ = false;
        if (ec) break;
        continue;
      }
      if (stop_ || reader_done_ ||
          (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)))
        break;
      wake_.expires_at(Clock::time_point::max());
      boost::system::error_code ec;
      co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    writer_running_ = false;
    // The reader ends with the writer (GOAWAY sent, or the peer is gone).
    stop_ = true;
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream_).socket().cancel(ignored);
    writer_done_.cancel();
  }

  // Enforces the timeouts; ends with the connection.
  static asio::awaitable<void> watch(std::shared_ptr<H2Connection> self) { co_await self->watchdog(); }

  asio::awaitable<void> watchdog() {
    using std::chrono::milliseconds;
    const auto shortest = std::min({opts_.header_timeout, opts_.body_timeout, opts_.idle_timeout, opts_.write_timeout});
    const auto tick = std::clamp(shortest / 4, milliseconds(5), milliseconds(1000));
    Clock::time_point goaway_at{};
    while (!closed_) {
      watchdog_.expires_after(tick);
      boost::system::error_code ec;
      co_await watchdog_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (closed_) break;
      const auto now = Clock::now();
      if ((writing_ && now - writing_since_ > opts_.write_timeout) ||
          (goaway_at != Clock::time_point{} && now - goaway_at > std::chrono::seconds(5))) {
        // The client takes no bytes (or never ends after GOAWAY): drop it.
        stop_ = true;
        auto& sock = beast::get_lowest_layer(stream_).socket();
        sock.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
        sock.cancel(ec);
        continue;
      }
      for (auto& [id, s] : streams_) {
        if (s->deadline > now) continue;
        s->deadline = Clock::time_point::max();
        s->answered = true;
        if (!s->headers_done && goaway_at == Clock::time_point{}) {
          // A header block left open holds the whole connection (nothing
          // else may be sent until it ends, RFC 9113 §6.10): end it.
          nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
          goaway_at = now;
        } else {
          // A body too slow: this stream only.
          nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        }
        wake_.cancel();
      }
      if (streams_.empty() && goaway_at == Clock::time_point{} && now - idle_since_ >= opts_.idle_timeout) {
        nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
        goaway_at = now;
        wake_.cancel();
      }
    }
  }

  TlsStream& stream_;
  const ServerOptions& opts_;
  Handler handler_;
  bool from_loopback_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, std::unique_ptr<H2Stream>> streams_;
  asio::steady_timer wake_;         // the writer waits here for frames to send
  asio::steady_timer writer_done_;  // run() waits here for the writer to end
  asio::steady_timer watchdog_;
  Clock::time_point idle_since_, writing_since_;
  bool writing_ = false, writer_running_ = true, reader_done_ = false, stop_ = false, closed_ = false;
};

}  // namespace

asio::awaitable<void> serve_h2(TlsStream& stream, const ServerOptions& opts, Handler handler, bool from_loopback) {
  auto conn = std::make_shared<H2Connection>(stream, opts, std::move(handler), from_loopback);
  if (!conn->init()) {
    spdlog::error("h2: cannot start an nghttp2 session");
    co_return;
  }
  co_await conn->run();
}

}  // namespace anvil::gateway

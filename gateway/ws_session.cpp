#include "gateway/ws_session.hpp"

#include <deque>

#include <boost/asio/redirect_error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <spdlog/spdlog.h>

#include "base/value/cbor.hpp"
#include "gateway/codec/inspector.hpp"
#include "gateway/router.hpp"
#include "gateway/traffic.hpp"
#include "gateway/ws_frame.hpp"
#include "base/value/json.hpp"

namespace anvil::gateway {
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;

namespace {

// `Next`: beast::tcp_stream (plain HTTP) or TlsStream (HTTPS, ALPN http/1.1).
template <typename Next>
using WsStream = websocket::stream<Next>;

// Where a session that frames the protocol itself reads and writes: the TCP
// socket itself on plain connections (no per-operation timer: the hot
// path), the TLS stream on TLS ones.
template <typename Next>
auto& byte_stream(WsStream<Next>& ws) {
  if constexpr (std::is_same_v<Next, beast::tcp_stream>)
    return ws.next_layer().socket();
  else
    return ws.next_layer();
}

// Close reason when a client's unread backlog passes WsOptions::max_pending_write_bytes.
constexpr std::string_view kBacklogReason = "message.outgoing_backlog_exceeded";

template <typename Next>
asio::awaitable<void> reject_upgrade(Next& stream, const BeastRequest& req, const Error& e, int status = 0) {
  http::Response r = http::error_response(e, status);
  bhttp::response<bhttp::string_body> res;
  res.version(req.version());
  res.result(static_cast<unsigned>(r.status));
  for (auto& [k, v] : r.headers) res.insert(k, v);
  res.body() = std::move(r.body);
  res.keep_alive(false);
  res.prepare_payload();
  boost::system::error_code ec;
  co_await bhttp::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
  beast::get_lowest_layer(stream).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
}

// The write side shared by both kinds of WebSocket session: frames are queued
// and written one at a time by a single writer coroutine on the socket's
// strand; a requested close goes out after the queued frames.
// When a client guard accepted credentials that expire (ActorContext::
// client_valid_until): the unix ms the connection must end, from the guard's
// answer.
std::optional<int64_t> valid_until_of(const Result<Value>& guarded) {
  if (!guarded.ok() || !guarded->is_object()) return std::nullopt;
  const Value* v = guarded->find("validUntil");
  if (!v || !v->is_int()) return std::nullopt;
  return v->as_int();
}

std::chrono::milliseconds until_unix_ms(int64_t unix_ms) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return std::chrono::milliseconds(std::max<int64_t>(0, unix_ms - now));
}

template <typename Next>
class WsSession : public std::enable_shared_from_this<WsSession<Next>> {
 public:
  WsSession(WsStream<Next> ws, size_t max_pending) : ws_(std::move(ws)), max_pending_(max_pending) {
    traffic().websockets.add(1);
  }
  virtual ~WsSession() { traffic().websockets.add(-1); }

 protected:
  void enqueue_frame(bool text, Bytes data) {
    if (close_requested_) return;
    traffic().ws_out.inc(data.size());
    traffic().ws_messages_out.inc();
    pending_ += data.size();
    outq_.push_back(Frame{text, std::move(data)});
    if (pending_ > max_pending_) {
      // The client does not read: drop what it has not taken, say why (if
      // it ever reads again) and stop reading; run() then closes the socket.
      spdlog::warn("raw websocket: client not reading ({} bytes pending), closing", pending_);
      outq_.clear();
      overflowed_ = true;
      close_with(1008, std::string(kBacklogReason));
      boost::system::error_code ec;
      beast::get_lowest_layer(ws_).socket().shutdown(asio::ip::tcp::socket::shutdown_receive, ec);
      return;
    }
    start_writer();
  }

  void close_with(uint16_t code, std::string reason) {
    if (close_requested_) return;
    close_requested_ = true;
    close_code_ = code;
    close_reason_ = std::move(reason);
    start_writer();
  }

  // Runs `fn` on the socket's strand (for calls from actor strands).
  template <typename Fn>
  void on_socket_strand(Fn&& fn) {
    asio::post(ws_.get_executor(), [self = this->shared_from_this(), fn = std::forward<Fn>(fn)]() mutable {
      (void)self;
      fn();
    });
  }

  // Waits (bounded) for queued frames and a requested close to be written.
  asio::awaitable<void> drain() {
    for (int i = 0; i < 500 && writing_; ++i) {
      asio::steady_timer t(ws_.get_executor(), std::chrono::milliseconds(10));
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  WsStream<Next> ws_;
  bool overflowed_ = false;

 private:
  struct Frame {
    bool text;
    Bytes data;
  };

  void start_writer() {
    if (writing_) return;
    writing_ = true;
    asio::co_spawn(ws_.get_executor(), write_loop(this->shared_from_this()), asio::detached);
  }

  // `self` keeps the session alive while frames are written.
  asio::awaitable<void> write_loop(std::shared_ptr<WsSession> self) {
    (void)self;
    while (!outq_.empty()) {
      Frame f = std::move(outq_.front());
      outq_.pop_front();
      ws_.text(f.text);
      boost::system::error_code ec;
      co_await ws_.async_write(asio::buffer(f.data), asio::redirect_error(asio::use_awaitable, ec));
      pending_ -= std::min(pending_, f.data.size());
      if (ec) {
        outq_.clear();
        pending_ = 0;
        break;
      }
    }
    if (close_requested_ && !close_sent_ && ws_.is_open()) {
      close_sent_ = true;
      boost::system::error_code ec;
      co_await ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(close_code_), close_reason_),
                               asio::redirect_error(asio::use_awaitable, ec));
    } else if (close_requested_ && !close_sent_ && overflowed_) {
      // The overflow shut the receive side down, and Beast gives the stream
      // up once its read ends: the close frame then goes out as bytes after
      // the frames written (a server frame: unmasked; never compressed).
      close_sent_ = true;
      std::string frame;
      wsframe::append_frame(frame, wsframe::kClose, wsframe::close_payload(close_code_, close_reason_));
      boost::system::error_code ec;
      co_await asio::async_write(ws_.next_layer(), asio::buffer(frame), asio::redirect_error(asio::use_awaitable, ec));
    }
    writing_ = false;
  }

  std::deque<Frame> outq_;
  size_t max_pending_;
  size_t pending_ = 0;  // payload bytes queued or being written
  bool writing_ = false;
  bool close_requested_ = false, close_sent_ = false;
  uint16_t close_code_ = 1000;
  std::string close_reason_;
};

// One `/connect` WebSocket: the RivetKit connection protocol. Beast does the
// handshake; after it the session frames the protocol itself (ws_frame.hpp)
// so that it can decode every frame a read brought and send every queued
// reply in one write: the hot path of WebSocket actions.
template <typename Next>
class ConnectSession : public std::enable_shared_from_this<ConnectSession<Next>>, public ConnSink {
 public:
  ConnectSession(Runtime& rt, WsStream<Next> ws, wire::Encoding enc, std::string actor_id, const MessageLimits& limits,
                 size_t max_pending)
      : ws_(std::move(ws)),
        rt_(rt),
        enc_(enc),
        actor_id_(std::move(actor_id)),
        limits_(limits),
        max_pending_(max_pending),
        decoder_(limits.max_incoming),
        batches_done_(ws_.get_executor()),
        writer_idle_(ws_.get_executor()),
        keepalive_(ws_.get_executor()) {
    traffic().websockets.add(1);
  }
  ~ConnectSession() override { traffic().websockets.add(-1); }

  asio::awaitable<void> run(Value params, std::vector<std::pair<std::string, std::string>> headers) {
    auto keep = this->shared_from_this();
    ClientRequest creq;
    creq.kind = "connect";
    creq.params = params;
    creq.headers = std::move(headers);
    std::string traceparent = creq.header("traceparent").value_or("");
    CallResult guarded = co_await rt_.guard_client(actor_id_, std::move(creq));
    const std::optional<int64_t> valid_until = valid_until_of(guarded.output);
    if (!guarded.output.ok()) {
      // Refused by the actor's client guard: as a rejected connection.
      const Error& e = guarded.output.error();
      send(wire::ErrorMsg{e, std::nullopt, specifier(rt_.find_by_id(actor_id_))});
      close_with(1011, e.qualified());
      co_await finish();
      co_return;
    }
    auto opened = co_await rt_.connect(actor_id_, std::move(params), keep, std::move(traceparent));
    if (!opened.output.ok()) {
      // Rejected connection: Error with actionId null, then close 1011 group.code.
      const Error& e = opened.output.error();
      send(wire::ErrorMsg{e, std::nullopt, specifier(opened.actor)});
      close_with(1011, e.qualified());
      co_await finish();
      co_return;
    }
    conn_id_ = opened.output->as_string();
    actor_ = opened.actor;
    send(wire::InitMsg{actor_id_, conn_id_});
    asio::co_spawn(ws_.get_executor(), keepalive(keep), asio::detached);
    if (valid_until) asio::co_spawn(ws_.get_executor(), expire(keep, *valid_until), asio::detached);

    auto& sock = byte_stream(ws_);
    std::vector<uint8_t> buf(16 * 1024);
    bool reading = true;
    while (reading) {
      boost::system::error_code ec;
      size_t n = co_await sock.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      last_rx_ = std::chrono::steady_clock::now();
      decoder_.feed(std::span<const uint8_t>(buf.data(), n));
      while (auto ev = decoder_.next()) {
        if (ev->kind == wsframe::Event::Message) {
          traffic().ws_in.inc(ev->payload.size());
          traffic().ws_messages_in.inc();
          if (!on_message(ev->payload)) {
            reading = false;
            break;
          }
        } else if (ev->kind == wsframe::Event::Ping) {
          queue_frame(wsframe::kPong, ev->payload);
        } else if (ev->kind == wsframe::Event::Close) {
          // The client closes: answer with its code (none if it gave none).
          peer_closed_ = true;
          close_with(ev->close_code == 1005 ? 0 : ev->close_code, "");
          reading = false;
          break;
        }
      }
      if (auto& v = decoder_.violation()) {
        if (v->code == 1009)
          close_with(1011, "message.incoming_too_long");
        else
          close_with(v->code, v->reason);
        reading = false;
      }
    }
    if (batching_) {  // queued calls run before onDisconnect
      batches_done_.expires_at(asio::steady_timer::time_point::max());
      boost::system::error_code tec;
      co_await batches_done_.async_wait(asio::redirect_error(asio::use_awaitable, tec));
    }
    co_await rt_.disconnect(actor_id_, conn_id_);
    co_await finish();
  }

  // ConnSink (called from the actor's strand).
  void send_event(const std::string& name, const Array& args) override {
    asio::post(ws_.get_executor(),
               [self = this->shared_from_this(), name, args] { self->send(wire::EventMsg{name, args}); });
  }
  void close(uint16_t code, const std::string& reason) override {
    asio::post(ws_.get_executor(),
               [self = this->shared_from_this(), code, reason] { self->close_with(code, reason); });
  }

 private:
  asio::ip::tcp::socket& socket() { return beast::get_lowest_layer(ws_).socket(); }

  // One decoded message; false ends the connection (it was closed).
  bool on_message(const std::string& payload) {
    auto frame = wire::decode_to_server(enc_, std::span(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
    if (!frame.ok()) {
      spdlog::debug("conn {}: undecodable frame: {}", conn_id_, frame.error().message);
      close_with(1011, "actor.invalid_request");
      return false;
    }
    // Calls run in arrival order (a subscription applies before any later
    // action), batched: whatever arrived while the previous batch was on
    // the actor's strand goes in the next one.
    ConnCall call;
    if (auto* sub = std::get_if<wire::SubscriptionRequest>(&*frame)) {
      call.is_subscription = true;
      call.subscribe = sub->subscribe;
      call.name = std::move(sub->event_name);
      pending_ids_.push_back(std::nullopt);
    } else {
      auto& req = std::get<wire::ActionRequest>(*frame);
      call.name = std::move(req.name);
      call.args = std::move(req.args);
      pending_ids_.push_back(req.id);
    }
    pending_.push_back(std::move(call));
    if (!batching_) {
      batching_ = true;
      asio::co_spawn(ws_.get_executor(), run_batches(this->shared_from_this()), asio::detached);
    }
    return true;
  }

  // Runs queued calls batch by batch on the actor's strand; each batch's
  // replies wait for its commit in their own coroutine, so the next batch
  // runs meanwhile (and usually lands in the same group commit).
  asio::awaitable<void> run_batches(std::shared_ptr<ConnectSession> keep) {
    while (!pending_.empty()) {
      std::vector<ConnCall> calls = std::move(pending_);
      pending_.clear();
      std::vector<std::optional<uint64_t>> ids = std::move(pending_ids_);
      pending_ids_.clear();
      PendingTurns batch = co_await rt_.conn_calls(actor_id_, conn_id_, std::move(calls));
      asio::co_spawn(ws_.get_executor(), reply(keep, std::move(ids), std::move(batch)), asio::detached);
    }
    batching_ = false;
    batches_done_.cancel();
  }

  asio::awaitable<void> reply(std::shared_ptr<ConnectSession> keep, std::vector<std::optional<uint64_t>> ids,
                              PendingTurns batch) {
    DurableTurns done = co_await rt_.finish(std::move(batch));
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!ids[i]) continue;  // subscriptions have no reply
      if (done.is_async(i)) {
        // An async action answers when it ends; the others do not wait for it.
        asio::co_spawn(ws_.get_executor(), reply_later(keep, *ids[i], done.take_async(i)), asio::detached);
        continue;
      }
      send_result(*ids[i], done.result(i));
    }
  }

  asio::awaitable<void> reply_later(std::shared_ptr<ConnectSession> keep, uint64_t id, AsyncCall call) {
    (void)keep;
    CallResult res = co_await rt_.settle(std::move(call));
    send_result(id, res);
  }

  void send_result(uint64_t id, CallResult& res) {
    const auto& actor = res.actor ? res.actor : actor_;
    const bool sent = res.output.ok() ? send(wire::ActionResponseMsg{id, std::move(*res.output)})
                                      : send(wire::ErrorMsg{res.output.error(), id, specifier(actor)});
    // A reply (or error) over the outgoing limit becomes that action's
    // message.outgoing_too_long; the connection stays open.
    if (!sent) send(wire::ErrorMsg{outgoing_too_long(limits_.max_outgoing), id, specifier(actor)});
  }

  std::optional<wire::ActorSpecifier> specifier(const std::optional<ActorInfo>& a) const {
    if (!a) return std::nullopt;
    return wire::ActorSpecifier{a->actor_id, a->generation, a->key};
  }

  // False (nothing sent) when the message is over the outgoing limit; an
  // event over it closes the connection (1011 message.outgoing_too_long).
  bool send(const wire::ToClient& msg) {
    auto bytes = wire::encode_to_client(enc_, msg);
    if (bytes.size() > limits_.max_outgoing) {
      if (std::holds_alternative<wire::EventMsg>(msg)) close_with(1011, "message.outgoing_too_long");
      return false;
    }
    queue_frame(enc_ == wire::Encoding::Json ? wsframe::kText : wsframe::kBinary,
                std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    traffic().ws_out.inc(bytes.size());
    traffic().ws_messages_out.inc();
    return true;
  }

  // --- the write side: frames accumulate in out_ and go out in one write ---

  void queue_frame(wsframe::Opcode op, std::string_view payload) {
    if (close_queued_) return;
    wsframe::append_frame(out_, op, payload);
    if (out_.size() + in_flight_ > max_pending_) {
      overflow();
      return;
    }
    start_writer();
  }

  // The client does not read: drop the frames it has not taken, queue a
  // close saying why (it reaches a client that reads again) and end the
  // reader, so that finish() closes the socket within its bounded waits.
  void overflow() {
    spdlog::warn("conn {}: client not reading ({} bytes pending), closing", conn_id_, out_.size() + in_flight_);
    out_.clear();
    close_with(1008, kBacklogReason);
    boost::system::error_code ec;
    socket().shutdown(asio::ip::tcp::socket::shutdown_receive, ec);
  }

  // Queues a close frame after everything queued (code 0: no code).
  void close_with(uint16_t code, std::string_view reason) {
    if (close_queued_) return;
    wsframe::append_frame(out_, wsframe::kClose, code ? wsframe::close_payload(code, reason) : std::string());
    close_queued_ = true;
    start_writer();
  }

  void start_writer() {
    if (writing_) return;
    writing_ = true;
    asio::co_spawn(ws_.get_executor(), write_loop(this->shared_from_this()), asio::detached);
  }

  asio::awaitable<void> write_loop(std::shared_ptr<ConnectSession> keep) {
    (void)keep;
    std::string chunk;
    while (!out_.empty()) {
      chunk.clear();
      chunk.swap(out_);
      const bool has_close = close_queued_ && !close_written_;
      boost::system::error_code ec;
      in_flight_ = chunk.size();
      co_await asio::async_write(byte_stream(ws_), asio::buffer(chunk), asio::redirect_error(asio::use_awaitable, ec));
      in_flight_ = 0;
      if (ec) {
        out_.clear();
        close_queued_ = true;
        break;
      }
      if (has_close && out_.empty()) {
        close_written_ = true;
        // No more frames from us; the client answers our close and ends
        // the TCP connection (the reader then sees EOF).
        socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
      }
    }
    writing_ = false;
    writer_idle_.cancel();
  }

  // Ends the session: waits (bounded) for queued frames, then lets the peer
  // finish its side before the socket closes, so that nothing it has yet to
  // read (our close frame) is lost to a reset.
  asio::awaitable<void> finish() {
    closing_ = true;
    keepalive_.cancel();
    expiry_.cancel();
    if (!close_queued_) close_with(1000, "");
    if (writing_) {
      writer_idle_.expires_after(std::chrono::seconds(5));
      boost::system::error_code ec;
      co_await writer_idle_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    boost::system::error_code ec;
    if (!peer_closed_ && socket().is_open()) {
      socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
      // Discard what the client still sends until it closes (at most 5 s).
      beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(5));
      std::vector<uint8_t> sink(4096);
      for (;;) {
        co_await ws_.next_layer().async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
      }
    }
    socket().close(ec);
  }

  // Ends the connection when the credentials its guard accepted expire: an
  // Error (actionId null) and a close, as a refused connection gets, so the
  // client reconnects and presents fresh ones.
  asio::awaitable<void> expire(std::shared_ptr<ConnectSession> keep, int64_t valid_until) {
    (void)keep;
    expiry_.expires_after(until_unix_ms(valid_until));
    boost::system::error_code ec;
    co_await expiry_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec || closing_ || close_queued_) co_return;
    Error e = make_error("auth", "token_expired", "The connection's credentials expired; reconnect with fresh ones.");
    spdlog::info("websocket conn {} of actor {}: credentials expired, closing", conn_id_, actor_id_);
    send(wire::ErrorMsg{e, std::nullopt, specifier(actor_)});
    close_with(1011, e.qualified());
  }

  // Pings a silent client; a client silent for two intervals is gone.
  asio::awaitable<void> keepalive(std::shared_ptr<ConnectSession> keep) {
    (void)keep;
    constexpr auto kInterval = std::chrono::seconds(60);
    while (!closing_) {
      keepalive_.expires_after(kInterval);
      boost::system::error_code ec;
      co_await keepalive_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ec || closing_) break;
      auto silent = std::chrono::steady_clock::now() - last_rx_;
      if (silent >= 2 * kInterval) {
        socket().cancel(ec);  // the reader ends; the session closes
        socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
        break;
      }
      if (silent >= kInterval) queue_frame(wsframe::kPing, "");
    }
  }

  WsStream<Next> ws_;  // after the handshake only its byte stream is used
  Runtime& rt_;
  wire::Encoding enc_;
  std::string actor_id_, conn_id_;
  MessageLimits limits_;
  size_t max_pending_;  // WsOptions::max_pending_write_bytes
  size_t in_flight_ = 0;  // bytes of the chunk being written
  std::optional<ActorInfo> actor_;
  wsframe::Decoder decoder_;
  std::chrono::steady_clock::time_point last_rx_ = std::chrono::steady_clock::now();
  std::vector<ConnCall> pending_;                     // calls not yet on the actor's strand
  std::vector<std::optional<uint64_t>> pending_ids_;  // their action ids (nullopt: subscription)
  bool batching_ = false;
  asio::steady_timer batches_done_;  // wakes the reader when batching_ ends
  std::string out_;                  // framed bytes waiting for the writer
  bool writing_ = false, close_queued_ = false, close_written_ = false;
  bool peer_closed_ = false, closing_ = false;
  asio::steady_timer writer_idle_;  // wakes finish() when the writer stops
  asio::steady_timer keepalive_;
  asio::steady_timer expiry_{ws_.get_executor()};  // credentials' end (expire())
};

// One `/websocket/…` socket bridged to the actor's onWebSocket: frames pass
// through unchanged (text stays text, binary stays binary), close codes too.
template <typename Next>
class RawSession : public WsSession<Next>, public RawWebSocket {
  using Base = WsSession<Next>;
  using Base::close_with;
  using Base::drain;
  using Base::enqueue_frame;
  using Base::on_socket_strand;
  using Base::overflowed_;
  using Base::ws_;

 public:
  RawSession(Runtime& rt, WsStream<Next> ws, std::string actor_id, size_t max_pending)
      : Base(std::move(ws), max_pending), rt_(rt), actor_id_(std::move(actor_id)) {}

  std::shared_ptr<RawSession> self() { return std::static_pointer_cast<RawSession>(this->shared_from_this()); }

  asio::awaitable<void> run(RawRequest req, Value params) {
    auto keep = self();
    ClientRequest creq;
    creq.kind = "websocket";
    creq.params = std::move(params);
    creq.headers = req.headers;
    CallResult guarded = co_await rt_.guard_client(actor_id_, std::move(creq));
    const std::optional<int64_t> valid_until = valid_until_of(guarded.output);
    if (!guarded.output.ok()) {
      close_with(1011, guarded.output.error().qualified());
      co_await drain();
      co_return;
    }
    auto opened = co_await rt_.raw_ws_open(actor_id_, std::move(req), keep);
    if (!opened.output.ok()) {
      close_with(1011, opened.output.error().qualified());
      co_await drain();
      co_return;
    }
    handle_ = static_cast<uint64_t>(opened.output->as_int());
    if (valid_until) asio::co_spawn(ws_.get_executor(), expire(keep, *valid_until), asio::detached);
    beast::flat_buffer buf;
    uint16_t code = 1006;
    std::string reason;
    for (;;) {
      boost::system::error_code ec;
      co_await ws_.async_read(buf, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == websocket::error::closed) {
          code = static_cast<uint16_t>(ws_.reason().code);
          reason = std::string(ws_.reason().reason.c_str());
        }
        break;
      }
      auto data = buf.cdata();
      traffic().ws_in.inc(data.size());
      traffic().ws_messages_in.inc();
      WsMessage msg{!ws_.got_text(), std::string(static_cast<const char*>(data.data()), data.size())};
      buf.consume(buf.size());
      // Delivered in order: the next frame is read after this one is handled.
      co_await rt_.raw_ws_message(actor_id_, handle_, std::move(msg));
    }
    expiry_.cancel();
    co_await rt_.raw_ws_closed(actor_id_, handle_, code, reason);
    co_await drain();
    if (overflowed_) {
      // A writer stuck on a client that does not read ends with the socket.
      boost::system::error_code ec;
      beast::get_lowest_layer(ws_).socket().close(ec);
    }
  }

  // Closes the socket (1008 auth.token_expired) when the credentials its
  // guard accepted expire.
  asio::awaitable<void> expire(std::shared_ptr<RawSession> keep, int64_t valid_until) {
    (void)keep;
    expiry_.expires_after(until_unix_ms(valid_until));
    boost::system::error_code ec;
    co_await expiry_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    spdlog::info("raw websocket of actor {}: credentials expired, closing", actor_id_);
    close_with(1008, "auth.token_expired");
  }

  // RawWebSocket (called from the actor's strand).
  void send_text(std::string text) override {
    on_socket_strand([this, text = std::move(text)]() mutable { enqueue_frame(true, Bytes(text.begin(), text.end())); });
  }
  void send_binary(Bytes data) override {
    on_socket_strand([this, data = std::move(data)]() mutable { enqueue_frame(false, std::move(data)); });
  }
  void close(uint16_t code, std::string reason) override {
    on_socket_strand([this, code, reason = std::move(reason)]() mutable { close_with(code, std::move(reason)); });
  }

 private:
  Runtime& rt_;
  std::string actor_id_;
  uint64_t handle_ = 0;
  asio::steady_timer expiry_{ws_.get_executor()};
};

// One `/inspector/connect` WebSocket: Rivet's inspector live protocol v6
// (gateway/codec/inspector.hpp). Init first, then an answer per request in
// request order, and snapshots pushed when the actor reports a change
// (ActorWatcher): the persisted state, the connections, the queue size and
// the schedules, each sent only when it differs from what was last sent.
template <typename Next>
class InspectorSession : public WsSession<Next>, public ActorWatcher {
  using Base = WsSession<Next>;
  using Base::close_with;
  using Base::drain;
  using Base::enqueue_frame;
  using Base::on_socket_strand;
  using Base::ws_;

 public:
  InspectorSession(Runtime& rt, InspectorRoutes& ins, WsStream<Next> ws, std::string actor_id, size_t max_pending)
      : Base(std::move(ws), max_pending), rt_(rt), ins_(ins), actor_id_(std::move(actor_id)) {}

  const std::string& actor() const { return actor_id_; }
  std::shared_ptr<InspectorSession> self() {
    return std::static_pointer_cast<InspectorSession>(this->shared_from_this());
  }

  // `refusal`: close at once with it (code, reason) instead of serving.
  asio::awaitable<void> run(std::optional<std::pair<uint16_t, std::string>> refusal) {
    auto keep = self();
    if (refusal) {
      close_with(refusal->first, refusal->second);
      co_await drain();
      co_return;
    }
    auto info = rt_.find_by_id(actor_id_);
    def_ = info ? rt_.registry().find(info->name) : nullptr;
    std::weak_ptr<ActorWatcher> me = std::static_pointer_cast<ActorWatcher>(keep);
    CallResult watched = co_await rt_.watch(actor_id_, std::move(me));
    // (No co_await inside a conditional expression: GCC 12 miscompiles it.)
    Status init = Ok{};
    if (!def_)
      init = make_error("actor", "not_registered", "The actor's type is not hosted here.");
    else if (!watched.output.ok())
      init = watched.output.error();
    else
      init = co_await send_init();
    if (!init.ok()) {
      spdlog::warn("inspector of actor {}: init failed: {}", actor_id_, init.error().message);
      close_with(1011, "inspector.init_error");
      co_await drain();
      co_return;
    }
    beast::flat_buffer buf;
    for (;;) {
      boost::system::error_code ec;
      co_await ws_.async_read(buf, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec != websocket::error::closed) spdlog::debug("inspector of actor {}: {}", actor_id_, ec.message());
        break;
      }
      auto data = buf.cdata();
      traffic().ws_in.inc(data.size());
      traffic().ws_messages_in.inc();
      Bytes frame(static_cast<const uint8_t*>(data.data()), static_cast<const uint8_t*>(data.data()) + data.size());
      buf.consume(buf.size());
      // Answered in order: the next frame is read after this one's answer.
      Bytes answer = co_await answer_request(std::move(frame));
      if (!answer.empty()) send(std::move(answer));
      if (after_answer_) {
        send(std::move(*after_answer_));
        after_answer_.reset();
      }
    }
    closed_ = true;
    co_await drain();
    // A writer stuck on a client that stopped reading ends with the socket
    // (else it would hold the session, and the actor's watcher, for good).
    boost::system::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

  // ActorWatcher (called on the actor's strand).
  void changed(uint64_t seq, const Value* connections) override {
    std::optional<Value> conns;
    if (connections) conns = InspectorRoutes::rivet_connections(*connections);
    on_socket_strand([this, seq, conns = std::move(conns)]() mutable {
      seq_ = std::max(seq_, seq);
      if (conns) pending_conns_ = std::move(conns);
      pending_ = true;
      start_refresh();
    });
  }
  void destroyed() override {
    on_socket_strand([this] { close_with(1000, "actor.destroyed"); });
  }

 private:
  // Pushes wait for Init (the first message): a change told meanwhile is
  // sent once Init is out.
  void start_refresh() {
    if (closed_ || !ready_ || !pending_ || refreshing_) return;  // a running refresh sees pending_
    refreshing_ = true;
    asio::co_spawn(ws_.get_executor(), refresh(self()), asio::detached);
  }

  void send(Bytes msg) { enqueue_frame(false, std::move(msg)); }

  static Bytes cbor_of(const Value& v) { return cbor::encode(v, cbor::Mode::Compat); }

  // rivetkit sends no state when the state is empty (never written).
  static std::optional<Bytes> state_bytes(const Value& state) {
    if (state.is_null() || state.is_undefined()) return std::nullopt;
    return cbor_of(state);
  }

  static std::vector<inspector::Connection> connections_of(const Value& list) {
    std::vector<inspector::Connection> out;
    for (const auto& c : list.as_array()) out.push_back({c.find("id")->as_string(), cbor_of(*c.find("details"))});
    return out;
  }

  static std::vector<inspector::Schedule> schedules_of(const Value& list) {
    std::vector<inspector::Schedule> out;
    for (const auto& s : list.as_array()) {
      inspector::Schedule sc;
      sc.id = s.find("id")->as_string();
      if (const Value* n = s.find("name"); n && n->is_string()) sc.name = n->as_string();
      const Value* every = s.find("intervalMs");
      sc.kind = every && every->is_int() ? "every" : "at";
      if (every && every->is_int()) sc.interval_ms = static_cast<uint64_t>(every->as_int());
      sc.action = s.find("action")->as_string();
      sc.args = cbor_of(*s.find("args"));
      sc.next_run_at = static_cast<uint64_t>(std::max<int64_t>(0, s.find("dueTs")->as_int()));
      out.push_back(std::move(sc));
    }
    return out;
  }

  // The actor's workflow history as rivetkit's transport bytes, absent
  // when it has no workflow or no entry yet.
  asio::awaitable<Result<std::optional<Bytes>>> workflow_history() {
    if (!def_->run_hook()) co_return std::optional<Bytes>();
    auto w = co_await ins_.workflow(actor_id_);
    if (!w.ok()) co_return w.error();
    const Value* h = w->find("history");
    if (!h || h->is_null()) co_return std::optional<Bytes>();
    auto bytes = inspector::encode_workflow_history(*h);
    if (!bytes.ok()) co_return bytes.error();
    co_return std::optional<Bytes>(std::move(*bytes));
  }

  asio::awaitable<Status> send_init() {
    inspector::Init init;
    auto state = co_await ins_.state(actor_id_);
    if (!state.ok()) co_return state.error();
    auto conns = co_await ins_.connections(actor_id_);
    if (!conns.ok()) co_return conns.error();
    auto queue = co_await ins_.queue(actor_id_, 1);
    if (!queue.ok()) co_return queue.error();
    auto schedules = co_await ins_.schedules(actor_id_);
    if (!schedules.ok()) co_return schedules.error();
    auto history = co_await workflow_history();
    if (history.ok())
      init.workflow_history = std::move(*history);
    else  // the rest of the inspector still works
      spdlog::warn("inspector of actor {}: workflow history not sent: {}", actor_id_, history.error().message);
    init.state = state_bytes(*state);
    init.connections = connections_of(*conns);
    init.rpcs = def_->action_names();
    init.database_enabled = def_->database_options() != nullptr;
    init.queue_size = static_cast<uint64_t>(queue->find("size")->as_int());
    init.workflow_enabled = def_->run_hook() != nullptr;
    init.schedules = schedules_of(*schedules);
    last_state_ = init.state.value_or(Bytes{});
    last_conns_ = init.connections;
    last_queue_ = init.queue_size;
    last_schedules_ = init.schedules;
    send(inspector::encode_init(init));
    ready_ = true;
    start_refresh();  // changes told while Init was built
    co_return Ok{};
  }

  // Pushes what changed since it was last sent, until no change is pending.
  asio::awaitable<void> refresh(std::shared_ptr<InspectorSession> keep) {
    (void)keep;
    try {
      co_await push_changes();
    } catch (const std::exception& e) {
      spdlog::error("inspector of actor {}: push failed: {}", actor_id_, e.what());
    }
    refreshing_ = false;
  }

  asio::awaitable<void> push_changes() {
    do {
      pending_ = false;
      const uint64_t seq = seq_;
      std::optional<Value> conns = std::move(pending_conns_);
      pending_conns_.reset();
      // What the change wrote is in storage once durable; read it there (no
      // turn: a pushed snapshot never wakes the actor).
      if (Status st = co_await rt_.durable(seq); !st.ok()) break;
      if (closed_) break;
      auto state = co_await ins_.stored_state(actor_id_);
      if (state.ok()) {
        Bytes bytes = state_bytes(*state).value_or(Bytes{});
        if (bytes != last_state_) {
          send(inspector::encode_state_updated(bytes));
          last_state_ = std::move(bytes);
        }
      }
      auto queue = co_await ins_.queue(actor_id_, 1);
      if (queue.ok()) {
        const uint64_t size = static_cast<uint64_t>(queue->find("size")->as_int());
        if (size != last_queue_) {
          send(inspector::encode_queue_updated(size));
          last_queue_ = size;
        }
      }
      auto schedules = co_await ins_.schedules(actor_id_);
      if (schedules.ok()) {
        auto list = schedules_of(*schedules);
        if (list != last_schedules_) {
          send(inspector::encode_schedules(std::nullopt, list));
          last_schedules_ = std::move(list);
        }
      }
      if (conns) {
        // The list the turn reported (no turn here: a push never wakes the actor).
        auto now = connections_of(*conns);
        if (now != last_conns_) {
          send(inspector::encode_connections(std::nullopt, now));
          last_conns_ = std::move(now);
        }
      }
    } while (pending_ && !closed_);
  }

  // The answer to one request frame (an Error message when it fails).
  asio::awaitable<Bytes> answer_request(Bytes frame) {
    auto req = inspector::decode_request(frame);
    if (!req.ok()) co_return inspector::encode_error(req.error().message);
    Result<Bytes> out = co_await answer(std::move(*req));
    if (!out.ok()) co_return inspector::encode_error(out.error().message);
    co_return std::move(*out);
  }

  asio::awaitable<Result<Bytes>> answer(inspector::Request req) {
    using K = inspector::Request::Kind;
    const uint64_t rid = req.id;
    switch (req.kind) {
      case K::kPatchState: {
        auto state = cbor::decode(req.data, cbor::Mode::Compat);
        if (!state.ok()) co_return state.error();
        CallResult r = co_await rt_.admin_set_state(actor_id_, std::move(*state));
        if (!r.output.ok()) co_return r.output.error();
        co_return inspector::encode_state_updated(req.data);
      }
      case K::kState: {
        auto state = co_await ins_.state(actor_id_);
        if (!state.ok()) co_return state.error();
        co_return inspector::encode_state_response(rid, state_bytes(*state));
      }
      case K::kConnections: {
        auto conns = co_await ins_.connections(actor_id_);
        if (!conns.ok()) co_return conns.error();
        co_return inspector::encode_connections(rid, connections_of(*conns));
      }
      case K::kAction: {
        auto args = cbor::decode(req.data, cbor::Mode::Compat);
        if (!args.ok()) co_return args.error();
        if (!args->is_array())
          co_return make_error("actor", "invalid_request", "Inspector action arguments must be an array.");
        if (!def_->has_action(req.name)) co_return make_error("action", "action_not_found", "Action " + req.name + " not found");
        Value no_params;  // named: no temporaries inside co_await (GCC 12)
        CallResult r = co_await rt_.call_action(actor_id_, std::move(req.name), std::move(args->as_array()),
                                                std::move(no_params));
        if (!r.output.ok()) co_return r.output.error();
        co_return inspector::encode_action_response(rid, cbor_of(*r.output));
      }
      case K::kRpcsList:
        co_return inspector::encode_rpcs(rid, def_->action_names());
      case K::kTraceQuery:
        co_return inspector::encode_trace_response(rid, Bytes{});  // as rivetkit 2.3.19: no traces
      case K::kQueue: {
        const long long limit = static_cast<long long>(std::min<uint64_t>(req.limit, 200));
        auto q = co_await ins_.queue(actor_id_, std::max<long long>(limit, 1));
        if (!q.ok()) co_return q.error();
        inspector::QueueStatus status;
        status.size = static_cast<uint64_t>(q->find("size")->as_int());
        status.max_size = static_cast<uint64_t>(q->find("maxSize")->as_int());
        for (const auto& m : q->find("messages")->as_array()) {
          if (status.messages.size() >= static_cast<size_t>(limit)) break;
          status.messages.push_back({static_cast<uint64_t>(m.find("id")->as_int()), m.find("name")->as_string(),
                                     static_cast<uint64_t>(std::max<int64_t>(0, m.find("createdAtMs")->as_int()))});
        }
        status.truncated = status.size > status.messages.size();
        co_return inspector::encode_queue_response(rid, status);
      }
      case K::kWorkflowHistory:
      case K::kWorkflowReplay: {
        const bool replay = req.kind == K::kWorkflowReplay;
        const bool enabled = def_->run_hook() != nullptr;
        if (replay && enabled) {
          AdminOp op;
          op.kind = AdminOp::Kind::kWorkflowReplay;
          if (req.entry_id) op.name = *req.entry_id;
          auto r = co_await ins_.operate(actor_id_, std::move(op));
          if (!r.ok()) co_return r.error();
        }
        auto history = co_await workflow_history();
        if (!history.ok()) co_return history.error();
        // A replay's new history is pushed after the answer too (as rivetkit).
        if (replay && *history) after_answer_ = inspector::encode_workflow_history_updated(**history);
        co_return inspector::encode_workflow(rid, replay, *history, enabled);
      }
      case K::kDatabaseSchema: {
        auto schema = co_await ins_.database_schema(actor_id_);
        if (!schema.ok()) co_return schema.error();
        co_return inspector::encode_database(rid, false, cbor_of(*schema));
      }
      case K::kDatabaseTableRows: {
        const long long limit = static_cast<long long>(std::min<uint64_t>(req.limit, 500));
        const long long offset = static_cast<long long>(std::min<uint64_t>(req.offset, UINT32_MAX));
        auto rows = co_await ins_.table_rows(actor_id_, req.name, limit, offset);
        if (!rows.ok()) co_return rows.error();
        co_return inspector::encode_database(rid, true, cbor_of(*rows));
      }
      case K::kSchedules: {
        auto list = co_await ins_.schedules(actor_id_);
        if (!list.ok()) co_return list.error();
        co_return inspector::encode_schedules(rid, schedules_of(*list));
      }
      case K::kScheduleHistory:
        co_return inspector::encode_schedule_history(rid, req.name);  // no fire history is kept
      case K::kScheduleDelete: {
        if (req.schedule_kind != "at" && req.schedule_kind != "every" && req.schedule_kind != "cron")
          co_return make_error("inspector", "invalid_request",
                               "invalid inspector schedule kind \"" + req.schedule_kind + "\"");
        AdminOp op;
        op.kind = AdminOp::Kind::kCancelSchedule;
        op.name = req.name;
        auto r = co_await ins_.operate(actor_id_, std::move(op));
        if (!r.ok()) co_return r.error();
        const Value* cancelled = r->find("cancelled");
        co_return inspector::encode_schedule_delete(rid, req.name, cancelled && cancelled->is_bool() && cancelled->as_bool());
      }
    }
    co_return make_error("inspector", "invalid_request", "Unknown inspector request.");
  }

  Runtime& rt_;
  InspectorRoutes& ins_;
  std::string actor_id_;
  const ActorDefinition* def_ = nullptr;
  // On the socket's strand:
  bool closed_ = false, ready_ = false, refreshing_ = false;
  bool pending_ = false;  // a change told and not yet pushed
  std::optional<Value> pending_conns_;  // the newest list a turn reported, not yet pushed
  uint64_t seq_ = 0;
  Bytes last_state_;
  std::vector<inspector::Connection> last_conns_;
  uint64_t last_queue_ = 0;
  std::vector<inspector::Schedule> last_schedules_;
  std::optional<Bytes> after_answer_;  // a push that follows the current answer
};

}  // namespace

asio::awaitable<void> WsGateway::handle(BeastRequest req, beast::tcp_stream stream) {
  co_await serve(std::move(req), std::move(stream));
}

asio::awaitable<void> WsGateway::handle(BeastRequest req, TlsStream stream) {
  co_await serve(std::move(req), std::move(stream));
}

template <typename Next>
asio::awaitable<void> WsGateway::serve(BeastRequest req, Next stream) {
  http::Request hreq = to_request(req);
  auto protocols = parse_ws_protocols(hreq.header("sec-websocket-protocol").value_or(""));
  // Header routing for WebSockets travels in subprotocols.
  if (protocols.target == "actor" && protocols.actor_id) {
    hreq.headers.emplace_back("x-rivet-target", "actor");
    hreq.headers.emplace_back("x-rivet-actor", *protocols.actor_id);
  }
  std::string path(Router::strip_base(hreq.path));
  if (!routes_.matches(hreq, path)) {
    co_await reject_upgrade(stream, req, make_error("api", "not_found", "The requested resource was not found"));
    co_return;
  }
  if (access_) {
    // An inspector socket addressed by id needs the actor's inspector token
    // (checked below), not the client token.
    if (auto denied = access_->check(route_access("GET", path, true, hreq.query), hreq, path)) {
      // As the engine's guard does with errors on a WebSocket: complete the
      // upgrade, then close 1011 `group.code`, the one form a browser's
      // WebSocket can read (a failed upgrade shows only as 1006).
      WsStream<Next> ws(std::move(stream));
      ws.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
        res.set(bhttp::field::sec_websocket_protocol, "rivet");
      }));
      ws.set_option(websocket::stream_base::timeout{std::chrono::seconds(5), std::chrono::seconds(5), false});
      boost::system::error_code ec;
      co_await ws.async_accept(req, asio::redirect_error(asio::use_awaitable, ec));
      if (!ec)
        co_await ws.async_close(websocket::close_reason(websocket::close_code::internal_error, denied->qualified()),
                                asio::redirect_error(asio::use_awaitable, ec));
      co_return;
    }
  }
  auto target = co_await routes_.resolve_target(hreq, path);
  if (!target.ok()) {
    co_await reject_upgrade(stream, req, target.error());
    co_return;
  }
  auto segs = http::split_path(target->actor_path);
  const bool is_connect = segs.size() == 1 && segs[0] == "connect";
  const bool is_raw = !segs.empty() && segs[0] == "websocket";
  const bool is_inspector = segs.size() == 2 && segs[0] == "inspector" && segs[1] == "connect";
  if (is_inspector) {
    std::string presented = protocols.inspector_token.value_or("");  // named: no temporaries in co_await
    co_await serve_inspector(std::move(req), std::move(stream), hreq, std::move(presented), target->actor_id);
    co_return;
  }
  if (!is_connect && !is_raw) {
    co_await reject_upgrade(stream, req, make_error("api", "not_found", "The requested resource was not found"));
    co_return;
  }

  Value params;
  if (protocols.conn_params_malformed) {
    co_await reject_upgrade(stream, req,
                            make_error("actor", "invalid_request", "rivet_conn_params is not valid percent-encoding."));
    co_return;
  }
  if (protocols.conn_params) {
    auto v = json::parse(*protocols.conn_params);
    if (!v.ok()) {
      co_await reject_upgrade(stream, req, make_error("actor", "invalid_request", "rivet_conn_params is not valid JSON."));
      co_return;
    }
    params = std::move(*v);
  }

  WsStream<Next> ws(std::move(stream));
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws.read_message_max(opts_.max_raw_message_bytes);
  ws.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(bhttp::field::sec_websocket_protocol, "rivet");
  }));
  boost::system::error_code ec;
  co_await ws.async_accept(req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;

  if (is_raw) {
    RawRequest raw;
    raw.method = "GET";
    std::string_view p = target->actor_path;
    p.remove_prefix(std::string_view("/websocket").size());
    raw.path = p.empty() ? "/" : std::string(p);
    raw.query = target->actor_query.empty() ? "" : "?" + target->actor_query;
    raw.headers = hreq.headers;
    auto session = std::make_shared<RawSession<Next>>(rt_, std::move(ws), target->actor_id, opts_.max_pending_write_bytes);
    co_await session->run(std::move(raw), std::move(params));
    co_return;
  }
  auto enc = wire::parse_encoding(protocols.encoding.value_or("json"));
  if (!enc) {
    co_await ws.async_close(websocket::close_reason(static_cast<websocket::close_code>(1003), "actor.unsupported_websocket_encoding"),
                            asio::redirect_error(asio::use_awaitable, ec));
    co_return;
  }
  auto session = std::make_shared<ConnectSession<Next>>(rt_, std::move(ws), *enc, target->actor_id, routes_.limits(),
                                                  opts_.max_pending_write_bytes);
  co_await session->run(std::move(params), std::move(hreq.headers));
}

template <typename Next>
asio::awaitable<void> WsGateway::serve_inspector(BeastRequest req, Next stream, const http::Request& hreq,
                                                 std::string presented, std::string actor_id) {
  // As rivetkit: the upgrade completes, then a bad version (1002) or token
  // (1008) closes the socket with the reason, the one form a browser reads.
  std::optional<std::pair<uint16_t, std::string>> refusal;
  const auto query = http::parse_query(hreq.query);
  const auto version = http::query_value(query, "protocol_version");
  if (!version || *version != std::to_string(inspector::kProtocolVersion)) {
    // Only the negotiated framing of version 6 (rivetkit 2.3.4 and later,
    // which the actor's /metadata announces) is served.
    refusal = std::make_pair(uint16_t{1002}, std::string("inspector.invalid_protocol_version"));
  } else {
    // `presented`: the rivet_inspector_token.<t> subprotocol, else a Bearer header.
    if (presented.empty())
      if (auto b = bearer_token(hreq)) presented = std::string(*b);
    auto token = rt_.inspector_token(actor_id);
    if (!token || presented.empty() || !routes_.inspector().allowed(presented, *token))
      refusal = std::make_pair(uint16_t{1008}, std::string("inspector.unauthorized"));
  }
  WsStream<Next> ws(std::move(stream));
  // Pinged when idle, closed after a minute without an answer: a half-open
  // dashboard (a laptop gone to sleep) does not keep its watcher for good.
  ws.set_option(websocket::stream_base::timeout{std::chrono::seconds(30), std::chrono::seconds(60), true});
  ws.read_message_max(routes_.limits().max_incoming);
  ws.binary(true);
  ws.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(bhttp::field::sec_websocket_protocol, "rivet");
  }));
  boost::system::error_code ec;
  co_await ws.async_accept(req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  auto session = std::make_shared<InspectorSession<Next>>(rt_, routes_.inspector(), std::move(ws), std::move(actor_id),
                                                          opts_.max_pending_write_bytes);
  try {
    co_await session->run(std::move(refusal));
  } catch (const std::exception& e) {
    spdlog::error("inspector of actor {}: {}", session->actor(), e.what());
  }
}

}  // namespace anvil::gateway

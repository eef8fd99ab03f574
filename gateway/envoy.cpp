#include "gateway/envoy.hpp"

#include <cctype>
#include <deque>
#include <random>
#include <set>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <spdlog/spdlog.h>

#include "base/net/url.hpp"
#include "base/value/cbor.hpp"
#include "gateway/envoy_kv.hpp"
#include "runtime/actor_id.hpp"
#include "runtime/actor_key.hpp"

namespace anvil::gateway {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using Strand = asio::strand<asio::io_context::executor_type>;
using Ws = websocket::stream<beast::tcp_stream>;
using WsTls = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
namespace ssl = asio::ssl;

namespace {

Error config_error(std::string why) { return make_error("envoy", "invalid_config", std::move(why)); }

bool identifier_chars(std::string_view s) {
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

std::string random_key() {
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "anvil-";
  for (int i = 0; i < 24; ++i) out.push_back(kHex[rd() & 15]);
  return out;
}

uint64_t request_key(const envoy::MessageId& id) {
  uint64_t k = 0;
  for (uint8_t b : id.gateway_id) k = (k << 8) | b;
  for (uint8_t b : id.request_id) k = (k << 8) | b;
  return k;
}

const char* reason_name(envoy::StopActorReason r) {
  switch (r) {
    case envoy::StopActorReason::SleepIntent: return "sleep_intent";
    case envoy::StopActorReason::StopIntent: return "stop_intent";
    case envoy::StopActorReason::Destroy: return "destroy";
    case envoy::StopActorReason::GoingAway: return "going_away";
    case envoy::StopActorReason::Lost: return "lost";
  }
  return "unknown";
}

std::string lowercase(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// One connection to the engine: its write queue, and (ConnT) its socket,
// plain or TLS. A new connection gets a new Conn; what was queued on a
// dropped one is dropped with it (events are kept apart and sent again).
struct Conn {
  virtual ~Conn() = default;
  virtual asio::awaitable<bool> write(const Bytes& b) = 0;  // false: the socket failed
  virtual asio::awaitable<void> close() = 0;
  std::deque<Bytes> out;
  bool writing = false;
  bool open = false;
};

template <typename WsT>
struct ConnT : Conn {
  template <typename... Args>
  explicit ConnT(Args&&... args) : ws(std::forward<Args>(args)...) {}
  asio::awaitable<bool> write(const Bytes& b) override {
    boost::system::error_code ec;
    co_await ws.async_write(asio::buffer(b), asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
  }
  asio::awaitable<void> close() override {
    boost::system::error_code ec;
    co_await ws.async_close(websocket::close_code::normal, asio::redirect_error(asio::use_awaitable, ec));
  }
  WsT ws;
};

asio::awaitable<void> write_loop(std::shared_ptr<Conn> c) {
  while (!c->out.empty() && c->open) {
    Bytes b = std::move(c->out.front());
    c->out.pop_front();
    const bool ok = co_await c->write(b);
    if (!ok) {
      c->open = false;
      break;
    }
  }
  c->writing = false;
}

asio::awaitable<void> close_conn(std::shared_ptr<Conn> c) { co_await c->close(); }

// One WebSocket of a client, arriving through the tunnel, relayed to the
// node's own WebSocket gateway over a local connection.
struct Relay {
  explicit Relay(Strand s) : ws(s) {}
  Ws ws;
  envoy::MessageId id;
  uint16_t next_index = 1;  // of messages to the engine
  bool open = false;        // local handshake done, not closed
  bool closed = false;      // a close went either way: nothing more is sent
  std::deque<std::pair<std::string, bool>> out;  // to the local socket: data, binary
  bool writing = false;
};

bool hop_by_hop(const std::string& lower) {
  return lower == "host" || lower == "connection" || lower == "upgrade" || lower == "sec-websocket-key" ||
         lower == "sec-websocket-version" || lower == "sec-websocket-extensions" || lower == "content-length" ||
         lower == "transfer-encoding";
}

}  // namespace

bool HostedActors::contains(const std::string& actor_id) const {
  std::lock_guard lk(mu_);
  return ids_.count(actor_id) > 0;
}
void HostedActors::add(const std::string& actor_id) {
  std::lock_guard lk(mu_);
  ids_.insert(actor_id);
}
void HostedActors::remove(const std::string& actor_id) {
  std::lock_guard lk(mu_);
  ids_.erase(actor_id);
}
size_t HostedActors::size() const {
  std::lock_guard lk(mu_);
  return ids_.size();
}
void HostedActors::set_listener(std::function<void(const std::string&, bool)> fn) {
  std::lock_guard lk(mu_);
  listener_ = std::move(fn);
}
HostHooks HostedActors::hooks() {
  auto self = shared_from_this();
  HostHooks h;
  h.may_wake = [self](const std::string& id) { return self->contains(id); };
  h.stopped = [self](const std::string& id, bool destroyed) {
    std::function<void(const std::string&, bool)> fn;
    {
      std::lock_guard lk(self->mu_);
      fn = self->listener_;
    }
    if (fn) fn(id, destroyed);
  };
  return h;
}

struct Envoy::Impl {
  Impl(Envoy& owner_, asio::io_context& io_, Runtime& rt_, Router& router_, net::Url url_)
      : owner(owner_), io(io_), rt(rt_), router(router_), strand(asio::make_strand(io_)), url(std::move(url_)) {}

  Envoy& owner;
  asio::io_context& io;
  Runtime& rt;
  Router& router;
  Strand strand;
  net::Url url;
  std::unique_ptr<ssl::context> tls_ctx;  // an https:// engine URL

  // Everything below is touched on `strand` only (the counters excepted).
  std::shared_ptr<Conn> conn;
  bool stopping = false;  // stop()/drain(): no reconnect
  std::optional<envoy::ProtocolMetadata> protocol;
  std::shared_ptr<asio::steady_timer> retry_timer;

  struct ActorSlot {
    uint32_t generation = 0;      // the newest generation commanded
    int64_t last_command = -1;    // highest command index taken in `generation`
    std::map<uint32_t, int64_t> next_event;  // events are numbered from 0 per generation
    std::optional<uint32_t> clean_stop;  // the generation this node last stopped cleanly
    uint32_t running_generation = 0;     // the generation started here (while running)
    bool running = false;   // started here and not stopped since
    bool stopping = false;  // a stop command is being carried out
    bool busy = false;
    std::deque<envoy::CommandWrapper> tasks;
    int in_flight = 0;  // tunnel requests being served
    // Events of a stop the actor made itself, held until its in-flight
    // requests are answered (the engine drops answers of a stopped actor).
    std::vector<std::pair<uint32_t, envoy::Event>> held;
  };
  std::map<std::string, ActorSlot> actors;
  std::deque<envoy::EventWrapper> unacked;  // sent, not yet acknowledged, in send order

  struct Incoming {
    envoy::MessageId id;
    envoy::ToEnvoyRequestStart start;
    std::string body;
  };
  std::map<uint64_t, Incoming> streaming;  // requests whose body is still arriving
  std::map<uint64_t, std::shared_ptr<Relay>> sockets;  // tunnel WebSockets

  // KV requests waiting for the engine's answer, by request id.
  uint32_t next_kv = 1;
  std::map<uint32_t, std::function<void(Result<envoy::KvResponseData>)>> kv_waiting;
  std::map<uint32_t, std::chrono::steady_clock::time_point> kv_sent;  // for the watchdog
  // Actors whose writes the engine did not take: not served here until
  // the engine starts them again (and they are loaded from the engine).
  std::set<std::string> poisoned;
  std::set<uint64_t> aborted;              // in flight, aborted by the engine

  std::atomic<uint64_t> connects{0}, disconnects{0}, commands{0}, events{0}, requests{0}, request_errors{0};
  std::atomic<uint64_t> kv_requests{0}, kv_errors{0}, loads{0}, loads_skipped{0}, replicated_batches{0},
      replication_failures{0};

  void send(const envoy::ToRivet& msg) { queue(conn, envoy::encode(msg)); }
  void queue(const std::shared_ptr<Conn>& c, Bytes b) {
    if (!c || !c->open) return;
    c->out.push_back(std::move(b));
    if (c->writing) return;
    c->writing = true;
    asio::co_spawn(strand, write_loop(c), asio::detached);
  }

  void set_running(const std::string& actor_id, ActorSlot& slot, bool running) {
    slot.running = running;
    if (running)
      owner.hosted_set_->add(actor_id);
    else
      owner.hosted_set_->remove(actor_id);
  }

  // Actors running here or with a command still being carried out.
  size_t active() const {
    size_t n = 0;
    for (const auto& [_, a] : actors) n += (a.running || a.stopping || a.busy) ? 1 : 0;
    return n;
  }

  // An actor stopped by itself (the runtime's hook, through the strand).
  void on_local_stop(const std::string& actor_id, bool destroyed) {
    auto it = actors.find(actor_id);
    if (it == actors.end() || !it->second.running || it->second.stopping || stopping) return;
    auto& slot = it->second;
    envoy::Event ev;
    if (destroyed) {
      // ctx.destroy(): a stop reported Ok without a stop command is the
      // engine's "the actor exited", after which it destroys the actor
      // (and its KV) and frees its key.
      set_running(actor_id, slot, false);
      spdlog::info("envoy: actor {} destroyed itself; telling the engine", actor_id);
      ev = envoy::EventActorStateUpdate{envoy::StateStopped{envoy::StopCode::Ok, std::nullopt}};
    } else {
      // Idle or ctx.sleep(): the engine decides (it answers with a stop).
      ev = envoy::EventActorIntent{envoy::IntentSleep{}};
    }
    // The request that made it stop (ctx.sleep() in an action) is still
    // on its way back: the engine would drop its answer once it stops the
    // actor, and the client would retry. So the event waits for it.
    if (slot.in_flight > 0) {
      slot.held.emplace_back(slot.running_generation, std::move(ev));
      return;
    }
    emit(envoy::ActorCheckpoint{actor_id, slot.running_generation, 0}, std::move(ev));
  }

  void request_done(const std::string& actor_id) {
    auto it = actors.find(actor_id);
    if (it == actors.end()) return;
    auto& slot = it->second;
    if (--slot.in_flight > 0 || slot.held.empty()) return;
    auto held = std::move(slot.held);
    slot.held.clear();
    for (auto& [generation, ev] : held)
      if (!slot.stopping && generation == slot.running_generation)
        emit(envoy::ActorCheckpoint{actor_id, generation, 0}, std::move(ev));
  }

  // ---- connection ----
  // A KV request the engine has not answered in 30 s (lost, or the engine
  // stalled) would hold every later reply of the node: the connection is
  // dropped, which fails what is waiting, and opened again.
  asio::awaitable<void> kv_watchdog(std::shared_ptr<Envoy> keep) {
    asio::steady_timer t(strand);
    while (!stopping) {
      t.expires_after(std::chrono::seconds(5));
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (kv_sent.empty() || !conn || !conn->open) continue;
      const auto oldest = std::min_element(kv_sent.begin(), kv_sent.end(),
                                           [](const auto& a, const auto& b) { return a.second < b.second; });
      if (std::chrono::steady_clock::now() - oldest->second < std::chrono::seconds(30)) continue;
      spdlog::error("envoy: the engine has not answered a KV request in 30 s; reconnecting");
      conn->open = false;
      asio::co_spawn(strand, close_conn(conn), asio::detached);
    }
    (void)keep;
  }

  asio::awaitable<void> run(std::shared_ptr<Envoy> keep) {
    auto delay = owner.opts_.reconnect_min;
    while (!stopping) {
      const bool had_init = co_await session();
      if (stopping) break;
      if (had_init) delay = owner.opts_.reconnect_min;
      retry_timer = std::make_shared<asio::steady_timer>(strand);
      retry_timer->expires_after(delay);
      boost::system::error_code ec;
      co_await retry_timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      retry_timer.reset();
      delay = std::min(delay * 2, owner.opts_.reconnect_max);
    }
    (void)keep;
  }

  std::string connect_target() const {
    const auto& o = owner.opts_;
    return "/envoys/connect?protocol_version=" + std::to_string(envoy::kProtocolVersion) +
           "&namespace=" + http::percent_encode(o.namespace_name) + "&envoy_key=" + http::percent_encode(o.envoy_key) +
           "&version=" + std::to_string(o.version) + "&pool_name=" + http::percent_encode(o.pool);
  }

  // One connection's life; true when the engine's Init arrived.
  asio::awaitable<bool> session() {
    bool had_init = false;
    if (tls_ctx) {
      auto c = std::make_shared<ConnT<WsTls>>(strand, *tls_ctx);
      had_init = co_await session_on(std::move(c));
    } else {
      auto c = std::make_shared<ConnT<Ws>>(strand);
      had_init = co_await session_on(std::move(c));
    }
    co_return had_init;
  }

  template <typename WsT>
  asio::awaitable<bool> session_on(std::shared_ptr<ConnT<WsT>> c) {
    boost::system::error_code ec;
    asio::ip::tcp::resolver resolver(strand);
    const std::string port = std::to_string(url.port);
    auto hosts = co_await resolver.async_resolve(url.host, port, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      spdlog::warn("envoy: cannot resolve engine host {}: {}", url.host, ec.message());
      co_return false;
    }
    auto& tcp = beast::get_lowest_layer(c->ws);
    tcp.expires_after(std::chrono::seconds(10));
    co_await tcp.async_connect(hosts, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      spdlog::warn("envoy: cannot connect to the engine at {}:{}: {}", url.host, url.port, ec.message());
      co_return false;
    }
    tcp.socket().set_option(asio::ip::tcp::no_delay(true), ec);  // small frames, answered at once
    if constexpr (std::is_same_v<WsT, WsTls>) {
      auto& tls = c->ws.next_layer();
      boost::system::error_code addr_ec;
      asio::ip::make_address(url.host, addr_ec);
      if (addr_ec) SSL_set_tlsext_host_name(tls.native_handle(), url.host.c_str());  // SNI for names only
      tls.set_verify_callback(ssl::host_name_verification(url.host));
      co_await tls.async_handshake(ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        std::string why = ec.message();
        const long verify = SSL_get_verify_result(tls.native_handle());
        if (verify != X509_V_OK) why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
        spdlog::warn("envoy: TLS handshake with the engine at {} failed: {}", url.authority, why);
        co_return false;
      }
    }
    tcp.expires_never();
    websocket::stream_base::timeout to = websocket::stream_base::timeout::suggested(beast::role_type::client);
    to.handshake_timeout = std::chrono::seconds(10);
    to.idle_timeout = std::chrono::seconds(30);
    to.keep_alive_pings = true;
    c->ws.set_option(to);
    const std::string protocols =
        owner.opts_.token.empty() ? std::string("rivet") : "rivet, rivet_token." + owner.opts_.token;
    c->ws.set_option(websocket::stream_base::decorator([protocols](websocket::request_type& req) {
      req.set(beast::http::field::sec_websocket_protocol, protocols);
      req.set(beast::http::field::user_agent, "anvil-envoy");
    }));
    c->ws.read_message_max(owner.opts_.max_message_bytes);
    websocket::response_type res;
    const std::string target = connect_target();
    const std::string& authority = url.authority;
    co_await c->ws.async_handshake(res, authority, target, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      spdlog::warn("envoy: the engine refused the envoy connection ({}, HTTP {}): {}", ec.message(),
                   res.result_int(), res.body());
      co_return false;
    }
    c->ws.binary(true);
    c->open = true;
    conn = c;
    connects.fetch_add(1);
    spdlog::info("envoy: connected to {} as {} (namespace {}, pool {})", owner.opts_.engine_url, owner.opts_.envoy_key,
                 owner.opts_.namespace_name, owner.opts_.pool);

    bool had_init = false;
    beast::flat_buffer buf;
    for (;;) {
      buf.clear();
      co_await c->ws.async_read(buf, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      const auto data = buf.cdata();
      auto msg = envoy::decode_to_envoy(
          std::span<const uint8_t>(static_cast<const uint8_t*>(data.data()), data.size()));
      if (!msg.ok()) {
        spdlog::error("envoy: undecodable message from the engine ({} bytes): {}", data.size(), msg.error().message);
        continue;
      }
      if (std::holds_alternative<envoy::ToEnvoyInit>(*msg)) had_init = true;
      on_message(std::move(*msg));
    }
    c->open = false;
    if (conn == c) conn.reset();
    owner.connected_.store(false);
    streaming.clear();
    aborted.clear();
    // The engine's gateway lost these sockets with the connection.
    for (auto& [_, r] : sockets) {
      r->closed = true;
      asio::co_spawn(strand, close_relay(r, 1001, "engine connection lost"), asio::detached);
    }
    sockets.clear();
    fail_kv_waiting();
    disconnects.fetch_add(1);
    if (!stopping) {
      const auto reason = c->ws.reason();
      spdlog::warn("envoy: connection to the engine lost ({}{}{}); reconnecting", ec.message(),
                   reason.reason.empty() ? "" : ": ", std::string(reason.reason.data(), reason.reason.size()));
    }
    co_return had_init;
  }

  void on_message(envoy::ToEnvoy msg) {
    std::visit(
        [&](auto& m) {
          using T = std::decay_t<decltype(m)>;
          if constexpr (std::is_same_v<T, envoy::ToEnvoyInit>) {
            on_init(m);
          } else if constexpr (std::is_same_v<T, envoy::ToEnvoyCommands>) {
            for (auto& cw : m.commands) on_command(std::move(cw));
          } else if constexpr (std::is_same_v<T, envoy::ToEnvoyAckEvents>) {
            on_ack_events(m);
          } else if constexpr (std::is_same_v<T, envoy::ToEnvoyKvResponse>) {
            auto it = kv_waiting.find(m.request_id);
            if (it == kv_waiting.end()) {
              spdlog::debug("envoy: KV response {} with no request waiting", m.request_id);
              return;
            }
            auto cb = std::move(it->second);
            kv_waiting.erase(it);
            kv_sent.erase(m.request_id);
            if (auto* e = std::get_if<envoy::KvErrorResponse>(&m.data)) {
              kv_errors.fetch_add(1);
              cb(make_error("envoy", "kv_error", "the engine refused a KV request: " + e->message));
            } else {
              cb(std::move(m.data));
            }
          } else if constexpr (std::is_same_v<T, envoy::ToEnvoyTunnelMessage>) {
            on_tunnel(std::move(m));
          } else if constexpr (std::is_same_v<T, envoy::ToEnvoyPing>) {
            send(envoy::ToRivetPong{m.ts});
          }
        },
        msg);
  }

  void on_init(const envoy::ToEnvoyInit& init) {
    protocol = init.metadata;
    owner.connected_.store(true);
    envoy::ToRivetMetadata meta;
    meta.prepopulate_actor_names.emplace();
    for (const auto& name : rt.registry().names()) meta.prepopulate_actor_names->emplace_back(name, envoy::ActorName{"{}"});
    meta.metadata = R"({"impl":"anvil","version":"0.1.0"})";
    send(meta);
    // Events the engine has not acknowledged go again, in their order.
    if (!unacked.empty()) {
      envoy::ToRivetEvents again;
      again.events.assign(unacked.begin(), unacked.end());
      send(again);
    }
    spdlog::info("envoy: registered {} actor types; engine thresholds: lost {} ms, stop {} ms, payload {} bytes",
                 meta.prepopulate_actor_names->size(), init.metadata.envoy_lost_threshold,
                 init.metadata.actor_stop_threshold, init.metadata.max_response_payload_size);
  }

  // ---- KV ----
  void kv(const std::string& actor_id, envoy::KvRequestData data,
          std::function<void(Result<envoy::KvResponseData>)> cb) {
    if (!conn || !conn->open || !owner.connected_.load()) {
      cb(make_error("envoy", "not_connected", "not connected to the Rivet Engine; the write was not stored"));
      return;
    }
    const uint32_t id = next_kv++;
    if (next_kv == 0) next_kv = 1;
    kv_waiting[id] = std::move(cb);
    kv_sent[id] = std::chrono::steady_clock::now();
    kv_requests.fetch_add(1);
    send(envoy::ToRivetKvRequest{actor_id, id, std::move(data)});
  }

  void fail_kv_waiting() {
    auto waiting = std::move(kv_waiting);
    kv_waiting.clear();
    kv_sent.clear();
    for (auto& [_, cb] : waiting)
      cb(make_error("envoy", "not_connected", "the connection to the Rivet Engine dropped before it answered"));
  }

  // `actor_id` and `data` are the caller's (a coroutine's locals, alive
  // while it waits); `data` is moved from. (No temporaries inside a
  // co_await: GCC 12.)
  template <typename Token>
  auto async_kv(const std::string& actor_id, envoy::KvRequestData& data, Token&& token) {
    return asio::async_initiate<Token, void(Result<envoy::KvResponseData>)>(
        [this, &actor_id, &data](auto handler) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          kv(actor_id, std::move(data), [h](Result<envoy::KvResponseData> r) {
            auto ex = asio::get_associated_executor(*h);
            asio::post(ex, [h, r = std::move(r)]() mutable { (*h)(std::move(r)); });
          });
        },
        token);
  }

  // One round of the pipeline's replication: its `done` runs once every
  // actor's part of it is stored (or failed).
  struct Round {
    size_t outstanding = 0;
    std::vector<std::pair<uint64_t, Error>> failed;
    std::set<uint64_t> failed_seqs;
    std::function<void(std::vector<std::pair<uint64_t, Error>>)> done;
    void fail(const std::vector<uint64_t>& seqs, const Error& e) {
      for (uint64_t s : seqs)
        if (failed_seqs.insert(s).second) failed.emplace_back(s, e);
    }
  };
  // One actor's part of a round, waiting for its turn to be sent.
  struct Part {
    std::shared_ptr<Round> round;
    std::vector<uint64_t> seqs;
    std::vector<envoy::KvRequestData> requests;
  };
  // Per actor, at most one batch of KV requests is in flight; parts of later
  // rounds that arrive meanwhile are merged into the next batch, so the
  // writes of many turns share one engine write (the engine applies one
  // actor's requests in order, one at a time).
  struct ActorWrites {
    bool in_flight = false;
    std::deque<Part> waiting;
  };
  std::map<std::string, ActorWrites> writes;

  void finish_part(const std::shared_ptr<Round>& round) {
    if (--round->outstanding > 0) return;
    replicated_batches.fetch_add(1);
    if (!round->failed.empty()) replication_failures.fetch_add(round->failed.size());
    auto done = std::move(round->done);
    done(std::move(round->failed));
  }

  // The pipeline's replication of one round (on the strand).
  void replicate(envoy_kv::Translation t, std::function<void(std::vector<std::pair<uint64_t, Error>>)> done) {
    auto round = std::make_shared<Round>();
    round->done = std::move(done);
    round->outstanding = 1;  // released below, once every part is queued
    for (auto& [seq, e] : t.failed) round->fail({seq}, e);
    // Their batch is in the local store but never reaches the engine: the
    // actors are handed back, to be loaded from the engine's copy.
    for (const auto& actor : t.failed_actors)
      poison(actor, make_error("envoy", "replication_failed", "a write could not be stored in the engine"));
    for (auto& w : t.actors) {
      if (poisoned.count(w.actor_id)) {
        round->fail(w.seqs, make_error("envoy", "replication_failed",
                                       "an earlier write of this actor was not stored in the engine; it restarts "
                                       "from the engine's copy"));
        continue;
      }
      ++round->outstanding;
      auto& aw = writes[w.actor_id];
      aw.waiting.push_back(Part{round, std::move(w.seqs), std::move(w.requests)});
      if (!aw.in_flight) send_writes(w.actor_id);
    }
    finish_part(round);
  }

  void send_writes(const std::string& actor_id) {
    auto it = writes.find(actor_id);
    if (it == writes.end()) return;
    auto& aw = it->second;
    if (aw.waiting.empty()) {
      writes.erase(it);
      return;
    }
    auto parts = std::make_shared<std::vector<Part>>();
    std::vector<envoy::KvRequestData> requests;
    envoy_kv::RequestBuilder merged(requests);
    while (!aw.waiting.empty()) {
      Part p = std::move(aw.waiting.front());
      aw.waiting.pop_front();
      if (poisoned.count(actor_id)) {
        p.round->fail(p.seqs, make_error("envoy", "replication_failed",
                                         "an earlier write of this actor was not stored in the engine"));
        finish_part(p.round);
        continue;
      }
      for (auto& r : p.requests) merged.add(std::move(r));
      p.requests.clear();
      parts->push_back(std::move(p));
    }
    if (parts->empty()) {
      writes.erase(actor_id);
      return;
    }
    aw.in_flight = true;
    auto queue = std::make_shared<std::deque<envoy::KvRequestData>>(std::make_move_iterator(requests.begin()),
                                                                      std::make_move_iterator(requests.end()));
    send_next_write(actor_id, std::move(queue), std::move(parts));
  }

  // One actor's requests go one at a time: the engine then always holds a
  // prefix of the actor's writes (chunks before the row that names them;
  // an earlier turn's write before a later one's). After a failure the rest
  // are not sent.
  void send_next_write(const std::string& actor_id, std::shared_ptr<std::deque<envoy::KvRequestData>> queue,
                       std::shared_ptr<std::vector<Part>> parts) {
    auto finish = [this, actor_id, parts](const std::optional<Error>& failed) {
      if (failed) poison(actor_id, *failed);
      for (auto& p : *parts) {
        if (failed) p.round->fail(p.seqs, *failed);
        finish_part(p.round);
      }
      if (auto w = writes.find(actor_id); w != writes.end()) {
        w->second.in_flight = false;
        send_writes(actor_id);
      }
    };
    if (queue->empty()) {
      finish(std::nullopt);
      return;
    }
    envoy::KvRequestData req = std::move(queue->front());
    queue->pop_front();
    kv(actor_id, std::move(req), [this, actor_id, queue, parts, finish](Result<envoy::KvResponseData> r) {
      if (!r.ok()) {
        finish(r.error());
        return;
      }
      send_next_write(actor_id, queue, parts);
    });
  }

  // Writes of `actor_id` the engine did not take: the copy here is ahead of
  // the engine's, so the actor is not served here any more; the engine
  // restarts it (reported as an error stop) from its own copy.
  void poison(const std::string& actor_id, const Error& why) {
    if (!poisoned.insert(actor_id).second) return;
    spdlog::error("envoy: actor {}: a write was not stored in the engine ({}); handing it back to the engine",
                  actor_id, why.message);
    // Its awake instance holds what the engine lacks: put to sleep here
    // (what that writes fails too) so nothing more runs on it.
    asio::co_spawn(strand, sleep_quietly(owner.shared_from_this(), actor_id), asio::detached);
    auto it = actors.find(actor_id);
    if (it == actors.end() || !it->second.running) return;
    set_running(actor_id, it->second, false);
    it->second.clean_stop.reset();
    envoy::ActorCheckpoint cp{actor_id, it->second.running_generation, 0};
    emit(cp, envoy::EventActorStateUpdate{envoy::StateStopped{envoy::StopCode::Error,
                                                              "writes not stored in the engine: " + why.message}});
  }

  asio::awaitable<void> sleep_quietly(std::shared_ptr<Envoy> keep, std::string actor_id) {
    Status st = co_await rt.sleep(actor_id);
    (void)st;  // its writes fail (poisoned): expected
    (void)keep;
  }

  // Loads the actor's rows from the engine into the local store, replacing
  // whatever this node had of it.
  asio::awaitable<Status> load_from_engine(const std::string& actor_id) {
    constexpr uint64_t kPage = 256;
    std::vector<Bytes> keys, values;
    envoy::KvListRequest req;
    req.query = envoy::KvListAll{};
    req.limit = kPage;
    for (;;) {
      envoy::KvRequestData data = req;
      Result<envoy::KvResponseData> r = co_await async_kv(actor_id, data, asio::use_awaitable);
      if (!r.ok()) co_return r.error();
      auto* list = std::get_if<envoy::KvListResponse>(&*r);
      if (!list) co_return make_error("envoy", "kv_error", "the engine answered a KV listing with another kind");
      const size_t got = list->keys.size();
      for (size_t i = 0; i < got && i < list->values.size(); ++i) {
        keys.push_back(std::move(list->keys[i]));
        values.push_back(std::move(list->values[i]));
      }
      if (got < kPage) break;
      Bytes from = keys.back();
      from.push_back(0x00);
      req.query = envoy::KvListRange{std::move(from), Bytes{0xff}, false};
    }
    auto loaded = envoy_kv::load(actor_id, keys, values);
    if (!loaded.ok()) co_return loaded.error();
    std::vector<Runtime::StoredRow> rows;
    rows.reserve(loaded->rows.size());
    for (auto& [family, key, value] : loaded->rows)
      rows.push_back(Runtime::StoredRow{static_cast<int>(family), std::move(key), std::move(value)});
    Status st = co_await rt.replace_local(actor_id, std::move(rows));
    if (!st.ok()) co_return st;
    loads.fetch_add(1);
    // Chunks no row names any more (an overwrite by a smaller row, a
    // delete): removed now, best effort.
    for (size_t i = 0; i < loaded->garbage.size(); i += envoy_kv::kMaxKeysPerRequest) {
      envoy::KvDeleteRequest del;
      for (size_t j = i; j < loaded->garbage.size() && j < i + envoy_kv::kMaxKeysPerRequest; ++j)
        del.keys.push_back(std::move(loaded->garbage[j]));
      envoy::KvRequestData data = std::move(del);
      Result<envoy::KvResponseData> r = co_await async_kv(actor_id, data, asio::use_awaitable);
      if (!r.ok()) spdlog::warn("envoy: actor {}: removing unused chunks failed: {}", actor_id, r.error().message);
    }
    co_return Ok{};
  }

  // ---- commands and events ----
  void on_command(envoy::CommandWrapper cw) {
    commands.fetch_add(1);
    const auto cp = cw.checkpoint;
    spdlog::debug("envoy: command {} for actor {} generation {} index {}", cw.inner.index(), cp.actor_id,
                  cp.generation, cp.index);
    auto& slot = actors[cp.actor_id];
    if (cp.generation < slot.generation || (cp.generation == slot.generation && cp.index <= slot.last_command)) {
      // A replay, or a command for a generation that has moved on (a stale
      // stop must not stop the new instance): acknowledged, not run.
      ack_command(cp);
      return;
    }
    slot.generation = cp.generation;
    slot.last_command = cp.index;
    slot.tasks.push_back(std::move(cw));
    if (!slot.busy) {
      slot.busy = true;
      asio::co_spawn(strand, run_tasks(owner.shared_from_this(), cp.actor_id), asio::detached);
    }
  }

  void ack_command(const envoy::ActorCheckpoint& cp) {
    envoy::ToRivetAckCommands ack;
    ack.last_command_checkpoints.push_back(cp);
    send(ack);
  }

  // Events of one actor are emitted in command order, so a generation's
  // events are numbered from 0 as its first one goes out.
  void emit(const envoy::ActorCheckpoint& cp, envoy::Event ev) {
    auto& slot = actors[cp.actor_id];
    // Older generations' counters go (their events can no longer matter).
    while (slot.next_event.size() > 4) slot.next_event.erase(slot.next_event.begin());
    envoy::EventWrapper w{{cp.actor_id, cp.generation, slot.next_event[cp.generation]++}, std::move(ev)};
    spdlog::debug("envoy: event {} of actor {} generation {} index {}", w.inner.index(), cp.actor_id, cp.generation,
                  w.checkpoint.index);
    unacked.push_back(w);
    events.fetch_add(1);
    envoy::ToRivetEvents batch;
    batch.events.push_back(std::move(w));
    send(batch);
  }

  void on_ack_events(const envoy::ToEnvoyAckEvents& ack) {
    for (const auto& cp : ack.last_event_checkpoints) {
      std::erase_if(unacked, [&](const envoy::EventWrapper& w) {
        return w.checkpoint.actor_id == cp.actor_id &&
               (w.checkpoint.generation < cp.generation ||
                (w.checkpoint.generation == cp.generation && w.checkpoint.index <= cp.index));
      });
    }
  }

  asio::awaitable<void> run_tasks(std::shared_ptr<Envoy> keep, std::string actor_id) {
    for (;;) {
      auto it = actors.find(actor_id);
      if (it == actors.end()) co_return;
      if (it->second.tasks.empty()) {
        it->second.busy = false;
        co_return;
      }
      envoy::CommandWrapper cw = std::move(it->second.tasks.front());
      it->second.tasks.pop_front();
      if (auto* start = std::get_if<envoy::CommandStartActor>(&cw.inner)) {
        co_await start_actor(cw.checkpoint, *start);
      } else {
        const auto reason = std::get<envoy::CommandStopActor>(cw.inner).reason;
        co_await stop_actor(cw.checkpoint, reason);
      }
      ack_command(cw.checkpoint);
    }
    (void)keep;
  }

  asio::awaitable<void> start_actor(const envoy::ActorCheckpoint& cp, const envoy::CommandStartActor& cmd) {
    CreateRequest req;
    req.namespace_name = owner.opts_.namespace_name;
    req.name = cmd.config.name;
    req.key = cmd.config.key ? deserialize_key(*cmd.config.key) : ActorKey{};
    req.runner_name_selector = owner.opts_.pool;
    req.actor_id = cp.actor_id;
    req.create_ts = cmd.config.create_ts;
    std::optional<Error> failed;
    if (cmd.config.input) {
      auto in = cbor::decode(*cmd.config.input, cbor::Mode::Compat);
      if (in.ok())
        req.input = std::move(*in);
      else
        failed = make_error("actor", "invalid_input", "the actor's input is not CBOR: " + in.error().message);
    }
    {
      // The engine holds the actor's rows. Unless this node stopped the
      // generation just before this one itself (nobody ran it since, so
      // what is here is what the engine has), they are loaded first.
      auto& slot = actors[cp.actor_id];
      const bool here_last = slot.clean_stop && *slot.clean_stop + 1 == cp.generation && !poisoned.count(cp.actor_id);
      if (!failed && !here_last) {
        Status st = co_await load_from_engine(cp.actor_id);
        if (!st.ok()) failed = st.error();
      } else if (here_last) {
        loads_skipped.fetch_add(1);
      }
    }
    if (!failed) poisoned.erase(cp.actor_id);
    Result<Resolved> r = failed ? Result<Resolved>(*failed) : rt.get_or_create(req);
    if (r.ok()) {
      const uint64_t seq = r->seq;
      Status st = co_await rt.durable(seq);
      if (!st.ok()) r = st.error();
    }
    auto& slot = actors[cp.actor_id];
    if (!r.ok()) {
      spdlog::error("envoy: cannot start actor {} ({} gen {}): {}", cp.actor_id, cmd.config.name, cp.generation,
                    r.error().message);
      set_running(cp.actor_id, slot, false);
      // Error, never Ok: a stop reported as Ok without a stop command makes
      // the engine destroy the actor and its data.
      emit(cp, envoy::EventActorStateUpdate{envoy::StateStopped{envoy::StopCode::Error, r.error().message}});
      co_return;
    }
    slot.running_generation = cp.generation;
    set_running(cp.actor_id, slot, true);
    // What a restart's recovery does: schedules armed, queue drained, a
    // running workflow resumed.
    rt.resume_background(cp.actor_id);
    spdlog::info("envoy: actor {} ({}) started, generation {}", cp.actor_id, cmd.config.name, cp.generation);
    emit(cp, envoy::EventActorStateUpdate{envoy::StateRunning{}});
  }

  asio::awaitable<void> stop_actor(const envoy::ActorCheckpoint& cp, envoy::StopActorReason reason) {
    {
      auto& slot = actors[cp.actor_id];
      slot.stopping = true;
      // No wake from here on (a local alarm, a late request): the engine
      // may start the actor elsewhere.
      set_running(cp.actor_id, slot, false);
    }
    Status st = Ok{};
    if (reason == envoy::StopActorReason::Destroy) {
      st = co_await rt.destroy(cp.actor_id);
    } else {
      st = co_await rt.sleep(cp.actor_id);
    }
    if (!st.ok() && st.error().code != "not_found")
      spdlog::error("envoy: stopping actor {} ({}) failed: {}", cp.actor_id, reason_name(reason), st.error().message);
    {
      auto& slot = actors[cp.actor_id];
      slot.stopping = false;
      // A clean stop: every write of this generation is in the engine.
      if (st.ok() && reason != envoy::StopActorReason::Destroy && !poisoned.count(cp.actor_id))
        slot.clean_stop = cp.generation;
      else
        slot.clean_stop.reset();
    }
    spdlog::info("envoy: actor {} stopped ({}), generation {}", cp.actor_id, reason_name(reason), cp.generation);
    if (reason != envoy::StopActorReason::Destroy) {
      // Its schedules wake it through the engine while it is not here.
      if (auto due = rt.next_alarm(cp.actor_id)) emit(cp, envoy::EventActorSetAlarm{*due});
    }
    // In reply to the engine's stop: Ok (the engine decides what follows).
    emit(cp, envoy::EventActorStateUpdate{envoy::StateStopped{envoy::StopCode::Ok, std::nullopt}});
  }

  // ---- tunnel ----
  void tunnel_reply(const envoy::MessageId& id, envoy::ToRivetTunnelKind kind) {
    envoy::ToRivetTunnelMessage m;
    m.message_id = id;
    m.kind = std::move(kind);
    send(m);
  }

  void on_tunnel(envoy::ToEnvoyTunnelMessage m) {
    const uint64_t key = request_key(m.message_id);
    std::visit(
        [&](auto& k) {
          using T = std::decay_t<decltype(k)>;
          if constexpr (std::is_same_v<T, envoy::ToEnvoyRequestStart>) {
            if (k.stream) {
              Incoming in{m.message_id, std::move(k), {}};
              if (in.start.body) in.body.assign(in.start.body->begin(), in.start.body->end());
              streaming[key] = std::move(in);
            } else {
              std::string body = k.body ? std::string(k.body->begin(), k.body->end()) : std::string();
              dispatch(m.message_id, std::move(k), std::move(body));
            }
          } else if constexpr (std::is_same_v<T, envoy::ToEnvoyRequestChunk>) {
            auto it = streaming.find(key);
            if (it == streaming.end()) return;
            it->second.body.append(k.body.begin(), k.body.end());
            // The bytes are taken: the engine may send that many more.
            tunnel_reply(m.message_id, envoy::ToRivetRequestBodyWindowUpdate{k.body.size()});
            if (k.finish) {
              Incoming in = std::move(it->second);
              streaming.erase(it);
              dispatch(in.id, std::move(in.start), std::move(in.body));
            }
          } else if constexpr (std::is_same_v<T, envoy::ToEnvoyRequestAbort> ||
                               std::is_same_v<T, envoy::ToEnvoyRequestBodyCancel>) {
            if (streaming.erase(key) == 0) aborted.insert(key);
          } else if constexpr (std::is_same_v<T, envoy::ToEnvoyResponseBodyWindowUpdate>) {
            // Responses go whole (never streamed), so there is no window to track.
          } else if constexpr (std::is_same_v<T, envoy::ToEnvoyWebSocketOpen>) {
            open_relay(m.message_id, std::move(k));
          } else if constexpr (std::is_same_v<T, envoy::ToEnvoyWebSocketMessage>) {
            auto it = sockets.find(key);
            if (it == sockets.end() || it->second->closed) return;
            it->second->out.emplace_back(std::string(k.data.begin(), k.data.end()), k.binary);
            pump_relay(it->second);
          } else if constexpr (std::is_same_v<T, envoy::ToEnvoyWebSocketClose>) {
            auto it = sockets.find(key);
            if (it == sockets.end()) return;
            auto r = it->second;
            sockets.erase(it);
            r->closed = true;
            asio::co_spawn(strand, close_relay(r, k.code.value_or(1000), k.reason.value_or("")), asio::detached);
          }
        },
        m.kind);
  }

  // ---- tunnel WebSockets ----
  void open_relay(envoy::MessageId id, envoy::ToEnvoyWebSocketOpen open) {
    const uint64_t key = request_key(id);
    if (owner.opts_.local_port == 0 || sockets.count(key)) {
      envoy::ToRivetWebSocketClose close;
      close.code = 1011;
      close.reason = "anvil.websocket_unavailable";
      envoy::MessageId cid = id;
      cid.message_index = 0;
      tunnel_reply(cid, close);
      return;
    }
    auto r = std::make_shared<Relay>(strand);
    r->id = id;
    sockets[key] = r;
    asio::co_spawn(strand, run_relay(owner.shared_from_this(), r, std::move(open)), asio::detached);
  }

  void relay_to_engine(const std::shared_ptr<Relay>& r, envoy::ToRivetTunnelKind kind, bool indexed) {
    envoy::MessageId id = r->id;
    id.message_index = indexed ? r->next_index++ : 0;
    tunnel_reply(id, std::move(kind));
  }

  asio::awaitable<void> run_relay(std::shared_ptr<Envoy> keep, std::shared_ptr<Relay> r,
                                  envoy::ToEnvoyWebSocketOpen open) {
    boost::system::error_code ec;
    auto& tcp = beast::get_lowest_layer(r->ws);
    tcp.expires_after(std::chrono::seconds(10));
    const asio::ip::tcp::endpoint local(asio::ip::make_address("127.0.0.1"), owner.opts_.local_port);
    co_await tcp.async_connect(local, asio::redirect_error(asio::use_awaitable, ec));
    std::string path = open.path.empty() ? std::string("/") : open.path;
    if (path.front() != '/') path.insert(path.begin(), '/');
    const std::string target = "/gateway/" + open.actor_id + path;
    if (!ec) {
      tcp.expires_never();
      tcp.socket().set_option(asio::ip::tcp::no_delay(true), ec);
      r->ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
      auto headers = std::make_shared<envoy::StringMap>(std::move(open.headers));
      r->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
        for (const auto& [name, value] : *headers)
          if (std::string lower = lowercase(name); !hop_by_hop(lower)) req.set(lower, value);
      }));
      r->ws.read_message_max(owner.opts_.max_message_bytes);
      websocket::response_type res;
      const std::string host = "127.0.0.1:" + std::to_string(owner.opts_.local_port);
      co_await r->ws.async_handshake(res, host, target, asio::redirect_error(asio::use_awaitable, ec));
    }
    if (r->closed) co_return;  // the engine closed it meanwhile
    if (ec) {
      spdlog::warn("envoy: WebSocket {} through the tunnel refused: {}", target, ec.message());
      sockets.erase(request_key(r->id));
      r->closed = true;
      envoy::ToRivetWebSocketClose close;
      close.code = 1011;
      close.reason = "anvil.websocket_refused";
      relay_to_engine(r, close, false);
      co_return;
    }
    r->open = true;
    relay_to_engine(r, envoy::ToRivetWebSocketOpen{false}, false);
    pump_relay(r);
    beast::flat_buffer buf;
    for (;;) {
      buf.clear();
      co_await r->ws.async_read(buf, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || r->closed) break;
      const auto data = buf.cdata();
      envoy::ToRivetWebSocketMessage msg;
      msg.data.assign(static_cast<const uint8_t*>(data.data()), static_cast<const uint8_t*>(data.data()) + data.size());
      msg.binary = !r->ws.got_text();
      relay_to_engine(r, std::move(msg), true);
    }
    r->open = false;
    if (r->closed) co_return;  // the engine's close: nothing to report back
    r->closed = true;
    sockets.erase(request_key(r->id));
    envoy::ToRivetWebSocketClose close;
    const auto reason = r->ws.reason();
    close.code = reason.code ? static_cast<uint16_t>(reason.code) : static_cast<uint16_t>(1006);
    if (!reason.reason.empty()) close.reason = std::string(reason.reason.data(), reason.reason.size());
    relay_to_engine(r, close, false);
    (void)keep;
  }

  void pump_relay(const std::shared_ptr<Relay>& r) {
    if (!r->open || r->writing || r->out.empty()) return;
    r->writing = true;
    asio::co_spawn(strand, relay_writes(r), asio::detached);
  }

  asio::awaitable<void> relay_writes(std::shared_ptr<Relay> r) {
    while (r->open && !r->out.empty()) {
      auto [data, binary] = std::move(r->out.front());
      r->out.pop_front();
      r->ws.binary(binary);
      boost::system::error_code ec;
      co_await r->ws.async_write(asio::buffer(data), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
    }
    r->writing = false;
  }

  asio::awaitable<void> close_relay(std::shared_ptr<Relay> r, uint16_t code, std::string reason) {
    if (!r->open) co_return;
    boost::system::error_code ec;
    websocket::close_reason cr(static_cast<websocket::close_code>(code));
    cr.reason = reason;
    co_await r->ws.async_close(cr, asio::redirect_error(asio::use_awaitable, ec));
  }

  void dispatch(envoy::MessageId id, envoy::ToEnvoyRequestStart start, std::string body) {
    requests.fetch_add(1);
    ++actors[start.actor_id].in_flight;
    asio::co_spawn(io, serve(owner.shared_from_this(), id, std::move(start), std::move(body)), asio::detached);
  }

  // Runs on the io threads (not the strand): the Router does the work; the
  // answer goes back through the strand.
  asio::awaitable<void> serve(std::shared_ptr<Envoy> keep, envoy::MessageId id, envoy::ToEnvoyRequestStart start,
                              std::string body) {
    http::Request req;
    req.method = start.method;
    std::string path = start.path.empty() ? std::string("/") : start.path;
    if (auto q = path.find('?'); q != std::string::npos) {
      req.query = path.substr(q + 1);
      path.resize(q);
    }
    if (path.front() != '/') path.insert(path.begin(), '/');
    req.path = "/gateway/" + start.actor_id + path;
    for (auto& [name, value] : start.headers) req.headers.emplace_back(lowercase(name), value);
    req.body = std::move(body);
    http::Response res;
    try {
      res = co_await router.handle(std::move(req));
    } catch (const std::exception& e) {
      spdlog::error("envoy: request {} {} failed: {}", start.method, start.path, e.what());
      res = http::error_response(internal_error());
    }
    co_await asio::post(strand, asio::use_awaitable);
    const uint64_t key = request_key(id);
    if (aborted.erase(key)) {
      request_done(start.actor_id);
      co_return;
    }
    envoy::ToRivetResponseStart rs;
    const uint64_t limit = protocol ? protocol->max_response_payload_size : 0;
    if (limit && res.body.size() > limit) {
      request_errors.fetch_add(1);
      res = http::error_response(make_error("message", "outgoing_too_long",
                                            "The response (" + std::to_string(res.body.size()) +
                                                " bytes) exceeds the engine's payload limit of " +
                                                std::to_string(limit) + " bytes."));
    }
    rs.status = static_cast<uint16_t>(res.status);
    for (auto& [name, value] : res.headers) rs.headers.emplace_back(name, value);
    if (!res.body.empty()) rs.body = bytes_of(res.body);
    rs.stream = false;
    tunnel_reply(id, rs);
    request_done(start.actor_id);
    (void)keep;
  }

  void close_now() {
    stopping = true;
    if (retry_timer) retry_timer->cancel();
    if (conn && conn->open) {
      conn->open = false;
      asio::co_spawn(strand, close_conn(conn), asio::detached);
    }
  }
};

Envoy::Envoy(asio::io_context& io, Runtime& rt, Router& router, std::shared_ptr<HostedActors> hosted,
             EnvoyOptions opts, net::Url url)
    : opts_(std::move(opts)), hosted_set_(std::move(hosted)) {
  impl_ = std::make_unique<Impl>(*this, io, rt, router, std::move(url));
}

Envoy::~Envoy() = default;

Result<std::shared_ptr<Envoy>> Envoy::make(asio::io_context& io, Runtime& rt, Router& router,
                                           std::shared_ptr<HostedActors> hosted, EnvoyOptions opts) {
  if (!hosted) return config_error("envoy: no hosted-actor set");
  auto url = net::parse_url(opts.engine_url);
  if (!url.ok()) return config_error("--engine: " + url.error().message);
  std::unique_ptr<ssl::context> tls_ctx;
  if (url->tls) {
    // The engine's certificate is checked against the system's CAs (and
    // --engine-ca-file) and its host name.
    tls_ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls_ctx->native_handle(), TLS1_2_VERSION);
    boost::system::error_code ec;
    tls_ctx->set_default_verify_paths(ec);
    if (!opts.ca_file.empty()) {
      tls_ctx->load_verify_file(opts.ca_file, ec);
      if (ec) return config_error("--engine-ca-file " + opts.ca_file + ": " + ec.message());
    }
    tls_ctx->set_verify_mode(ssl::verify_peer);
  } else if (!opts.ca_file.empty()) {
    return config_error("--engine-ca-file is for an https:// engine URL");
  }
  if (url->target != "/") return config_error("--engine: give the engine's base URL, without a path");
  if (opts.namespace_name.empty()) return config_error("--namespace must not be empty");
  if (opts.pool.empty() || opts.pool.size() > 128) return config_error("--pool must be 1 to 128 characters");
  if (opts.envoy_key.empty()) opts.envoy_key = random_key();
  if (opts.envoy_key.size() < 3 || opts.envoy_key.size() > 128 || !identifier_chars(opts.envoy_key))
    return config_error("the envoy key must be 3 to 128 characters: letters, digits, '-', '_' or '.'");
  std::shared_ptr<Envoy> envoy(new Envoy(io, rt, router, std::move(hosted), std::move(opts), std::move(*url)));
  envoy->impl_->tls_ctx = std::move(tls_ctx);
  return envoy;
}

void Envoy::start() {
  std::weak_ptr<Envoy> weak = shared_from_this();
  hosted_set_->set_listener([weak](const std::string& id, bool destroyed) {
    if (auto self = weak.lock())
      asio::post(self->impl_->strand, [self, id, destroyed] { self->impl_->on_local_stop(id, destroyed); });
  });
  asio::co_spawn(impl_->strand, impl_->run(shared_from_this()), asio::detached);
  asio::co_spawn(impl_->strand, impl_->kv_watchdog(shared_from_this()), asio::detached);
}

void Envoy::stop() {
  asio::dispatch(impl_->strand, [self = shared_from_this()] { self->impl_->close_now(); });
}

asio::awaitable<void> Envoy::drain(std::chrono::milliseconds bound) {
  // All of it on the envoy's strand (its state is the strand's).
  auto self = shared_from_this();
  asio::awaitable<void> op = drain_on_strand(self, bound);
  co_await asio::co_spawn(impl_->strand, std::move(op), asio::use_awaitable);
}

asio::awaitable<void> Envoy::drain_on_strand(std::shared_ptr<Envoy> self, std::chrono::milliseconds bound) {
  Impl& d = *impl_;
  if (d.conn && d.conn->open) {
    spdlog::info("envoy: draining: {} actors to hand back to the engine", hosted_set_->size());
    d.send(envoy::ToRivetStopping{});
    const auto deadline = std::chrono::steady_clock::now() + bound;
    asio::steady_timer t(d.strand);
    // The engine stops each actor (GoingAway); each stop lands here as a
    // command, so the count falls to zero.
    while (d.active() > 0 && std::chrono::steady_clock::now() < deadline && d.conn && d.conn->open) {
      t.expires_after(std::chrono::milliseconds(20));
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (d.active() > 0) spdlog::warn("envoy: drain ended with {} actors not stopped by the engine", d.active());
    // Let the last Stopped events reach the engine before the close.
    for (int i = 0; i < 50 && d.conn && d.conn->open && (!d.conn->out.empty() || d.conn->writing); ++i) {
      t.expires_after(std::chrono::milliseconds(10));
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
  d.close_now();
  (void)self;
}

void EnvoyReplicator::attach(std::weak_ptr<Envoy> envoy) {
  std::lock_guard lk(mu_);
  envoy_ = std::move(envoy);
}

void EnvoyReplicator::replicate(std::vector<Item> items,
                                std::function<void(std::vector<std::pair<uint64_t, Error>>)> done) {
  std::vector<std::pair<uint64_t, const rocksdb::WriteBatch*>> batches;
  batches.reserve(items.size());
  for (const auto& it : items) batches.emplace_back(it.seq, it.batch);
  thread_local std::mt19937_64 rng{std::random_device{}()};
  auto t = envoy_kv::translate(store_, batches, actor_id_length(), [] { return rng(); });
  if (t.actors.empty()) {
    done(std::move(t.failed));
    return;
  }
  std::shared_ptr<Envoy> envoy;
  {
    std::lock_guard lk(mu_);
    envoy = envoy_.lock();
  }
  if (!envoy) {
    const Error e = make_error("envoy", "not_connected", "not connected to the Rivet Engine; the write was not stored");
    for (const auto& w : t.actors)
      for (uint64_t seq : w.seqs) t.failed.emplace_back(seq, e);
    done(std::move(t.failed));
    return;
  }
  Envoy::Impl* d = envoy->impl_.get();
  asio::post(d->strand, [envoy, d, t = std::move(t), done = std::move(done)]() mutable {
    d->replicate(std::move(t), std::move(done));
  });
}

std::string Envoy::metrics_text() const {
  const Impl& d = *impl_;
  std::string out;
  auto line = [&out](const char* name, const char* type, const char* help, uint64_t v) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
    out += name;
    out += ' ';
    out += std::to_string(v);
    out += '\n';
  };
  line("anvil_envoy_connected", "gauge", "1 while the node is connected to the Rivet Engine.", connected_.load() ? 1 : 0);
  line("anvil_envoy_connects_total", "counter", "Connections opened to the engine.", d.connects.load());
  line("anvil_envoy_disconnects_total", "counter", "Connections to the engine that dropped.", d.disconnects.load());
  line("anvil_envoy_actors", "gauge", "Actors the engine runs on this node.", hosted_set_->size());
  line("anvil_envoy_commands_total", "counter", "Commands received from the engine.", d.commands.load());
  line("anvil_envoy_events_total", "counter", "Actor events sent to the engine.", d.events.load());
  line("anvil_envoy_requests_total", "counter", "HTTP requests served through the engine's tunnel.", d.requests.load());
  line("anvil_envoy_request_errors_total", "counter", "Tunnel responses replaced by an error (too large).",
       d.request_errors.load());
  line("anvil_envoy_kv_requests_total", "counter", "KV requests sent to the engine.", d.kv_requests.load());
  line("anvil_envoy_kv_errors_total", "counter", "KV requests the engine refused.", d.kv_errors.load());
  line("anvil_envoy_actor_loads_total", "counter", "Actors loaded from the engine's KV at start.", d.loads.load());
  line("anvil_envoy_actor_loads_skipped_total", "counter",
       "Starts that needed no load (this node stopped the previous generation).", d.loads_skipped.load());
  line("anvil_envoy_replication_rounds_total", "counter", "Commit rounds written to the engine's KV.",
       d.replicated_batches.load());
  line("anvil_envoy_replication_failures_total", "counter", "Batches the engine did not take.",
       d.replication_failures.load());
  return out;
}

}  // namespace anvil::gateway

#include "storage/redis/client.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <ctime>
#include <random>

#include <pthread.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

namespace anvil::redis {

using std::chrono::milliseconds;

// ---------------------------------------------------------------------------
// URL

namespace {

Error invalid_url(std::string_view why) {
  // Never echo the URL itself: it may carry a password.
  return make_error("redis", "invalid_url", "invalid Redis URL: " + std::string(why));
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    unsigned v = 0;
    auto [p, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16);
    if (ec != std::errc() || p != in.data() + i + 3) return false;
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return true;
}

template <typename Int>
bool parse_decimal(std::string_view s, Int& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::string Endpoint::display() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  out += ":" + std::to_string(port);
  if (db != 0) out += "/" + std::to_string(db);
  return out;
}

Result<Endpoint> parse_url(std::string_view url) {
  if (url.empty())
    return make_error("redis", "not_configured", "no Redis URL configured (--redis-url / ANVIL_REDIS_URL)");
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    if (url.substr(0, 9) == "rediss://") return invalid_url("TLS (rediss://) is not supported");
    return invalid_url("expected redis://[[user]:password@]host[:port][/db]");
  }
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos) return invalid_url("query parameters are not supported");

  Endpoint ep;
  std::string_view db;
  bool has_db = false;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    has_db = true;
  }
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string_view::npos)
      return invalid_url("credentials must be ':password@' or 'user:password@'");
    if (!percent_decode(userinfo.substr(0, colon), ep.user) ||
        !percent_decode(userinfo.substr(colon + 1), ep.password))
      return invalid_url("bad percent-encoding in the credentials");
  }
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return invalid_url("unterminated [IPv6] host");
    ep.host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return invalid_url("expected ':port' after the [IPv6] host");
      port = rest.substr(1);
    }
  } else if (auto colon = rest.find(':'); colon != std::string_view::npos) {
    ep.host = std::string(rest.substr(0, colon));
    port = rest.substr(colon + 1);
  } else {
    ep.host = std::string(rest);
  }
  if (ep.host.empty()) return invalid_url("missing host");
  if (!port.empty() || rest.find(':') != std::string_view::npos) {
    unsigned p = 0;
    if (!parse_decimal(port, p) || p == 0 || p > 65535) return invalid_url("port must be 1-65535");
    ep.port = static_cast<uint16_t>(p);
  }
  if (has_db && !db.empty()) {
    if (!parse_decimal(db, ep.db) || ep.db < 0) return invalid_url("database must be a non-negative integer");
  }
  return ep;
}

// ---------------------------------------------------------------------------
// Connections

namespace detail {

using Strand = asio::strand<asio::io_context::executor_type>;
using error_code = boost::system::error_code;

constexpr milliseconds kFirstBackoff{100};
constexpr size_t kMaxIdleBlocking = 4;

struct Metrics {
  std::atomic<uint64_t> commands{0};
  std::atomic<uint64_t> unavailable{0}, timeouts{0}, command_failed{0}, other_errors{0};
  std::atomic<uint64_t> reconnects{0}, connections_lost{0};
  std::atomic<int64_t> blocking_connections{0};
  std::atomic<bool> connected{false};
};

Error unavailable(std::string message) { return make_error("redis", "unavailable", std::move(message)); }

// hiredis 0.14 writes with write(2), so a write to a connection the server
// dropped raises SIGPIPE, whose default action kills the node. Around each
// write the signal is blocked in this thread only and a SIGPIPE it caused is
// consumed, so the process-wide disposition stays untouched.
class SigpipeShield {
 public:
  SigpipeShield() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    already_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &saved_);
  }
  ~SigpipeShield() {
    if (!already_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{0, 0};
        while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
  }
  SigpipeShield(const SigpipeShield&) = delete;
  SigpipeShield& operator=(const SigpipeShield&) = delete;

 private:
  sigset_t pipe_{};
  sigset_t saved_{};
  bool already_pending_ = false;
};

class Link;

// One command waiting for its reply. Completed exactly once, by finish(), on
// the client's strand: by its reply, by the loss of its connection, or by its
// timeout, whichever comes first.
struct Pending {
  virtual ~Pending() = default;
  virtual void deliver(Result<Value> r) = 0;

  std::string command;  // argv[0], upper-cased, for errors
  milliseconds timeout{0};
  bool done = false;
  std::optional<asio::steady_timer> timer;
  // The blocking-read connection lent to this command. Weak: that connection
  // holds this command (hiredis privdata) until the reply, and the pool owns it.
  std::weak_ptr<Link> borrowed;
  std::shared_ptr<Metrics> metrics;  // null for the connection's own AUTH/SELECT
};

void finish(Pending& p, Result<Value> r) {
  if (p.done) return;
  p.done = true;
  if (p.timer) p.timer->cancel();
  if (p.metrics && !r.ok()) {
    const std::string& code = r.error().code;
    auto& counter = code == "unavailable"      ? p.metrics->unavailable
                    : code == "timeout"        ? p.metrics->timeouts
                    : code == "command_failed" ? p.metrics->command_failed
                                               : p.metrics->other_errors;
    counter.fetch_add(1, std::memory_order_relaxed);
  }
  p.deliver(std::move(r));
}

// A caller's command: the completion goes to the awaiting coroutine's own
// executor (posted, so it never runs on the client's strand), which is kept
// busy (outstanding work) until then.
template <typename Handler>
class PendingOp final : public Pending {
 public:
  PendingOp(Handler handler, const Strand& fallback)
      : work_(asio::prefer(asio::get_associated_executor(handler, fallback),
                           asio::execution::outstanding_work.tracked)),
        handler_(std::move(handler)) {}

  void deliver(Result<Value> r) override {
    auto ex = std::move(work_);
    asio::post(ex, [h = std::move(handler_), r = std::move(r)]() mutable { h(std::move(r)); });
  }

 private:
  using WorkExecutor = std::decay_t<decltype(asio::prefer(
      std::declval<asio::associated_executor_t<Handler, Strand>>(), asio::execution::outstanding_work.tracked))>;
  WorkExecutor work_;
  Handler handler_;
};

Result<Value> to_result(const redisReply* reply, const std::string& command);

class Impl;

// One hiredis connection, used once: resolve -> connect -> AUTH/SELECT ->
// ready -> closed. Every member runs on the client's strand. hiredis owns the
// socket (it closes the fd when it frees the context); sd_ only watches it.
class Link : public std::enable_shared_from_this<Link> {
 public:
  enum class State { resolving, connecting, ready, closed };

  Link(const Strand& strand, std::weak_ptr<Impl> owner, const Endpoint& ep, milliseconds connect_timeout)
      : strand_(strand), owner_(std::move(owner)), ep_(ep), connect_timeout_(connect_timeout), sd_(strand),
        resolver_(strand), connect_timer_(strand) {}

  ~Link() {
    dying_ = true;
    if (ctx_ != nullptr) {
      freeing_ = true;
      redisAsyncFree(ctx_);  // completes what is in flight with redis.unavailable
    }
    for (auto& q : queued_) finish(*q.first, unavailable(reason_));
  }

  void start() {
    connect_timer_.expires_after(connect_timeout_);
    connect_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (!ec && (self->state_ == State::resolving || self->state_ == State::connecting))
        self->close("connecting to redis at " + self->ep_.display() + " timed out");
    });
    resolver_.async_resolve(ep_.host, std::to_string(ep_.port),
                            [self = shared_from_this()](const error_code& ec,
                                                        asio::ip::tcp::resolver::results_type results) {
                              self->on_resolved(ec, results);
                            });
  }

  State state() const { return state_; }
  bool usable() const { return state_ != State::closed; }

  // Sends now when ready; queues while connecting (sent after AUTH/SELECT);
  // fails at once when closed.
  void submit(std::shared_ptr<Pending> op, std::vector<std::string> argv) {
    switch (state_) {
      case State::ready:
        send(op, argv);
        break;
      case State::closed:
        finish(*op, unavailable(reason_));
        break;
      default:
        queued_.emplace_back(std::move(op), std::move(argv));
    }
  }

  // Frees the hiredis context (whatever is in flight completes with
  // redis.unavailable carrying `reason`). Inside a hiredis callback the free is
  // deferred until hiredis has returned.
  void close(std::string reason) {
    if (state_ == State::closed || freeing_) return;
    if (reason_.empty()) reason_ = std::move(reason);
    if (in_hiredis_ > 0) {
      close_pending_ = true;
      return;
    }
    if (ctx_ != nullptr) {
      freeing_ = true;
      redisAsyncFree(ctx_);  // runs ev_cleanup -> on_cleanup -> mark_closed
      freeing_ = false;
      return;
    }
    resolver_.cancel();
    mark_closed();
  }

  void on_handshake_reply(const Result<Value>& r, const std::string& command, bool last) {
    if (state_ != State::connecting) return;
    if (!r.ok()) {
      close(command + " after connecting to redis at " + ep_.display() + " failed: " + r.error().message);
      return;
    }
    if (last) become_ready();
  }

 private:
  class HandshakeOp;

  void on_resolved(const error_code& ec, const asio::ip::tcp::resolver::results_type& results) {
    if (state_ != State::resolving) return;
    if (ec || results.empty()) {
      reason_ = "cannot resolve redis host " + ep_.host + ": " + (ec ? ec.message() : "no address");
      mark_closed();
      return;
    }
    // hiredis gets a numeric address, so its own getaddrinfo never blocks.
    std::string address = results.begin()->endpoint().address().to_string();
    for (const auto& entry : results) {
      if (entry.endpoint().address().is_v4()) {
        address = entry.endpoint().address().to_string();
        break;
      }
    }
    connect_to(address);
  }

  void connect_to(const std::string& address) {
    redisAsyncContext* ac = redisAsyncConnect(address.c_str(), ep_.port);
    if (ac == nullptr) {
      reason_ = "cannot connect to redis at " + ep_.display() + ": out of memory";
      mark_closed();
      return;
    }
    if (ac->err != 0) {
      reason_ = "cannot connect to redis at " + ep_.display() + ": " + ac->errstr;
      redisAsyncFree(ac);  // no event hooks yet: just closes the socket
      mark_closed();
      return;
    }
    error_code ec;
    sd_.assign(ac->c.fd, ec);
    if (ec) {
      reason_ = "cannot watch the redis socket: " + ec.message();
      redisAsyncFree(ac);
      mark_closed();
      return;
    }
    ctx_ = ac;
    state_ = State::connecting;
    redisEnableKeepAlive(&ac->c);
    ac->data = this;
    ac->ev.data = this;
    ac->ev.addRead = &Link::ev_add_read;
    ac->ev.delRead = &Link::ev_del_read;
    ac->ev.addWrite = &Link::ev_add_write;
    ac->ev.delWrite = &Link::ev_del_write;
    ac->ev.cleanup = &Link::ev_cleanup;
    // hiredis reports the connect on the first writable event: this arms it.
    redisAsyncSetConnectCallback(ac, &Link::on_connect);
  }

  static void on_connect(const redisAsyncContext* ac, int status) {
    auto* self = static_cast<Link*>(ac->data);
    if (status != REDIS_OK) {
      // hiredis frees the context right after this (ev_cleanup follows).
      self->reason_ = "cannot connect to redis at " + self->ep_.display() + ": " +
                      (ac->errstr != nullptr ? ac->errstr : "connect failed");
      return;
    }
    self->on_connected();
  }

  void on_connected();

  void become_ready() {
    state_ = State::ready;
    connect_timer_.cancel();
    notify_ready();
    auto queued = std::move(queued_);
    queued_.clear();
    for (auto& [op, argv] : queued) {
      if (!op->done) send(op, argv);
    }
  }

  void notify_ready();
  void notify_closed(bool was_ready);

  void send(const std::shared_ptr<Pending>& op, const std::vector<std::string>& argv) {
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    ptrs.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    // hiredis hands privdata back exactly once: with the reply, or with NULL
    // when the context is freed.
    auto holder = std::make_unique<std::shared_ptr<Pending>>(op);
    if (redisAsyncCommandArgv(ctx_, &Link::on_reply, holder.get(), static_cast<int>(argv.size()), ptrs.data(),
                              lens.data()) != REDIS_OK) {
      finish(*op, unavailable(lost_reason()));
      return;
    }
    holder.release();
  }

  static void on_reply(redisAsyncContext* ac, void* r, void* privdata) {
    std::unique_ptr<std::shared_ptr<Pending>> holder(static_cast<std::shared_ptr<Pending>*>(privdata));
    std::shared_ptr<Pending> op = std::move(*holder);
    auto* self = static_cast<Link*>(ac->data);
    const auto* reply = static_cast<const redisReply*>(r);
    if (reply == nullptr) {
      finish(*op, unavailable(self->lost_reason()));
      return;  // a lent connection is closing: notify_closed drops it from the pool
    }
    finish(*op, to_result(reply, op->command));
    if (auto lent = op->borrowed.lock()) {
      op->borrowed.reset();
      self->give_back(std::move(lent));
    }
  }

  void give_back(std::shared_ptr<Link> link);

  std::string lost_reason() const {
    if (!reason_.empty()) return reason_;
    std::string out = "connection to redis at " + ep_.display() + " lost";
    if (ctx_ != nullptr && ctx_->err != 0 && ctx_->errstr != nullptr) out += std::string(": ") + ctx_->errstr;
    return out;
  }

  // --- the event hooks: hiredis says what it wants, asio waits for it ---
  static void ev_add_read(void* p) {
    auto* self = static_cast<Link*>(p);
    self->want_read_ = true;
    self->arm_read();
  }
  static void ev_del_read(void* p) { static_cast<Link*>(p)->want_read_ = false; }
  static void ev_add_write(void* p) {
    auto* self = static_cast<Link*>(p);
    self->want_write_ = true;
    self->arm_write();
  }
  static void ev_del_write(void* p) { static_cast<Link*>(p)->want_write_ = false; }
  static void ev_cleanup(void* p) { static_cast<Link*>(p)->on_cleanup(); }

  // At most one wait per direction is outstanding; a wait that completes after
  // hiredis lost interest is ignored (Boost 1.74 cannot cancel just one).
  void arm_read() {
    if (read_armed_ || ctx_ == nullptr || dying_) return;
    read_armed_ = true;
    sd_.async_wait(asio::posix::stream_descriptor::wait_read,
                   [self = shared_from_this()](const error_code& ec) { self->on_ready_to(ec, false); });
  }
  void arm_write() {
    if (write_armed_ || ctx_ == nullptr || dying_) return;
    write_armed_ = true;
    sd_.async_wait(asio::posix::stream_descriptor::wait_write,
                   [self = shared_from_this()](const error_code& ec) { self->on_ready_to(ec, true); });
  }

  void on_ready_to(const error_code& ec, bool write) {
    (write ? write_armed_ : read_armed_) = false;
    if (ec || ctx_ == nullptr) return;  // aborted: the context is gone
    if (!(write ? want_write_ : want_read_)) return;
    ++in_hiredis_;
    if (write) {
      SigpipeShield shield;
      redisAsyncHandleWrite(ctx_);  // may free the context (on_cleanup)
    } else {
      redisAsyncHandleRead(ctx_);
    }
    --in_hiredis_;
    if (ctx_ != nullptr) {
      if (want_read_) arm_read();
      if (want_write_) arm_write();
    }
    if (close_pending_) {
      close_pending_ = false;
      close(reason_);
    }
  }

  // hiredis is freeing the context (error, server closed, or our close()):
  // pending callbacks have already run; the fd is closed right after this.
  void on_cleanup() {
    if (ctx_ == nullptr) return;
    if (reason_.empty()) {
      if (state_ == State::connecting && !(ctx_->c.flags & REDIS_CONNECTED)) {
        reason_ = "cannot connect to redis at " + ep_.display();
      } else {
        reason_ = lost_reason();
      }
    }
    ctx_ = nullptr;
    want_read_ = want_write_ = false;
    error_code ec;
    sd_.cancel(ec);
    (void)sd_.release();  // hiredis owns and closes the fd
    mark_closed();
  }

  void mark_closed() {
    if (state_ == State::closed) return;
    bool was_ready = state_ == State::ready;
    state_ = State::closed;
    if (reason_.empty()) reason_ = "connection to redis at " + ep_.display() + " closed";
    connect_timer_.cancel();
    auto queued = std::move(queued_);
    queued_.clear();
    for (auto& q : queued) finish(*q.first, unavailable(reason_));
    if (!dying_) notify_closed(was_ready);
  }

  Strand strand_;
  std::weak_ptr<Impl> owner_;
  const Endpoint ep_;
  const milliseconds connect_timeout_;
  State state_ = State::resolving;
  redisAsyncContext* ctx_ = nullptr;  // null before connect and once hiredis freed it
  asio::posix::stream_descriptor sd_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer connect_timer_;
  bool want_read_ = false, want_write_ = false;    // what hiredis asked for
  bool read_armed_ = false, write_armed_ = false;  // an async_wait is outstanding
  int in_hiredis_ = 0;                             // inside redisAsyncHandleRead/Write
  bool close_pending_ = false;
  bool freeing_ = false;
  bool dying_ = false;
  std::string reason_;  // why it closed (or is closing), for redis.unavailable
  std::vector<std::pair<std::shared_ptr<Pending>, std::vector<std::string>>> queued_;
};

// AUTH / SELECT sent by the connection itself before anything queued.
class Link::HandshakeOp final : public Pending {
 public:
  HandshakeOp(std::weak_ptr<Link> link, bool last) : link_(std::move(link)), last_(last) {}
  void deliver(Result<Value> r) override {
    if (auto link = link_.lock()) link->on_handshake_reply(r, command, last_);
  }

 private:
  std::weak_ptr<Link> link_;
  bool last_;
};

void Link::on_connected() {
  std::vector<std::vector<std::string>> steps;
  if (!ep_.password.empty()) {
    if (ep_.user.empty()) {
      steps.push_back({"AUTH", ep_.password});
    } else {
      steps.push_back({"AUTH", ep_.user, ep_.password});
    }
  }
  if (ep_.db != 0) steps.push_back({"SELECT", std::to_string(ep_.db)});
  if (steps.empty()) {
    become_ready();
    return;
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    auto op = std::make_shared<HandshakeOp>(weak_from_this(), i + 1 == steps.size());
    op->command = steps[i][0];
    send(op, steps[i]);
  }
}

// The client: one shared connection (reconnected with backoff) plus a pool of
// connections for blocking reads. Everything but the metrics is touched only
// on strand_.
class Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, Options opts)
      : strand_(asio::make_strand(io)), opts_(std::move(opts)), endpoint_(parse_url(opts_.url)),
        backoff_timer_(strand_) {}

  void start() {
    if (!endpoint_.ok()) {
      spdlog::error("redis: {}", endpoint_.error().message);
      return;
    }
    main_ = open_link();
  }

  void shutdown() {
    closed_ = true;
    backoff_timer_.cancel();
    std::vector<std::shared_ptr<Link>> all = std::move(idle_);
    all.insert(all.end(), lent_.begin(), lent_.end());
    if (main_) all.push_back(std::move(main_));
    idle_.clear();
    lent_.clear();
    main_.reset();
    metrics_->connected = false;
    for (auto& link : all) link->close("redis client closed");
    sync_gauges();
  }

  void submit(std::shared_ptr<Pending> op, std::vector<std::string> argv, std::optional<milliseconds> block) {
    metrics_->commands.fetch_add(1, std::memory_order_relaxed);
    if (!endpoint_.ok()) return finish(*op, endpoint_.error());
    if (closed_) return finish(*op, unavailable("redis client closed"));
    // While a backoff runs there is no connection: fail fast, do not queue.
    if (!main_) {
      return finish(*op, unavailable("not connected to redis at " + endpoint_->display() +
                                     " (reconnecting; last error: " + last_error_ + ")"));
    }

    op->timeout = opts_.command_timeout + block.value_or(milliseconds{0});
    op->timer.emplace(strand_, op->timeout);
    op->timer->async_wait([op](const error_code& ec) {
      if (!ec) on_timeout(op);
    });
    if (!block) return main_->submit(std::move(op), std::move(argv));
    auto link = borrow();
    op->borrowed = link;
    link->submit(std::move(op), std::move(argv));
  }

  // A lent connection whose command got its reply.
  void give_back(std::shared_ptr<Link> link) {
    std::erase(lent_, link);
    if (closed_ || link->state() != Link::State::ready || idle_.size() >= kMaxIdleBlocking) {
      link->close("redis blocking-read connection no longer needed");
    } else {
      idle_.push_back(std::move(link));
    }
    sync_gauges();
  }

  void on_link_ready(const Link* link) {
    if (!main_ || main_.get() != link) return;
    metrics_->connected = true;
    if (ever_connected_) {
      metrics_->reconnects.fetch_add(1, std::memory_order_relaxed);
      spdlog::info("redis: reconnected to {} after {} failed attempt(s)", endpoint_->display(), failures_);
    } else {
      spdlog::info("redis: connected to {}", endpoint_->display());
    }
    ever_connected_ = true;
    failures_ = 0;
  }

  void on_link_closed(const Link* link, bool was_ready, const std::string& reason) {
    if (main_ && main_.get() == link) {
      main_.reset();
      last_error_ = reason;
      metrics_->connected = false;
      if (closed_) return;
      if (was_ready) {
        metrics_->connections_lost.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("redis: {}; reconnecting", reason);
      } else if (failures_ == 0) {
        spdlog::warn("redis: {}; retrying with backoff", reason);
      } else {
        spdlog::debug("redis: {} (attempt {})", reason, failures_ + 1);
      }
      schedule_reconnect(was_ready);
      return;
    }
    std::erase_if(idle_, [&](const auto& l) { return l.get() == link; });
    std::erase_if(lent_, [&](const auto& l) { return l.get() == link; });
    sync_gauges();
  }

  Strand strand_;
  const Options opts_;
  const Result<Endpoint> endpoint_;
  const std::shared_ptr<Metrics> metrics_ = std::make_shared<Metrics>();

 private:
  static void on_timeout(const std::shared_ptr<Pending>& op) {
    finish(*op, make_error("redis", "timeout",
                           op->command + " got no reply within " + std::to_string(op->timeout.count()) + " ms"));
    // A blocking read's connection still has the command parked in the
    // server: it cannot serve anyone else, so it goes.
    if (auto link = op->borrowed.lock()) link->close("redis blocking read timed out");
  }

  std::shared_ptr<Link> open_link() {
    auto link = std::make_shared<Link>(strand_, weak_from_this(), *endpoint_, opts_.command_timeout);
    link->start();
    return link;
  }

  std::shared_ptr<Link> borrow() {
    std::shared_ptr<Link> link;
    while (!idle_.empty() && !link) {
      auto candidate = std::move(idle_.back());
      idle_.pop_back();
      if (candidate->state() == Link::State::ready) link = std::move(candidate);
    }
    if (!link) link = open_link();
    lent_.push_back(link);
    sync_gauges();
    return link;
  }

  void schedule_reconnect(bool after_loss) {
    if (after_loss) failures_ = 0;
    auto ceiling = std::max(opts_.max_backoff, kFirstBackoff);
    auto base = std::min<milliseconds>(ceiling, kFirstBackoff * (int64_t{1} << std::min(failures_, 16)));
    ++failures_;
    std::uniform_int_distribution<int64_t> jitter(base.count() / 2, base.count());
    backoff_timer_.expires_after(milliseconds(jitter(rng_)));
    backoff_timer_.async_wait([weak = weak_from_this()](const error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || self->closed_) return;
      self->main_ = self->open_link();
    });
  }

  void sync_gauges() {
    metrics_->blocking_connections.store(static_cast<int64_t>(idle_.size() + lent_.size()),
                                         std::memory_order_relaxed);
  }

  asio::steady_timer backoff_timer_;
  std::shared_ptr<Link> main_;  // null while a backoff runs (or after shutdown)
  std::vector<std::shared_ptr<Link>> idle_;  // blocking-read connections, ready
  std::vector<std::shared_ptr<Link>> lent_;  // blocking-read connections in use
  std::string last_error_;                   // why the shared connection last closed
  int failures_ = 0;                         // consecutive failed connects: the backoff exponent
  bool ever_connected_ = false;
  bool closed_ = false;
  std::minstd_rand rng_{std::random_device{}()};
};

void Link::notify_ready() {
  if (auto owner = owner_.lock()) owner->on_link_ready(this);
}

void Link::notify_closed(bool was_ready) {
  // Posted: hiredis may still be unwinding, and the owner may drop this link.
  auto owner = owner_.lock();
  if (!owner) return;
  asio::post(strand_, [owner, self = shared_from_this(), was_ready] {
    owner->on_link_closed(self.get(), was_ready, self->reason_);
  });
}

void Link::give_back(std::shared_ptr<Link> link) {
  if (auto owner = owner_.lock()) {
    owner->give_back(std::move(link));
  } else {
    link->close("redis client closed");
  }
}

// --- replies ---------------------------------------------------------------

Value convert(const redisReply* r, const redisReply*& first_error) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      return std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER:
      return Value(static_cast<int64_t>(r->integer));
    case REDIS_REPLY_ARRAY: {
      Array out;
      out.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.push_back(convert(r->element[i], first_error));
      return out;
    }
    case REDIS_REPLY_ERROR:
      if (first_error == nullptr) first_error = r;
      return nullptr;
    default:  // REDIS_REPLY_NIL
      return nullptr;
  }
}

Result<Value> to_result(const redisReply* reply, const std::string& command) {
  const redisReply* error = nullptr;
  Value v = convert(reply, error);
  if (error == nullptr) return v;
  std::string message(error->str, error->len);
  std::string reply_code = message.substr(0, message.find(' '));
  return make_error("redis", "command_failed", std::move(message),
                    obj({{"command", command}, {"reply_code", std::move(reply_code)}}));
}

// Hands a command to the client's strand; the handler is the awaiting
// coroutine's (asio::use_awaitable). Weak: asio keeps the initiation in the
// awaiting coroutine's frame until the command completes, and a strong
// reference would close a cycle (coroutine -> client -> connection -> command
// -> coroutine) that nothing breaks when the io_context dies first.
struct Initiate {
  std::weak_ptr<Impl> client;

  template <typename Handler>
  void operator()(Handler&& handler, std::vector<std::string> argv, std::optional<milliseconds> block) const {
    auto impl = client.lock();
    if (!impl) {
      // The command was awaited after its Client was destroyed.
      auto ex = asio::get_associated_executor(handler);
      asio::post(ex, [h = std::forward<Handler>(handler)]() mutable { h(unavailable("redis client closed")); });
      return;
    }
    auto op = std::make_shared<PendingOp<std::decay_t<Handler>>>(std::forward<Handler>(handler), impl->strand_);
    op->command = argv.empty() ? std::string() : argv.front();
    std::transform(op->command.begin(), op->command.end(), op->command.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    op->metrics = impl->metrics_;
    Strand strand = impl->strand_;
    asio::post(strand, [impl = std::move(impl), op = std::move(op), argv = std::move(argv), block]() mutable {
      impl->submit(std::move(op), std::move(argv), block);
    });
  }
};

// --- typed reply parsing -----------------------------------------------------

Error unexpected_reply(const std::string& command, const Value& v) {
  std::string shown = debug_string(v);
  if (shown.size() > 200) shown = shown.substr(0, 200) + "...";
  return make_error("redis", "unexpected_reply", "unexpected reply to " + command + ": " + shown,
                    obj({{"command", command}}));
}

bool parse_entry(const Value& v, StreamEntry& out) {
  if (!v.is_array() || v.as_array().size() < 2 || !v.as_array()[0].is_string()) return false;
  out.id = v.as_array()[0].as_string();
  const Value& fields = v.as_array()[1];
  if (fields.is_null()) return true;  // deleted while pending
  if (!fields.is_array() || fields.as_array().size() % 2 != 0) return false;
  const Array& kv = fields.as_array();
  for (size_t i = 0; i < kv.size(); i += 2) {
    if (!kv[i].is_string() || !kv[i + 1].is_string()) return false;
    out.fields.emplace_back(kv[i].as_string(), kv[i + 1].as_string());
  }
  return true;
}

bool parse_entries(const Value& v, std::vector<StreamEntry>& out) {
  if (v.is_null()) return true;
  if (!v.is_array()) return false;
  for (const Value& e : v.as_array()) {
    StreamEntry entry;
    if (!parse_entry(e, entry)) return false;
    out.push_back(std::move(entry));
  }
  return true;
}

bool as_int(const Value& v, int64_t& out) {
  if (v.is_int()) {
    out = v.as_int();
    return true;
  }
  return v.is_string() && parse_decimal(v.as_string(), out);
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Client

using detail::Strand;

Client::Client(asio::io_context& io, Options opts)
    : impl_(std::make_shared<detail::Impl>(io, std::move(opts))) {
  asio::post(impl_->strand_, [impl = impl_] { impl->start(); });
}

Client::~Client() {
  Strand strand = impl_->strand_;  // before impl_ is moved into the handler
  asio::post(strand, [impl = std::move(impl_)] { impl->shutdown(); });
}

bool Client::connected() const { return impl_->metrics_->connected.load(); }

asio::awaitable<Result<Value>> Client::run(std::vector<std::string> argv, std::optional<milliseconds> block) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<Value>)>(
      detail::Initiate{impl_}, asio::use_awaitable, std::move(argv), block);
}

asio::awaitable<Result<Value>> Client::command(std::vector<std::string> argv) {
  return run(std::move(argv), std::nullopt);
}

asio::awaitable<Result<std::string>> Client::xadd(std::string stream,
                                                  std::vector<std::pair<std::string, std::string>> fields,
                                                  std::optional<size_t> maxlen_approx, std::string id) {
  std::vector<std::string> argv{"XADD", std::move(stream)};
  if (maxlen_approx) {
    argv.insert(argv.end(), {"MAXLEN", "~", std::to_string(*maxlen_approx)});
  }
  argv.push_back(std::move(id));
  for (auto& [field, value] : fields) {
    argv.push_back(std::move(field));
    argv.push_back(std::move(value));
  }
  Result<Value> r = co_await run(std::move(argv), std::nullopt);
  if (!r) co_return r.take_error();
  if (!r->is_string()) co_return detail::unexpected_reply("XADD", *r);
  co_return r->as_string();
}

asio::awaitable<Status> Client::xgroup_create(std::string stream, std::string group, std::string start_id,
                                              bool mkstream) {
  std::vector<std::string> argv{"XGROUP", "CREATE", std::move(stream), std::move(group), std::move(start_id)};
  if (mkstream) argv.push_back("MKSTREAM");
  Result<Value> r = co_await run(std::move(argv), std::nullopt);
  if (r) co_return Ok{};
  if (r.error().code == "command_failed" && r.error().message.rfind("BUSYGROUP", 0) == 0) co_return Ok{};
  co_return r.take_error();
}

asio::awaitable<Result<std::vector<StreamEntry>>> Client::xreadgroup(std::string group, std::string consumer,
                                                                     std::string stream, size_t count,
                                                                     std::optional<milliseconds> block,
                                                                     std::string id) {
  if (block && block->count() <= 0) {
    co_return make_error("redis", "invalid_argument",
                         "xreadgroup: block must be > 0 ms (BLOCK 0 waits forever and would hit the command timeout)");
  }
  std::vector<std::string> argv{"XREADGROUP", "GROUP", std::move(group), std::move(consumer)};
  if (count > 0) argv.insert(argv.end(), {"COUNT", std::to_string(count)});
  if (block) argv.insert(argv.end(), {"BLOCK", std::to_string(block->count())});
  argv.insert(argv.end(), {"STREAMS", std::move(stream), std::move(id)});
  Result<Value> r = co_await run(std::move(argv), block);
  if (!r) co_return r.take_error();
  std::vector<StreamEntry> entries;
  if (r->is_null()) co_return entries;
  // [[stream, [entry, ...]]]
  if (!r->is_array() || r->as_array().size() != 1 || !r->as_array()[0].is_array() ||
      r->as_array()[0].as_array().size() != 2 ||
      !detail::parse_entries(r->as_array()[0].as_array()[1], entries)) {
    co_return detail::unexpected_reply("XREADGROUP", *r);
  }
  co_return entries;
}

asio::awaitable<Result<int64_t>> Client::xack(std::string stream, std::string group, std::vector<std::string> ids) {
  std::vector<std::string> argv{"XACK", std::move(stream), std::move(group)};
  for (auto& id : ids) argv.push_back(std::move(id));
  Result<Value> r = co_await run(std::move(argv), std::nullopt);
  if (!r) co_return r.take_error();
  if (!r->is_int()) co_return detail::unexpected_reply("XACK", *r);
  co_return r->as_int();
}

asio::awaitable<Result<PendingSummary>> Client::xpending(std::string stream, std::string group) {
  std::vector<std::string> argv{"XPENDING", std::move(stream), std::move(group)};
  Result<Value> r = co_await run(std::move(argv), std::nullopt);
  if (!r) co_return r.take_error();
  // [count, min-id | nil, max-id | nil, [[consumer, "n"], ...] | nil]
  PendingSummary out;
  const Value& v = *r;
  bool ok = v.is_array() && v.as_array().size() == 4 && detail::as_int(v.as_array()[0], out.count);
  if (ok) {
    const Array& a = v.as_array();
    if (a[1].is_string()) out.min_id = a[1].as_string();
    if (a[2].is_string()) out.max_id = a[2].as_string();
    if (a[3].is_array()) {
      for (const Value& c : a[3].as_array()) {
        int64_t n = 0;
        if (!c.is_array() || c.as_array().size() != 2 || !c.as_array()[0].is_string() ||
            !detail::as_int(c.as_array()[1], n)) {
          ok = false;
          break;
        }
        out.consumers.emplace_back(c.as_array()[0].as_string(), n);
      }
    } else if (!a[3].is_null()) {
      ok = false;
    }
  }
  if (!ok) co_return detail::unexpected_reply("XPENDING", v);
  co_return out;
}

asio::awaitable<Result<std::vector<PendingEntry>>> Client::xpending_range(std::string stream, std::string group,
                                                                          std::string start, std::string end,
                                                                          size_t count,
                                                                          std::optional<milliseconds> min_idle) {
  std::vector<std::string> argv{"XPENDING", std::move(stream), std::move(group)};
  if (min_idle) argv.insert(argv.end(), {"IDLE", std::to_string(min_idle->count())});
  argv.insert(argv.end(), {std::move(start), std::move(end), std::to_string(count)});
  Result<Value> r = co_await run(std::move(argv), std::nullopt);
  if (!r) co_return r.take_error();
  std::vector<PendingEntry> out;
  // [[id, consumer, idle-ms, deliveries], ...]
  bool ok = r->is_array();
  if (ok) {
    for (const Value& e : r->as_array()) {
      PendingEntry pe;
      if (!e.is_array() || e.as_array().size() != 4 || !e.as_array()[0].is_string() ||
          !e.as_array()[1].is_string() || !detail::as_int(e.as_array()[2], pe.idle_ms) ||
          !detail::as_int(e.as_array()[3], pe.deliveries)) {
        ok = false;
        break;
      }
      pe.id = e.as_array()[0].as_string();
      pe.consumer = e.as_array()[1].as_string();
      out.push_back(std::move(pe));
    }
  }
  if (!ok) co_return detail::unexpected_reply("XPENDING", *r);
  co_return out;
}

asio::awaitable<Result<std::pair<std::string, std::vector<StreamEntry>>>> Client::xautoclaim(
    std::string stream, std::string group, std::string consumer, milliseconds min_idle, std::string start,
    size_t count) {
  std::vector<std::string> argv{"XAUTOCLAIM",
                                std::move(stream),
                                std::move(group),
                                std::move(consumer),
                                std::to_string(min_idle.count()),
                                std::move(start),
                                "COUNT",
                                std::to_string(count)};
  Result<Value> r = co_await run(std::move(argv), std::nullopt);
  if (!r) co_return r.take_error();
  // [next-cursor, [entry, ...]] (6.2), plus [deleted-id, ...] (7.0)
  std::pair<std::string, std::vector<StreamEntry>> out;
  if (!r->is_array() || r->as_array().size() < 2 || !r->as_array()[0].is_string() ||
      !detail::parse_entries(r->as_array()[1], out.second)) {
    co_return detail::unexpected_reply("XAUTOCLAIM", *r);
  }
  out.first = r->as_array()[0].as_string();
  co_return out;
}

std::string Client::metrics_text() const {
  const detail::Metrics& m = *impl_->metrics_;
  std::string out;
  auto metric = [&](const char* name, const char* help, const char* type) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto sample = [&](std::string series, auto value) { out += series + " " + std::to_string(value) + "\n"; };
  metric("anvil_redis_commands_total", "Commands issued to the Redis client.", "counter");
  sample("anvil_redis_commands_total", m.commands.load());
  metric("anvil_redis_errors_total", "Commands that completed with an error, by error code.", "counter");
  sample("anvil_redis_errors_total{code=\"unavailable\"}", m.unavailable.load());
  sample("anvil_redis_errors_total{code=\"timeout\"}", m.timeouts.load());
  sample("anvil_redis_errors_total{code=\"command_failed\"}", m.command_failed.load());
  sample("anvil_redis_errors_total{code=\"other\"}", m.other_errors.load());
  metric("anvil_redis_reconnects_total", "Times the shared connection was re-established.", "counter");
  sample("anvil_redis_reconnects_total", m.reconnects.load());
  metric("anvil_redis_connections_lost_total", "Times an established shared connection dropped.", "counter");
  sample("anvil_redis_connections_lost_total", m.connections_lost.load());
  metric("anvil_redis_connected", "1 while the shared connection is up.", "gauge");
  sample("anvil_redis_connected", m.connected.load() ? 1 : 0);
  metric("anvil_redis_blocking_connections", "Open connections for blocking reads (idle or in use).", "gauge");
  sample("anvil_redis_blocking_connections", m.blocking_connections.load());
  return out;
}

}  // namespace anvil::redis

// Test support for the events tests: a private Postgres schema with the
// growqr migrations, an in-process node (real RocksDB) holding
// userEventActor and TEST-ONLY mission actors, Services with a real pool and
// Redis client, and an AppHost to call routes and run the services.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "actors/growqr/events/consumer.hpp"
#include "actors/growqr/events/events.hpp"
#include "anvil_migrations/growqr.hpp"
#include "base/value/json.hpp"
#include "runtime/app_host.hpp"
#include "runtime/test_node.hpp"
#include "tests/support/own_redis.hpp"
#include "storage/pg/migrations.hpp"
#include "storage/pg/test_db.hpp"
#include "storage/redis/client.hpp"

extern char** environ;

namespace anvil::growqr::testing {

using namespace std::chrono_literals;

inline std::string redis_url() {
  const char* u = std::getenv("ANVIL_REDIS_URL");
  return u ? u : "";
}

// ------------------------------------------------------------ TEST-ONLY missions
//
// The real registry (find_mission_type) belongs to missions/; these tests
// resolve through their own, which maps mission types to the actors below.
inline std::atomic<bool>& late_type_registered() {
  static std::atomic<bool> v{false};
  return v;
}

inline const MissionType* test_mission_registry(std::string_view type) {
  static const MissionType interview{"interview-to-offer", "testMission", "Interview to offer"};
  static const MissionType flaky{"flaky", "flakyMission", "Fails its first two calls"};
  static const MissionType late{"late", "testMission", "Registered during the test"};
  static const MissionType slow{"slow", "slowMission", "Answers its first call after 4 s"};
  if (type == interview.type) return &interview;
  if (type == slow.type) return &slow;
  if (type == flaky.type) return &flaky;
  if (type == late.type && late_type_registered().load()) return &late;
  return nullptr;
}

// applyGrowEvent, idempotent by dedupeKey: `calls` counts deliveries,
// `effects` distinct events applied. The first `failures_first` calls fail;
// the first call answers only after `first_delay`.
inline Task<Result<Value>> apply_test_mission_event(ActionContext& c, Array args, int64_t failures_first,
                                                    std::chrono::milliseconds first_delay) {
  const int64_t call = c.state().find("calls")->as_int() + 1;
  c.mutate_state()["calls"] = call;
  if (call == 1 && first_delay.count() > 0) {
    auto st = co_await c.sleep_for(first_delay);
    if (!st.ok()) co_return st.error();
  }
  if (call <= failures_first) co_return user_error("mission is not ready", "not_ready");
  const std::string key = args.at(0).find("dedupeKey")->as_string();
  Value& s = c.mutate_state();
  if (!s["seen"].find(key)) {
    s["seen"][key] = true;
    s["effects"] = s["effects"].as_int() + 1;
  }
  co_return obj({{"dedupeKey", key}});
}

inline ActorDefinition test_mission_actor(const std::string& name, int64_t failures_first,
                                          std::chrono::milliseconds first_delay = std::chrono::milliseconds(0)) {
  ActorDefinition def(name);
  def.initial_state(obj({{"calls", 0}, {"effects", 0}, {"seen", Object{}}}))
      .async_action(kMissionEventAction,
                    [failures_first, first_delay](ActionContext& c, Array args) {
                      return apply_test_mission_event(c, std::move(args), failures_first, first_delay);
                    })
      .action("stats", [](ActionContext& c, const Array&) -> Result<Value> {
        return obj({{"calls", *c.state().find("calls")}, {"effects", *c.state().find("effects")}});
      });
  return def;
}

// ------------------------------------------------------------ own redis-server

using anvil::testing::free_port;

// A throwaway redis-server with an fsync-always AOF in its own directory, so
// a SIGKILL and a restart on the same port keep every acknowledged write.
class OwnRedis : public anvil::testing::OwnRedis {
 public:
  OwnRedis() : anvil::testing::OwnRedis({"--appendonly", "yes", "--appendfsync", "always"}) {}
};

// A TCP forwarder to 127.0.0.1:<upstream> on a port of its own: stop()
// closes the listener and every forwarded connection (the server "goes
// down" for the client), start() listens again on the same port.
class TcpProxy {
 public:
  explicit TcpProxy(int upstream) : upstream_(static_cast<uint16_t>(upstream)), port_(free_port()) {
    thread_ = std::thread([this] { io_.run(); });
    start();
  }
  ~TcpProxy() {
    stop();
    work_.reset();
    io_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  void start() {
    on_io([this] {
      acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(io_);
      asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port_));
      acceptor_->open(ep.protocol());
      acceptor_->set_option(asio::socket_base::reuse_address(true));
      acceptor_->bind(ep);
      acceptor_->listen();
      accept();
    });
  }
  void stop() {
    on_io([this] {
      if (acceptor_) acceptor_->close();
      acceptor_.reset();
      for (auto& s : sockets_) {
        boost::system::error_code ec;
        s->close(ec);
      }
      sockets_.clear();
    });
  }

 private:
  using Socket = std::shared_ptr<asio::ip::tcp::socket>;
  void on_io(std::function<void()> fn) {
    std::promise<void> done;
    asio::post(io_, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  void accept() {
    auto client = std::make_shared<asio::ip::tcp::socket>(io_);
    acceptor_->async_accept(*client, [this, client](boost::system::error_code ec) {
      if (ec) return;
      auto server = std::make_shared<asio::ip::tcp::socket>(io_);
      boost::system::error_code cec;
      server->connect({asio::ip::make_address("127.0.0.1"), upstream_}, cec);
      if (cec) {
        client->close(cec);
      } else {
        sockets_.push_back(client);
        sockets_.push_back(server);
        pipe(client, server);
        pipe(server, client);
      }
      if (acceptor_) accept();
    });
  }
  void pipe(Socket from, Socket to) {
    auto buf = std::make_shared<std::array<char, 16384>>();
    from->async_read_some(asio::buffer(*buf), [this, from, to, buf](boost::system::error_code ec, size_t n) {
      if (ec) {
        to->close(ec);
        return;
      }
      asio::async_write(*to, asio::buffer(*buf, n), [this, from, to, buf](boost::system::error_code wec, size_t) {
        if (wec) {
          from->close(wec);
          return;
        }
        pipe(from, to);
      });
    });
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  uint16_t upstream_;
  int port_;
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  std::vector<Socket> sockets_;
  std::thread thread_;
};

// ------------------------------------------------------------ the fixture

class EventsTest : public pg::testing::SchemaTest {
 protected:
  void SetUp() override {
    SchemaTest::SetUp();
    if (IsSkipped() || HasFailure()) return;
    if (redis_url().empty()) {
      if (pg::testing::in_ci()) FAIL() << "ANVIL_REDIS_URL is not set (CI)";
      GTEST_SKIP() << "ANVIL_REDIS_URL is not set; eval \"$(scripts/services.sh env)\"";
    }
    late_type_registered() = false;
    pool_ = make_pool(4);
    auto st = pg::apply_migrations(*pool_, "growqr", pg::embedded::growqr());
    ASSERT_TRUE(st.ok()) << st.error().message;
    static std::atomic<int> n{0};
    tag_ = std::to_string(::getpid()) + "-" + std::to_string(n++) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
    stream_ = "anvil-test:grow:events:" + tag_;
    dlq_stream_ = stream_ + ":dlq";
    dir_ = anvil::testing::temp_dir("events-" + tag_);
  }

  // Builds node, app and host. `redis` overrides ANVIL_REDIS_URL.
  void boot(std::map<std::string, std::string> config = {}, std::string redis = "") {
    EventsOptions o;
    o.resolve_mission = test_mission_registry;
    o.max_attempts = max_attempts_;
    o.retry_backoff = 50ms;
    o.max_retry_backoff = 400ms;
    o.mission_timeout = 3s;
    o.watchdog_ms = 5000;
    app_ = std::make_unique<AppDefinition>("growqr-events-test");
    add_events(*app_, std::move(o));
    registry_ = std::make_unique<Registry>();
    for (auto& d : app_->actors()) registry_->add(d);
    registry_->add(test_mission_actor("testMission", 0));
    registry_->add(test_mission_actor("flakyMission", 2));
    registry_->add(test_mission_actor("slowMission", 0, 4s));  // longer than the 3 s mission timeout
    node_ = std::make_unique<anvil::testing::Node>(dir_, *registry_);
    redis_ = std::make_unique<redis::Client>(node_->io(), redis::Options{redis.empty() ? redis_url() : redis});
    Services s;
    s.pg = app_pool_ ? app_pool_.get() : pool_.get();
    s.redis = redis_.get();
    node_->rt().set_services(s);
    if (!config.count("GROWQR_ENV")) config["GROWQR_ENV"] = "development";
    config_ = config;
    host_ = std::make_unique<AppHost>(node_->rt(), config);
    host_->add(*app_);
  }

  void TearDown() override {
    if (host_) host_->stop();
    for (auto& f : services_) f.wait_for(10s);
    services_.clear();
    host_.reset();
    redis_.reset();
    // The pools go between halt() and the node (runtime/test_node.hpp):
    // statements still in flight complete into the halted node.
    if (node_) node_->halt();
    app_pool_.reset();
    pool_.reset();
    node_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    SchemaTest::TearDown();
  }

  // The base URL's port (the shared Postgres), for a TcpProxy in front of it.
  int postgres_port() const {
    auto at = base_url_.find('@');
    auto colon = base_url_.find(':', at == std::string::npos ? 11 : at);
    return std::stoi(base_url_.substr(colon + 1));
  }
  // This test's schema through 127.0.0.1:<port> instead.
  std::string schema_url_via(int port) const {
    auto at = base_url_.find('@');
    auto colon = base_url_.find(':', at == std::string::npos ? 11 : at);
    auto slash = base_url_.find('/', colon);
    return pg::testing::url_with_schema(
        base_url_.substr(0, colon + 1) + std::to_string(port) + base_url_.substr(slash), schema_);
  }

  ConsumerConfig consumer(const std::string& name) {
    ConsumerConfig c;
    c.stream = stream_;
    c.dlq_stream = dlq_stream_;
    c.group = "anvil";
    c.consumer = name;
    c.block = 100ms;
    c.claim_idle = 30s;
    c.retry_backoff = 50ms;
    c.max_retry_backoff = 200ms;
    c.max_deliveries = 5;
    return c;
  }
  std::shared_future<Status> start_consumer(ConsumerConfig c) {
    auto f = asio::co_spawn(node_->io(), run_consumer(*host_, std::move(c)), asio::use_future).share();
    services_.push_back(f);
    return f;
  }

  AppResponse request(const std::string& method, const std::string& path, const std::string& body = "",
                      std::vector<std::pair<std::string, std::string>> headers = {}, AppHost* host = nullptr) {
    AppRequest req;
    req.method = method;
    auto q = path.find('?');
    req.path = path.substr(0, q);
    if (q != std::string::npos) req.query = path.substr(q + 1);
    req.body = body;
    req.headers = std::move(headers);
    req.request_id = "test-" + tag_;
    auto r = node_->run((host ? host : host_.get())->handle(std::move(req)));
    if (!r) return AppResponse{404, {}, "no route"};
    return *r;
  }
  Value post_event(const Value& ev, int expect_status = 202) {
    auto r = request("POST", "/events", json::dump(ev));
    EXPECT_EQ(r.status, expect_status) << r.body;
    return json::parse(r.body, false).value();
  }

  Array rows(const std::string& sql, Array params = {}) {
    auto r = pg::query_sync(*pool_, sql, std::move(params));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message) << " in " << sql;
    return r.ok() ? r->rows : Array{};
  }
  int64_t count(const std::string& sql, Array params = {}) {
    auto r = rows(sql, std::move(params));
    return r.empty() ? -1 : r[0].as_object().front().second.as_int();
  }

  Value mission_stats(const std::string& actor, const std::string& user, const std::string& instance) {
    auto id = node_->get_or_create(actor, {user, instance});
    auto r = node_->call(id, "stats");
    return r.ok() ? *r : Value();
  }

  // Polls until `pred` holds or `timeout` passes.
  bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 15s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (pred()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return pred();
  }

  std::string status_of(const std::string& dedupe_key) {
    auto r = rows("SELECT processing_status FROM grow_events WHERE dedupe_key = $1", {dedupe_key});
    return r.empty() ? "" : r[0].find("processing_status")->as_string();
  }

  Result<std::string> xadd(const std::string& event_text, redis::Client* client = nullptr) {
    std::vector<std::pair<std::string, std::string>> fields{{"event", event_text}};
    return node_->run((client ? client : redis_.get())->xadd(stream_, fields));
  }
  Result<std::string> xadd_fields(std::vector<std::pair<std::string, std::string>> fields) {
    return node_->run(redis_->xadd(stream_, std::move(fields)));
  }
  int64_t pending_count() {
    auto r = node_->run(redis_->xpending(stream_, "anvil"));
    return r.ok() ? r->count : -1;
  }
  int64_t stream_len(const std::string& stream) {
    auto r = node_->run(redis_->command({"XLEN", stream}));
    return r.ok() && r->is_int() ? r->as_int() : -1;
  }

  static Value grow_event(const std::string& id, const std::string& user, std::optional<std::string> mission_type = {},
                          std::optional<std::string> instance = {}, Value payload = Object{}) {
    Value e = obj({{"id", id},
                   {"type", "service.session.updated"},
                   {"userId", user},
                   {"occurredAt", "2026-03-01T10:00:00Z"},
                   {"payload", std::move(payload)}});
    if (mission_type) e["missionType"] = *mission_type;
    if (instance) e["missionInstanceId"] = *instance;
    return e;
  }

  int64_t max_attempts_ = 5;
  std::string tag_, stream_, dlq_stream_, dir_;
  std::map<std::string, std::string> config_;
  std::unique_ptr<pg::Pool> pool_;      // this test's schema; the tests' own queries
  std::unique_ptr<pg::Pool> app_pool_;  // when set (before boot), what the app uses instead
  std::unique_ptr<AppDefinition> app_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<anvil::testing::Node> node_;
  std::unique_ptr<redis::Client> redis_;
  std::unique_ptr<AppHost> host_;
  std::vector<std::shared_future<Status>> services_;
};

}  // namespace anvil::growqr::testing

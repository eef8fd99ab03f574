#include "storage/redis/client.hpp"
#include "tests/support/own_redis.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <thread>

#include <gtest/gtest.h>

extern char** environ;

using namespace anvil;
using namespace anvil::redis;
using namespace std::chrono_literals;
using anvil::testing::accepts_connections;
using anvil::testing::free_port;
using anvil::testing::OwnRedis;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using Strand = asio::strand<asio::io_context::executor_type>;
using Fields = std::vector<std::pair<std::string, std::string>>;

namespace {

// The shared test Redis: `eval "$(scripts/services.sh start)"` exports it.
std::string shared_url() {
  const char* url = std::getenv("ANVIL_REDIS_URL");
  return url != nullptr ? url : "";
}

bool in_ci() { return std::getenv("CI") != nullptr; }

#define REQUIRE_SHARED_REDIS()                                                                   \
  do {                                                                                          \
    if (shared_url().empty()) {                                                                 \
      if (in_ci()) FAIL() << "ANVIL_REDIS_URL is not set (required when CI is set)";            \
      GTEST_SKIP() << "ANVIL_REDIS_URL is not set (eval \"$(scripts/services.sh start)\")";     \
    }                                                                                           \
  } while (0)

#define REQUIRE_REDIS_SERVER_BINARY()                                                           \
  do {                                                                                          \
    if (std::system("command -v redis-server >/dev/null 2>&1") != 0) {                          \
      if (in_ci()) FAIL() << "redis-server is not installed (required when CI is set)";         \
      GTEST_SKIP() << "redis-server is not installed";                                          \
    }                                                                                           \
  } while (0)

// A stream/key name no other test (or test run) uses.
std::string unique_name(const std::string& what) {
  static std::atomic<int> counter{0};
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  return "anvil-test:" + std::string(test != nullptr ? test->name() : "none") + ":" + what + ":" +
         std::to_string(::getpid()) + ":" + std::to_string(Clock::now().time_since_epoch().count()) + ":" +
         std::to_string(counter++);
}

// A node-like io_context: two threads run it; the test thread drives
// awaitables to completion.
class RedisClientTest : public ::testing::Test {
 protected:
  RedisClientTest() {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }

  ~RedisClientTest() override {
    if (!threads_.empty()) drain();
  }

  // Every client is gone by now: the loop must run out of work by itself (no
  // timer, socket wait or completion left behind).
  void TearDown() override { EXPECT_TRUE(drain()) << "io_context still busy 5 s after the clients were destroyed"; }

  template <typename T>
  T await(asio::awaitable<T> op) {
    return asio::co_spawn(io_, std::move(op), asio::use_future).get();
  }

  template <typename T>
  std::future<T> spawn(asio::awaitable<T> op) {
    return asio::co_spawn(io_, std::move(op), asio::use_future);
  }

  Options shared_options() const { return Options{shared_url()}; }

  // Polls until the client's shared connection is up.
  static bool wait_connected(const Client& client, milliseconds limit = 5s) {
    auto deadline = Clock::now() + limit;
    while (!client.connected()) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }

  asio::io_context io_;

 private:
  bool drain() {
    work_.reset();
    auto deadline = Clock::now() + 5s;
    while (!io_.stopped() && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
    bool clean = io_.stopped();
    io_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    return clean;
  }

  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::vector<std::thread> threads_;
};

int64_t elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - since).count();
}

// Runs a mix of commands from a coroutine on strand `s` and counts the
// completions that resumed anywhere but on `s` (or did not succeed as expected).
asio::awaitable<int> completions_off_strand(Client& c, Strand s, std::string stream) {
  // GCC 12 miscompiles brace-initialised temporaries inside co_await
  // expressions: every argument is a named variable.
  const std::vector<std::string> ping{"PING"};
  const std::vector<std::string> bad{"NOSUCHCOMMAND"};
  int foreign = 0;
  for (int i = 0; i < 20; ++i) {
    auto pong = co_await c.command(ping);
    foreign += !s.running_in_this_thread() || !pong.ok();
    auto created = co_await c.xgroup_create(stream, "g");
    foreign += !s.running_in_this_thread() || !created.ok();
    Fields fields{{"i", std::to_string(i)}};
    auto id = co_await c.xadd(stream, std::move(fields));
    foreign += !s.running_in_this_thread() || !id.ok();
    auto read = co_await c.xreadgroup("g", "c", stream, 10, milliseconds(50));
    foreign += !s.running_in_this_thread() || !read.ok();
    auto error = co_await c.command(bad);
    foreign += !s.running_in_this_thread() || error.ok();
  }
  co_return foreign;
}

// Writes 4 MiB values until a command fails; returns how many succeeded.
asio::awaitable<int> write_until_failure(Client& c) {
  const std::vector<std::string> set_big{"SET", "big", std::string(4 << 20, 'x')};
  for (int i = 0; i < 1000; ++i) {
    auto r = co_await c.command(set_big);
    if (!r.ok()) co_return i;
  }
  co_return -1;
}

// Keeps writing 256 KiB values for `rounds` commands, failures included.
asio::awaitable<int> write_regardless(Client& c, int rounds) {
  const std::vector<std::string> set_big{"SET", "big", std::string(256 << 10, 'x')};
  int failed = 0;
  for (int i = 0; i < rounds; ++i) {
    auto r = co_await c.command(set_big);
    failed += !r.ok();
    if (!r.ok()) {
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(5));
      co_await t.async_wait(asio::use_awaitable);
    }
  }
  co_return failed;
}

// Closes the connection gracefully (QUIT) over and over while writers run.
asio::awaitable<int> quit_repeatedly(Client& c, int times) {
  const std::vector<std::string> quit{"QUIT"};
  int done = 0;
  for (int i = 0; i < times; ++i) {
    auto r = co_await c.command(quit);
    done += r.ok();
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(150));
    co_await t.async_wait(asio::use_awaitable);
  }
  co_return done;
}

}  // namespace

// --- URLs --------------------------------------------------------------------

TEST(RedisUrl, HostPortAndDefaults) {
  auto ep = parse_url("redis://127.0.0.1:63799");
  ASSERT_TRUE(ep.ok()) << ep.error().message;
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->port, 63799);
  EXPECT_EQ(ep->db, 0);
  EXPECT_TRUE(ep->password.empty());
  EXPECT_EQ(parse_url("redis://cache")->port, 6379);
  EXPECT_EQ(parse_url("redis://cache/")->db, 0);
}

TEST(RedisUrl, PasswordUserAndDatabase) {
  auto ep = parse_url("redis://:s3cret@localhost:6380/2");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->password, "s3cret");
  EXPECT_TRUE(ep->user.empty());
  EXPECT_EQ(ep->db, 2);
  auto acl = parse_url("redis://worker:p%40ss%3Aword@10.0.0.5/15");
  ASSERT_TRUE(acl.ok());
  EXPECT_EQ(acl->user, "worker");
  EXPECT_EQ(acl->password, "p@ss:word");
  EXPECT_EQ(acl->db, 15);
  EXPECT_EQ(acl->display(), "10.0.0.5:6379/15");
}

TEST(RedisUrl, BracketedIpv6Host) {
  auto ep = parse_url("redis://[::1]:7000/1");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->host, "::1");
  EXPECT_EQ(ep->port, 7000);
  EXPECT_EQ(ep->display(), "[::1]:7000/1");
}

TEST(RedisUrl, MalformedUrlsAreInvalidAndNeverEchoThePassword) {
  for (const char* bad : {"http://host", "redis://", "redis://host:0", "redis://host:99999", "redis://host:x",
                          "redis://host/db", "rediss://host", "redis://s3cret@host", "redis://[::1",
                          "redis://:s3cret@host:abc", "redis://host?timeout=1"}) {
    auto ep = parse_url(bad);
    ASSERT_FALSE(ep.ok()) << bad;
    EXPECT_EQ(ep.error().qualified(), "redis.invalid_url") << bad;
    EXPECT_EQ(ep.error().message.find("s3cret"), std::string::npos) << bad;
  }
  EXPECT_EQ(parse_url("").error().qualified(), "redis.not_configured");
}

TEST_F(RedisClientTest, AnInvalidUrlFailsEveryCommandWithInvalidUrl) {
  Client client(io_, Options{"redis://host:notaport"});
  auto r = await(client.command({"PING"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "redis.invalid_url");
  EXPECT_FALSE(client.connected());
}

// --- commands on the shared Redis ---------------------------------------------

TEST_F(RedisClientTest, XaddThenXreadgroupDeliversTheEntryAndXackAcknowledgesIt) {
  REQUIRE_SHARED_REDIS();
  Client client(io_, shared_options());
  auto stream = unique_name("stream");
  ASSERT_TRUE(await(client.xgroup_create(stream, "ingest")).ok());

  auto id = await(client.xadd(stream, Fields{{"kind", "scan"}, {"payload", std::string("a\0b", 3)}}));
  ASSERT_TRUE(id.ok()) << id.error().message;

  auto read = await(client.xreadgroup("ingest", "worker-1", stream, 10, std::nullopt));
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(read->front().id, *id);
  EXPECT_EQ(read->front().fields, (Fields{{"kind", "scan"}, {"payload", std::string("a\0b", 3)}}));

  auto again = await(client.xreadgroup("ingest", "worker-1", stream, 10, std::nullopt));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty()) << "a delivered entry is not delivered twice with '>'";

  auto acked = await(client.xack(stream, "ingest", {*id}));
  ASSERT_TRUE(acked.ok());
  EXPECT_EQ(*acked, 1);
  auto pending = await(client.xpending(stream, "ingest"));
  ASSERT_TRUE(pending.ok()) << pending.error().message;
  EXPECT_EQ(pending->count, 0);
  EXPECT_TRUE(pending->consumers.empty());

  EXPECT_TRUE(await(client.command({"DEL", stream})).ok());
}

TEST_F(RedisClientTest, XaddTrimsApproximatelyToMaxlen) {
  REQUIRE_SHARED_REDIS();
  Client client(io_, shared_options());
  auto stream = unique_name("capped");
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(await(client.xadd(stream, Fields{{"i", std::to_string(i)}}, 100)).ok());
  auto len = await(client.command({"XLEN", stream}));
  ASSERT_TRUE(len.ok());
  EXPECT_LT(len->as_int(), 300);
  EXPECT_GE(len->as_int(), 100);
  EXPECT_TRUE(await(client.command({"DEL", stream})).ok());
}

TEST_F(RedisClientTest, CreatingAConsumerGroupTwiceSucceeds) {
  REQUIRE_SHARED_REDIS();
  Client client(io_, shared_options());
  auto stream = unique_name("stream");
  auto first = await(client.xgroup_create(stream, "g", "0"));
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = await(client.xgroup_create(stream, "g", "0"));
  EXPECT_TRUE(second.ok()) << second.error().message;
  EXPECT_TRUE(await(client.command({"DEL", stream})).ok());
}

TEST_F(RedisClientTest, AnUnackedEntryIsPendingAndXautoclaimHandsItToAnotherConsumerAfterMinIdle) {
  REQUIRE_SHARED_REDIS();
  Client client(io_, shared_options());
  auto stream = unique_name("stream");
  ASSERT_TRUE(await(client.xgroup_create(stream, "g")).ok());
  auto id = await(client.xadd(stream, Fields{{"n", "1"}}));
  ASSERT_TRUE(id.ok());
  auto read = await(client.xreadgroup("g", "crashed", stream, 1, std::nullopt));
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 1u);

  auto summary = await(client.xpending(stream, "g"));
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->count, 1);
  EXPECT_EQ(summary->min_id, *id);
  EXPECT_EQ(summary->max_id, *id);
  EXPECT_EQ(summary->consumers, (std::vector<std::pair<std::string, int64_t>>{{"crashed", 1}}));

  auto range = await(client.xpending_range(stream, "g", "-", "+", 10));
  ASSERT_TRUE(range.ok()) << range.error().message;
  ASSERT_EQ(range->size(), 1u);
  EXPECT_EQ(range->front().id, *id);
  EXPECT_EQ(range->front().consumer, "crashed");
  EXPECT_EQ(range->front().deliveries, 1);

  auto too_soon = await(client.xautoclaim(stream, "g", "rescuer", 300ms));
  ASSERT_TRUE(too_soon.ok()) << too_soon.error().message;
  EXPECT_TRUE(too_soon->second.empty()) << "not idle for 300 ms yet";

  std::this_thread::sleep_for(350ms);
  auto idle = await(client.xpending_range(stream, "g", "-", "+", 10, 300ms));
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(idle->size(), 1u);
  EXPECT_GE(idle->front().idle_ms, 300);

  auto claimed = await(client.xautoclaim(stream, "g", "rescuer", 300ms));
  ASSERT_TRUE(claimed.ok()) << claimed.error().message;
  EXPECT_EQ(claimed->first, "0-0");
  ASSERT_EQ(claimed->second.size(), 1u);
  EXPECT_EQ(claimed->second.front().id, *id);
  EXPECT_EQ(claimed->second.front().fields, (Fields{{"n", "1"}}));

  auto after = await(client.xpending_range(stream, "g", "-", "+", 10));
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ(after->front().consumer, "rescuer");
  EXPECT_EQ(after->front().deliveries, 2);

  EXPECT_EQ(*await(client.xack(stream, "g", {*id})), 1);
  EXPECT_TRUE(await(client.command({"DEL", stream})).ok());
}

TEST_F(RedisClientTest, ABlockingReadDoesNotDelayAConcurrentXaddOnTheSameClient) {
  REQUIRE_SHARED_REDIS();
  Client client(io_, shared_options());
  auto quiet = unique_name("quiet");
  auto busy = unique_name("busy");
  ASSERT_TRUE(await(client.xgroup_create(quiet, "g")).ok());

  auto started = Clock::now();
  auto blocked = spawn(client.xreadgroup("g", "c", quiet, 1, 1000ms));
  std::this_thread::sleep_for(100ms);  // the read is parked in the server now

  auto t0 = Clock::now();
  auto id = await(client.xadd(busy, Fields{{"k", "v"}}));
  auto xadd_ms = elapsed_ms(t0);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_LT(xadd_ms, 250) << "the xadd waited behind the blocking read";
  EXPECT_EQ(blocked.wait_for(0s), std::future_status::timeout) << "the read should still be blocked";

  auto read = blocked.get();
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_TRUE(read->empty());
  EXPECT_GE(elapsed_ms(started), 900);

  EXPECT_TRUE(await(client.command({"DEL", quiet, busy})).ok());
}

TEST_F(RedisClientTest, ABlockedReadReturnsAnEntryAddedWhileItWaitsAndItsConnectionIsReused) {
  REQUIRE_SHARED_REDIS();
  Client client(io_, shared_options());
  auto stream = unique_name("stream");
  ASSERT_TRUE(await(client.xgroup_create(stream, "g")).ok());
  for (int round = 0; round < 3; ++round) {
    auto blocked = spawn(client.xreadgroup("g", "c", stream, 10, 5000ms));
    std::this_thread::sleep_for(100ms);
    auto t0 = Clock::now();
    auto id = await(client.xadd(stream, Fields{{"round", std::to_string(round)}}));
    ASSERT_TRUE(id.ok());
    auto read = blocked.get();
    EXPECT_LT(elapsed_ms(t0), 1000);
    ASSERT_TRUE(read.ok()) << read.error().message;
    ASSERT_EQ(read->size(), 1u);
    EXPECT_EQ(read->front().id, *id);
  }
  EXPECT_NE(client.metrics_text().find("anvil_redis_blocking_connections 1\n"), std::string::npos)
      << client.metrics_text();
  EXPECT_TRUE(await(client.command({"DEL", stream})).ok());
}

TEST_F(RedisClientTest, AServerErrorReplyIsCommandFailedWithTheServerMessage) {
  REQUIRE_SHARED_REDIS();
  Client client(io_, shared_options());
  auto stream = unique_name("stream");
  auto no_group = await(client.xreadgroup("missing", "c", stream, 1, std::nullopt));
  ASSERT_FALSE(no_group.ok());
  EXPECT_EQ(no_group.error().qualified(), "redis.command_failed");
  EXPECT_EQ(no_group.error().message.rfind("NOGROUP", 0), 0u) << no_group.error().message;
  ASSERT_TRUE(no_group.error().metadata.has_value());
  EXPECT_EQ(*no_group.error().metadata, obj({{"command", "XREADGROUP"}, {"reply_code", "NOGROUP"}}));

  auto key = unique_name("string");
  ASSERT_TRUE(await(client.command({"SET", key, "x"})).ok());
  auto wrong_type = await(client.command({"lpush", key, "y"}));
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(wrong_type.error().qualified(), "redis.command_failed");
  EXPECT_EQ(wrong_type.error().message.rfind("WRONGTYPE", 0), 0u) << wrong_type.error().message;
  EXPECT_EQ(*wrong_type.error().metadata, obj({{"command", "LPUSH"}, {"reply_code", "WRONGTYPE"}}));

  auto ok_after = await(client.command({"GET", key}));
  ASSERT_TRUE(ok_after.ok()) << "an error reply does not hurt the connection";
  EXPECT_EQ(*ok_after, Value("x"));
  EXPECT_NE(client.metrics_text().find("anvil_redis_errors_total{code=\"command_failed\"} 2\n"), std::string::npos)
      << client.metrics_text();
  EXPECT_TRUE(await(client.command({"DEL", key})).ok());
}

TEST_F(RedisClientTest, GenericCommandRepliesMapToValues) {
  REQUIRE_SHARED_REDIS();
  Client client(io_, shared_options());
  auto key = unique_name("key");
  auto list = unique_name("list");
  EXPECT_EQ(*await(client.command({"SET", key, std::string("\x00\xff", 2)})), Value("OK"));
  EXPECT_EQ(*await(client.command({"GET", key})), Value(std::string("\x00\xff", 2)));
  EXPECT_EQ(*await(client.command({"GET", unique_name("absent")})), Value(nullptr));
  EXPECT_EQ(*await(client.command({"RPUSH", list, "a", "b"})), Value(2));
  EXPECT_EQ(*await(client.command({"LRANGE", list, "0", "-1"})), arr({"a", "b"}));
  EXPECT_EQ(*await(client.command({"DEL", key, list})), Value(2));
}

TEST_F(RedisClientTest, CompletionsResumeOnTheCallersStrand) {
  REQUIRE_SHARED_REDIS();
  Client client(io_, shared_options());
  auto stream = unique_name("stream");
  Strand strand = asio::make_strand(io_);
  int foreign = asio::co_spawn(strand, completions_off_strand(client, strand, stream), asio::use_future).get();
  EXPECT_EQ(foreign, 0);
  EXPECT_TRUE(await(client.command({"DEL", stream})).ok());
}

TEST_F(RedisClientTest, ACommandWithoutAReplyWithinTheTimeoutFailsWithTimeout) {
  REQUIRE_SHARED_REDIS();
  Options opts = shared_options();
  opts.command_timeout = 200ms;
  Client client(io_, opts);
  ASSERT_TRUE(await(client.command({"PING"})).ok());
  // BLPOP through command() parks the shared connection for a second: exactly
  // what the header says not to do, used here to make a reply late.
  auto t0 = Clock::now();
  auto r = await(client.command({"BLPOP", unique_name("empty"), "1"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "redis.timeout");
  EXPECT_GE(elapsed_ms(t0), 190);
  EXPECT_LT(elapsed_ms(t0), 900);
  std::this_thread::sleep_for(1000ms);  // the late reply arrives and is dropped
  auto pong = await(client.command({"PING"}));
  ASSERT_TRUE(pong.ok()) << pong.error().message;
  EXPECT_EQ(*pong, Value("PONG"));
}

TEST_F(RedisClientTest, DestroyingTheClientWithABlockedReadInFlightIsClean) {
  REQUIRE_SHARED_REDIS();
  auto client = std::make_unique<Client>(io_, shared_options());
  auto stream = unique_name("stream");
  ASSERT_TRUE(await(client->xgroup_create(stream, "g")).ok());
  auto blocked = spawn(client->xreadgroup("g", "c", stream, 1, 5000ms));
  auto pinged = spawn(client->command({"PING"}));
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(pinged.get().ok());

  auto t0 = Clock::now();
  client.reset();
  auto r = blocked.get();
  EXPECT_LT(elapsed_ms(t0), 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "redis.unavailable");
  EXPECT_EQ(r.error().message, "redis client closed");

  Client cleanup(io_, shared_options());
  EXPECT_TRUE(await(cleanup.command({"DEL", stream})).ok());
  // TearDown checks that nothing of the destroyed client is left on the loop.
}

// --- connection loss ---------------------------------------------------------

TEST_F(RedisClientTest, NothingListeningFailsFastWithUnavailable) {
  Options opts{"redis://127.0.0.1:" + std::to_string(free_port())};
  Client client(io_, opts);
  for (int i = 0; i < 3; ++i) {
    auto t0 = Clock::now();
    auto r = await(client.command({"PING"}));
    EXPECT_LT(elapsed_ms(t0), 500);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().qualified(), "redis.unavailable") << r.error().message;
    auto blocking = await(client.xreadgroup("g", "c", "s", 1, 1000ms));
    ASSERT_FALSE(blocking.ok());
    EXPECT_EQ(blocking.error().qualified(), "redis.unavailable");
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_FALSE(client.connected());
  EXPECT_NE(client.metrics_text().find("anvil_redis_connected 0\n"), std::string::npos);
}

TEST_F(RedisClientTest, TheClientReconnectsByItselfAfterTheServerRestarts) {
  REQUIRE_REDIS_SERVER_BINARY();
  OwnRedis server;
  ASSERT_TRUE(server.start());
  Options opts{server.url()};
  opts.command_timeout = 1000ms;
  opts.max_backoff = 400ms;
  Client client(io_, opts);
  ASSERT_TRUE(wait_connected(client));
  ASSERT_EQ(*await(client.command({"SET", "k", "before"})), Value("OK"));

  server.kill();
  // The drop is seen at once (the kernel closes the socket); from then on
  // commands fail fast instead of queueing.
  Result<Value> down = Value(nullptr);
  auto deadline = Clock::now() + 2s;
  do {
    down = await(client.command({"GET", "k"}));
  } while (down.ok() && Clock::now() < deadline);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().qualified(), "redis.unavailable") << down.error().message;
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    auto r = await(client.command({"GET", "k"}));
    EXPECT_LT(elapsed_ms(t0), 300);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().qualified(), "redis.unavailable");
  }
  EXPECT_FALSE(client.connected());
  std::this_thread::sleep_for(1000ms);  // several failed attempts with backoff

  ASSERT_TRUE(server.start());
  ASSERT_TRUE(wait_connected(client, 3s)) << "no reconnect within 3 s (max backoff 400 ms)";
  auto after = await(client.command({"SET", "k", "after"}));
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ(*await(client.command({"GET", "k"})), Value("after"));
  auto metrics = client.metrics_text();
  EXPECT_NE(metrics.find("anvil_redis_reconnects_total 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("anvil_redis_connections_lost_total 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("anvil_redis_connected 1\n"), std::string::npos) << metrics;
}

TEST_F(RedisClientTest, CommandsInFlightWhenTheConnectionDropsFailWithUnavailable) {
  REQUIRE_REDIS_SERVER_BINARY();
  OwnRedis server;
  ASSERT_TRUE(server.start());
  Options opts{server.url()};
  opts.command_timeout = 10'000ms;
  Client client(io_, opts);
  ASSERT_TRUE(await(client.xgroup_create("s", "g")).ok());
  auto blocked_read = spawn(client.xreadgroup("g", "c", "s", 1, 5000ms));  // its own connection
  auto blocked_shared = spawn(client.command({"BLPOP", "list", "5"}));      // the shared one
  std::this_thread::sleep_for(200ms);

  auto t0 = Clock::now();
  server.kill();
  auto read = blocked_read.get();
  auto shared = blocked_shared.get();
  EXPECT_LT(elapsed_ms(t0), 1000);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().qualified(), "redis.unavailable") << read.error().message;
  ASSERT_FALSE(shared.ok());
  EXPECT_EQ(shared.error().qualified(), "redis.unavailable") << shared.error().message;
}

TEST_F(RedisClientTest, APasswordAndDatabaseInTheUrlAreAppliedOnConnect) {
  REQUIRE_REDIS_SERVER_BINARY();
  OwnRedis server({"--requirepass", "s3cret"});
  ASSERT_TRUE(server.start());

  Client client(io_, Options{server.url(":s3cret@", "/3")});
  auto info = await(client.command({"CLIENT", "INFO"}));
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_NE(info->as_string().find(" db=3 "), std::string::npos) << info->as_string();

  Client wrong(io_, Options{server.url(":nope@")});
  auto denied = await(wrong.command({"PING"}));
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.error().qualified(), "redis.unavailable");
  EXPECT_NE(denied.error().message.find("AUTH"), std::string::npos) << denied.error().message;
  EXPECT_EQ(denied.error().message.find("nope"), std::string::npos) << "the password leaked into the error";
  EXPECT_FALSE(wrong.connected());
}

TEST_F(RedisClientTest, WritesInProgressWhenTheServerDiesFailWithUnavailable) {
  REQUIRE_REDIS_SERVER_BINARY();
  OwnRedis server;
  ASSERT_TRUE(server.start());
  Client client(io_, Options{server.url()});
  ASSERT_TRUE(wait_connected(client));
  std::vector<std::future<int>> writers;
  for (int i = 0; i < 4; ++i) writers.push_back(spawn(write_until_failure(client)));
  std::this_thread::sleep_for(100ms);
  server.kill();
  for (auto& w : writers) EXPECT_GE(w.get(), 0) << "every writer sees the failure";
  auto r = await(client.command({"PING"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "redis.unavailable");
}

// A server that closes gracefully (QUIT) leaves the socket in CLOSE_WAIT; the
// next write draws an RST, and the write after that fails with EPIPE and
// raises SIGPIPE, whose default action ends the process (exit status 141).
// Without the client's SIGPIPE shield this test dies in most runs.
TEST_F(RedisClientTest, WritesRacingAGracefulServerCloseDoNotKillTheProcessWithSigpipe) {
  REQUIRE_REDIS_SERVER_BINARY();
  OwnRedis server;
  ASSERT_TRUE(server.start());
  Options opts{server.url()};
  opts.max_backoff = 100ms;
  Client client(io_, opts);
  ASSERT_TRUE(wait_connected(client));
  std::vector<std::future<int>> writers;
  auto quitter = spawn(quit_repeatedly(client, 20));
  for (int i = 0; i < 4; ++i) writers.push_back(spawn(write_regardless(client, 2000)));
  EXPECT_GT(quitter.get(), 0);
  for (auto& w : writers) w.get();
  ASSERT_TRUE(wait_connected(client));
  auto pong = await(client.command({"PING"}));
  EXPECT_TRUE(pong.ok()) << "reconnected after the last QUIT: " << pong.error().message;
}

// `anvil serve` stops its io_context before it destroys the client, so the
// client's posted shutdown never runs: everything is reclaimed when the
// io_context is destroyed, with a blocked read still parked (ASan-checked).
TEST(RedisClientTeardown, AClientOutlivingItsStoppedLoopIsReclaimedWithTheLoop) {
  REQUIRE_SHARED_REDIS();
  auto io = std::make_unique<asio::io_context>();
  auto work = asio::make_work_guard(*io);
  std::thread runner([&] { io->run(); });
  auto client = std::make_unique<Client>(*io, Options{shared_url()});
  auto stream = unique_name("stream");
  ASSERT_TRUE(asio::co_spawn(*io, client->xgroup_create(stream, "g"), asio::use_future).get().ok());
  auto blocked = asio::co_spawn(*io, client->xreadgroup("g", "c", stream, 1, 5000ms), asio::use_future);
  std::this_thread::sleep_for(200ms);

  io->stop();
  runner.join();
  work.reset();
  client.reset();
  io.reset();
  // The parked read never completes: its coroutine was destroyed with the loop.
  EXPECT_THROW(blocked.get(), std::future_error);

  asio::io_context cleanup_io;
  Client cleanup(cleanup_io, Options{shared_url()});
  auto del = asio::co_spawn(cleanup_io, cleanup.command({"DEL", stream}), asio::use_future);
  cleanup_io.run_for(2s);
  EXPECT_TRUE(del.get().ok());
}

#include "storage/pg/pool.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "storage/pg/test_db.hpp"

using namespace anvil;
using namespace anvil::pg;
using namespace std::chrono_literals;
using anvil::pg::testing::SchemaTest;

namespace {

// Runs a coroutine on a fresh io_context (one thread) to completion.
template <typename T>
T run_coroutine(asio::awaitable<T> aw) {
  asio::io_context io;
  std::optional<T> out;
  asio::co_spawn(io, std::move(aw), [&](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    out = std::move(v);
  });
  io.run();
  return std::move(*out);
}

asio::awaitable<Result<QueryResult>> query_once(Pool& pool, std::string sql, Array params) {
  Result<QueryResult> r = co_await pool.query(std::move(sql), std::move(params));
  co_return r;
}

asio::awaitable<Result<Value>> transaction_once(Pool& pool, std::function<Result<Value>(Tx&)> fn) {
  Result<Value> r = co_await pool.transaction(std::move(fn));
  co_return r;
}

Result<QueryResult> query(Pool& pool, std::string sql, Array params = {}) {
  return run_coroutine(query_once(pool, std::move(sql), std::move(params)));
}

Result<Value> transaction(Pool& pool, std::function<Result<Value>(Tx&)> fn) {
  return run_coroutine(transaction_once(pool, std::move(fn)));
}

int64_t count(Pool& pool, const std::string& table) {
  auto r = query_sync(pool, "SELECT count(*) AS n FROM " + table);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? r->rows.at(0).find("n")->as_int() : -1;
}

int unused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class PgPool : public SchemaTest {};

}  // namespace

TEST_F(PgPool, EveryParameterTypeRoundTripsThroughItsColumnType) {
  auto pool = make_pool();
  ASSERT_TRUE(query_sync(*pool,
                         "CREATE TABLE typed (b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric, "
                         "t text, v varchar(20), u uuid, j json, jb jsonb, by bytea, ts timestamptz, tsn timestamp, "
                         "nul text, undef int4, big int8)")
                  .ok());
  Value doc = obj({{"a", 1}, {"b", arr({"x", true, nullptr, 2.5})}, {"c", obj({{"d", "é"}})}});
  Array params{true,
               Value(int64_t{7}),
               Value(int64_t{70000}),
               Value(int64_t{9007199254740993}),
               1.5,
               0.1,
               12.25,
               "héllo 'quoted' $1",
               "var",
               "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
               doc,
               doc,
               Value(Bytes{0, 1, 0x7f, 0xff}),
               "2024-05-01T12:00:00.5+02:00",
               "2024-05-01 10:00:00",
               nullptr,
               Undefined{},
               BigInt::from_int64(-42)};
  auto ins = query(*pool,
                   "INSERT INTO typed VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, "
                   "$17, $18)",
                   params);
  ASSERT_TRUE(ins.ok()) << ins.error().message;
  EXPECT_EQ(ins->affected, 1);

  auto r = query(*pool, "SELECT * FROM typed");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(r->columns.front(), "b");
  const Value& row = r->rows[0];
  EXPECT_EQ(*row.find("b"), Value(true));
  EXPECT_TRUE(row.find("i2")->is_int());
  EXPECT_EQ(row.find("i2")->as_int(), 7);
  EXPECT_EQ(row.find("i4")->as_int(), 70000);
  EXPECT_EQ(row.find("i8")->as_int(), 9007199254740993);
  EXPECT_TRUE(row.find("f4")->is_double());
  EXPECT_EQ(row.find("f4")->as_double(), 1.5);
  EXPECT_EQ(row.find("f8")->as_double(), 0.1);
  EXPECT_TRUE(row.find("n")->is_double());
  EXPECT_EQ(row.find("n")->as_double(), 12.25);
  EXPECT_EQ(*row.find("t"), Value("héllo 'quoted' $1"));
  EXPECT_EQ(*row.find("v"), Value("var"));
  EXPECT_EQ(*row.find("u"), Value("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
  EXPECT_EQ(*row.find("j"), doc);
  EXPECT_EQ(*row.find("jb"), doc);
  EXPECT_EQ(*row.find("by"), Value(Bytes{0, 1, 0x7f, 0xff}));
  EXPECT_EQ(*row.find("ts"), Value("2024-05-01T10:00:00.5Z"));
  EXPECT_EQ(*row.find("tsn"), Value("2024-05-01T10:00:00"));
  EXPECT_TRUE(row.find("nul")->is_null());
  EXPECT_TRUE(row.find("undef")->is_null());
  EXPECT_EQ(row.find("big")->as_int(), -42);
}

TEST_F(PgPool, ResultTypesFollowTheColumnTypeOid) {
  auto pool = make_pool(1);
  auto r = query(*pool,
                 "SELECT $1::int8 + 1 AS sum, 'NaN'::float8 AS nan, '-Infinity'::float8 AS ninf, "
                 "0.1::numeric AS small, 12345678901234567890.123::numeric AS huge, NULL::int4 AS nothing, "
                 "false AS f, '[1, \"two\", {\"three\": 3}]'::jsonb AS doc, $2 AS untyped, 'infinity'::timestamptz AS "
                 "forever",
                 {Value(int64_t{41}), "text by default"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Value& row = r->rows.at(0);
  EXPECT_EQ(row.find("sum")->as_int(), 42);
  EXPECT_TRUE(std::isnan(row.find("nan")->as_double()));
  EXPECT_EQ(row.find("ninf")->as_double(), -INFINITY);
  EXPECT_EQ(*row.find("small"), Value(0.1));
  EXPECT_EQ(*row.find("huge"), Value("12345678901234567890.123"));
  EXPECT_TRUE(row.find("nothing")->is_null());
  EXPECT_EQ(*row.find("f"), Value(false));
  EXPECT_EQ(*row.find("doc"), arr({1, "two", obj({{"three", 3}})}));
  EXPECT_EQ(*row.find("untyped"), Value("text by default"));
  EXPECT_EQ(*row.find("forever"), Value("infinity"));
}

TEST_F(PgPool, AUniqueViolationIsQueryFailedWithItsSqlstate) {
  auto pool = make_pool(1);
  ASSERT_TRUE(query_sync(*pool, "CREATE TABLE u (id int PRIMARY KEY)").ok());
  ASSERT_TRUE(query(*pool, "INSERT INTO u VALUES ($1)", {1}).ok());
  auto r = query(*pool, "INSERT INTO u VALUES ($1)", {1});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "db.query_failed");
  EXPECT_NE(r.error().message.find("duplicate key value violates unique constraint"), std::string::npos)
      << r.error().message;
  ASSERT_TRUE(r.error().metadata.has_value());
  EXPECT_EQ(*r.error().metadata->find("sqlstate"), Value("23505"));
  EXPECT_NE(r.error().metadata->find("detail")->as_string().find("(id)=(1)"), std::string::npos);

  auto bad = query(*pool, "SELEC 1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(*bad.error().metadata->find("sqlstate"), Value("42601"));
  // The connection is still usable after server-side errors.
  EXPECT_TRUE(query(*pool, "SELECT 1").ok());
  EXPECT_TRUE(pool->healthy());
}

TEST_F(PgPool, AStatementOverTheTimeoutIsCancelledByTheServer) {
  Pool pool(PoolOptions{url_, 1, 5'000ms, 100ms});
  auto r = query(pool, "SELECT pg_sleep(2)");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "db.query_failed");
  EXPECT_EQ(*r.error().metadata->find("sqlstate"), Value("57014"));
  EXPECT_TRUE(query(pool, "SELECT 1").ok());
}

TEST_F(PgPool, ATransactionCommitsEveryStatementTogether) {
  auto pool = make_pool();
  ASSERT_TRUE(query_sync(*pool, "CREATE TABLE acct (id int PRIMARY KEY, balance int NOT NULL)").ok());
  auto r = transaction(*pool, [](Tx& tx) -> Result<Value> {
    if (auto a = tx.exec("INSERT INTO acct VALUES ($1, $2)", {1, 100}); !a) return a.take_error();
    if (auto b = tx.exec("INSERT INTO acct VALUES ($1, $2)", {2, 50}); !b) return b.take_error();
    auto sum = tx.exec("SELECT sum(balance)::int8 AS s FROM acct");
    if (!sum) return sum.take_error();
    return *sum->rows.at(0).find("s");
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, Value(150));
  EXPECT_EQ(count(*pool, "acct"), 2);
}

TEST_F(PgPool, ATransactionRollsBackWhenItsFunctionReturnsAnError) {
  auto pool = make_pool();
  ASSERT_TRUE(query_sync(*pool, "CREATE TABLE acct (id int PRIMARY KEY)").ok());
  auto r = transaction(*pool, [](Tx& tx) -> Result<Value> {
    if (auto a = tx.exec("INSERT INTO acct VALUES ($1)", {1}); !a) return a.take_error();
    return make_error("app", "insufficient_funds", "no");
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "app.insufficient_funds");
  EXPECT_EQ(count(*pool, "acct"), 0);
}

TEST_F(PgPool, AFailedStatementRollsBackTheTransactionEvenWhenTheFunctionIgnoresIt) {
  auto pool = make_pool();
  ASSERT_TRUE(query_sync(*pool, "CREATE TABLE acct (id int PRIMARY KEY)").ok());
  auto r = transaction(*pool, [](Tx& tx) -> Result<Value> {
    (void)tx.exec("INSERT INTO acct VALUES ($1)", {1});
    (void)tx.exec("INSERT INTO acct VALUES ($1)", {1});  // 23505, ignored
    return Value("ignored the error");
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(*r.error().metadata->find("sqlstate"), Value("23505"));
  EXPECT_EQ(count(*pool, "acct"), 0);
}

TEST_F(PgPool, AnExceptionFromTheFunctionRollsBackAndBecomesAnError) {
  auto pool = make_pool();
  ASSERT_TRUE(query_sync(*pool, "CREATE TABLE acct (id int PRIMARY KEY)").ok());
  auto r = transaction(*pool, [](Tx& tx) -> Result<Value> {
    (void)tx.exec("INSERT INTO acct VALUES ($1)", {1});
    throw std::runtime_error("boom");
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "db.transaction_failed");
  EXPECT_NE(r.error().message.find("boom"), std::string::npos);
  EXPECT_EQ(count(*pool, "acct"), 0);
}

TEST_F(PgPool, SerializationFailuresAreRetriedThreeTimesThenReported) {
  auto pool = make_pool(1);
  ASSERT_TRUE(query_sync(*pool, "CREATE TABLE t (id int)").ok());
  auto conflict = [](Tx& tx) {
    return tx.exec("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END $$");
  };
  int attempts = 0;
  auto r = transaction(*pool, [&](Tx& tx) -> Result<Value> {
    ++attempts;
    if (auto i = tx.exec("INSERT INTO t VALUES ($1)", {attempts}); !i) return i.take_error();
    if (attempts < 3) {
      if (auto c = conflict(tx); !c) return c.take_error();
    }
    return Value(attempts);
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(attempts, 3);
  auto rows = query_sync(*pool, "SELECT id FROM t");
  ASSERT_EQ(rows->rows.size(), 1u);  // the failed attempts left nothing behind
  EXPECT_EQ(*rows->rows[0].find("id"), Value(3));

  attempts = 0;
  auto gave_up = transaction(*pool, [&](Tx& tx) -> Result<Value> {
    ++attempts;
    (void)conflict(tx);
    return Value(nullptr);
  });
  ASSERT_FALSE(gave_up.ok());
  EXPECT_EQ(*gave_up.error().metadata->find("sqlstate"), Value("40001"));
  EXPECT_EQ(attempts, 4);  // the first run and three retries
  EXPECT_NE(pool->metrics_text().find("anvil_pg_transaction_retries_total 5"), std::string::npos);
}

namespace {
using Strand = asio::strand<asio::io_context::executor_type>;

struct StrandObservation {
  bool query_on_strand = false, transaction_on_strand = false, query_ok = false, transaction_ok = false;
  std::thread::id fn_thread, completion_thread;
};

asio::awaitable<void> query_then_observe(Pool& pool, Strand strand, StrandObservation& obs) {
  auto r = co_await pool.query("SELECT pg_sleep(0.05)");
  obs.query_ok = r.ok();
  obs.query_on_strand = strand.running_in_this_thread();
  std::function<Result<Value>(Tx&)> fn = [&obs](Tx& tx) -> Result<Value> {
    obs.fn_thread = std::this_thread::get_id();
    auto q = tx.exec("SELECT 1");
    if (!q) return q.take_error();
    return Value(true);
  };
  auto t = co_await pool.transaction(std::move(fn));
  obs.transaction_ok = t.ok();
  obs.transaction_on_strand = strand.running_in_this_thread();
  obs.completion_thread = std::this_thread::get_id();
}
}  // namespace

TEST_F(PgPool, QueriesAndTransactionsCompleteOnTheCallersStrand) {
  auto pool = make_pool(2);
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::vector<std::thread> io_threads;
  for (int i = 0; i < 3; ++i) io_threads.emplace_back([&] { io.run(); });
  std::vector<StrandObservation> obs(8);
  std::vector<Strand> strands;
  std::atomic<int> done{0};
  for (auto& o : obs) {
    strands.push_back(asio::make_strand(io));
    asio::co_spawn(strands.back(), query_then_observe(*pool, strands.back(), o),
                   [&](std::exception_ptr) { ++done; });
  }
  while (done < int(obs.size())) std::this_thread::sleep_for(10ms);
  work.reset();
  for (auto& t : io_threads) t.join();
  for (auto& o : obs) {
    EXPECT_TRUE(o.query_ok);
    EXPECT_TRUE(o.transaction_ok);
    EXPECT_TRUE(o.query_on_strand);
    EXPECT_TRUE(o.transaction_on_strand);
    EXPECT_NE(o.fn_thread, o.completion_thread);  // fn ran on a pool thread
  }
}

namespace {
asio::awaitable<void> sleep_query(Pool& pool, std::atomic<int>& ok, std::atomic<int>& finished, bool& all_done) {
  auto r = co_await pool.query("SELECT pg_sleep(0.2)");
  if (r.ok()) ++ok;
  if (++finished == 200) all_done = true;
}

asio::awaitable<void> tick(asio::steady_timer& timer, const bool& all_done, std::vector<std::chrono::steady_clock::time_point>& ticks) {
  while (!all_done) {
    timer.expires_after(20ms);
    co_await timer.async_wait(asio::use_awaitable);
    ticks.push_back(std::chrono::steady_clock::now());
  }
}
}  // namespace

TEST_F(PgPool, TwoHundredSlowQueriesOnFourConnectionsDoNotBlockTheIoThread) {
  auto pool = make_pool(4);
  asio::io_context io;  // run by this thread only
  std::atomic<int> ok{0}, finished{0};
  bool all_done = false;
  std::vector<std::chrono::steady_clock::time_point> ticks;
  asio::steady_timer timer(io);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) asio::co_spawn(io, sleep_query(*pool, ok, finished, all_done), asio::detached);
  asio::co_spawn(io, tick(timer, all_done, ticks), asio::detached);
  io.run();
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(ok, 200);
  // At most four at a time: 200 x 0.2 s / 4 = 10 s.
  EXPECT_GE(elapsed, 9'500ms);
  // The timer kept ticking the whole time: no gap as long as one pg_sleep.
  ASSERT_GT(ticks.size(), 100u);
  auto max_gap = std::chrono::steady_clock::duration::zero();
  auto prev = start;
  for (auto t : ticks) {
    max_gap = std::max(max_gap, t - prev);
    prev = t;
  }
  EXPECT_LT(max_gap, 200ms) << std::chrono::duration_cast<std::chrono::milliseconds>(max_gap).count() << " ms";
  EXPECT_NE(pool->metrics_text().find("anvil_pg_connections_open 4"), std::string::npos) << pool->metrics_text();
}

TEST(PgPoolOffline, AUrlWhereNothingListensIsUnavailable) {
  std::string url = "postgresql://postgres@127.0.0.1:" + std::to_string(unused_port()) + "/anvil";
  Pool pool(PoolOptions{url, 2, 1'000ms});
  auto r = query(pool, "SELECT 1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "db.unavailable");
  EXPECT_NE(r.error().message.find("cannot connect"), std::string::npos) << r.error().message;
  auto t = transaction(pool, [](Tx&) -> Result<Value> { return Value(1); });
  EXPECT_EQ(t.error().qualified(), "db.unavailable");
  auto s = query_sync(pool, "SELECT 1");
  EXPECT_EQ(s.error().qualified(), "db.unavailable");
  EXPECT_FALSE(pool.healthy());
  EXPECT_NE(pool.metrics_text().find("anvil_pg_up 0"), std::string::npos);
}

TEST(PgPoolOffline, NotConfiguredIsItsOwnError) {
  EXPECT_EQ(not_configured_error().qualified(), "db.not_configured");
}

namespace {
// Terminates every backend of connections named `app` and waits until they are gone.
void terminate_backends(Pool& admin, const std::string& app) {
  auto r = query_sync(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                      {app});
  ASSERT_TRUE(r.ok()) << r.error().message;
  for (int i = 0; i < 200; ++i) {
    auto n = query_sync(admin, "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", {app});
    ASSERT_TRUE(n.ok());
    if (n->rows[0].find("n")->as_int() == 0) return;
    std::this_thread::sleep_for(20ms);
  }
  FAIL() << "backends of " << app << " did not go away";
}
}  // namespace

TEST_F(PgPool, TheNextQueryAfterTheServerKilledIdleConnectionsSucceeds) {
  Pool pool(PoolOptions{url_ + "&application_name=" + schema_, 2});
  // Open both connections.
  ASSERT_TRUE(transaction_sync(pool, [&](Tx&) -> Result<Value> {
                return query_sync(pool, "SELECT 1").ok() ? Value(true) : Value(false);
              }).ok());
  ASSERT_NE(pool.metrics_text().find("anvil_pg_connections_open 2"), std::string::npos);
  terminate_backends(*admin_, schema_);
  for (int i = 0; i < 4; ++i) {
    auto r = query(pool, "SELECT 1 AS one");
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  EXPECT_TRUE(pool.healthy());
  EXPECT_EQ(pool.metrics_text().find("anvil_pg_connections_lost_total 0"), std::string::npos);
}

TEST_F(PgPool, AConnectionKilledMidStatementIsUnavailableAndTheNextQueryReconnects) {
  Pool pool(PoolOptions{url_ + "&application_name=" + schema_, 1});
  ASSERT_TRUE(query_sync(pool, "SELECT 1").ok());
  std::thread killer([&] {
    std::this_thread::sleep_for(300ms);
    terminate_backends(*admin_, schema_);
  });
  auto r = query(pool, "SELECT pg_sleep(10)");
  killer.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "db.unavailable");
  EXPECT_NE(r.error().message.find("connection lost"), std::string::npos) << r.error().message;
  EXPECT_FALSE(pool.healthy());
  auto again = query(pool, "SELECT 2 AS two");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again->rows[0].find("two"), Value(2));
  EXPECT_TRUE(pool.healthy());
}

namespace {
// A throwaway Postgres server of our own, to stop and restart.
class ScratchServer {
 public:
  ScratchServer() {
    for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql"))
      if (std::filesystem::exists(e.path() / "bin/pg_ctl")) bin_ = (e.path() / "bin").string();
    dir_ = std::filesystem::temp_directory_path() / ("anvil-pg-scratch-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    if (::getuid() == 0) {
      as_ = "runuser -u postgres -- ";
      std::system(("chown postgres:postgres " + dir_.string()).c_str());
    }
    port_ = unused_port();
  }
  ~ScratchServer() {
    stop();
    std::filesystem::remove_all(dir_);
  }
  bool available() const { return !bin_.empty(); }
  bool init() {
    return run(bin_ + "/initdb -D " + dir_.string() + "/data -U postgres --auth=trust -E UTF8 >/dev/null 2>&1");
  }
  bool start() {
    return run(bin_ + "/pg_ctl -D " + dir_.string() + "/data -l " + dir_.string() + "/log -w -t 60 -o \"-c " +
               "listen_addresses=127.0.0.1 -p " + std::to_string(port_) + " -k " + dir_.string() +
               "\" start >/dev/null 2>&1");
  }
  bool stop() { return run(bin_ + "/pg_ctl -D " + dir_.string() + "/data -m fast -w stop >/dev/null 2>&1"); }
  std::string url() const { return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres"; }

 private:
  bool run(const std::string& cmd) { return std::system((as_ + cmd).c_str()) == 0; }
  std::string bin_, as_;
  std::filesystem::path dir_;
  int port_ = 0;
};
}  // namespace

TEST(PgPoolRestart, ThePoolReconnectsWhenTheServerComesBack) {
  ScratchServer server;
  if (!server.available()) {
    if (anvil::pg::testing::in_ci()) FAIL() << "PostgreSQL server binaries not found";
    GTEST_SKIP() << "PostgreSQL server binaries not found";
  }
  ASSERT_TRUE(server.init());
  ASSERT_TRUE(server.start());
  Pool pool(PoolOptions{server.url(), 2, 1'000ms});
  ASSERT_TRUE(query(pool, "SELECT 1").ok());
  EXPECT_TRUE(pool.healthy());

  ASSERT_TRUE(server.stop());
  auto down = query(pool, "SELECT 1");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().qualified(), "db.unavailable");
  EXPECT_FALSE(pool.healthy());

  ASSERT_TRUE(server.start());
  Result<QueryResult> up = make_error("test", "unset", "");
  for (int i = 0; i < 100 && !up.ok(); ++i) {
    up = query(pool, "SELECT 3 AS three");
    if (!up.ok()) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(up.ok()) << up.error().message;
  EXPECT_EQ(*up->rows[0].find("three"), Value(3));
  EXPECT_TRUE(pool.healthy());
}

TEST_F(PgPool, MetricsAreExposedInPrometheusText) {
  auto pool = make_pool(1);
  ASSERT_TRUE(query(*pool, "SELECT 1").ok());
  auto text = pool->metrics_text();
  EXPECT_NE(text.find("# TYPE anvil_pg_up gauge\nanvil_pg_up 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("anvil_pg_connections_max 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE anvil_pg_statements_total counter"), std::string::npos);
}

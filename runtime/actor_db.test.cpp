// Per-actor SQLite on a real RocksDB: values and parameters, migrations,
// rollback with the state, sleep/wake, destroy, the size limit, restarts,
// and async actions whose turns commit at each wait.
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "actors/fixtures/fixtures.hpp"
#include "runtime/sqlite_vfs.hpp"
#include "runtime/test_node.hpp"
#include "storage/store.hpp"

using namespace anvil;
using namespace std::chrono_literals;
using anvil::testing::temp_dir;

namespace {

// A table of one typed value per column, for the value tests.
ActorDefinition typed_actor() {
  ActorDefinition def("typed");
  DatabaseOptions db;
  db.migrations = {"CREATE TABLE t (id INTEGER PRIMARY KEY, i, f, s, b, z)"};
  def.database(std::move(db))
      .action("put",
              [](ActionContext& c, const Array& args) -> Result<Value> {
                auto r = c.db().exec("INSERT INTO t (i, f, s, b, z) VALUES (?, ?, ?, ?, ?)", args);
                if (!r.ok()) return r.error();
                return obj({{"changes", r->changes}, {"rowid", r->last_insert_rowid}});
              })
      .action("all",
              [](ActionContext& c, const Array&) -> Result<Value> {
                auto rows = c.db().query("SELECT i, f, s, b, z FROM t ORDER BY id");
                if (!rows.ok()) return rows.error();
                return Value(std::move(*rows));
              })
      .action("sql", [](ActionContext& c, const Array& args) -> Result<Value> {
        Array params(args.begin() + 1, args.end());
        auto rows = c.db().query(args[0].as_string(), params);
        if (!rows.ok()) return rows.error();
        return Value(std::move(*rows));
      });
  return def;
}

// Migrations that leave a trace of every run: log rows and a state counter.
ActorDefinition migrated_actor() {
  ActorDefinition def("migrated");
  DatabaseOptions db;
  db.migrations = {"CREATE TABLE log (id INTEGER PRIMARY KEY, v TEXT)",
                   "INSERT INTO log (v) VALUES ('m2')",
                   "INSERT INTO log (v) VALUES ('m3'); CREATE TABLE extra (x)"};
  def.database(std::move(db))
      .action("log",
              [](ActionContext& c, const Array&) -> Result<Value> {
                auto rows = c.db().query("SELECT v FROM log ORDER BY id");
                if (!rows.ok()) return rows.error();
                Array out;
                for (const auto& r : *rows) out.push_back(r.as_object()[0].second);
                return out;
              })
      .action("version",
              [](ActionContext& c, const Array&) -> Result<Value> {
                auto rows = c.db().query("PRAGMA user_version");
                if (!rows.ok()) return rows.error();
                return (*rows)[0].as_object()[0].second;
              })
      .action("goToSleep", actors::go_to_sleep_action);
  return def;
}

ActorDefinition broken_migration_actor() {
  ActorDefinition def("brokenMigration");
  DatabaseOptions db;
  db.migrations = {"CREATE TABLE a (x)", "THIS IS NOT SQL"};
  def.initial_state(obj({{"touched", false}}))
      .database(std::move(db))
      .action("touch", [](ActionContext& c, const Array&) -> Result<Value> {
        c.mutate_state()["touched"] = true;
        auto r = c.db().exec("INSERT INTO a VALUES (1)");
        if (!r.ok()) return r.error();
        return true;
      })
      .action("touched", [](ActionContext& c, const Array&) -> Result<Value> { return *c.state().find("touched"); });
  return def;
}

// A database limited to 64 KiB; `grow(bytes, ignore)` inserts a blob and
// bumps the state, and (with ignore) swallows the database's error.
ActorDefinition small_actor() {
  ActorDefinition def("small");
  DatabaseOptions db;
  db.migrations = {"CREATE TABLE blobs (b BLOB)"};
  db.max_bytes = 64 * 1024;
  def.initial_state(obj({{"grows", 0}}))
      .database(std::move(db))
      .action("grow",
              [](ActionContext& c, const Array& args) -> Result<Value> {
                Value& grows = c.mutate_state()["grows"];
                grows = grows.as_int() + 1;
                auto r = c.db().exec("INSERT INTO blobs VALUES (?)",
                                     {Value(Bytes(static_cast<size_t>(args[0].as_int()), 7))});
                if (!r.ok() && !(args.size() > 1 && args[1].as_bool())) return r.error();
                return true;
              })
      .action("stats", [](ActionContext& c, const Array&) -> Result<Value> {
        auto rows = c.db().query("SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(b)), 0) AS bytes FROM blobs");
        if (!rows.ok()) return rows.error();
        const Object& r = (*rows)[0].as_object();
        return obj({{"grows", *c.state().find("grows")}, {"n", r[0].second}, {"bytes", r[1].second}});
      });
  return def;
}

// Async: a row before a wait, a row after it, then (with fail) an error.
ActorDefinition waiter_actor() {
  ActorDefinition def("dbWaiter");
  DatabaseOptions db;
  db.migrations = {"CREATE TABLE log (id INTEGER PRIMARY KEY, v TEXT)"};
  def.initial_state(obj({{"n", 0}}))
      .database(std::move(db))
      .async_action("twoSegments",
                    [](ActionContext& c, Array args) -> Task<Result<Value>> {
                      const bool fail = args.size() > 0 && args[0].as_bool();
                      const Array before{Value("before")};
                      if (auto r = c.db().exec("INSERT INTO log (v) VALUES (?)", before); !r.ok()) co_return r.error();
                      c.mutate_state()["n"] = c.state().find("n")->as_int() + 1;
                      // A pause only: what matters is that the wait ends the turn.
                      (void)co_await c.sleep_for(100ms);
                      const Array after{Value("after")};
                      if (auto r = c.db().exec("INSERT INTO log (v) VALUES (?)", after); !r.ok()) co_return r.error();
                      c.mutate_state()["n"] = c.state().find("n")->as_int() + 1;
                      if (fail) co_return user_error("failed after the wait", "late_failure");
                      co_return Value(true);
                    })
      .action("log", [](ActionContext& c, const Array&) -> Result<Value> {
        auto rows = c.db().query("SELECT v FROM log ORDER BY id");
        if (!rows.ok()) return rows.error();
        Array out;
        for (const auto& r : *rows) out.push_back(r.as_object()[0].second);
        return obj({{"n", *c.state().find("n")}, {"log", out}});
      });
  return def;
}

// Incremental auto-vacuum: freed pages are given back by truncating the file.
ActorDefinition vacuumed_actor() {
  ActorDefinition def("vacuumed");
  DatabaseOptions db;
  db.migrations = {"PRAGMA auto_vacuum=INCREMENTAL; CREATE TABLE t (b BLOB)"};
  def.database(std::move(db))
      .action("fill",
              [](ActionContext& c, const Array&) -> Result<Value> {
                for (int i = 0; i < 50; ++i)
                  if (auto r = c.db().exec("INSERT INTO t VALUES (zeroblob(4000))"); !r.ok()) return r.error();
                return true;
              })
      .action("clear", [](ActionContext& c, const Array&) -> Result<Value> {
        if (auto r = c.db().exec("DELETE FROM t"); !r.ok()) return r.error();
        if (auto r = c.db().query("PRAGMA incremental_vacuum"); !r.ok()) return r.error();
        return true;
      });
  return def;
}

ActorDefinition no_db_actor() {
  ActorDefinition def("noDb");
  def.action("use", [](ActionContext& c, const Array&) -> Result<Value> {
    auto r = c.db().query("SELECT 1");
    if (!r.ok()) return r.error();
    return true;
  });
  return def;
}

const Registry& registry() {
  static const Registry reg = [] {
    Registry r;
    actors::register_fixtures(r);
    r.add(typed_actor());
    r.add(migrated_actor());
    r.add(broken_migration_actor());
    r.add(small_actor());
    r.add(waiter_actor());
    r.add(no_db_actor());
    r.add(vacuumed_actor());
    return r;
  }();
  return reg;
}

class Node : public anvil::testing::Node {
 public:
  explicit Node(const std::string& dir) : anvil::testing::Node(dir, registry()) {}
};

Value check(Node& n, const std::string& id) {
  auto r = n.call(id, "check");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().qualified());
  return r.ok() ? *r : Value();
}

Value counts(int64_t count, int64_t rows, int64_t sum) {
  return obj({{"count", count}, {"rows", rows}, {"sum", sum}});
}

// Page keys and their sizes of one actor, read from the node's RocksDB.
std::vector<size_t> page_sizes(const std::string& dir, const std::string& actor_id) {
  auto store = storage::Store::open({dir, false, nullptr});
  EXPECT_TRUE(store.ok());
  std::vector<size_t> out;
  if (!store.ok()) return out;
  auto st = (*store)->scan_prefix(storage::Family::kDbPages, actor_id, [&](std::string_view, std::string_view v) {
    out.push_back(v.size());
    return true;
  });
  EXPECT_TRUE(st.ok());
  return out;
}

// The error of one call on a fresh actor of `type` in a fresh node ("" when
// the call succeeded).
std::string error_of(const std::string& label, const std::string& type, const std::string& action, Array args) {
  auto dir = temp_dir(label);
  std::string code;
  {
    Node n(dir);
    auto id = n.get_or_create(type, {"a"});
    auto r = n.call(id, action, std::move(args));
    if (!r.ok()) code = r.error().qualified();
  }
  std::filesystem::remove_all(dir);
  return code;
}

}  // namespace

TEST(ActorDb, ExecAndQueryRoundTripIntFloatTextBlobAndNull) {
  auto dir = temp_dir("db-types");
  Node n(dir);
  auto id = n.get_or_create("typed", {"a"});
  auto put = n.call(id, "put", {Value(int64_t{-9007199254740993}), Value(2.5), Value("héllo"),
                                Value(Bytes{0, 1, 255}), Value(nullptr)});
  ASSERT_TRUE(put.ok()) << put.error().qualified();
  EXPECT_EQ(*put, obj({{"changes", 1}, {"rowid", 1}}));
  auto all = n.call(id, "all");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, Value(Array{obj({{"i", int64_t{-9007199254740993}},
                                   {"f", 2.5},
                                   {"s", "héllo"},
                                   {"b", Value(Bytes{0, 1, 255})},
                                   {"z", Value(nullptr)}})}));
  std::filesystem::remove_all(dir);
}

TEST(ActorDb, BooleansAndBigintsBindAsIntegers) {
  auto dir = temp_dir("db-bool");
  Node n(dir);
  auto id = n.get_or_create("typed", {"a"});
  auto rows = n.call(id, "sql", {Value("SELECT ? AS t, ? AS f, ? AS big"), Value(true), Value(false),
                                 Value(BigInt::from_int64(-5))});
  ASSERT_TRUE(rows.ok()) << rows.error().qualified();
  EXPECT_EQ(*rows, Value(Array{obj({{"t", 1}, {"f", 0}, {"big", -5}})}));
  std::filesystem::remove_all(dir);
}

TEST(ActorDb, AnArrayParameterIsAnInvalidParameter) {
  EXPECT_EQ(error_of("db-array", "typed", "sql", {Value("SELECT ?"), Value(Array{Value(1)})}), "db.invalid_parameter");
}

TEST(ActorDb, AWrongNumberOfParametersIsAnInvalidParameter) {
  EXPECT_EQ(error_of("db-count", "typed", "sql", {Value("SELECT ?, ?"), Value(1)}), "db.invalid_parameter");
}

TEST(ActorDb, BadSqlIsQueryFailedWithSQLitesCode) {
  auto dir = temp_dir("db-bad");
  Node n(dir);
  auto id = n.get_or_create("typed", {"a"});
  auto r = n.call(id, "sql", {Value("SELEKT 1")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "db.query_failed");
  ASSERT_TRUE(r.error().metadata.has_value());
  EXPECT_EQ(*r.error().metadata->find("sqliteCode"), Value(1));  // SQLITE_ERROR
  std::filesystem::remove_all(dir);
}

TEST(ActorDb, TwoStatementsInOneCallAreRefused) {
  EXPECT_EQ(error_of("db-two", "typed", "sql", {Value("SELECT 1; SELECT 2")}), "db.query_failed");
}

TEST(ActorDb, AnActorTypeWithoutADatabaseGetsNotEnabled) {
  EXPECT_EQ(error_of("db-none", "noDb", "use", {}), "db.not_enabled");
}

TEST(ActorDbMigrations, RunInOrderOncePerActorAcrossWakesAndRestarts) {
  auto dir = temp_dir("db-migrate");
  std::string a, b;
  {
    Node n(dir);
    a = n.get_or_create("migrated", {"a"});
    b = n.get_or_create("migrated", {"b"});
    EXPECT_EQ(*n.call(a, "log"), Value(Array{Value("m2"), Value("m3")}));
    ASSERT_TRUE(n.call(a, "goToSleep").ok());
    EXPECT_EQ(*n.call(a, "log"), Value(Array{Value("m2"), Value("m3")}));
    EXPECT_EQ(*n.call(b, "log"), Value(Array{Value("m2"), Value("m3")}));  // each actor its own
  }
  Node n(dir);
  EXPECT_EQ(*n.call(a, "log"), Value(Array{Value("m2"), Value("m3")}));
  EXPECT_EQ(*n.call(a, "version"), Value(3));
  std::filesystem::remove_all(dir);
}

TEST(ActorDbMigrations, AFailingMigrationFailsTheCallAndKeepsNothingOfTheTurn) {
  auto dir = temp_dir("db-migrate-fail");
  Node n(dir);
  auto id = n.get_or_create("brokenMigration", {"a"});
  auto r = n.call(id, "touch");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "db.migration_failed");
  EXPECT_EQ(*r.error().metadata->find("version"), Value(2));
  EXPECT_EQ(*n.call(id, "touched"), Value(false));
  std::filesystem::remove_all(dir);
}

TEST(ActorDbRollback, AFailedActionsRowsRollBackWithItsState) {
  auto dir = temp_dir("db-rollback");
  Node n(dir);
  auto id = n.get_or_create("dbCounter", {"a"});
  ASSERT_EQ(*n.call(id, "add", {Value(5)}), Value(5));
  auto failed = n.call(id, "addThenFail", {Value(7)});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, "add_failed");  // the action's own error reaches the caller
  EXPECT_EQ(check(n, id), counts(5, 1, 5));
  ASSERT_EQ(*n.call(id, "add", {Value(1)}), Value(6));  // the actor goes on from the durable state
  EXPECT_EQ(check(n, id), counts(6, 2, 6));
  std::filesystem::remove_all(dir);
}

TEST(ActorDbLifecycle, SleepAndWakeKeepTheRows) {
  auto dir = temp_dir("db-sleep");
  Node n(dir);
  auto id = n.get_or_create("dbCounter", {"a"});
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(n.call(id, "add", {Value(i)}).ok());
  ASSERT_TRUE(n.call(id, "goToSleep").ok());
  EXPECT_EQ(check(n, id), counts(55, 10, 55));
  std::filesystem::remove_all(dir);
}

TEST(ActorDbLifecycle, DestroyRemovesEveryPageKey) {
  auto dir = temp_dir("db-destroy");
  std::string id, other;
  {
    Node n(dir);
    id = n.get_or_create("dbCounter", {"a"});
    other = n.get_or_create("dbCounter", {"b"});
    for (int i = 0; i < 200; ++i) ASSERT_TRUE(n.call(id, "add", {Value(i)}).ok());
    ASSERT_TRUE(n.call(other, "add", {Value(1)}).ok());
  }
  auto before = page_sizes(dir, id);
  ASSERT_GE(before.size(), 2u);
  for (size_t s : before) EXPECT_EQ(s, db::kPageSize);
  {
    Node n(dir);
    ASSERT_TRUE(n.call(id, "destroy").ok());
  }
  EXPECT_TRUE(page_sizes(dir, id).empty());
  EXPECT_FALSE(page_sizes(dir, other).empty());  // only that actor's range
  std::filesystem::remove_all(dir);
}

TEST(ActorDbLimits, GrowingPastTheSizeLimitIsTooLargeAndTheTurnRollsBack) {
  auto dir = temp_dir("db-limit");
  Node n(dir);
  auto id = n.get_or_create("small", {"a"});
  ASSERT_TRUE(n.call(id, "grow", {Value(10'000)}).ok());
  auto r = n.call(id, "grow", {Value(100'000)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "db.too_large");
  EXPECT_EQ(*n.call(id, "stats"), obj({{"grows", 1}, {"n", 1}, {"bytes", 10'000}}));
  ASSERT_TRUE(n.call(id, "grow", {Value(10'000)}).ok());  // room is still there for smaller writes
  EXPECT_EQ(*n.call(id, "stats"), obj({{"grows", 2}, {"n", 2}, {"bytes", 20'000}}));
  std::filesystem::remove_all(dir);
}

TEST(ActorDbLimits, TooLargeDiscardsTheTurnEvenWhenTheActionIgnoresTheError) {
  auto dir = temp_dir("db-limit-ignored");
  Node n(dir);
  auto id = n.get_or_create("small", {"a"});
  auto r = n.call(id, "grow", {Value(100'000), Value(true)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "db.too_large");
  EXPECT_EQ(*n.call(id, "stats"), obj({{"grows", 0}, {"n", 0}, {"bytes", 0}}));
  std::filesystem::remove_all(dir);
}

TEST(ActorDbDurability, ANodeRestartKeepsCountEqualToSum) {
  auto dir = temp_dir("db-restart");
  std::vector<std::string> ids;
  {
    Node n(dir);
    for (int a = 0; a < 4; ++a) ids.push_back(n.get_or_create("dbCounter", {std::to_string(a)}));
    // Concurrent adds on every actor (group commit shares fsyncs between them).
    std::vector<std::future<void>> workers;
    for (const auto& id : ids)
      workers.push_back(std::async(std::launch::async, [&n, id] {
        for (int i = 1; i <= 50; ++i) ASSERT_TRUE(n.call(id, "add", {Value(i)}).ok());
      }));
    for (auto& w : workers) w.get();
  }  // no shutdown: the process just stops
  Node n(dir);
  for (const auto& id : ids) EXPECT_EQ(check(n, id), counts(1275, 50, 1275));
  std::filesystem::remove_all(dir);
}

TEST(ActorDbAsync, AWaitCommitsTheRowsBeforeItAndAFailureAfterItDiscardsOnlyTheLastTurn) {
  auto dir = temp_dir("db-async");
  Node n(dir);
  auto id = n.get_or_create("dbWaiter", {"a"});
  auto pending = asio::co_spawn(n.io(), n.rt().call_action(id, "twoSegments", {Value(true)}, Value()),
                                asio::use_future);
  std::this_thread::sleep_for(50ms);
  // While the call waits, its first turn is committed and visible to others.
  EXPECT_EQ(*n.call(id, "log"), obj({{"n", 1}, {"log", Array{Value("before")}}}));
  auto out = pending.get().output;
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, "late_failure");
  // The turn after the wait failed: its row and its state change are gone together.
  EXPECT_EQ(*n.call(id, "log"), obj({{"n", 1}, {"log", Array{Value("before")}}}));
  std::filesystem::remove_all(dir);
}

TEST(ActorDbAsync, ASucceedingAsyncActionKeepsTheRowsOfEveryTurn) {
  auto dir = temp_dir("db-async-ok");
  Node n(dir);
  auto id = n.get_or_create("dbWaiter", {"a"});
  auto out = n.call(id, "twoSegments");
  ASSERT_TRUE(out.ok()) << out.error().qualified();
  EXPECT_EQ(*n.call(id, "log"), obj({{"n", 2}, {"log", Array{Value("before"), Value("after")}}}));
  std::filesystem::remove_all(dir);
}

TEST(ActorDbLifecycle, AFileThatShrinksDeletesThePagesPastItsEnd) {
  auto dir = temp_dir("db-vacuum");
  std::string id;
  {
    Node n(dir);
    id = n.get_or_create("vacuumed", {"a"});
    ASSERT_TRUE(n.call(id, "fill").ok());
  }
  const size_t full = page_sizes(dir, id).size();
  ASSERT_GE(full, 50u);
  {
    Node n(dir);
    auto r = n.call(id, "clear");
    ASSERT_TRUE(r.ok()) << r.error().qualified();
  }
  EXPECT_LT(page_sizes(dir, id).size(), 5u);
  std::filesystem::remove_all(dir);
}

// The offline reader of `anvil actors` (DataDirReader) against data
// directories written by a real in-process node: while the node runs on
// them, and after it stopped; and the node's own admin view of the same
// directory, which must print the same JSON.
#include "tools/actors_cli.hpp"

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "actors/fixtures/fixtures.hpp"
#include "base/value/json.hpp"
#include "runtime/inspect.hpp"
#include "runtime/test_node.hpp"

using namespace anvil;
using anvil::testing::temp_dir;
using anvil::tools::DataDirReader;

namespace {

// A test's data directory, removed at the end (declare it before the node:
// the node goes first).
struct DataDir {
  explicit DataDir(const std::string& name) : path(temp_dir(name)) {}
  ~DataDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  operator const std::string&() const { return path; }
  std::string path;
};

std::unique_ptr<DataDirReader> open_reader(const std::string& dir) {
  auto r = DataDirReader::open(dir);
  if (!r.ok()) throw std::runtime_error(r.error().message);
  return std::move(*r);
}

// Every actor of a listing, fetched page by page.
Array list_all(const DataDirReader& r, inspect::ActorFilter f = {}) {
  Array out;
  for (;;) {
    auto page = r.list(f);
    if (!page.ok()) throw std::runtime_error(page.error().message);
    for (const auto& a : page->find("actors")->as_array()) out.push_back(a);
    const Value* c = page->find("cursor");
    if (!c->is_string()) return out;
    f.cursor = c->as_string();
  }
}

std::vector<std::string> ids_of(const Array& actors) {
  std::vector<std::string> ids;
  for (const auto& a : actors) ids.push_back(a.find("id")->as_string());
  std::sort(ids.begin(), ids.end());
  return ids;
}

const Value* find_actor(const Array& actors, const std::string& id) {
  for (const auto& a : actors)
    if (a.find("id")->as_string() == id) return &a;
  return nullptr;
}

TEST(ActorsCliOffline, ListsEveryActorOfAStoppedNodeWithItsNameKeyAndAsleep) {
  const DataDir dir("cli-stopped");
  std::string a, b;
  {
    anvil::testing::Node node(dir, actors::fixture_registry());
    a = node.get_or_create("counter", {"tenant", "a"});
    b = node.get_or_create("counter", {"b"});
    ASSERT_TRUE(node.call(a, "increment", {Value(2)}).ok());
  }  // stops like a killed process: the records still say awake
  auto reader = open_reader(dir);
  EXPECT_FALSE(reader->node_running());
  Array all = list_all(*reader);
  ASSERT_EQ(all.size(), 2u);
  const Value* ra = find_actor(all, a);
  ASSERT_TRUE(ra);
  EXPECT_EQ(*ra, obj({{"id", a}, {"name", "counter"}, {"key", arr({"tenant", "a"})}, {"awake", false}}));
  EXPECT_EQ(ra->as_object().size(), 4u) << "ls prints exactly id, name, key, awake";
  EXPECT_EQ(*find_actor(all, b)->find("key"), arr({"b"}));
}

TEST(ActorsCliOffline, ShowsTheDecodedStateTimesAndSizesOfOneActor) {
  const DataDir dir("cli-get");
  std::string id;
  {
    anvil::testing::Node node(dir, actors::fixture_registry());
    id = node.get_or_create("counter", {"x"});
    ASSERT_TRUE(node.call(id, "increment", {Value(5)}).ok());
  }
  auto reader = open_reader(dir);
  auto got = reader->get(id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(*got->find("id"), Value(id));
  EXPECT_EQ(*got->find("name"), Value("counter"));
  EXPECT_EQ(*got->find("key"), arr({"x"}));
  EXPECT_EQ(*got->find("awake"), Value(false));
  EXPECT_EQ(*got->find("state"), obj({{"count", 5}}));
  // The token the node made at create, from the record.
  EXPECT_EQ(got->find("inspectorToken")->as_string().size(), 64u);
  EXPECT_GT(got->find("stateBytes")->as_int(), 0);
  EXPECT_GE(got->find("generation")->as_int(), 1);
  EXPECT_GT(got->find("createdAt")->as_int(), 0);
  EXPECT_GE(got->find("startTs")->as_int(), got->find("createdAt")->as_int());
}

TEST(ActorsCliOffline, AnUnknownActorIsNotFound) {
  const DataDir dir("cli-missing");
  { anvil::testing::Node node(dir, actors::fixture_registry()); }
  auto got = open_reader(dir)->get("0000000000000000000000000");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().qualified(), "actor.not_found");
}

TEST(ActorsCliOffline, ADirectoryWithoutADatabaseIsRefusedAndNotCreated) {
  const DataDir dir("cli-empty");
  std::filesystem::create_directories(dir.path);
  auto r = DataDirReader::open(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/rocksdb"));
  EXPECT_FALSE(std::filesystem::exists(dir.path + "/CURRENT"));
}

// Waits until everything the node submitted so far is durable (the admin
// view opens only then), and returns that view of every actor.
Value node_view(anvil::testing::Node& node, inspect::ActorFilter f = {}) {
  auto page = node.rt().admin_actors(f);
  if (!page.ok()) throw std::runtime_error(page.error().message);
  auto v = node.run(node.rt().once_durable(std::move(*page)));
  if (!v.ok()) throw std::runtime_error(v.error().message);
  return *v;
}

void wait_awake_count(anvil::testing::Node& node, size_t n) {
  for (int i = 0; i < 300 && node.rt().awake_count() != n; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

TEST(ActorsCliOffline, ReadsTheDataDirOfARunningNodeAndTellsAwakeFromAsleep) {
  const DataDir dir("cli-running");
  anvil::testing::Node node(dir, actors::fixture_registry());
  const std::string awake = node.get_or_create("counter", {"awake"});
  const std::string asleep = node.get_or_create("counter", {"asleep"});
  ASSERT_TRUE(node.call(awake, "increment", {Value(1)}).ok());
  ASSERT_TRUE(node.call(asleep, "increment", {Value(1)}).ok());
  ASSERT_TRUE(node.call(asleep, "goToSleep").ok());
  wait_awake_count(node, 1);
  ASSERT_EQ(node.rt().awake_count(), 1u);
  node_view(node);  // the sleep's record is durable

  auto reader = open_reader(dir);
  EXPECT_TRUE(reader->node_running());
  Array all = list_all(*reader);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(*find_actor(all, awake)->find("awake"), Value(true));
  EXPECT_EQ(*find_actor(all, asleep)->find("awake"), Value(false));
  auto detail = reader->get(asleep);
  ASSERT_TRUE(detail.ok());
  EXPECT_GE(detail->find("sleepTs")->as_int(), detail->find("startTs")->as_int());
  EXPECT_EQ(*detail->find("state"), obj({{"count", 1}}));
}

TEST(ActorsCliOffline, PrintsWhatTheRunningNodesAdminViewPrints) {
  const DataDir dir("cli-same");
  anvil::testing::Node node(dir, actors::fixture_registry());
  std::vector<std::string> ids;
  for (const char* k : {"p", "q", "r"}) ids.push_back(node.get_or_create("counter", {k}));
  ASSERT_TRUE(node.call(ids[0], "increment", {Value(3)}).ok());
  ASSERT_TRUE(node.call(ids[1], "increment", {Value(1)}).ok());
  ASSERT_TRUE(node.call(ids[1], "goToSleep").ok());
  wait_awake_count(node, 1);
  const Value online = node_view(node);
  auto reader = open_reader(dir);
  auto offline = reader->list({});
  ASSERT_TRUE(offline.ok());
  EXPECT_EQ(json::dump(*offline), json::dump(online));
  for (const auto& id : ids) {
    auto on = node.run(node.rt().once_durable(std::move(*node.rt().admin_actor(id, inspect::View::kDetail, ""))));
    auto off = reader->get(id);
    ASSERT_TRUE(on.ok() && off.ok());
    EXPECT_EQ(json::dump(*off), json::dump(*on)) << id;
  }
}

TEST(ActorsCliOffline, FiltersByNameKeyPrefixAndAwakeAndPagesWithACursor) {
  const DataDir dir("cli-filter");
  anvil::testing::Node node(dir, actors::fixture_registry());
  std::vector<std::string> users;
  for (int i = 0; i < 5; ++i) users.push_back(node.get_or_create("counter", {"org", "user-" + std::to_string(i)}));
  const std::string other = node.get_or_create("counter", {"other"});
  const std::string room = node.get_or_create("chatRoom", {"org", "room"});
  ASSERT_TRUE(node.call(users[0], "increment", {Value(1)}).ok());
  node_view(node);
  auto reader = open_reader(dir);

  inspect::ActorFilter by_name;
  by_name.name = "chatRoom";
  EXPECT_EQ(ids_of(list_all(*reader, by_name)), std::vector<std::string>{room});

  inspect::ActorFilter by_prefix;
  by_prefix.key_prefix = "org/user-";
  auto expected = users;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ids_of(list_all(*reader, by_prefix)), expected);
  by_prefix.key_prefix = "org/";
  EXPECT_EQ(list_all(*reader, by_prefix).size(), 6u);

  inspect::ActorFilter awake_only;
  awake_only.awake = true;
  EXPECT_EQ(ids_of(list_all(*reader, awake_only)), std::vector<std::string>{users[0]});
  awake_only.awake = false;
  EXPECT_EQ(list_all(*reader, awake_only).size(), 6u);

  inspect::ActorFilter paged;
  paged.limit = 2;
  auto first = reader->list(paged);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->find("actors")->as_array().size(), 2u);
  ASSERT_TRUE(first->find("cursor")->is_string());
  EXPECT_EQ(list_all(*reader, paged).size(), 7u) << "pages of 2 cover every actor once";
  auto all = ids_of(list_all(*reader, paged));
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 7u);
}

TEST(ActorsCliKeyPrefix, ComparesWholeComponentsAndThePrefixOfTheLast) {
  EXPECT_TRUE(inspect::key_has_prefix({"a", "b"}, ""));
  EXPECT_TRUE(inspect::key_has_prefix({"user-1"}, "user-"));
  EXPECT_TRUE(inspect::key_has_prefix({"org", "x"}, "org/"));
  EXPECT_TRUE(inspect::key_has_prefix({"org", "x"}, "org"));
  EXPECT_FALSE(inspect::key_has_prefix({"organ", "x"}, "org/"));
  EXPECT_FALSE(inspect::key_has_prefix({"org"}, "org/x"));
  EXPECT_FALSE(inspect::key_has_prefix({"a/b"}, "a/"));  // '/' inside a component is escaped
  EXPECT_TRUE(inspect::key_has_prefix({"a/b"}, "a\\/"));
}

// The fixtures plus `kvBox`: put(key, value) writes actor KV (a value given
// as bytes stays bytes); its onStateChange counts the changes it saw.
std::atomic<int> g_state_changes{0};
const Registry& with_kv_box() {
  static const Registry reg = [] {
    Registry r;
    actors::register_fixtures(r);
    ActorDefinition def("kvBox");
    def.initial_state(obj({{"n", 0}}))
        .action("put",
                [](ActionContext& c, const Array& args) -> Result<Value> {
                  const std::string key = args.at(0).as_string();
                  std::string value = args.at(1).is_bytes()
                                          ? std::string(args[1].as_bytes().begin(), args[1].as_bytes().end())
                                          : args[1].as_string();
                  if (auto st = c.kv_put(key, value); !st.ok()) return st.error();
                  return true;
                })
        .action("getState", [](ActionContext& c, const Array&) -> Result<Value> { return c.state(); })
        .on_state_change([](ActorContext&, const Value&) -> Status {
          g_state_changes.fetch_add(1);
          return Ok{};
        });
    r.add(std::move(def));
    return r;
  }();
  return reg;
}

Value node_actor_view(anvil::testing::Node& node, const std::string& id, inspect::View view, const std::string& arg) {
  auto p = node.rt().admin_actor(id, view, arg);
  if (!p.ok()) throw std::runtime_error(p.error().message);
  auto v = node.run(node.rt().once_durable(std::move(*p)));
  if (!v.ok()) throw std::runtime_error(v.error().message);
  return *v;
}

TEST(ActorsCliViews, ScheduleKvWorkflowAndSqlViewsReadTheSameOfflineAsOnTheNode) {
  const DataDir dir("cli-views");
  anvil::testing::Node node(dir, with_kv_box());
  const std::string sched = node.get_or_create("scheduler", {"s"});
  ASSERT_TRUE(node.call(sched, "scheduleAfter", {Value(3'600'000), Value("later")}).ok());
  const std::string box = node.get_or_create("kvBox", {"b"});
  ASSERT_TRUE(node.call(box, "put", {Value("greeting"), Value("hello")}).ok());
  ASSERT_TRUE(node.call(box, "put", {Value("raw"), Value(Bytes{0xff, 0x00, 0x01})}).ok());
  ASSERT_TRUE(node.call(box, "put", {Value("other"), Value("x")}).ok());
  const std::string db = node.get_or_create("dbCounter", {"d"});
  ASSERT_TRUE(node.call(db, "add", {Value(2)}).ok());
  ASSERT_TRUE(node.call(db, "add", {Value(3)}).ok());
  const std::string worker = node.get_or_create("worker", {"w"});
  node.send(worker, "jobs", Value(21));
  node.wait_for(worker, "getProcessed", [](const Value& v) { return v.is_array() && !v.as_array().empty(); });

  const Value schedules = node_actor_view(node, sched, inspect::View::kSchedules, "");
  ASSERT_EQ(schedules.as_array().size(), 1u);
  EXPECT_EQ(*schedules.as_array()[0].find("action"), Value("onFire"));
  EXPECT_EQ(schedules.as_array()[0].find("args")->as_array()[0], Value("later"));

  const Value kv = node_actor_view(node, box, inspect::View::kKv, "");
  EXPECT_EQ(kv, arr({obj({{"key", "greeting"}, {"value", "hello"}}), obj({{"key", "other"}, {"value", "x"}}),
                     obj({{"key", "raw"}, {"value", Bytes{0xff, 0x00, 0x01}}})}));
  EXPECT_EQ(node_actor_view(node, box, inspect::View::kKv, "gr"), arr({obj({{"key", "greeting"}, {"value", "hello"}})}));

  const Value sql = node_actor_view(node, db, inspect::View::kSql, "SELECT SUM(n) AS total, COUNT(*) AS n FROM adds");
  EXPECT_EQ(sql, obj({{"columns", arr({"total", "n"})}, {"rows", arr({arr({5, 2})})}, {"truncated", false}}));

  const Value workflow = node_actor_view(node, worker, inspect::View::kWorkflow, "");
  ASSERT_FALSE(workflow.as_array().empty());

  auto reader = open_reader(dir);
  const std::pair<std::string, std::pair<inspect::View, std::string>> cases[] = {
      {sched, {inspect::View::kSchedules, ""}},
      {box, {inspect::View::kKv, ""}},
      {box, {inspect::View::kState, ""}},
      {db, {inspect::View::kSql, "SELECT n FROM adds ORDER BY id"}},
      {worker, {inspect::View::kWorkflow, ""}},
  };
  for (const auto& [id, v] : cases) {
    auto off = reader->view(id, v.first, v.second);
    ASSERT_TRUE(off.ok()) << off.error().message;
    EXPECT_EQ(json::dump(*off), json::dump(node_actor_view(node, id, v.first, v.second))) << id;
  }
}

TEST(ActorsCliViews, SqlRefusesStatementsThatWriteAndActorsWithoutADatabase) {
  const DataDir dir("cli-sql");
  anvil::testing::Node node(dir, actors::fixture_registry());
  const std::string db = node.get_or_create("dbCounter", {"d"});
  ASSERT_TRUE(node.call(db, "add", {Value(1)}).ok());
  const std::string plain = node.get_or_create("counter", {"c"});
  ASSERT_TRUE(node.call(plain, "increment").ok());
  node_view(node);
  auto reader = open_reader(dir);
  for (const char* text : {"DELETE FROM adds", "SELECT 1; DELETE FROM adds", "CREATE TABLE t(x)"}) {
    auto r = reader->view(db, inspect::View::kSql, text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().qualified(), "validation.invalid_input") << text;
  }
  EXPECT_EQ(reader->view(db, inspect::View::kSql, "SELECT nope FROM adds").error().qualified(), "db.query_failed");
  EXPECT_EQ(reader->view(plain, inspect::View::kSql, "SELECT 1").error().qualified(), "db.not_found");
  // The live database is untouched.
  EXPECT_EQ(*node.call(db, "check"), obj({{"count", 1}, {"rows", 1}, {"sum", 1}}));
}

TEST(ActorsCliViews, SettingTheStateRunsATurnThatIsDurableAndSeenByOnStateChange) {
  const DataDir dir("cli-set");
  std::string id;
  {
    anvil::testing::Node node(dir, with_kv_box());
    id = node.get_or_create("kvBox", {"set"});
    const int before = g_state_changes.load();
    auto r = node.run(node.rt().admin_set_state(id, obj({{"n", 42}, {"blob", Bytes{1, 2}}})));
    ASSERT_TRUE(r.output.ok()) << r.output.error().message;
    EXPECT_EQ(*node.call(id, "getState"), obj({{"n", 42}, {"blob", Bytes{1, 2}}}));
    EXPECT_EQ(g_state_changes.load(), before + 1);
    auto missing = node.run(node.rt().admin_set_state("0000000000000000000000000", obj({})));
    ASSERT_FALSE(missing.output.ok());
    EXPECT_EQ(missing.output.error().qualified(), "actor.not_found");
  }  // killed: only what was durable remains
  auto state = open_reader(dir)->view(id, inspect::View::kState, "");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(json::dump(*state), R"({"n":42,"blob":["$Uint8Array","AQI="]})");
}

}  // namespace

TEST(ActorsCliOffline, TheQueueViewListsQueuedMessagesWithTheirBodies) {
  const DataDir dir("cli-queue");
  std::string id;
  {
    anvil::testing::Node node(dir, actors::fixture_registry());
    id = node.get_or_create("counter", {"q"});
    AdminOp op;
    op.kind = AdminOp::Kind::kQueueSend;
    op.name = "inbox";
    op.value = obj({{"n", 1}});
    ASSERT_TRUE(node.run(node.rt().admin_operate(id, std::move(op))).output.ok());
  }
  auto reader = open_reader(dir);
  auto q = reader->view(id, inspect::View::kQueue, "");
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->find("size")->as_int(), 1);
  const Value& m = q->find("messages")->as_array()[0];
  EXPECT_EQ(*m.find("name"), Value("inbox"));
  EXPECT_EQ(*m.find("body"), obj({{"n", 1}}));
}

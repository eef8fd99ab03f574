// The offline reader of `anvil actors` (DataDirReader) against data
// directories written by a real in-process node: while the node runs on
// them, and after it stopped; and the node's own admin view of the same
// directory, which must print the same JSON.
#include "tools/actors_cli.hpp"

#include <filesystem>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "actors/fixtures/fixtures.hpp"
#include "base/value/json.hpp"
#include "runtime/test_node.hpp"

using namespace anvil;
using anvil::testing::temp_dir;
using anvil::tools::DataDirReader;

namespace {

const Registry& fixtures() {
  static const Registry reg = [] {
    Registry r;
    actors::register_fixtures(r);
    return r;
  }();
  return reg;
}

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
  const std::string dir = temp_dir("cli-stopped");
  std::string a, b;
  {
    anvil::testing::Node node(dir, fixtures());
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
  std::filesystem::remove_all(dir);
}

TEST(ActorsCliOffline, ShowsTheDecodedStateTimesAndSizesOfOneActor) {
  const std::string dir = temp_dir("cli-get");
  std::string id;
  {
    anvil::testing::Node node(dir, fixtures());
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
  EXPECT_TRUE(got->find("inspectorToken")->is_null());
  EXPECT_GT(got->find("stateBytes")->as_int(), 0);
  EXPECT_GE(got->find("generation")->as_int(), 1);
  EXPECT_GT(got->find("createdAt")->as_int(), 0);
  EXPECT_GE(got->find("startTs")->as_int(), got->find("createdAt")->as_int());
  std::filesystem::remove_all(dir);
}

TEST(ActorsCliOffline, AnUnknownActorIsNotFound) {
  const std::string dir = temp_dir("cli-missing");
  { anvil::testing::Node node(dir, fixtures()); }
  auto got = open_reader(dir)->get("0000000000000000000000000");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().qualified(), "actor.not_found");
  std::filesystem::remove_all(dir);
}

TEST(ActorsCliOffline, ADirectoryWithoutADatabaseIsRefusedAndNotCreated) {
  const std::string dir = temp_dir("cli-empty");
  std::filesystem::create_directories(dir);
  auto r = DataDirReader::open(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(std::filesystem::exists(dir + "/rocksdb"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/CURRENT"));
  std::filesystem::remove_all(dir);
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
  const std::string dir = temp_dir("cli-running");
  anvil::testing::Node node(dir, fixtures());
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
  const std::string dir = temp_dir("cli-same");
  anvil::testing::Node node(dir, fixtures());
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
    auto on = node.run(node.rt().once_durable(std::move(*node.rt().admin_actor(id))));
    auto off = reader->get(id);
    ASSERT_TRUE(on.ok() && off.ok());
    EXPECT_EQ(json::dump(*off), json::dump(*on)) << id;
  }
}

TEST(ActorsCliOffline, FiltersByNameKeyPrefixAndAwakeAndPagesWithACursor) {
  const std::string dir = temp_dir("cli-filter");
  anvil::testing::Node node(dir, fixtures());
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

}  // namespace

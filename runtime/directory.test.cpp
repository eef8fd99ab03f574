// The directory on disk (issue 17): a bounded cache of entries over the
// actors and key-index families. Exactly one actor per key under races with
// entries coming and going, sleeping actors evicted and read back with their
// state, destroyed actors never read back, restarts that load nothing, and
// listings that page through storage.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "actors/fixtures/fixtures.hpp"
#include "runtime/test_node.hpp"

using namespace anvil;
using anvil::testing::temp_dir;

namespace {

class Node : public anvil::testing::Node {
 public:
  explicit Node(const std::string& dir) : anvil::testing::Node(dir, actors::fixture_registry()) {}
  double resident() { return metric("anvil_directory_cache_entries").value_or(-1); }
  double evictions() { return metric("anvil_directory_evictions_total").value_or(-1); }
  double misses() { return metric("anvil_directory_lookups_total{result=\"miss\"}").value_or(-1); }
};

std::string key_of(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%04d", i);
  return buf;
}

// Waits until no actor is awake (each was told to sleep).
void wait_all_asleep(Node& n) {
  for (int i = 0; i < 500 && n.rt().awake_count() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(n.rt().awake_count(), 0u);
}

}  // namespace

TEST(Directory, ExactlyOneActorPerKeyInA2000WayBurstAcross100KeysWhileEntriesAreEvicted) {
  auto dir = temp_dir("dir-burst");
  Node n(dir);
  n.rt().set_directory_cache(8);
  // Half the keys exist already and are only in storage (evicted by the
  // others), half are new: both paths of getOrCreate race.
  std::map<std::string, std::string> before;
  for (int i = 0; i < 100; i += 2) before[key_of(i)] = n.get_or_create("counter", {key_of(i)});
  for (int i = 0; i < 300; ++i) n.get_or_create("counter", {"filler" + std::to_string(i)});
  ASSERT_GT(n.evictions(), 0);

  std::mutex mu;
  std::map<std::string, std::set<std::string>> ids;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < 250; ++i) {
        const std::string key = key_of((i * 7 + t * 13) % 100);
        CreateRequest cr;
        cr.name = "counter";
        cr.key = {key};
        auto r = n.rt().get_or_create(cr);
        if (!r.ok()) {
          ++failures;
          continue;
        }
        std::lock_guard lk(mu);
        ids[key].insert(r->info.actor_id);
      }
    });
  go.store(true);
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_EQ(ids.size(), 100u);
  for (const auto& [key, set] : ids) {
    EXPECT_EQ(set.size(), 1u) << "key " << key << " resolved to " << set.size() << " actors";
    if (auto it = before.find(key); it != before.end()) {
      EXPECT_EQ(*set.begin(), it->second) << key;
    }
  }
  // Storage agrees: one key-index row per key (the listing reads it).
  auto listed = n.run(n.rt().once_durable(n.rt().list_by_name("default", "counter")));
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 100u + 300u);
  std::filesystem::remove_all(dir);
}

TEST(Directory, SleepingActorsAreEvictedAndComeBackWithTheirStateUnderLoad) {
  auto dir = temp_dir("dir-evict");
  Node n(dir);
  n.rt().set_directory_cache(16);
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    ids.push_back(n.get_or_create("counter", {key_of(i)}));
    ASSERT_EQ(n.call(ids.back(), "increment", {Value(i + 1)})->as_int(), i + 1);
    ASSERT_TRUE(n.call(ids.back(), "goToSleep").ok());
  }
  wait_all_asleep(n);
  // Sleeping, idle actors beyond the bound are not in memory (entries are
  // dropped as others come in: one more does it).
  n.get_or_create("counter", {"poke"});
  EXPECT_LE(n.resident(), 16 + 1);
  EXPECT_GE(n.evictions(), 200 - 17);
  // Each comes back from storage with its state, by id and by key, from
  // several threads at once (entries keep coming and going).
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = t; i < 200; i += 4) {
        auto r = n.call(ids[i], "increment", {Value(1000)});
        if (!r.ok() || r->as_int() != i + 1 + 1000) ++wrong;
        auto found = n.rt().find_by_key("default", "counter", {key_of(i)});
        if (!found || found->actor_id != ids[i]) ++wrong;
        (void)n.call(ids[i], "goToSleep");
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  wait_all_asleep(n);
  n.get_or_create("counter", {"poke2"});
  EXPECT_LE(n.resident(), 16 + 1);
  // A woken actor's generation was kept across evictions.
  auto info = n.rt().find_by_id(ids[5]);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->generation, 2u);
  EXPECT_TRUE(info->sleep_ts.has_value()) << "an evicted sleeping actor reads back as asleep";
  std::filesystem::remove_all(dir);
}

TEST(Directory, ADestroyedActorIsNeverReadBackAndItsKeyMakesAFreshOne) {
  auto dir = temp_dir("dir-destroy");
  Node n(dir);
  n.rt().set_directory_cache(4);
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(n.get_or_create("counter", {key_of(i)}));
  for (int i = 0; i < 40; i += 2) ASSERT_EQ(*n.call(ids[i], "destroy"), Value(true));
  for (int i = 0; i < 40; ++i) {
    const bool gone = i % 2 == 0;
    EXPECT_EQ(n.rt().exists(ids[i]), !gone) << i;
    auto found = n.rt().find_by_key("default", "counter", {key_of(i)});
    EXPECT_EQ(found.has_value(), !gone) << i;
  }
  auto fresh = n.get_or_create("counter", {key_of(0)});
  EXPECT_NE(fresh, ids[0]);
  EXPECT_EQ(n.call(fresh, "getCount")->as_int(), 0);
  EXPECT_EQ(n.rt().find_by_key("default", "counter", {key_of(0)})->actor_id, fresh);
  std::filesystem::remove_all(dir);
}

TEST(Directory, ARestartLoadsNoEntryAndStillFiresThePendingSchedules) {
  auto dir = temp_dir("dir-restart");
  std::vector<std::string> ids;
  {
    Node n(dir);
    n.rt().set_directory_cache(8);
    for (int i = 0; i < 60; ++i) {
      ids.push_back(n.get_or_create("scheduler", {key_of(i)}));
      // Half due around the downtime, half after the restart.
      ASSERT_TRUE(n.call(ids.back(), "scheduleAfter", {Value(i % 2 ? 500 : 2500), Value(i)}).ok());
    }
  }  // stops like a crash
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  Node n(dir);
  n.rt().set_directory_cache(8);
  // Nothing of the directory is read at load; the overdue alarms read
  // only their own actors.
  EXPECT_LE(n.resident(), 30 + 1);
  for (int i = 0; i < 60; ++i) {
    Value fired;
    for (int t = 0; t < 300; ++t) {
      fired = *n.call(ids[i], "getFired");
      if (fired.is_array() && !fired.as_array().empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(fired.is_array());
    EXPECT_EQ(fired.as_array().size(), 1u) << "actor " << i;
  }
  std::filesystem::remove_all(dir);
}

TEST(Directory, ListingsPageThroughStorageInKeyOrder) {
  auto dir = temp_dir("dir-page");
  Node n(dir);
  n.rt().set_directory_cache(8);
  std::set<std::string> made;
  for (int i = 0; i < 250; ++i) made.insert(n.get_or_create("counter", {key_of(i)}));
  n.get_or_create("scheduler", {"other"});
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto page = n.run(n.rt().once_durable(n.rt().list_page("default", "counter", cursor, 100)));
    ASSERT_TRUE(page.ok());
    ++pages;
    for (const auto& a : page->actors) {
      EXPECT_EQ(a.name, "counter");
      seen.push_back(a.key);
      EXPECT_TRUE(made.count(a.actor_id));
    }
    cursor = page->cursor;
    ASSERT_LE(pages, 3);
  } while (!cursor.empty());
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 250u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 250u);
  EXPECT_LE(n.resident(), 8 + 1) << "a listing does not load the actors it lists";
  std::filesystem::remove_all(dir);
}

// An alarm that fires while its actor's type is not hosted (a node started
// without the app) finds "not found", but the schedule stays: it fires once
// the type is back (its index entry is kept).
TEST(Directory, AScheduleOfATypeNotHostedNowFiresOnceTheTypeIsBack) {
  auto dir = temp_dir("dir-unhosted");
  std::string id;
  {
    Node n(dir);
    id = n.get_or_create("scheduler", {"s"});
    ASSERT_TRUE(n.call(id, "scheduleAfter", {Value(200), Value("x")}).ok());
  }
  {
    Registry without;  // not the scheduler type
    ActorDefinition other("other");
    other.action("noop", [](ActionContext&, const Array&) -> Result<Value> { return Value(); });
    without.add(other);
    anvil::testing::Node n(dir, without);
    std::this_thread::sleep_for(std::chrono::milliseconds(700));  // the alarm fires into "not found"
  }
  Node n(dir);
  Value fired;
  for (int t = 0; t < 300; ++t) {
    fired = *n.call(id, "getFired");
    if (fired.is_array() && !fired.as_array().empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(fired.is_array());
  EXPECT_EQ(fired.as_array().size(), 1u);
  std::filesystem::remove_all(dir);
}

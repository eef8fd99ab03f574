// Runtime integration tests on a real RocksDB: identity, the getOrCreate
// race, durability across restarts, sleep/wake and destroy.
#include "runtime/runtime.hpp"

#include <filesystem>
#include <future>
#include <set>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "actors/fixtures/fixtures.hpp"

using namespace anvil;

namespace {

// One node: RocksDB + pipeline + runtime, with the io_context on 2 threads.
class Node {
 public:
  explicit Node(const std::string& dir, Registry* registry = nullptr) {
    if (!registry) {
      actors::register_fixtures(own_registry_);
      registry = &own_registry_;
    }
    auto s = storage::Store::open({dir});
    if (!s.ok()) throw std::runtime_error(s.error().message);
    store_ = std::move(*s);
    pipeline_ = std::make_unique<storage::CommitPipeline>(*store_, io_.get_executor());
    rt_ = std::make_unique<Runtime>(io_, *store_, *pipeline_, *registry);
    auto st = rt_->load();
    if (!st.ok()) throw std::runtime_error(st.error().message);
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~Node() {
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
    rt_.reset();
    pipeline_.reset();
    store_.reset();
  }

  Runtime& rt() { return *rt_; }

  template <typename T>
  T run(asio::awaitable<T> aw) {
    return asio::co_spawn(io_, std::move(aw), asio::use_future).get();
  }

  Result<Value> call(const std::string& id, const std::string& action, Array args = {}) {
    return run(rt_->call_action(id, action, std::move(args), Value())).output;
  }

  std::string get_or_create(const std::string& name, ActorKey key, std::optional<Value> input = {}) {
    CreateRequest cr;
    cr.name = name;
    cr.key = std::move(key);
    cr.input = std::move(input);
    auto r = rt_->get_or_create(cr);
    if (!r.ok()) throw std::runtime_error(r.error().message);
    run(rt_->durable(r->seq));
    return r->info.actor_id;
  }

 private:
  Registry own_registry_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<storage::CommitPipeline> pipeline_;
  std::unique_ptr<Runtime> rt_;
  std::vector<std::thread> threads_;
};

std::string temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("anvil-rt-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}

}  // namespace

TEST(Runtime, GetOrCreateReturnsTheSameActorForTheSameKey) {
  auto dir = temp_dir("same");
  Node n(dir);
  auto a = n.get_or_create("counter", {"k"});
  auto b = n.get_or_create("counter", {"k"});
  auto c = n.get_or_create("counter", {"k", "other"});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, SameKeyUnderDifferentNamesIsDifferentActors) {
  auto dir = temp_dir("names");
  Node n(dir);
  EXPECT_NE(n.get_or_create("counter", {"k"}), n.get_or_create("lifecycle", {"k"}));
  std::filesystem::remove_all(dir);
}

TEST(Runtime, CreateOnAUsedKeyIsDuplicateKeyNamingTheExistingActor) {
  auto dir = temp_dir("dup");
  Node n(dir);
  auto id = n.get_or_create("counter", {"d"});
  CreateRequest cr;
  cr.name = "counter";
  cr.key = {"d"};
  auto r = n.rt().create(cr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "actor.duplicate_key");
  ASSERT_TRUE(r.error().metadata.has_value());
  EXPECT_EQ(r.error().metadata->find("existing_actor_id")->as_string(), id);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, UnknownActorNameIsRejectedUpFront) {
  auto dir = temp_dir("unknown");
  Node n(dir);
  CreateRequest cr;
  cr.name = "nope";
  auto r = n.rt().get_or_create(cr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "actor.not_registered");
  std::filesystem::remove_all(dir);
}

TEST(Runtime, ConcurrentGetOrCreateAndIncrementOnANewKeyMakesOneActorAndLosesNothing) {
  auto dir = temp_dir("race");
  Node n(dir);
  constexpr int kCalls = 200;
  std::vector<std::future<std::pair<std::string, int64_t>>> fs;
  for (int i = 0; i < kCalls; ++i)
    fs.push_back(std::async(std::launch::async, [&] {
      auto id = n.get_or_create("counter", {"burst"});
      auto r = n.call(id, "increment", {Value(1)});
      return std::make_pair(id, r.ok() ? r->as_int() : -1);
    }));
  std::set<std::string> ids;
  std::set<int64_t> counts;
  for (auto& f : fs) {
    auto [id, c] = f.get();
    ids.insert(id);
    counts.insert(c);
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(counts.size(), size_t(kCalls));  // every increment saw a distinct count
  EXPECT_EQ(*counts.begin(), 1);
  EXPECT_EQ(n.call(*ids.begin(), "getCount")->as_int(), kCalls);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, AcknowledgedStateSurvivesAProcessRestart) {
  auto dir = temp_dir("restart");
  std::string id;
  {
    Node n(dir);
    id = n.get_or_create("counter", {"persist"});
    ASSERT_EQ(n.call(id, "increment", {Value(3)})->as_int(), 3);
  }  // no graceful shutdown: the node is simply torn down
  Node n(dir);
  EXPECT_EQ(n.get_or_create("counter", {"persist"}), id);
  EXPECT_EQ(n.call(id, "getCount")->as_int(), 3);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, StateIsRestoredAfterSleepAndHooksRunInOrder) {
  auto dir = temp_dir("sleep");
  Node n(dir);
  auto id = n.get_or_create("lifecycle", {"lc"}, obj({{"hello", "world"}}));
  EXPECT_EQ(*n.call(id, "getEvents"), arr({"create", "wake"}));
  EXPECT_EQ(*n.call(id, "goToSleep"), Value(true));
  EXPECT_EQ(n.rt().awake_count(), 0u);
  EXPECT_EQ(*n.call(id, "getEvents"), arr({"create", "wake", "sleep", "wake"}));
  auto input = n.call(id, "getInput");
  EXPECT_EQ(*input, obj({{"input", obj({{"hello", "world"}})}, {"createInput", obj({{"hello", "world"}})}}));
  EXPECT_EQ(n.rt().find_by_id(id)->generation, 2u);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, IdleActorsFallAsleepAfterTheirSleepTimeout) {
  auto dir = temp_dir("idle");
  Registry reg;
  ActorDefinition def("quick");
  def.options(ActorOptions{std::chrono::milliseconds(50)})
      .action("ping", [](ActionContext&, const Array&) -> Result<Value> { return "pong"; });
  reg.add(def);
  Node n(dir, &reg);
  auto id = n.get_or_create("quick", {});
  EXPECT_EQ(*n.call(id, "ping"), Value("pong"));
  EXPECT_EQ(n.rt().awake_count(), 1u);
  for (int i = 0; i < 100 && n.rt().awake_count() != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(n.rt().awake_count(), 0u);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, DestroyedActorIsGoneAndItsKeyMakesAFreshActor) {
  auto dir = temp_dir("destroy");
  Node n(dir);
  auto id = n.get_or_create("counter", {"gone"});
  ASSERT_EQ(n.call(id, "increment", {Value(5)})->as_int(), 5);
  EXPECT_EQ(*n.call(id, "destroy"), Value(true));
  EXPECT_FALSE(n.rt().find_by_id(id).has_value());
  auto after = n.call(id, "getCount");
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.error().qualified(), "actor.not_found");
  auto fresh = n.get_or_create("counter", {"gone"});
  EXPECT_NE(fresh, id);
  EXPECT_EQ(n.call(fresh, "getCount")->as_int(), 0);
  std::filesystem::remove_all(dir);
}

TEST(Runtime, DestroyIsDurableAcrossRestart) {
  auto dir = temp_dir("destroy-restart");
  std::string id;
  {
    Node n(dir);
    id = n.get_or_create("counter", {"gone2"});
    ASSERT_TRUE(n.call(id, "destroy").ok());
  }
  Node n(dir);
  EXPECT_FALSE(n.rt().find_by_id(id).has_value());
  EXPECT_FALSE(n.rt().find_by_key("default", "counter", {"gone2"}).has_value());
  std::filesystem::remove_all(dir);
}

TEST(Runtime, UnknownActionIsActionNotFound) {
  auto dir = temp_dir("noaction");
  Node n(dir);
  auto id = n.get_or_create("counter", {});
  auto r = n.call(id, "nonexistentAction");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "actor.action_not_found");
  EXPECT_EQ(r.error().message, "Action `nonexistentAction` was not found.");
  std::filesystem::remove_all(dir);
}

TEST(Runtime, InternalExceptionsAreMaskedAndTheActorLivesOn) {
  auto dir = temp_dir("mask");
  Node n(dir);
  auto id = n.get_or_create("errors", {});
  auto r = n.call(id, "throwInternalError");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "rivetkit.internal_error");
  EXPECT_EQ(r.error().message, "An internal error occurred");
  EXPECT_FALSE(r.error().metadata.has_value());
  EXPECT_EQ(*n.call(id, "ok"), Value("ok"));
  std::filesystem::remove_all(dir);
}

// memoryActor against real Postgres (L2, repos), a real bare git repository
// behind the Gitea fake (L3) and the in-process node (L1, crashes).
#include "actors/growqr/memory/memory_actor.hpp"

#include <filesystem>

#include "actors/growqr/memory/memory_store.hpp"
#include "actors/growqr/missions/growqr_test_env.hpp"
#include "tests/fakes/gitea_fake.hpp"

namespace anvil::growqr {
namespace {

using namespace std::chrono_literals;
using testing::GrowqrTest;

class MemoryTest : public GrowqrTest {
 protected:
  void SetUp() override {
    GrowqrTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    gitea_ = std::make_unique<fakes::GiteaFake>(dir_ + "-gitea");
    config_["GITEA_URL"] = gitea_->url();
    config_["GITEA_TOKEN"] = gitea_->admin_token();
  }
  void TearDown() override {
    gitea_.reset();
    std::filesystem::remove_all(dir_ + "-gitea");
    std::filesystem::remove_all(dir_ + "-data");
    GrowqrTest::TearDown();
  }

  Result<Value> mem(const std::string& action, Array args = {}, const std::string& user = "user_A1") {
    return call("memoryActor", {user}, action, std::move(args));
  }
  git::BareRepo repo(const std::string& user = "user_A1") { return gitea_->repo(memory_owner(user), "growqr-memory"); }
  size_t commits(const std::string& user = "user_A1") {
    auto log = repo(user).log();
    return log.ok() ? log->size() : 0;
  }
  bool settled(const std::string& user = "user_A1") {
    return eventually([&] {
      auto s = mem("getMemoryStatus", {}, user);
      return s.ok() && s->find("pendingOps")->as_array().empty();
    });
  }

  std::unique_ptr<fakes::GiteaFake> gitea_;
};

TEST_F(MemoryTest, ACommittedFileIsAGitCommitAndReadsAndListsBack) {
  auto w = mem("commitMemory", {Value("notes//./goals.md"), Value("# Goals\nShip it.\n")});
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(w->find("path")->as_string(), "notes/goals.md");
  auto log = repo().log();
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->size(), 1u);
  EXPECT_EQ((*log)[0].message, "memory: add notes/goals.md");
  EXPECT_EQ((*log)[0].sha, w->find("commit")->as_string());
  EXPECT_EQ(repo().read("notes/goals.md")->sha, w->find("sha")->as_string());

  auto r = mem("readMemory", {Value("notes/goals.md")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->as_string(), "# Goals\nShip it.\n");
  ASSERT_TRUE(mem("commitMemory", {obj({{"path", "profile.md"}, {"content", "me"}})}).ok());
  auto l = mem("listMemory");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, Value(Array{Value("notes/goals.md"), Value("profile.md")}));
  EXPECT_EQ(*mem("listMemory", {Value("notes/")}), Value(Array{Value("notes/goals.md")}));
  EXPECT_EQ(count("SELECT count(*) AS n FROM repos WHERE user_id = 'user_A1' AND name = 'growqr-memory'"), 1);
}

TEST_F(MemoryTest, AStaleShaIsReReadAndRetriedSoNoWriteIsLost) {
  ASSERT_TRUE(mem("commitMemory", {Value("a.md"), Value("v1")}).ok());
  gitea_->change_before_next_write(memory_owner("user_A1"), "growqr-memory", "a.md", "someone else");
  auto w = mem("commitMemory", {Value("a.md"), Value("v2")});
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(repo().read("a.md")->content, "v2");
  auto log = repo().log();
  ASSERT_EQ(log->size(), 3u);
  EXPECT_EQ((*log)[1].message, "concurrent writer");
  size_t puts = 0;
  for (const auto& r : gitea_->http().requests())
    if (r.method == "PUT") ++puts;
  EXPECT_EQ(puts, 2u) << "the stale PUT and its retry on the new sha";
}

TEST_F(MemoryTest, InvalidPathsAreRejectedBeforeAnyGitCall) {
  for (const char* bad : {"../escape.md", "/abs.md", "a\\b.md", "notes/x.txt", "", ".git/HEAD.md"}) {
    auto w = mem("commitMemory", {Value(bad), Value("x")});
    ASSERT_FALSE(w.ok()) << bad;
    EXPECT_EQ(w.error().qualified(), "memory.invalid_path") << bad;
    EXPECT_EQ(mem("readMemory", {Value(bad)}).error().qualified(), "memory.invalid_path") << bad;
  }
  EXPECT_TRUE(gitea_->http().requests().empty());
}

TEST_F(MemoryTest, AKillAfterTheCommitLandedLeavesOneCommitAndRecoversL1) {
  gitea_->delay_write_answers(3s);
  const std::string id = node_->get_or_create("memoryActor", {"user_A1"});
  asio::co_spawn(node_->io(), node_->rt().call_action(id, "commitMemory", {Value("k.md"), Value("kill me")}, Value()),
                 asio::detached);
  ASSERT_TRUE(eventually([&] { return gitea_->commits_made() == 1; }));
  stop_node();  // the commit is in git, its answer never arrived
  gitea_->delay_write_answers(0ms);
  start_node();
  ASSERT_TRUE(settled());
  EXPECT_EQ(commits(), 1u);
  EXPECT_EQ(mem("readMemory", {Value("k.md")})->as_string(), "kill me");
  auto again = mem("commitMemory", {Value("k.md"), Value("kill me")});  // the caller's retry
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->find("unchanged")->as_bool());
  EXPECT_EQ(commits(), 1u);
}

TEST_F(MemoryTest, AKillBeforeTheWriteReachedGitCompletesItOnceAfterRestart) {
  ASSERT_TRUE(mem("commitMemory", {Value("first.md"), Value("1")}).ok());  // provisioned
  gitea_->hang_next(1);  // the write's first read hangs
  const std::string id = node_->get_or_create("memoryActor", {"user_A1"});
  const size_t before = gitea_->http().requests().size();
  asio::co_spawn(node_->io(), node_->rt().call_action(id, "commitMemory", {Value("k.md"), Value("later")}, Value()),
                 asio::detached);
  ASSERT_TRUE(eventually([&] { return gitea_->http().requests().size() > before; }));
  stop_node();
  start_node();
  ASSERT_TRUE(settled());
  EXPECT_EQ(repo().read("k.md")->content, "later");
  EXPECT_EQ(commits(), 2u);
}

TEST_F(MemoryTest, GiteaDownFailsTheWriteWithoutLeavingItPending) {
  ASSERT_TRUE(mem("commitMemory", {Value("a.md"), Value("1")}).ok());
  gitea_->fail_next(100, 503);
  auto w = mem("commitMemory", {Value("a.md"), Value("2")});
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().qualified(), "memory.unavailable");
  EXPECT_TRUE(mem("getMemoryStatus")->find("pendingOps")->as_array().empty());
  gitea_->fail_next(0);
  ASSERT_TRUE(mem("commitMemory", {Value("a.md"), Value("2")}).ok());
  EXPECT_EQ(repo().read("a.md")->content, "2");
}

TEST_F(MemoryTest, ListingFallsBackToL1WhileGiteaIsDown) {
  ASSERT_TRUE(mem("commitMemory", {Value("a.md"), Value("1")}).ok());
  gitea_->fail_next(100, 500);
  auto l = mem("listMemory");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, Value(Array{Value("a.md")}));
  EXPECT_EQ(mem("readMemory", {Value("a.md")})->as_string(), "1") << "L1 answers without L3";
}

TEST_F(MemoryTest, DeletingAFileCommitsItsRemoval) {
  ASSERT_TRUE(mem("commitMemory", {Value("gone.md"), Value("x")}).ok());
  auto d = mem("deleteMemory", {Value("gone.md")});
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(d->find("deleted")->as_bool());
  EXPECT_EQ(commits(), 2u);
  EXPECT_EQ(mem("readMemory", {Value("gone.md")}).error().qualified(), "memory.not_found");
  EXPECT_FALSE(mem("deleteMemory", {Value("gone.md")})->find("deleted")->as_bool());
}

TEST_F(MemoryTest, AFileChangedOutsideTheActorIsReadFreshAfterAListing) {
  ASSERT_TRUE(mem("commitMemory", {Value("a.md"), Value("mine")}).ok());
  auto cur = repo().read("a.md");
  ASSERT_TRUE(repo().write("a.md", "edited in git", git::WriteMode::update(cur->sha), "by hand").ok());
  ASSERT_TRUE(mem("listMemory").ok());
  EXPECT_EQ(mem("readMemory", {Value("a.md")})->as_string(), "edited in git");
}

TEST_F(MemoryTest, InDevelopmentWithoutGiteaL3IsALocalBareRepositoryUnderTheDataDirectory) {
  config_.erase("GITEA_URL");
  config_["APP_ENV"] = "development";
  config_["ANVIL_DATA_DIR"] = dir_ + "-data";
  auto w = mem("commitMemory", {Value("notes/dev.md"), Value("local")});
  ASSERT_TRUE(w.ok()) << w.error().message;
  git::BareRepo local(dir_ + "-data/growqr/memory/" + memory_owner("user_A1") + ".git");
  auto log = local.log();
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->size(), 1u);
  EXPECT_EQ((*log)[0].sha, w->find("commit")->as_string());
  EXPECT_EQ(local.read("notes/dev.md")->content, "local");
  EXPECT_EQ(*mem("listMemory"), Value(Array{Value("notes/dev.md")}));
  EXPECT_EQ(mem("getMemoryStatus")->find("backend")->as_string(), "local");
  EXPECT_TRUE(gitea_->http().requests().empty());
}

TEST_F(MemoryTest, OutsideDevelopmentL3WithoutGiteaIsNotConfigured) {
  config_.erase("GITEA_URL");
  config_["APP_ENV"] = "production";
  auto w = mem("commitMemory", {Value("a.md"), Value("x")});
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().qualified(), "memory.not_configured");
}

TEST_F(MemoryTest, SessionMemoryIsKeptInPostgresPerSessionAndKey) {
  ASSERT_TRUE(mem("commitSessionMemory", {Value("s1"), Value("topic"), Value("pricing")}).ok());
  ASSERT_TRUE(mem("commitSessionMemory", {Value("s1"), Value("topic"), Value("pricing v2")}).ok());
  ASSERT_TRUE(mem("commitSessionMemory", {Value("s1"), Value("mood"), Value("curious")}).ok());
  EXPECT_EQ(mem("readSessionMemory", {Value("s1"), Value("topic")})->as_string(), "pricing v2");
  auto all = mem("readSessionMemory", {Value("s1")});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->find("mood")->as_string(), "curious");
  EXPECT_EQ(count("SELECT count(*) AS n FROM session_memory WHERE user_id = 'user_A1' AND session_id = 's1'"), 2);
  EXPECT_EQ(mem("readSessionMemory", {Value("s1"), Value("nope")}).error().qualified(), "memory.not_found");
  EXPECT_EQ(mem("clearSessionMemory", {Value("s1")})->find("deleted")->as_int(), 2);
}

TEST_F(MemoryTest, TwoUsersGetTwoRepositories) {
  ASSERT_TRUE(mem("commitMemory", {Value("a.md"), Value("A")}, "user_A1").ok());
  ASSERT_TRUE(mem("commitMemory", {Value("a.md"), Value("B")}, "user_B2").ok());
  EXPECT_EQ(repo("user_A1").read("a.md")->content, "A");
  EXPECT_EQ(repo("user_B2").read("a.md")->content, "B");
  EXPECT_NE(memory_owner("user_A1"), memory_owner("user_B2"));
}

// Queue `write`: durable on send, committed to git once by recovery.
TEST_F(MemoryTest, AQueuedWriteIsCommittedToGitOnceAndReadsBack) {
  const std::string id = node_->get_or_create("memoryActor", {"user_A1"});
  node_->send(id, "write", obj({{"path", "queued//a.md"}, {"content", "from the queue"}}));
  ASSERT_TRUE(eventually([&] { return repo().read("queued/a.md").ok(); }));
  ASSERT_TRUE(settled());
  EXPECT_EQ(repo().read("queued/a.md")->content, "from the queue");
  EXPECT_EQ(commits(), 1u);
  EXPECT_EQ(mem("readMemory", {Value("queued/a.md")})->as_string(), "from the queue");
  node_->send(id, "write", obj({{"path", "queued/a.md"}, {"delete", true}}));
  ASSERT_TRUE(eventually([&] { return !repo().read("queued/a.md").ok(); }));
}

TEST_F(MemoryTest, QueuedWritesWaitOutAnOutageAndLandInOrder) {
  ASSERT_TRUE(mem("commitMemory", {Value("seed.md"), Value("0")}).ok());  // provisioned
  gitea_->fail_next(1000, 503);
  const std::string id = node_->get_or_create("memoryActor", {"user_A1"});
  node_->send(id, "write", obj({{"path", "o.md"}, {"content", "1"}}));
  node_->send(id, "write", obj({{"path", "o.md"}, {"content", "2"}}));
  node_->send(id, "write", obj({{"path", "p.md"}, {"content", "3"}}));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(mem("getMemoryStatus")->find("pendingOps")->as_array().size(), 3u) << "kept while Gitea is down";
  gitea_->fail_next(0);
  ASSERT_TRUE(eventually([&] { return mem("getMemoryStatus")->find("pendingOps")->as_array().empty(); },
                         std::chrono::seconds(15)));
  EXPECT_EQ(repo().read("o.md")->content, "2");
  EXPECT_EQ(repo().read("p.md")->content, "3");
  EXPECT_EQ(commits(), 4u) << "each queued write is one commit";
}

TEST_F(MemoryTest, AQueuedWriteWithABadPathIsRefusedAndLeavesNothing) {
  const std::string id = node_->get_or_create("memoryActor", {"user_A1"});
  node_->send(id, "write", obj({{"path", "../escape.md"}, {"content", "x"}}));
  node_->send(id, "write", obj({{"path", "ok.md"}}));  // no content
  ASSERT_TRUE(mem("commitMemory", {Value("after.md"), Value("y")}).ok());
  EXPECT_TRUE(mem("getMemoryStatus")->find("pendingOps")->as_array().empty());
  EXPECT_EQ(commits(), 1u);
}

TEST_F(MemoryTest, AQueuedWriteCutByAKillIsCommittedOnceAfterRestart) {
  ASSERT_TRUE(mem("commitMemory", {Value("first.md"), Value("1")}).ok());  // provisioned
  gitea_->hang_next(1);
  const std::string id = node_->get_or_create("memoryActor", {"user_A1"});
  const size_t before = gitea_->http().requests().size();
  node_->send(id, "write", obj({{"path", "k.md"}, {"content", "queued"}}));
  ASSERT_TRUE(eventually([&] { return gitea_->http().requests().size() > before; }));
  stop_node();
  start_node();
  ASSERT_TRUE(eventually([&] { return repo().read("k.md").ok(); },
                         std::chrono::seconds(15)));
  ASSERT_TRUE(settled());
  EXPECT_EQ(repo().read("k.md")->content, "queued");
  EXPECT_EQ(commits(), 2u);
}

}  // namespace
}  // namespace anvil::growqr

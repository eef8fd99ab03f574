// The workbench's tree in-process (real RocksDB): names it refuses, the
// durable outbox across a node dropped like a crash, and that reads stay
// local. The rules with real rivetkit clients: tests/e2e/workbench_test.mjs.
#include <gtest/gtest.h>

#include "actors/workbench/common.hpp"
#include "actors/workbench/workbench.hpp"
#include "runtime/test_node.hpp"

using namespace anvil;
using anvil::testing::temp_dir;

namespace {

Registry registry() {
  Registry reg;
  AppDefinition app = workbench::app();
  for (auto& def : app.actors()) reg.add(def);
  return reg;
}

Value must(Result<Value> r) {
  if (!r.ok()) throw std::runtime_error(r.error().qualified() + ": " + r.error().message);
  return std::move(*r);
}

struct Tree {
  std::string org, repo;
};

// organization [o] with repository [o, r] and tasks t0..t<n-1> in it.
Tree make_tree(anvil::testing::Node& n, int tasks) {
  Tree t;
  t.org = n.get_or_create("organization", {"o"});
  must(n.call(t.org, "addRepository", {obj({{"repoId", "r"}, {"name", "local/r"}})}));
  t.repo = n.rt().find_by_key("default", "repository", {"o", "r"})->actor_id;
  for (int i = 0; i < tasks; ++i)
    must(n.call(t.repo, "createTask", {obj({{"taskId", Value("t" + std::to_string(i))}, {"title", "T"}})}));
  return t;
}

// Polls the organization's sidebar until `pred` holds.
Value sidebar_until(anvil::testing::Node& n, const std::string& org, const std::function<bool(const Array&)>& pred) {
  Value last;
  for (int i = 0; i < 600; ++i) {
    last = must(n.call(org, "listTaskSummaries"));
    if (pred(last.as_array())) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return last;
}

}  // namespace

TEST(WorkbenchNames, BranchNamesGitWouldRefuseAreRejectedAndOrdinaryOnesPass) {
  for (const char* ok : {"main", "task/t1", "feature/widgets-2", "v1.2_x"}) EXPECT_TRUE(workbench::check_branch(ok).ok()) << ok;
  for (const char* bad : {"", "../evil", "a..b", "-x", "/x", "x/", "x.lock", "a//b", "a b", "a~1", "x.", ".hidden", "a/.b"})
    EXPECT_FALSE(workbench::check_branch(bad).ok()) << bad;
  EXPECT_FALSE(workbench::check_id("taskId", "..").ok());
  EXPECT_FALSE(workbench::check_id("taskId", "a/b").ok());
  EXPECT_TRUE(workbench::check_id("taskId", "T-1.x_y").ok());
}

TEST(WorkbenchOutbox, AStatusChangeAcknowledgedBeforeACrashReachesTheSidebarAfterRestart) {
  auto dir = temp_dir("wb-outbox");
  Registry reg = registry();
  std::string org;
  {
    anvil::testing::Node n(dir, reg);
    org = make_tree(n, 1).org;
    const std::string task = n.rt().find_by_key("default", "task", {"o", "r", "t0"})->actor_id;
    // Acknowledged (durable) — then the node is dropped at once, like a
    // kill -9, before the push has surely travelled up.
    must(n.call(task, "setStatus", {Value("shipped")}));
  }
  anvil::testing::Node n(dir, reg);
  auto list = sidebar_until(n, org, [](const Array& rows) {
    return rows.size() == 1 && rows[0].find("status")->as_string() == "shipped";
  });
  ASSERT_EQ(list.as_array().size(), 1u);
  EXPECT_EQ(list.as_array()[0].find("status")->as_string(), "shipped");
}

TEST(WorkbenchReads, TheSidebarAndTheRepositoryIndexAreReadWithoutWakingAnyTask) {
  auto dir = temp_dir("wb-reads");
  Registry reg = registry();
  Tree tree;
  {
    anvil::testing::Node n(dir, reg);
    tree = make_tree(n, 20);
    sidebar_until(n, tree.org, [](const Array& rows) { return rows.size() == 20; });
  }
  const std::string& org = tree.org;
  const std::string& repo = tree.repo;
  anvil::testing::Node n(dir, reg);  // every actor asleep
  const uint64_t before = n.actor_wakes("task");
  EXPECT_EQ(must(n.call(org, "listTaskSummaries")).as_array().size(), 20u);
  EXPECT_EQ(must(n.call(repo, "listTasks")).as_array().size(), 20u);
  EXPECT_EQ(must(n.call(org, "getSnapshot")).find("tasks")->as_array().size(), 20u);
  EXPECT_EQ(n.actor_wakes("task"), before);
}

TEST(WorkbenchChildren, APushFromAnActorThatIsNotTheChildsCoordinatorIsRefused) {
  auto dir = temp_dir("wb-push");
  Registry reg = registry();
  anvil::testing::Node n(dir, reg);
  auto org = n.get_or_create("organization", {"o"});
  // A client (no calling actor) posing as a repository's push.
  auto r = n.call(org, "_taskSummaryChanged",
                  {obj({{"taskId", "t"}, {"repoId", "r"}, {"title", "x"}, {"status", "x"}, {"branch", "b"}, {"version", 9}})});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "workbench.forbidden");
  EXPECT_EQ(must(n.call(org, "listTaskSummaries")).as_array().size(), 0u);
}

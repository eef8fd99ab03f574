#include "base/git/bare_repo.hpp"

#include <filesystem>
#include <random>
#include <thread>

#include <gtest/gtest.h>

namespace anvil::git {
namespace {

class BareRepoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("anvil-git-" + std::to_string(std::random_device{}()))).string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(BareRepoTest, AWrittenFileReadsBackWithItsBlobShaAndOneCommit) {
  BareRepo repo(dir_ + "/u.git");
  ASSERT_TRUE(repo.init().ok());
  auto w = repo.write("notes/a.md", "hello\n", WriteMode::create(), "add a");
  ASSERT_TRUE(w.ok()) << w.error().message;
  auto r = repo.read("notes/a.md");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->content, "hello\n");
  EXPECT_EQ(r->sha, w->blob_sha);
  EXPECT_EQ(r->sha, "ce013625030ba8dba906f756967f9e9ca394464a");  // git hash-object of "hello\n"
  auto log = repo.log();
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log->size(), 1u);
  EXPECT_EQ((*log)[0].message, "add a");
  EXPECT_EQ((*log)[0].sha, w->commit_sha);
}

TEST_F(BareRepoTest, AnUpdateWithAStaleShaIsAConflictAndCommitsNothing) {
  BareRepo repo(dir_ + "/u.git");
  auto first = repo.write("a.md", "1", WriteMode::create(), "one");
  ASSERT_TRUE(first.ok());
  auto second = repo.write("a.md", "2", WriteMode::update(first->blob_sha), "two");
  ASSERT_TRUE(second.ok());
  auto stale = repo.write("a.md", "3", WriteMode::update(first->blob_sha), "three");
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().qualified(), "git.conflict");
  EXPECT_EQ(repo.log()->size(), 2u);
  EXPECT_EQ(repo.read("a.md")->content, "2");
}

TEST_F(BareRepoTest, CreatingAnExistingFileFailsAndRemovingNeedsTheCurrentSha) {
  BareRepo repo(dir_ + "/u.git");
  auto w = repo.write("a.md", "1", WriteMode::create(), "one");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(repo.write("a.md", "1", WriteMode::create(), "again").error().qualified(), "git.exists");
  EXPECT_EQ(repo.remove("a.md", std::string(40, 'f'), "rm").error().qualified(), "git.conflict");
  ASSERT_TRUE(repo.remove("a.md", w->blob_sha, "rm").ok());
  EXPECT_EQ(repo.read("a.md").error().qualified(), "git.not_found");
  EXPECT_EQ(repo.log()->size(), 2u);
}

TEST_F(BareRepoTest, ListingIsRecursiveAndDirectoriesListTheirChildren) {
  BareRepo repo(dir_ + "/u.git");
  EXPECT_TRUE(repo.list()->empty());
  ASSERT_TRUE(repo.write("b.md", "b", WriteMode::upsert(), "b").ok());
  ASSERT_TRUE(repo.write("x/y/c.md", "c", WriteMode::upsert(), "c").ok());
  auto all = repo.list();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].path, "b.md");
  EXPECT_EQ((*all)[1].path, "x/y/c.md");
  auto root = repo.list_dir("");
  ASSERT_TRUE(root.ok());
  ASSERT_EQ(root->size(), 2u);
  EXPECT_EQ((*root)[1].path, "x/");
  EXPECT_TRUE(repo.is_dir("x/y"));
  EXPECT_FALSE(repo.is_dir("b.md"));
}

TEST_F(BareRepoTest, ConcurrentWritersToDifferentFilesLoseNoCommit) {
  BareRepo repo(dir_ + "/u.git");
  ASSERT_TRUE(repo.init().ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3; ++i) {
        auto w = repo.write("f" + std::to_string(t) + "-" + std::to_string(i) + ".md", "x", WriteMode::create(), "w");
        EXPECT_TRUE(w.ok()) << w.error().message;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(repo.log()->size(), 12u);
  EXPECT_EQ(repo.list()->size(), 12u);
}

}  // namespace
}  // namespace anvil::git

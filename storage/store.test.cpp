#include "storage/store.hpp"

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <gtest/gtest.h>

#include "storage/test_dir.hpp"

using namespace anvil;
using namespace anvil::storage;

namespace {
std::string temp_dir(const char* name) { return anvil::testing::temp_dir(name); }
}  // namespace

TEST(Store, SyncedWritesAreReadableAfterReopen) {
  auto dir = temp_dir("store-reopen");
  {
    auto s = Store::open({dir});
    ASSERT_TRUE(s.ok()) << s.error().message;
    rocksdb::WriteBatch b;
    (*s)->put(b, Family::kState, "actor1", "v1");
    ASSERT_TRUE((*s)->write_synced(b).ok());
  }
  auto s = Store::open({dir});
  ASSERT_TRUE(s.ok());
  auto v = (*s)->get(Family::kState, "actor1");
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v->has_value());
  EXPECT_EQ(**v, "v1");
  std::filesystem::remove_all(dir);
}

TEST(Store, FamiliesAreSeparateKeySpaces) {
  auto dir = temp_dir("store-families");
  auto s = Store::open({dir});
  ASSERT_TRUE(s.ok());
  rocksdb::WriteBatch b;
  (*s)->put(b, Family::kActors, "k", "actor");
  (*s)->put(b, Family::kState, "k", "state");
  ASSERT_TRUE((*s)->write_synced(b).ok());
  EXPECT_EQ(*(*s)->get(Family::kActors, "k").value(), "actor");
  EXPECT_EQ(*(*s)->get(Family::kState, "k").value(), "state");
  EXPECT_FALSE((*s)->get(Family::kKv, "k").value().has_value());
  std::filesystem::remove_all(dir);
}

TEST(Store, PrefixDeleteRemovesOnlyThatActorsRange) {
  auto dir = temp_dir("store-prefix");
  auto s = Store::open({dir});
  ASSERT_TRUE(s.ok());
  rocksdb::WriteBatch b;
  (*s)->put(b, Family::kKv, "aaa/1", "x");
  (*s)->put(b, Family::kKv, "aaa/2", "y");
  (*s)->put(b, Family::kKv, "aab/1", "z");
  ASSERT_TRUE((*s)->write_synced(b).ok());
  rocksdb::WriteBatch d;
  (*s)->del_prefix(d, Family::kKv, "aaa/");
  ASSERT_TRUE((*s)->write_synced(d).ok());
  std::vector<std::string> keys;
  ASSERT_TRUE((*s)->scan(Family::kKv, [&](std::string_view k, std::string_view) {
                    keys.emplace_back(k);
                    return true;
                  }).ok());
  EXPECT_EQ(keys, std::vector<std::string>{"aab/1"});
  std::filesystem::remove_all(dir);
}

TEST(Store, OpeningAPathThatIsAFileFailsWithAnError) {
  auto dir = temp_dir("store-file");
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path());
  { std::ofstream(dir) << "not a db"; }
  auto s = Store::open({dir});
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.error().group, "storage");
  std::filesystem::remove(dir);
}

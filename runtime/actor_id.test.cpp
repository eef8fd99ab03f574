// Actor ids and inspector tokens: their form, and no repeats.
#include "runtime/actor_id.hpp"

#include <set>

#include <gtest/gtest.h>

using namespace anvil;

TEST(ActorIds, AreValidAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 10'000; ++i) {
    std::string id = new_actor_id();
    ASSERT_TRUE(is_valid_actor_id(id)) << id;
    ASSERT_TRUE(seen.insert(id).second) << "repeated " << id;
  }
  EXPECT_FALSE(is_valid_actor_id("too-short"));
  EXPECT_FALSE(is_valid_actor_id(std::string(kActorIdLength, 'A')));
}

TEST(InspectorTokens, Are64LowercaseHexCharactersFromTheWholeAlphabetAndNeverRepeat) {
  std::set<std::string> seen;
  std::set<char> used;
  for (int i = 0; i < 10'000; ++i) {
    std::string t = new_inspector_token();
    ASSERT_EQ(t.size(), 64u) << t;
    for (char c : t) {
      ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << t;
      used.insert(c);
    }
    ASSERT_TRUE(seen.insert(t).second) << "repeated " << t;
  }
  EXPECT_EQ(used.size(), 16u) << "every hex digit appears";
}

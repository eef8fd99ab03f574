#include "runtime/actor_key.hpp"

#include <gtest/gtest.h>

using namespace anvil;

TEST(ActorKey, EmptyKeySerializesToSlash) {
  EXPECT_EQ(serialize_key({}), "/");
  EXPECT_EQ(deserialize_key("/"), ActorKey{});
  EXPECT_EQ(deserialize_key(""), ActorKey{});
}

TEST(ActorKey, SpecExampleRoundTripsByteForByte) {
  ActorKey k{"a/b", "", "c\\d", "e,f", "\xc3\xbc sp+"};
  std::string s = serialize_key(k);
  EXPECT_EQ(s, "a\\/b/\\0/c\\\\d/e,f/\xc3\xbc sp+");
  EXPECT_EQ(deserialize_key(s), k);
}

TEST(ActorKey, SingleEmptyComponentIsBackslashZero) {
  EXPECT_EQ(serialize_key({""}), "\\0");
  EXPECT_EQ(deserialize_key("\\0"), ActorKey{""});
}

TEST(ActorKey, PlainComponentsJoinWithSlash) {
  EXPECT_EQ(serialize_key({"k1", "j1"}), "k1/j1");
  EXPECT_EQ(deserialize_key("k1/j1"), (ActorKey{"k1", "j1"}));
}

TEST(ActorKey, SlashInsideAComponentDiffersFromTwoComponents) {
  EXPECT_NE(serialize_key({"x/y"}), serialize_key({"x", "y"}));
}

TEST(ActorKey, TrailingLoneBackslashIsKeptLiterally) {
  EXPECT_EQ(deserialize_key("ab\\"), ActorKey{"ab\\"});
}

TEST(ActorKey, TrailingSeparatorAddsEmptyComponent) {
  EXPECT_EQ(deserialize_key("a/"), (ActorKey{"a", ""}));
}

TEST(ActorKey, QueryKeySplitsOnCommaWithoutEscaping) {
  EXPECT_EQ(split_query_key("k1,j1"), (ActorKey{"k1", "j1"}));
  EXPECT_EQ(split_query_key("e,f"), (ActorKey{"e", "f"}));
  EXPECT_EQ(split_query_key(""), ActorKey{});
  EXPECT_EQ(split_query_key("a,,b"), (ActorKey{"a", "", "b"}));
}

TEST(ActorKey, OversizedComponentIsRejected) {
  EXPECT_FALSE(validate_key({std::string(129, 'x')}).ok());
  EXPECT_TRUE(validate_key({std::string(128, 'x')}).ok());
  EXPECT_EQ(validate_key({std::string(129, 'x')}).error().code, "key_too_large");
}

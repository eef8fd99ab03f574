#include "actors/growqr/memory/memory_path.hpp"

#include <gtest/gtest.h>

namespace anvil::growqr {
namespace {

TEST(MemoryPath, RepeatedSlashesAndDotSegmentsAreNormalizedAway) {
  EXPECT_EQ(*normalize_memory_path("a//b/./c.md"), "a/b/c.md");
  EXPECT_EQ(*normalize_memory_path("./notes/x.md"), "notes/x.md");
  EXPECT_EQ(*normalize_memory_path("profile.md"), "profile.md");
}

TEST(MemoryPath, UnsafeOrNonMarkdownPathsAreInvalid) {
  for (const char* bad : {"", "/etc/passwd.md", "../x.md", "a/../b.md", "a\\b.md", "a/b/", ".git/config.md",
                          "notes/.hidden.md", "a\nb.md", "a b.md", "notes/x.txt", "x.md/", "é.md", "//", "a/./"}) {
    auto r = normalize_memory_path(bad);
    ASSERT_FALSE(r.ok()) << "accepted: " << bad;
    EXPECT_EQ(r.error().qualified(), "memory.invalid_path") << bad;
  }
  EXPECT_FALSE(normalize_memory_path(std::string("a") + '\0' + ".md").ok());
  EXPECT_FALSE(normalize_memory_path(std::string(101, 'a') + ".md").ok());
  EXPECT_FALSE(normalize_memory_path("1/2/3/4/5/6/7/8/9.md").ok());
}

TEST(MemoryPath, PrefixesMayNameDirectories) {
  EXPECT_EQ(*normalize_memory_prefix(""), "");
  EXPECT_EQ(*normalize_memory_prefix("notes/"), "notes/");
  EXPECT_EQ(*normalize_memory_prefix("notes//x"), "notes/x");
  EXPECT_FALSE(normalize_memory_prefix("../").ok());
  EXPECT_FALSE(normalize_memory_prefix("/abs").ok());
}

}  // namespace
}  // namespace anvil::growqr

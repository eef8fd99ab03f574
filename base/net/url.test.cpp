#include "base/net/url.hpp"

#include <gtest/gtest.h>

namespace anvil::net {
namespace {

TEST(Url, HttpsUrlWithoutPortUses443AndKeepsPathAndQuery) {
  auto u = parse_url("https://API.anthropic.com/v1/messages?beta=true#frag");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "api.anthropic.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/v1/messages?beta=true");
  EXPECT_EQ(u->authority, "api.anthropic.com");
  EXPECT_EQ(u->pool_key(), "https://api.anthropic.com:443");
}

TEST(Url, ExplicitPortAppearsInTheHostHeaderAndAnEmptyPathBecomesSlash) {
  auto u = parse_url("http://127.0.0.1:8080");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->authority, "127.0.0.1:8080");
  EXPECT_EQ(parse_url("http://h?x=1")->target, "/?x=1");
}

TEST(Url, Ipv6LiteralsKeepTheirBracketsOnlyInTheHostHeader) {
  auto u = parse_url("http://[::1]:9000/a");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->authority, "[::1]:9000");
}

TEST(Url, MalformedUrlsAreOutboundInvalidUrl) {
  for (const char* bad : {"ftp://x/", "example.com/a", "http://", "http://:80/", "http://h:0/", "http://h:70000/",
                          "http://h:x/", "http://u:p@h/", "http://h/a b", "http://h/\r\nX: y", "http://[::1/"}) {
    auto u = parse_url(bad);
    ASSERT_FALSE(u.ok()) << bad;
    EXPECT_EQ(u.error().qualified(), "outbound.invalid_url") << bad;
  }
}

}  // namespace
}  // namespace anvil::net

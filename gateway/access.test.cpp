#include "gateway/access.hpp"

#include <gtest/gtest.h>

using namespace anvil;
using namespace anvil::gateway;

namespace {

http::Request request(std::string method, std::string path, std::string query = "",
                      http::Headers headers = {}) {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.query = std::move(query);
  r.headers = std::move(headers);
  return r;
}

std::optional<Error> client_check(const AccessGuard& g, const http::Request& r) {
  return g.check(RouteAccess::Client, r, r.path);
}

const AccessGuard kGuarded({"s3cr/et", "adm1n"});

}  // namespace

TEST(Access, EveryFormTheRivetkitClientUsesPresentsTheToken) {
  EXPECT_EQ(presented_tokens(request("GET", "/actors", "", {{"authorization", "Bearer t1"}}), "/actors"),
            std::vector<std::string>{"t1"});
  EXPECT_EQ(presented_tokens(request("POST", "/request/x", "", {{"x-rivet-token", "t2"}}), "/request/x"),
            std::vector<std::string>{"t2"});
  EXPECT_EQ(presented_tokens(request("POST", "/gateway/abc@s3cr%2Fet/action/a"), "/gateway/abc@s3cr%2Fet/action/a"),
            std::vector<std::string>{"s3cr/et"});
  EXPECT_EQ(presented_tokens(request("POST", "/gateway/c/action/a", "rvt-method=get&rvt-token=s3cr.et"),
                             "/gateway/c/action/a"),
            std::vector<std::string>{"s3cr.et"});
  EXPECT_EQ(presented_tokens(request("GET", "/connect", "",
                                     {{"sec-websocket-protocol", "rivet, rivet_target.actor, rivet_token.s3cr.et"}}),
                             "/connect"),
            std::vector<std::string>{"s3cr.et"});
  // Sent as is by rivetkit; a percent-encoded form also counts decoded.
  EXPECT_EQ(presented_tokens(request("GET", "/connect", "", {{"sec-websocket-protocol", "rivet_token.a%2Fb"}}),
                             "/connect"),
            (std::vector<std::string>{"a%2Fb", "a/b"}));
}

TEST(Access, WithoutAConfiguredTokenClientRoutesAreOpen) {
  AccessGuard open({});
  EXPECT_FALSE(client_check(open, request("PUT", "/actors")));
}

TEST(Access, WithATokenAClientRouteWithoutItIsForbidden403ApiForbidden) {
  auto denied = client_check(kGuarded, request("PUT", "/actors"));
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->qualified(), "api.forbidden");
  EXPECT_EQ(denied->message, "Access denied");
}

TEST(Access, AWrongTokenIsForbiddenAndTheRightOneInAnyFormPasses) {
  EXPECT_TRUE(client_check(kGuarded, request("PUT", "/actors", "", {{"authorization", "Bearer s3cr/eT"}})));
  EXPECT_TRUE(client_check(kGuarded, request("PUT", "/actors", "", {{"authorization", "Bearer s3cr/et!"}})));
  EXPECT_FALSE(client_check(kGuarded, request("PUT", "/actors", "", {{"authorization", "Bearer s3cr/et"}})));
  EXPECT_FALSE(client_check(kGuarded, request("POST", "/gateway/id@s3cr%2Fet/action/a")));
  EXPECT_FALSE(client_check(kGuarded, request("POST", "/request/x", "", {{"x-rivet-token", "s3cr/et"}})));
}

TEST(Access, TheAdminTokenAlsoPassesClientRoutes) {
  EXPECT_FALSE(client_check(kGuarded, request("GET", "/actors", "name=x", {{"authorization", "Bearer adm1n"}})));
}

TEST(Access, MetadataAndHealthArePublicAndMetricsAndWorkflowHistoryAreAdmin) {
  EXPECT_EQ(route_access("GET", "/metadata", false), RouteAccess::Public);
  EXPECT_EQ(route_access("GET", "/health", false), RouteAccess::Public);
  EXPECT_EQ(route_access("GET", "/metrics", false), RouteAccess::Admin);
  EXPECT_EQ(route_access("GET", "/actors/abc/workflow", false), RouteAccess::Admin);
  EXPECT_EQ(route_access("GET", "/actors", false), RouteAccess::Client);
  EXPECT_EQ(route_access("DELETE", "/actors/abc", false), RouteAccess::Client);
  EXPECT_EQ(route_access("GET", "/metrics", true), RouteAccess::Client);  // an actor's own path
}

TEST(Access, WithoutAnAdminTokenAdminRoutesAnswerOnlyLocalUnproxiedPeers) {
  AccessGuard g({"client", ""});
  auto local = request("GET", "/metrics");
  local.from_loopback = true;
  EXPECT_FALSE(g.check(RouteAccess::Admin, local, "/metrics"));
  auto remote = request("GET", "/metrics");
  EXPECT_TRUE(g.check(RouteAccess::Admin, remote, "/metrics"));
  auto proxied = request("GET", "/metrics", "", {{"x-forwarded-for", "203.0.113.9"}});
  proxied.from_loopback = true;
  EXPECT_TRUE(g.check(RouteAccess::Admin, proxied, "/metrics"));
}

TEST(Access, WithAnAdminTokenAdminRoutesNeedItAsBearerEvenFromLoopbackAndTheClientTokenIsNotEnough) {
  auto local = request("GET", "/metrics");
  local.from_loopback = true;
  EXPECT_TRUE(kGuarded.check(RouteAccess::Admin, local, "/metrics"));
  auto client = request("GET", "/metrics", "", {{"authorization", "Bearer s3cr/et"}});
  EXPECT_TRUE(kGuarded.check(RouteAccess::Admin, client, "/metrics"));
  auto admin = request("GET", "/metrics", "", {{"authorization", "Bearer adm1n"}});
  EXPECT_FALSE(kGuarded.check(RouteAccess::Admin, admin, "/metrics"));
}

TEST(Access, ConstantTimeEqualComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("", "a"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(Access, EverythingUnderAdminIsAnAdminRoute) {
  EXPECT_EQ(route_access("GET", "/admin/actors", false), RouteAccess::Admin);
  EXPECT_EQ(route_access("GET", "/admin/actors/abc", false), RouteAccess::Admin);
  EXPECT_EQ(route_access("POST", "/admin/anything", false), RouteAccess::Admin);
  EXPECT_EQ(route_access("GET", "/administrators", false), RouteAccess::Client);
}

TEST(Access, InspectorRoutesAreLeftToTheActorsOwnTokenCheck) {
  EXPECT_EQ(route_access("GET", "/gateway/abc/inspector/state", true), RouteAccess::Inspector);
  EXPECT_EQ(route_access("PATCH", "/gateway/abc/inspector/state", true), RouteAccess::Inspector);
  EXPECT_EQ(route_access("POST", "/gateway/abc/action/inspector", true), RouteAccess::Client);
  // Addressed by name and key, the request may create the actor: client token first.
  EXPECT_EQ(route_access("GET", "/gateway/counter/inspector/state", true, "rvt-method=getOrCreate&rvt-key=k"),
            RouteAccess::Client);
  // The guard passes them on without the client token: the inspector checks.
  EXPECT_FALSE(kGuarded.check(RouteAccess::Inspector, request("GET", "/gateway/abc/inspector/state"),
                              "/gateway/abc/inspector/state"));
}

TEST(Access, TheEngineKvReadThatRevealsInspectorTokensIsAnAdminRoute) {
  EXPECT_EQ(route_access("GET", "/actors/abc/kv/keys/Aw==", false), RouteAccess::Admin);
}

TEST(Access, OnlyTheConfiguredAdminTokenIsTheAdminToken) {
  EXPECT_TRUE(kGuarded.is_admin_token("adm1n"));
  EXPECT_FALSE(kGuarded.is_admin_token("s3cr/et"));
  EXPECT_FALSE(AccessGuard({"x", ""}).is_admin_token(""));
}

TEST(Access, TheBearerSchemeIsReadInAnyCase) {
  const auto lower = request("GET", "/x", "", {{"authorization", "bearer  t1"}});
  const auto upper = request("GET", "/x", "", {{"authorization", "BEARER t2"}});
  const auto basic = request("GET", "/x", "", {{"authorization", "Basic t3"}});
  const auto empty = request("GET", "/x", "", {{"authorization", "Bearer "}});
  EXPECT_EQ(bearer_token(lower).value_or(""), "t1");
  EXPECT_EQ(bearer_token(upper).value_or(""), "t2");
  EXPECT_FALSE(bearer_token(basic).has_value());
  EXPECT_FALSE(bearer_token(empty).has_value());
}

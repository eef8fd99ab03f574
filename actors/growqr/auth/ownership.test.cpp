// Ownership: a user-keyed actor answers only its user, whatever the client
// path hands it (the gateway runs the guard for every client request; these
// tests call it as the gateway does), and routes act for the verified
// caller only. Real RocksDB and Postgres, the JWKS fake for Clerk.
#include <gtest/gtest.h>

#include "actors/growqr/auth/auth.hpp"
#include "actors/growqr/missions/growqr_test_env.hpp"
#include "tests/fakes/jwks_fake.hpp"

namespace anvil::growqr {
namespace {

using namespace std::chrono_literals;
using Mint = fakes::JwksFake::MintOptions;

class Ownership : public testing::GrowqrTest {
 protected:
  void SetUp() override {
    config_ = {{"APP_ENV", "test"},
               {"CLERK_JWKS_URL", clerk_.jwks_url()},
               {"CLERK_ISSUER", clerk_.issuer()},
               {"CLERK_JWKS_MIN_REFRESH_MS", "0"}};
    GrowqrTest::SetUp();
  }

  // What the gateway does for a client's HTTP action: the type's client
  // guard with the request's params and headers, then the action.
  Result<Value> client_call(const std::string& name, ActorKey key, const std::string& action, Value params,
                            std::vector<std::pair<std::string, std::string>> headers = {}, Array args = {}) {
    auto id = node_->get_or_create(name, std::move(key));
    ClientRequest req;
    req.kind = "action";
    req.name = action;
    req.params = params;
    req.headers = std::move(headers);
    auto guarded = node_->run(node_->rt().guard_client(id, std::move(req)));
    if (!guarded.output.ok()) return guarded.output.error();
    return node_->run(node_->rt().call_action(id, action, std::move(args), params)).output;
  }
  Value with_token(const std::string& token) { return obj({{"token", token}}); }
  static std::string code(const Result<Value>& r) { return r.ok() ? "ok" : r.error().qualified(); }

  fakes::JwksFake clerk_;
};

TEST_F(Ownership, UserACannotReadUserBsGrowActor) {
  auto r = client_call("growActor", {"user_b"}, "getActiveState", with_token(clerk_.mint("user_a")));
  EXPECT_EQ(code(r), "auth.forbidden");
  EXPECT_EQ(http_status_for(r.error()), 403);
  auto own = client_call("growActor", {"user_b"}, "getActiveState", with_token(clerk_.mint("user_b")));
  ASSERT_EQ(code(own), "ok");
  EXPECT_EQ(own->find("userId")->as_string(), "user_b");
}

TEST_F(Ownership, UserACannotDriveUserBsMission) {
  EXPECT_EQ(code(client_call("growActor", {"user_b"}, "startMission", with_token(clerk_.mint("user_a")), {},
                             {Value("interview-to-offer"), Value(nullptr)})),
            "auth.forbidden");
  EXPECT_EQ(code(client_call("interviewToOfferMission", {"user_b", "m-1"}, "start", with_token(clerk_.mint("user_a")))),
            "auth.forbidden");
  EXPECT_EQ(code(client_call("userEventActor", {"user_b"}, "route", with_token(clerk_.mint("user_a")))),
            "auth.forbidden");
}

TEST_F(Ownership, TheAuthorizationHeaderCarriesTheTokenToo) {
  EXPECT_EQ(code(client_call("growActor", {"user_a"}, "getActiveState", Value(),
                             {{"authorization", "Bearer " + clerk_.mint("user_a")}})),
            "ok");
  EXPECT_EQ(code(client_call("growActor", {"user_b"}, "getActiveState", Value(),
                             {{"authorization", "Bearer " + clerk_.mint("user_a")}})),
            "auth.forbidden");
}

TEST_F(Ownership, BadTokensAreRefusedWith401) {
  const ActorKey key{"user_a"};
  std::map<std::string, std::string> cases = {
      {"auth.unauthenticated", ""},
      {"auth.token_expired", clerk_.mint("user_a", Mint().expires_in(-60s))},
      {"auth.unknown_key", clerk_.mint("user_a", Mint().with_kid("rotated-away"))},
      {"auth.invalid_signature", clerk_.mint("user_a", Mint().signed_by_unpublished_key())},
      {"auth.unsupported_algorithm", clerk_.mint("user_a", Mint().with_alg("none"))},
  };
  for (const auto& [want, token] : cases) {
    auto r = client_call("growActor", key, "getActiveState", token.empty() ? Value() : with_token(token));
    EXPECT_EQ(code(r), want);
    if (!r.ok()) {
      EXPECT_EQ(http_status_for(r.error()), 401) << want;
    }
  }
}

TEST_F(Ownership, ADevelopmentIdentityIsRefusedOutsideDevelopment) {
  EXPECT_EQ(code(client_call("growActor", {"user_a"}, "getActiveState", obj({{"devUserId", "user_a"}}))),
            "auth.unauthenticated");
}

TEST_F(Ownership, KeyRotationIsPickedUpByTheGuard) {
  EXPECT_EQ(code(client_call("growActor", {"user_a"}, "getActiveState", with_token(clerk_.mint("user_a")))), "ok");
  clerk_.rotate("key-2");
  EXPECT_EQ(code(client_call("growActor", {"user_a"}, "getActiveState", with_token(clerk_.mint("user_a")))), "ok");
}

TEST_F(Ownership, TheNodesOwnCallsAreNotChecked) {
  // Routes and other actors call without credentials (trusted code).
  EXPECT_EQ(code(call("growActor", {"user_b"}, "getActiveState")), "ok");
}

TEST_F(Ownership, RoutesActForTheVerifiedCallerOnly) {
  auto a = request("GET", "/grow", "", {{"authorization", "Bearer " + clerk_.mint("user_a")}});
  ASSERT_EQ(a.status, 200) << a.raw;
  EXPECT_EQ(a.body.find("userId")->as_string(), "user_a");
  // x-user-id is a development identity: ignored beside a token, refused alone.
  auto spoof = request("GET", "/grow", "",
                       {{"authorization", "Bearer " + clerk_.mint("user_a")}, {"x-user-id", "user_b"}});
  EXPECT_EQ(spoof.body.find("userId")->as_string(), "user_a");
  EXPECT_EQ(request("GET", "/grow", "", {{"x-user-id", "user_b"}}).status, 401);
  auto expired = request("GET", "/grow", "", {{"authorization", "Bearer " + clerk_.mint("user_a", Mint().expires_in(-60s))}});
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(expired.body.find("code")->as_string(), "token_expired");
  EXPECT_EQ(request("POST", "/missions/interview-to-offer/start", "", {{"x-user-id", "user_b"}}).status, 401);
}

class OwnershipInDevelopment : public testing::GrowqrTest {
 protected:
  void SetUp() override {
    config_ = {{"APP_ENV", "development"}};
    GrowqrTest::SetUp();
  }
};

TEST_F(OwnershipInDevelopment, AnAnonymousClientIsLetThrough) {
  auto id = node_->get_or_create("growActor", {"user_a"});
  ClientRequest req;
  req.kind = "action";
  EXPECT_TRUE(node_->run(node_->rt().guard_client(id, req)).output.ok());
}

TEST_F(OwnershipInDevelopment, ADevelopmentIdentityStillOnlyReachesItsOwnActors) {
  auto id = node_->get_or_create("growActor", {"user_a"});
  ClientRequest req;
  req.kind = "connect";
  req.params = obj({{"devUserId", "user_b"}});
  auto r = node_->run(node_->rt().guard_client(id, req)).output;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "auth.forbidden");
  req.params = obj({{"devUserId", "user_a"}});
  EXPECT_TRUE(node_->run(node_->rt().guard_client(id, req)).output.ok());
}

TEST_F(OwnershipInDevelopment, RoutesTakeTheXUserIdHeader) {
  auto r = request("GET", "/grow", "", {{"x-user-id", "user_a"}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body.find("userId")->as_string(), "user_a");
}

}  // namespace
}  // namespace anvil::growqr

namespace anvil::growqr {
namespace {

// conversationActor-style ownership: the owner is stored in the state.
TEST(OwnerRules, AStoredOwnerIsCheckedAndAnUnownedActorRefusesClients) {
  fakes::JwksFake clerk;
  AppConfig cfg{{"APP_ENV", "production"}, {"CLERK_JWKS_URL", clerk.jwks_url()}};

  ActorDefinition def("ownedThing");
  def.create_state([](ActorContext&, const Value& input) -> Result<Value> {
    return obj({{"ownerId", input.is_string() ? input : Value("")}});
  });
  def.action("get", [](ActionContext& c, const Array&) -> Result<Value> { return c.state(); });
  require_owner(def, OwnerRule::state_field("ownerId"));
  Registry reg;
  reg.add(def);
  auto dir = anvil::testing::temp_dir("owner-rules");
  {
    anvil::testing::Node node(dir, reg);
    node.enable_http();
    AppHost host(node.rt(), cfg);  // the node's application configuration (ctx.config)
    auto guard = [&](const std::string& id, const std::string& user) {
      ClientRequest req;
      req.kind = "action";
      req.params = obj({{"token", clerk.mint(user)}});
      auto r = node.run(node.rt().guard_client(id, req)).output;
      return r.ok() ? std::string("ok") : r.error().qualified();
    };
    std::string owned = node.get_or_create("ownedThing", {"conv-1"}, Value("user_a"));
    std::string unowned = node.get_or_create("ownedThing", {"conv-2"});
    EXPECT_EQ(guard(owned, "user_a"), "ok");
    EXPECT_EQ(guard(owned, "user_b"), "auth.forbidden");
    EXPECT_EQ(guard(unowned, "user_a"), "auth.forbidden");
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace anvil::growqr

namespace anvil::growqr {
namespace {

// Issue 13 §3: user A can neither read nor drive user B's agent, memory or
// conversations, whatever client path (params or header) carries A's token.
TEST_F(Ownership, UserACannotReadOrDriveUserBsAgentMemoryOrConversations) {
  const Value a = with_token(clerk_.mint("user_a"));
  EXPECT_EQ(code(client_call("growAgent", {"user_b"}, "getHistory", a)), "auth.forbidden");
  EXPECT_EQ(code(client_call("growAgent", {"user_b"}, "chat", a, {}, {Value("hi")})), "auth.forbidden");
  EXPECT_EQ(code(client_call("userActor", {"user_b"}, "chat", a, {}, {Value("hi")})), "auth.forbidden");
  EXPECT_EQ(code(client_call("memoryActor", {"user_b"}, "listMemory", a)), "auth.forbidden");
  EXPECT_EQ(code(client_call("memoryActor", {"user_b"}, "readMemory", a, {}, {Value("goals.md")})), "auth.forbidden");
  EXPECT_EQ(code(client_call("memoryActor", {"user_b"}, "commitMemory", a, {}, {Value("x.md"), Value("y")})),
            "auth.forbidden");
  EXPECT_EQ(code(client_call("subAgent", {"user_b", "sa-1"}, "getStatus", a)), "auth.forbidden");

  // A conversation B created (through the node, as the route does) answers only B.
  const std::string conv = "0b5e7f3c-1d2a-4c6b-9e8f-112233445566";
  auto created = call("conversationActor", {conv}, "create", {obj({{"userId", "user_b"}})});
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(code(client_call("conversationActor", {conv}, "getMessages", a)), "auth.forbidden");
  EXPECT_EQ(code(client_call("conversationActor", {conv}, "send", a, {},
                             {obj({{"messageId", "m1"}, {"text", "hi"}})})),
            "auth.forbidden");
  EXPECT_EQ(code(client_call("conversationActor", {conv}, "getConversation", with_token(clerk_.mint("user_b")))), "ok");
}

}  // namespace
}  // namespace anvil::growqr

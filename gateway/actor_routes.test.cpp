#include "gateway/actor_routes.hpp"

#include <gtest/gtest.h>

using namespace anvil;
using namespace anvil::gateway;

TEST(QueryAddress, PlainQueryIsDirectAddressing) {
  EXPECT_FALSE(parse_query_address("x=1&y=2").has_value());
  EXPECT_FALSE(parse_query_address("").has_value());
}

TEST(QueryAddress, GetOrCreateParsesKeyRunnerAndKeepsTheActorQuery) {
  auto r = parse_query_address(
      "x=1&rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=k1%2Cj1&rvt-crash-policy=sleep");
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->ok()) << r->error().message;
  EXPECT_EQ((*r)->method, "getOrCreate");
  EXPECT_EQ((*r)->key, (ActorKey{"k1", "j1"}));
  EXPECT_EQ((*r)->actor_query, "x=1");
  EXPECT_EQ((*r)->crash_policy, "sleep");
}

TEST(QueryAddress, InputIsBase64UrlCbor) {
  auto r = parse_query_address("rvt-namespace=default&rvt-method=getOrCreate&rvt-key=pa%2Cr1&rvt-input=uQABYmluAQ");
  ASSERT_TRUE(r && r->ok()) << (r ? r->error().message : "none");
  ASSERT_TRUE((*r)->input.has_value());
  EXPECT_EQ(*(*r)->input, obj({{"in", 1}}));
}

TEST(QueryAddress, UnknownDuplicateAndDisallowedParamsAreGuardErrors) {
  auto unknown = parse_query_address("rvt-method=get&rvt-bogus=1");
  ASSERT_TRUE(unknown && !unknown->ok());
  EXPECT_EQ(unknown->error().qualified(), "guard.query_unknown_param");
  auto dup = parse_query_address("rvt-method=get&rvt-method=get");
  ASSERT_TRUE(dup && !dup->ok());
  EXPECT_EQ(dup->error().qualified(), "guard.query_duplicate_param");
  auto bad = parse_query_address("rvt-method=create");
  ASSERT_TRUE(bad && !bad->ok());
  EXPECT_EQ(bad->error().qualified(), "guard.query_invalid_params");
  auto get_runner = parse_query_address("rvt-method=get&rvt-runner=default");
  ASSERT_TRUE(get_runner && !get_runner->ok());
  EXPECT_EQ(get_runner->error().qualified(), "guard.query_get_disallowed_params");
}

TEST(QueryAddress, EmptyOrAbsentKeyIsTheEmptyKey) {
  auto r = parse_query_address("rvt-namespace=default&rvt-method=get");
  ASSERT_TRUE(r && r->ok());
  EXPECT_TRUE((*r)->key.empty());
}

TEST(QueryAddress, FormDecodingTurnsPlusIntoSpace) {
  auto r = parse_query_address("rvt-method=get&rvt-key=a+b%2Cc");
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ((*r)->key, (ActorKey{"a b", "c"}));
}

TEST(QueryAddress, InvalidInputIsRejected) {
  auto r = parse_query_address("rvt-method=getOrCreate&rvt-input=!!!");
  ASSERT_TRUE(r && !r->ok());
  EXPECT_EQ(r->error().qualified(), "guard.query_invalid_base64_input");
}

TEST(GatewayPath, SplitsTheActorSegmentFromTheActorPath) {
  auto p = split_gateway_path("/gateway/abc@tok/action/increment");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->segment, "abc@tok");
  EXPECT_EQ(p->actor_path, "/action/increment");
  auto bare = split_gateway_path("/gateway/abc");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->actor_path, "/");
}

TEST(GatewayPath, NoActorSegmentIsNotFound) {
  for (std::string_view path : {"/gateway", "/gateway/", "/gatewayx/a", "/actors"}) {
    auto p = split_gateway_path(path);
    ASSERT_FALSE(p.ok()) << path;
    EXPECT_EQ(p.error().qualified(), "api.not_found");
  }
}

TEST(GatewayPath, DirectSegmentDecodesIdAndTokenSeparately) {
  auto d = parse_direct_segment("a%2Fb@t%40k");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->actor_id, "a/b");
  EXPECT_EQ(d->token, "t@k");
  auto no_token = parse_direct_segment("abc");
  ASSERT_TRUE(no_token.ok());
  EXPECT_FALSE(no_token->token.has_value());
}

TEST(GatewayPath, MalformedEscapeInDirectSegmentIsAnInvalidRequest) {
  auto bad_id = parse_direct_segment("a%zz@t");
  ASSERT_FALSE(bad_id.ok());
  EXPECT_EQ(bad_id.error().qualified(), "actor.invalid_request");
  auto bad_token = parse_direct_segment("a@%");
  ASSERT_FALSE(bad_token.ok());
  EXPECT_EQ(bad_token.error().qualified(), "actor.invalid_request");
}

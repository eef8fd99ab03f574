// Sec-WebSocket-Protocol parsing (client-protocol.md §6.1): what rivetkit's
// client sends, header-routing items, and the odd inputs the fuzz target
// (tests/fuzz/fuzz_ws_protocol.cpp) feeds it.
#include "gateway/ws_protocols.hpp"

#include <gtest/gtest.h>

using namespace anvil::gateway;

TEST(WsProtocols, TheClientsHeaderGivesEncodingAndDecodedParams) {
  auto p = parse_ws_protocols("rivet,rivet_encoding.bare,rivet_conn_params.%7B%22username%22%3A%22alice%22%7D");
  EXPECT_TRUE(p.rivet);
  EXPECT_EQ(p.encoding, "bare");
  EXPECT_EQ(p.conn_params, R"({"username":"alice"})");
  EXPECT_FALSE(p.target);
  EXPECT_FALSE(p.token);
  EXPECT_FALSE(p.skip_ready_wait);
}

TEST(WsProtocols, HeaderRoutingItemsAreReadWithBlanksAroundCommas) {
  auto p = parse_ws_protocols(
      "rivet, rivet_encoding.json,\trivet_target.actor , rivet_actor.h8hj%40x, rivet_token.s3cr.et, rivet_skip_ready_wait");
  EXPECT_EQ(p.encoding, "json");
  EXPECT_EQ(p.target, "actor");
  EXPECT_EQ(p.actor_id, "h8hj@x");
  EXPECT_EQ(p.token, "s3cr.et");
  EXPECT_TRUE(p.skip_ready_wait);
}

TEST(WsProtocols, TheInspectorTokenIsTakenRawAndApartFromTheGatewayToken) {
  auto p = parse_ws_protocols("rivet, rivet_inspector_token.ab%20cd , rivet_token.gw");
  EXPECT_EQ(p.inspector_token, "ab%20cd");
  EXPECT_EQ(p.token, "gw");
  EXPECT_FALSE(parse_ws_protocols("rivet,rivet_token.gw").inspector_token);
}

TEST(WsProtocols, AnEmptyHeaderHasNoItems) {
  auto p = parse_ws_protocols("");
  EXPECT_FALSE(p.rivet);
  EXPECT_FALSE(p.encoding || p.target || p.actor_id || p.token || p.conn_params);
}

TEST(WsProtocols, UnknownAndEmptyItemsAreIgnored) {
  auto p = parse_ws_protocols(",,chat, rivetx ,rivet_encodingjson,, rivet");
  EXPECT_TRUE(p.rivet);
  EXPECT_FALSE(p.encoding);
}

TEST(WsProtocols, TheLastOfARepeatedItemWins) {
  auto p = parse_ws_protocols("rivet_encoding.cbor,rivet_encoding.json");
  EXPECT_EQ(p.encoding, "json");
}

TEST(WsProtocols, AnActorIdOrTokenWithABadEscapeIsKeptRaw) {
  auto p = parse_ws_protocols("rivet_actor.ab%zz,rivet_token.t%4");
  EXPECT_EQ(p.actor_id, "ab%zz");
  EXPECT_EQ(p.token, "t%4");
}

TEST(WsProtocols, ConnParamsWithABadEscapeAreMarkedMalformedAndLeftOut) {
  auto p = parse_ws_protocols("rivet,rivet_conn_params.%7B%2");
  EXPECT_TRUE(p.conn_params_malformed);
  EXPECT_FALSE(p.conn_params);
}

TEST(WsProtocols, ALaterWellFormedConnParamsItemReplacesAMalformedOne) {
  auto p = parse_ws_protocols("rivet_conn_params.%zz, rivet_conn_params.%7B%7D");
  EXPECT_FALSE(p.conn_params_malformed);
  EXPECT_EQ(p.conn_params, "{}");
}

TEST(WsProtocols, EmptyConnParamsAreNoParams) {
  auto p = parse_ws_protocols("rivet,rivet_conn_params.");
  EXPECT_FALSE(p.conn_params);
  EXPECT_FALSE(p.conn_params_malformed);
}

TEST(WsProtocols, AnEncodingItemWithAnEmptyValueGivesAnEmptyEncoding) {
  auto p = parse_ws_protocols("rivet_encoding.");
  EXPECT_EQ(p.encoding, "");
}

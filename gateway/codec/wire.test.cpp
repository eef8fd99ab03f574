// Wire vectors taken from ../shared/rivet-ref/captures via client-protocol.md.
#include "gateway/codec/wire.hpp"

#include <gtest/gtest.h>

#include "runtime/value/json.hpp"

using namespace anvil;
using namespace anvil::wire;

namespace {
Bytes hex(std::string_view h) {
  Bytes out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  return out;
}
Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }
std::string str(const Bytes& b) { return std::string(b.begin(), b.end()); }
}  // namespace

TEST(Wire, BareActionRequestFromTheSpecDecodesToSevenArgs) {
  auto args = decode_action_request(
      Encoding::Bare,
      hex("040030" "87016173f6826724426967496e74623130826b2455696e743841727261796441514944826324247801b90001616181f5"));
  ASSERT_TRUE(args.ok()) << args.error().message;
  ASSERT_EQ(args->size(), 7u);
  EXPECT_EQ((*args)[3].as_bigint().magnitude, 10u);
}

TEST(Wire, BareActionRequestWithTrailingBytesIsRejected) {
  auto args = decode_action_request(Encoding::Bare, hex("04000180" "00"));
  ASSERT_FALSE(args.ok());
  EXPECT_EQ(args.error().qualified(), "actor.invalid_request");
}

TEST(Wire, JsonActionRequestIsLenient) {
  EXPECT_EQ(decode_action_request(Encoding::Json, text(R"({"args":[1,2]})"))->size(), 2u);
  EXPECT_EQ(decode_action_request(Encoding::Json, text("null"))->size(), 0u);
  EXPECT_EQ(decode_action_request(Encoding::Json, text("[1]"))->size(), 1u);
  EXPECT_EQ(decode_action_request(Encoding::Json, text("5"))->size(), 1u);
  EXPECT_EQ(decode_action_request(Encoding::Json, text("{}"))->size(), 0u);
}

TEST(Wire, ActionResponsesMatchTheCaptures) {
  EXPECT_EQ(str(encode_action_response(Encoding::Json, arr({"x"}))), R"({"output":["x"]})");
  EXPECT_EQ(encode_action_response(Encoding::Cbor, arr({"x"})), hex("a1666f7574707574816178"));
  EXPECT_EQ(encode_action_response(Encoding::Bare, arr({"x"})), hex("0400038161" "78"));
}

TEST(Wire, BareUserErrorMatchesTheCaptureByteForByte) {
  Error e = make_error("user", "custom_code", "Something went wrong for the user", obj({{"detail", "extra"}, {"n", 42}}));
  ActorSpecifier a{"lj01av56rtsa94xoxs3hzwrm49cl00", 1, "e/b1"};
  auto out = encode_http_error(Encoding::Bare, e, a);
  Bytes want = hex("0400");
  auto push_str = [&](std::string_view s) { want.push_back(static_cast<uint8_t>(s.size())); want.insert(want.end(), s.begin(), s.end()); };
  push_str("user");
  push_str("custom_code");
  push_str("Something went wrong for the user");
  want.push_back(0x01);
  Bytes meta = hex("12a26664657461696c656578747261616e182a");
  want.insert(want.end(), meta.begin(), meta.end());
  want.push_back(0x01);
  push_str("lj01av56rtsa94xoxs3hzwrm49cl00");
  want.push_back(0x01);
  want.push_back(0x01);
  push_str("e/b1");
  EXPECT_EQ(out, want);
}

TEST(Wire, JsonErrorCarriesActorAndMetadata) {
  Error e = make_error("user", "custom_code", "m", obj({{"n", 42}}));
  auto v = json::parse(str(encode_http_error(Encoding::Json, e, ActorSpecifier{"id", 1, "e/j1"})));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, obj({{"group", "user"}, {"code", "custom_code"}, {"message", "m"}, {"metadata", obj({{"n", 42}})},
                     {"actor", obj({{"actorId", "id"}, {"generation", 1}, {"key", "e/j1"}})}}));
}

TEST(Wire, InternalErrorHasNoMetadataInBare) {
  auto out = encode_http_error(Encoding::Bare, internal_error(), std::nullopt);
  // ... message, then 00 (no metadata), 00 (no actor)
  ASSERT_GE(out.size(), 2u);
  EXPECT_EQ(out[out.size() - 2], 0x00);
  EXPECT_EQ(out[out.size() - 1], 0x00);
}

TEST(Wire, QueueSendDecodesAllThreeEncodings) {
  auto j = decode_queue_send(Encoding::Json, text(R"({"body":{"id":2,"value":1},"name":"jobs","wait":true,"timeout":500})"));
  ASSERT_TRUE(j.ok());
  EXPECT_TRUE(j->wait);
  EXPECT_EQ(j->timeout_ms, 500u);
  EXPECT_EQ(j->name, "jobs");
  // cbor with timeout: undefined (f7)
  auto c = decode_queue_send(Encoding::Cbor,
                             hex("b9000464626f6479b9000262696401657661" "6c756515646e616d65646a6f6273647761697" "4f46774696d656f7574f7"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c->wait);
  EXPECT_FALSE(c->timeout_ms.has_value());
  EXPECT_EQ(c->body, obj({{"id", 1}, {"value", 21}}));
  // bare with wait + timeout 500
  Bytes b = hex("0400");
  Bytes body = hex("a2626964026576616c756501");
  b.push_back(static_cast<uint8_t>(body.size()));
  b.insert(b.end(), body.begin(), body.end());
  Bytes tail = hex("01046a6f6273" "0101" "01f401000000000000");
  b.insert(b.end(), tail.begin(), tail.end());
  auto r = decode_queue_send(Encoding::Bare, b);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->wait);
  EXPECT_EQ(r->timeout_ms, 500u);
}

TEST(Wire, QueueSendResponsesMatchTheCaptures) {
  EXPECT_EQ(str(encode_queue_send_response(Encoding::Json, {"completed", std::nullopt})), R"({"status":"completed"})");
  EXPECT_EQ(encode_queue_send_response(Encoding::Cbor, {"completed", std::nullopt}), hex("a16673746174757369636f6d706c65746564"));
  EXPECT_EQ(encode_queue_send_response(Encoding::Bare, {"timedOut", std::nullopt}), hex("040008" "74696d65644f7574" "00"));
}

TEST(Wire, BareInitMatchesTheCapture) {
  auto out = encode_to_client(Encoding::Bare, InitMsg{"14nspvqqvws215yxjcr7d4t2inal00", "72f30175-b481-4594-af91-88a2f0ccb21d"});
  Bytes want = hex("040000");
  want.push_back(0x1e);
  for (char c : std::string("14nspvqqvws215yxjcr7d4t2inal00")) want.push_back(c);
  want.push_back(0x24);
  for (char c : std::string("72f30175-b481-4594-af91-88a2f0ccb21d")) want.push_back(c);
  EXPECT_EQ(out, want);
}

TEST(Wire, JsonFramesUseBigIntShapedIds) {
  EXPECT_EQ(str(encode_to_client(Encoding::Json, ActionResponseMsg{0, Value()})),
            R"({"body":{"tag":"ActionResponse","val":{"id":["$BigInt","0"],"output":null}}})");
  auto err = str(encode_to_client(Encoding::Json, ErrorMsg{make_error("user", "banned", "user is banned"), std::nullopt, std::nullopt}));
  EXPECT_NE(err.find(R"("actionId":null)"), std::string::npos);
}

TEST(Wire, CborFramesEncodeIdsAs1b) {
  auto out = encode_to_client(Encoding::Cbor, ActionResponseMsg{0, Value()});
  auto needle = hex("6269641b0000000000000000");
  EXPECT_NE(std::search(out.begin(), out.end(), needle.begin(), needle.end()), out.end());
}

TEST(Wire, BareActionRequestAndSubscriptionDecode) {
  auto a = decode_to_server(Encoding::Bare, hex("040000" "00" "04636f6e6e" "0180"));
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto& req = std::get<ActionRequest>(*a);
  EXPECT_EQ(req.id, 0u);
  EXPECT_EQ(req.name, "conn");
  EXPECT_TRUE(req.args.empty());
  auto s = decode_to_server(Encoding::Bare, hex("040001" "02" "6576" "01"));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(std::get<SubscriptionRequest>(*s).event_name, "ev");
  EXPECT_TRUE(std::get<SubscriptionRequest>(*s).subscribe);
}

TEST(Wire, JsonToServerAcceptsBigIntIds) {
  auto a = decode_to_server(Encoding::Json, text(R"({"body":{"tag":"ActionRequest","val":{"id":["$BigInt","7"],"name":"emit","args":[1]}}})"));
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(std::get<ActionRequest>(*a).id, 7u);
}

TEST(Wire, GarbageFramesAreInvalidRequests) {
  EXPECT_EQ(decode_to_server(Encoding::Json, text("{nope")).error().qualified(), "actor.invalid_request");
  EXPECT_EQ(decode_to_server(Encoding::Bare, hex("0400ff")).error().qualified(), "actor.invalid_request");
  EXPECT_EQ(decode_to_server(Encoding::Cbor, hex("ff")).error().qualified(), "actor.invalid_request");
}

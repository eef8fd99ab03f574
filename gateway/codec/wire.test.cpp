// Wire vectors taken from ../shared/rivet-ref/captures via client-protocol.md.
#include "gateway/codec/wire.hpp"

#include <gtest/gtest.h>

#include "base/value/json.hpp"

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

namespace {
// Appends a BARE string (length < 128) to `out`.
void push_str(Bytes& out, std::string_view s) {
  out.push_back(static_cast<uint8_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}
}  // namespace

TEST(Wire, EncodingNamesAndContentTypes) {
  EXPECT_EQ(parse_encoding("bare"), Encoding::Bare);
  EXPECT_EQ(parse_encoding("cbor"), Encoding::Cbor);
  EXPECT_EQ(parse_encoding("json"), Encoding::Json);
  EXPECT_EQ(parse_encoding("JSON"), std::nullopt);
  EXPECT_EQ(encoding_name(Encoding::Cbor), "cbor");
  EXPECT_EQ(content_type(Encoding::Json), "application/json");
  EXPECT_EQ(content_type(Encoding::Bare), "application/octet-stream");
}

TEST(Wire, JsonActionRequestFromTheSpecRevivesItsTaggedArgs) {
  auto args = decode_action_request(
      Encoding::Json, text(R"({"args":[1,"s",null,["$BigInt","10"],["$Uint8Array","AQID"],["$$x",1],{"a":[true]}]})"));
  ASSERT_TRUE(args.ok()) << args.error().message;
  EXPECT_EQ(Value(*args), arr({1, "s", nullptr, Value(BigInt{false, 10}), Value(Bytes{1, 2, 3}), arr({"$x", 1}),
                               obj({{"a", arr({true})}})}));
}

TEST(Wire, CborActionRequestFromTheSpecKeepsTheBigIntAndDoesNotRevive) {
  auto args = decode_action_request(Encoding::Cbor, hex("b90001646172677385016173f61b000000000000000ab90001616181f5"));
  ASSERT_TRUE(args.ok()) << args.error().message;
  EXPECT_EQ(Value(*args), arr({1, "s", nullptr, Value(BigInt{false, 10}), obj({{"a", arr({true})}})}));
  // cbor-x sends user pairs unescaped, so ["$x",1] is the user's own value.
  auto raw = decode_action_request(Encoding::Cbor, hex("a1646172677381826224780" "1"));
  ASSERT_TRUE(raw.ok()) << raw.error().message;
  EXPECT_EQ(Value(*raw), arr({arr({"$x", 1})}));
}

TEST(Wire, BareActionRequestAcceptsVersionsOneToFourOnly) {
  EXPECT_TRUE(decode_action_request(Encoding::Bare, hex("01000180")).ok());
  EXPECT_TRUE(decode_action_request(Encoding::Bare, hex("04000180")).ok());
  EXPECT_FALSE(decode_action_request(Encoding::Bare, hex("00000180")).ok());
  EXPECT_FALSE(decode_action_request(Encoding::Bare, hex("05000180")).ok());
  EXPECT_FALSE(decode_action_request(Encoding::Bare, hex("0400")).ok());
  EXPECT_FALSE(decode_action_request(Encoding::Bare, hex("04000101")).ok());  // args not an array
}

TEST(Wire, ActionRequestsThatAreNotArraysOrMapsAreRejectedOutsideJson) {
  EXPECT_EQ(decode_action_request(Encoding::Cbor, hex("01")).error().qualified(), "actor.invalid_request");
  EXPECT_EQ(decode_action_request(Encoding::Cbor, hex("a1646172677301")).error().qualified(), "actor.invalid_request");
  EXPECT_EQ(decode_action_request(Encoding::Cbor, hex("a0"))->size(), 0u);
  EXPECT_EQ(decode_action_request(Encoding::Json, text(R"({"args":null})"))->size(), 0u);
  EXPECT_EQ(decode_action_request(Encoding::Json, text(R"({"args":"one"})"))->size(), 1u);
  EXPECT_EQ(decode_action_request(Encoding::Json, text("{\"args\":[")).error().qualified(), "actor.invalid_request");
}

TEST(Wire, ActionResponsesTagValuesPerEncoding) {
  Value out = arr({Value(BigInt{false, 10}), Value(Bytes{1, 2, 3}), arr({"$x", 1})});
  EXPECT_EQ(str(encode_action_response(Encoding::Json, out)),
            R"({"output":[["$BigInt","10"],["$Uint8Array","AQID"],["$$x",1]]})");
  EXPECT_EQ(encode_action_response(Encoding::Cbor, out),
            hex("a1666f7574707574831b000000000000000ad8404301020382632424780" "1"));
  EXPECT_EQ(encode_action_response(Encoding::Bare, Value(nullptr)), hex("040001f6"));
  EXPECT_EQ(str(encode_action_response(Encoding::Json, Value(Undefined{}))), "{}");
}

TEST(Wire, JsonInternalErrorWithActorMatchesTheCapture) {
  // http.txt: 500 {"actor":{…},"code":"internal_error","group":"rivetkit","message":"An internal error occurred"}
  auto out = str(encode_http_error(Encoding::Json, internal_error(), ActorSpecifier{"x0ek", 1, "e/j1"}));
  EXPECT_EQ(out, R"({"group":"rivetkit","code":"internal_error","message":"An internal error occurred",)"
                 R"("actor":{"actorId":"x0ek","generation":1,"key":"e/j1"}})");
}

TEST(Wire, GatewayErrorsWithoutActorOrKeyOmitThoseFields) {
  auto out = str(encode_http_error(Encoding::Json, make_error("actor", "not_found", "The actor does not exist or was destroyed."),
                                   std::nullopt));
  EXPECT_EQ(out, R"({"group":"actor","code":"not_found","message":"The actor does not exist or was destroyed."})");
  auto keyless = str(encode_http_error(Encoding::Json, make_error("a", "b", "c"), ActorSpecifier{"id", 2, std::nullopt}));
  EXPECT_EQ(keyless, R"({"group":"a","code":"b","message":"c","actor":{"actorId":"id","generation":2}})");
}

TEST(Wire, CborHttpErrorUsesASmallIntGeneration) {
  auto out = encode_http_error(Encoding::Cbor, make_error("g", "c", "m"), ActorSpecifier{"i", 1, "k"});
  // {group:"g",code:"c",message:"m",actor:{actorId:"i",generation:1,key:"k"}}
  EXPECT_EQ(out, hex("a46567726f75706167" "64636f646561" "63" "676d657373616765616d" "656163746f72a3676163746f7249646169"
                     "6a67656e65726174696f6e01636b6579616b"));
}

TEST(Wire, BareErrorWithoutActorEndsWithTwoAbsentOptionals) {
  Bytes want = hex("0400");
  push_str(want, "rivetkit");
  push_str(want, "internal_error");
  push_str(want, "An internal error occurred");
  want.push_back(0x00);
  want.push_back(0x00);
  EXPECT_EQ(encode_http_error(Encoding::Bare, internal_error(), std::nullopt), want);
}

TEST(Wire, QueueSendJsonWithoutWaitOrTimeout) {
  // http.txt: {"body":{"id":1,"value":21},"name":"jobs","wait":false}
  auto q = decode_queue_send(Encoding::Json, text(R"({"body":{"id":1,"value":21},"name":"jobs","wait":false})"));
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->body, obj({{"id", 1}, {"value", 21}}));
  EXPECT_EQ(q->name, "jobs");
  EXPECT_FALSE(q->wait);
  EXPECT_FALSE(q->timeout_ms.has_value());
  // http.txt, bare: body {id:1, value:10}, name "jobs", wait false, no timeout
  auto bare_nowait = decode_queue_send(Encoding::Bare, hex("04000eb90002626964016576616c75650a" "01046a6f6273" "0100" "00"));
  ASSERT_TRUE(bare_nowait.ok()) << bare_nowait.error().message;
  EXPECT_EQ(bare_nowait->body, obj({{"id", 1}, {"value", 10}}));
  EXPECT_EQ(bare_nowait->name, "jobs");
  EXPECT_FALSE(bare_nowait->wait);
  EXPECT_FALSE(bare_nowait->timeout_ms.has_value());
}

TEST(Wire, QueueSendRejectsBadTypesAndPreV3Bare) {
  EXPECT_EQ(decode_queue_send(Encoding::Json, text(R"({"body":1,"name":5})")).error().qualified(), "actor.invalid_request");
  EXPECT_EQ(decode_queue_send(Encoding::Json, text(R"({"body":1,"wait":"yes"})")).error().qualified(),
            "actor.invalid_request");
  EXPECT_EQ(decode_queue_send(Encoding::Json, text(R"({"body":1,"timeout":"5"})")).error().qualified(),
            "actor.invalid_request");
  EXPECT_EQ(decode_queue_send(Encoding::Json, text("[1]")).error().qualified(), "actor.invalid_request");
  EXPECT_FALSE(decode_queue_send(Encoding::Bare, hex("020001f6000000")).ok());  // v2 has no queues
  EXPECT_TRUE(decode_queue_send(Encoding::Bare, hex("030001f6000000")).ok());
  EXPECT_FALSE(decode_queue_send(Encoding::Bare, hex("040001f600000000")).ok());  // trailing byte
}

TEST(Wire, QueueTimeoutAcceptsAnyJsNumber) {
  EXPECT_EQ(decode_queue_send(Encoding::Json, text(R"({"body":1,"timeout":250.7})"))->timeout_ms, 250u);
  EXPECT_EQ(decode_queue_send(Encoding::Json, text(R"({"body":1,"timeout":-5})"))->timeout_ms, 0u);
  EXPECT_EQ(decode_queue_send(Encoding::Json, text(R"({"body":1,"timeout":null})"))->timeout_ms, std::nullopt);
  EXPECT_TRUE(decode_queue_send(Encoding::Json, text(R"({"name":"q"})"))->body.is_undefined());
}

TEST(Wire, QueueSendResponseWithAResponseValue) {
  QueueSendResponse r{"completed", Value(BigInt{false, 2})};
  EXPECT_EQ(str(encode_queue_send_response(Encoding::Json, r)), R"({"status":"completed","response":["$BigInt","2"]})");
  Bytes want = hex("0400");
  push_str(want, "completed");
  want.push_back(0x01);
  Bytes compat = hex("0b826724426967496e746132");  // data: ["$BigInt","2"]
  want.insert(want.end(), compat.begin(), compat.end());
  EXPECT_EQ(encode_queue_send_response(Encoding::Bare, r), want);
}

// ---- WebSocket frames from ws.txt / client-protocol.md §6.3 ----

// ---- WebSocket frames, byte for byte from ws.txt (cbor, bare connections) ----

TEST(Wire, CborInitMatchesTheCaptureByteForByte) {
  auto out = encode_to_client(Encoding::Cbor,
                              InitMsg{"10oqtskj15vpwv3wd8xyc4675ccl00", "049623a8-dee3-4453-a16f-2c627d915724"});
  EXPECT_EQ(out, hex("a164626f6479a26374616764496e69746376616ca2676163746f724964781e31306f7174736b6a31357670777633776438"
                     "7879633436373563636c30306c636f6e6e656374696f6e4964782430343936323361382d646565332d343435332d613136"
                     "662d326336323764393135373234"));
}

TEST(Wire, CborConnectionErrorMatchesTheCaptureByteForByte) {
  // onBeforeConnect rejected "banned": actionId null, metadata present.
  ErrorMsg m{make_error("user", "banned", "user is banned", obj({{"username", "banned"}})), std::nullopt, std::nullopt};
  EXPECT_EQ(encode_to_client(Encoding::Cbor, m),
            hex("a164626f6479a263746167654572726f726376616ca56567726f7570647573657264636f64656662616e6e6564676d6573"
                "736167656e757365722069732062616e6e6564686d65746164617461a168757365726e616d656662616e6e6564686163"
                "74696f6e4964f6"));
}

TEST(Wire, CborActionErrorCarriesA1bGenerationAndActionId) {
  ErrorMsg m{make_error("user", "user_error", "plain user error"), 1,
             ActorSpecifier{"x4xdudaj0pni4na3uidbm8b9tccl00", 1, "conf/mwrwkshouert/err/31"}};
  EXPECT_EQ(encode_to_client(Encoding::Cbor, m),
            hex("a164626f6479a263746167654572726f726376616ca56567726f7570647573657264636f64656a757365725f6572726f"
                "72676d65737361676570706c61696e2075736572206572726f72656163746f72a3676163746f724964781e7834786475"
                "64616a30706e69346e6133756964626d3862397463636c30306a67656e65726174696f6e1b0000000000000001636b6579"
                "7818636f6e662f6d7772776b73686f756572742f6572722f333168616374696f6e49641b0000000000000001"));
}

TEST(Wire, CborActionResponseAndEventMatchTheCapture) {
  EXPECT_EQ(encode_to_client(Encoding::Cbor, ActionResponseMsg{1, Value(2)}),
            hex("a164626f6479a2637461676e416374696f6e526573706f6e73656376616ca26269641b0000000000000001666f7574707574"
                "02"));
  // The real runtime writes Event val as {name, args}; ours is the same.
  EXPECT_EQ(encode_to_client(Encoding::Cbor, EventMsg{"newCount", Array{Value(5)}}),
            hex("a164626f6479a263746167654576656e746376616ca2646e616d65686e6577436f756e7464617267738105"));
}

TEST(Wire, BareConnectionErrorMatchesTheCaptureByteForByte) {
  ErrorMsg m{make_error("user", "banned", "user is banned", obj({{"username", "banned"}})), std::nullopt, std::nullopt};
  EXPECT_EQ(encode_to_client(Encoding::Bare, m),
            hex("04000104757365720662616e6e65640e757365722069732062616e6e65640111a168757365726e616d656662616e6e656400"
                "00"));
}

TEST(Wire, BareActionErrorMatchesTheCaptureByteForByte) {
  ErrorMsg m{make_error("user", "custom_code", "Something went wrong for the user", obj({{"detail", "extra"}, {"n", 42}})),
             0, ActorSpecifier{"t1o1e6ssv9gldyso6jpcymvmgwal00", 1, "conf/mwrwkshouert/err/49"}};
  EXPECT_EQ(encode_to_client(Encoding::Bare, m),
            hex("04000104757365720b637573746f6d5f636f646521536f6d657468696e672077656e742077726f6e6720666f72207468652075"
                "7365720112a26664657461696c656578747261616e182a0100011e74316f31653673737639676c6479736f366a7063796d766d"
                "6777616c3030010118636f6e662f6d7772776b73686f756572742f6572722f3439"));
}

TEST(Wire, BareActionResponseEventAndSpecErrorFrames) {
  // §6.3: 04 00 02 01 01 f6 = ActionResponse id=1 output=null
  EXPECT_EQ(encode_to_client(Encoding::Bare, ActionResponseMsg{1, Value(nullptr)}), hex("04000201" "01f6"));
  // §6.3: Event ev [1, 2n, "three"]
  EXPECT_EQ(encode_to_client(Encoding::Bare, EventMsg{"ev", Array{Value(1), Value(BigInt{false, 2}), Value("three")}}),
            hex("040003" "026576" "13" "8301826724426967496e7461326574687265" "65"));
  // §6.3: Error action_not_found, metadata none, actionId=2, actor{…, gen 1, key "c/b1"}
  Bytes want = hex("040001");
  push_str(want, "actor");
  push_str(want, "action_not_found");
  push_str(want, "Action `nope` was not found.");
  Bytes tail = hex("00" "0102" "01");
  want.insert(want.end(), tail.begin(), tail.end());
  push_str(want, "14nspvqqvws215yxjcr7d4t2inal00");
  want.push_back(0x01);
  want.push_back(0x01);
  push_str(want, "c/b1");
  EXPECT_EQ(encode_to_client(Encoding::Bare,
                             ErrorMsg{make_error("actor", "action_not_found", "Action `nope` was not found."), 2,
                                      ActorSpecifier{"14nspvqqvws215yxjcr7d4t2inal00", 1, "c/b1"}}),
            want);
  // Large ids use multi-byte LEB128.
  EXPECT_EQ(encode_to_client(Encoding::Bare, ActionResponseMsg{300, Value(nullptr)}), hex("040002ac0201f6"));
}

TEST(Wire, JsonFramesMatchTheCapturedShapes) {
  EXPECT_EQ(str(encode_to_client(Encoding::Json, InitMsg{"a", "c"})),
            R"({"body":{"tag":"Init","val":{"actorId":"a","connectionId":"c"}}})");
  EXPECT_EQ(str(encode_to_client(Encoding::Json, EventMsg{"ev", Array{Value(1), Value(BigInt{false, 2}), Value("three")}})),
            R"({"body":{"tag":"Event","val":{"name":"ev","args":[1,["$BigInt","2"],"three"]}}})");
  EXPECT_EQ(str(encode_to_client(Encoding::Json, ErrorMsg{make_error("actor", "action_not_found", "m"), 2,
                                                          ActorSpecifier{"id", 1, "c/j1"}})),
            R"({"body":{"tag":"Error","val":{"group":"actor","code":"action_not_found","message":"m",)"
            R"("actor":{"actorId":"id","generation":1,"key":"c/j1"},"actionId":["$BigInt","2"]}}})");
  EXPECT_EQ(str(encode_to_client(Encoding::Json, ErrorMsg{make_error("user", "banned", "user is banned",
                                                                     obj({{"username", "banned"}})),
                                                          std::nullopt, std::nullopt})),
            R"({"body":{"tag":"Error","val":{"group":"user","code":"banned","message":"user is banned",)"
            R"("metadata":{"username":"banned"},"actionId":null}}})");
}

TEST(Wire, CapturedClientFramesDecodeInAllThreeEncodings) {
  auto sub = decode_to_server(Encoding::Cbor, hex("b9000164626f6479b900026374616773537562736372697074696f6e5265717565737463"
                                                  "76616cb90002696576656e744e616d65686e6577436f756e7469737562736372696265f4"));
  ASSERT_TRUE(sub.ok()) << sub.error().message;
  EXPECT_EQ(std::get<SubscriptionRequest>(*sub).event_name, "newCount");
  EXPECT_FALSE(std::get<SubscriptionRequest>(*sub).subscribe);

  auto act = decode_to_server(Encoding::Cbor, hex("b9000164626f6479b90002637461676d416374696f6e526571756573746376616cb90003"
                                                  "6269641b0000000000000001646e616d6568676574436f756e74646172677380"));
  ASSERT_TRUE(act.ok()) << act.error().message;
  EXPECT_EQ(std::get<ActionRequest>(*act).id, 1u);
  EXPECT_EQ(std::get<ActionRequest>(*act).name, "getCount");
  EXPECT_TRUE(std::get<ActionRequest>(*act).args.empty());

  // bare "echo" with args [{a: [1, 2]}] as cbor-x writes it (b9 0001 map)
  auto echo = decode_to_server(Encoding::Bare, hex("04000006046563686f0981b900016161820102"));
  ASSERT_TRUE(echo.ok()) << echo.error().message;
  EXPECT_EQ(std::get<ActionRequest>(*echo).id, 6u);
  EXPECT_EQ(Value(std::get<ActionRequest>(*echo).args), arr({obj({{"a", arr({1, 2})}})}));

  // §6.3: emit [1, 2n, "three"] in bare and json
  auto emit = decode_to_server(Encoding::Bare, hex("0400000104656d697413" "8301826724426967496e7461326574687265" "65"));
  ASSERT_TRUE(emit.ok()) << emit.error().message;
  EXPECT_EQ(Value(std::get<ActionRequest>(*emit).args), arr({1, Value(BigInt{false, 2}), "three"}));
  auto emit_json = decode_to_server(
      Encoding::Json, text(R"({"body":{"tag":"ActionRequest","val":{"id":["$BigInt","1"],"name":"emit","args":[1,["$BigInt","2"],"three"]}}})"));
  ASSERT_TRUE(emit_json.ok());
  EXPECT_EQ(Value(std::get<ActionRequest>(*emit_json).args), Value(std::get<ActionRequest>(*emit).args));
}

TEST(Wire, ToServerIdsMayBePlainNumbers) {
  auto a = decode_to_server(Encoding::Json, text(R"({"body":{"tag":"ActionRequest","val":{"id":3,"name":"x","args":[]}}})"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(std::get<ActionRequest>(*a).id, 3u);
  auto c = decode_to_server(Encoding::Cbor, hex("a164626f6479a2637461676d416374696f6e52657175657374" "6376616ca3626964" "05"
                                                "646e616d65617864617267738" "0"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(std::get<ActionRequest>(*c).id, 5u);
}

TEST(Wire, ToServerWithWrongTypesIsAnInvalidRequest) {
  auto bad = [](std::string_view json) {
    auto r = decode_to_server(Encoding::Json, text(json));
    return r.ok() ? std::string("ok") : r.error().qualified();
  };
  EXPECT_EQ(bad(R"({"body":{"tag":"ActionRequest","val":{"id":-1,"name":"x","args":[]}}})"), "actor.invalid_request");
  EXPECT_EQ(bad(R"({"body":{"tag":"ActionRequest","val":{"id":1.5,"name":"x","args":[]}}})"), "actor.invalid_request");
  EXPECT_EQ(bad(R"({"body":{"tag":"ActionRequest","val":{"id":1e30,"name":"x","args":[]}}})"), "actor.invalid_request");
  EXPECT_EQ(bad(R"({"body":{"tag":"ActionRequest","val":{"id":["$BigInt","-1"],"name":"x"}}})"), "actor.invalid_request");
  EXPECT_EQ(bad(R"({"body":{"tag":"ActionRequest","val":{"name":"x","args":[]}}})"), "actor.invalid_request");
  EXPECT_EQ(bad(R"({"body":{"tag":"ActionRequest","val":{"id":1,"name":7,"args":[]}}})"), "actor.invalid_request");
  EXPECT_EQ(bad(R"({"body":{"tag":"ActionRequest","val":{"id":1,"name":"x","args":5}}})"), "actor.invalid_request");
  EXPECT_EQ(bad(R"({"body":{"tag":"SubscriptionRequest","val":{"eventName":"e","subscribe":1}}})"), "actor.invalid_request");
  EXPECT_EQ(bad(R"({"body":{"tag":"Nope","val":{}}})"), "actor.invalid_request");
  EXPECT_EQ(bad(R"({"body":[]})"), "actor.invalid_request");
  EXPECT_EQ(bad(R"([1])"), "actor.invalid_request");
  EXPECT_EQ(bad(R"({"body":{"tag":"ActionRequest","val":{"id":1,"name":"x","args":[["$Nope",1]]}}})"),
            "actor.invalid_request");
  EXPECT_EQ(bad(R"({"body":{"tag":"ActionRequest","val":{"id":1,"name":"x"}}})"), "ok");  // args absent => []
}

TEST(Wire, BareToServerRejectsTrailingBytesBadTagsAndBadBools) {
  EXPECT_FALSE(decode_to_server(Encoding::Bare, hex("040000" "00" "04636f6e6e" "0180" "00")).ok());
  EXPECT_FALSE(decode_to_server(Encoding::Bare, hex("040001" "026576" "02")).ok());
  EXPECT_FALSE(decode_to_server(Encoding::Bare, hex("040002")).ok());
  EXPECT_FALSE(decode_to_server(Encoding::Bare, hex("040000" "00" "04636f6e6e" "0101")).ok());  // args not an array
  EXPECT_FALSE(decode_to_server(Encoding::Bare, hex("04")).ok());
  EXPECT_FALSE(decode_to_server(Encoding::Bare, hex("")).ok());
  EXPECT_TRUE(decode_to_server(Encoding::Bare, hex("010001" "026576" "01")).ok());  // v1 shape is the same
}

TEST(Wire, EveryTruncationOfACapturedBareFrameIsRejected) {
  Bytes full = hex("0400000104656d697413" "8301826724426967496e7461326574687265" "65");
  for (size_t n = 0; n < full.size(); ++n) {
    auto r = decode_to_server(Encoding::Bare, std::span<const uint8_t>(full.data(), n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.error().qualified(), "actor.invalid_request");
  }
}

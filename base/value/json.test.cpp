#include "base/value/json.hpp"

#include <cmath>

#include <gtest/gtest.h>

using namespace anvil;

TEST(Json, RevivesCompatTagsFromTheClientsArgs) {
  auto v = json::parse(R"({"args":[1,"s",null,["$BigInt","10"],["$Uint8Array","AQID"],["$$x",1],{"a":[true]}]})");
  ASSERT_TRUE(v.ok()) << v.error().message;
  const auto& a = v->find("args")->as_array();
  EXPECT_EQ(a[3].as_bigint().magnitude, 10u);
  EXPECT_EQ(a[4].as_bytes(), (Bytes{1, 2, 3}));
  EXPECT_EQ(a[5], arr({"$x", 1}));
}

TEST(Json, DumpTagsAndEscapesSoTheRoundTripIsExact) {
  std::string text = R"([1,"s",null,["$BigInt","10"],["$Uint8Array","AQID"],["$$x",1],{"a":[true]}])";
  auto v = json::parse(text);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(json::dump(*v), text);
}

TEST(Json, UnknownTagIsAnInvalidRequest) {
  auto v = json::parse(R"(["$Nope",1])");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().qualified(), "actor.invalid_request");
}

TEST(Json, NumbersAreFormattedAsJavaScriptDoes) {
  EXPECT_EQ(json::dump(Value(3.0)), "3");
  EXPECT_EQ(json::dump(Value(1.5)), "1.5");
  EXPECT_EQ(json::dump(Value(1e21)), "1e+21");
  EXPECT_EQ(json::dump(Value(1e-7)), "1e-7");
  EXPECT_EQ(json::dump(Value(0.000001)), "0.000001");
  EXPECT_EQ(json::dump(Value(123456789012345680000.0)), "123456789012345680000");
  EXPECT_EQ(json::dump(Value(-42)), "-42");
  EXPECT_EQ(json::dump(Value(0.1 + 0.2)), "0.30000000000000004");
}

TEST(Json, UndefinedIsDroppedFromObjectsAndNullInArrays) {
  EXPECT_EQ(json::dump(obj({{"a", Value(Undefined{})}, {"b", 1}})), R"({"b":1})");
  EXPECT_EQ(json::dump(arr({Value(Undefined{})})), "[null]");
}

TEST(Json, StringsKeepUnicodeAndEscapeControlCharacters) {
  std::string s = "h\xc3\xa9llo \xe2\x9c\x93 ";
  s += '\0';
  s += " end";
  EXPECT_EQ(json::dump(Value(s)), "\"h\xc3\xa9llo \xe2\x9c\x93 \\u0000 end\"");
  auto back = json::parse(json::dump(Value(s)));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->as_string(), s);
}

TEST(Json, InvalidUtf8IsReplacedNotEmitted) {
  EXPECT_EQ(json::dump(Value(std::string("a\xff" "b"))), "\"a\xef\xbf\xbd" "b\"");
}

TEST(Json, MalformedAndDeeplyNestedInputIsRejected) {
  EXPECT_FALSE(json::parse("{").ok());
  EXPECT_FALSE(json::parse(std::string(10000, '[')).ok());
}

TEST(Json, ObjectKeysKeepTheirOrder) {
  auto v = json::parse(R"({"z":1,"a":2})");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(json::dump(*v), R"({"z":1,"a":2})");
}

TEST(Base64, EncodesStandardAndUrlSafeAndDecodesBoth) {
  EXPECT_EQ(json::base64_encode(Bytes{1, 2, 3}), "AQID");
  EXPECT_EQ(json::base64_encode(Bytes{0xfb, 0xff}), "+/8=");
  EXPECT_EQ(json::base64_encode(Bytes{0xfb, 0xff}, true), "-_8");
  EXPECT_EQ(*json::base64_decode("-_8"), (Bytes{0xfb, 0xff}));
  EXPECT_EQ(*json::base64_decode("+/8="), (Bytes{0xfb, 0xff}));
  EXPECT_EQ(*json::base64_decode("uQABYmluAQ"), (Bytes{0xb9, 0x00, 0x01, 0x62, 'i', 'n', 0x01}));
  EXPECT_FALSE(json::base64_decode("a!b").ok());
}

TEST(Json, TheCapturedWebSocketActionRequestParsesWithABigIntId) {
  // ws.txt, json connection, client frame 2.
  auto v = json::parse(R"({"body":{"tag":"ActionRequest","val":{"id":["$BigInt","0"],"name":"increment","args":[2]}}})");
  ASSERT_TRUE(v.ok()) << v.error().message;
  const Value& val = *v->find("body")->find("val");
  EXPECT_EQ(*val.find("id"), Value(BigInt{false, 0}));
  EXPECT_EQ(*val.find("args"), arr({2}));
}

TEST(Json, WithoutRevivalTaggedPairsStayPlainArrays) {
  auto v = json::parse(R"(["$BigInt","10"])", /*revive=*/false);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, arr({"$BigInt", "10"}));
}

TEST(Json, RevivalCoversEveryCompatTag) {
  auto v = json::parse(
      R"([["$BigInt","-12"],["$ArrayBuffer","AQI="],["$Undefined",0],["$Set",[1,"a"]],["$$$x",["$BigInt","1"]],["$BigInt",5]])");
  ASSERT_TRUE(v.ok()) << v.error().message;
  const auto& a = v->as_array();
  EXPECT_EQ(a[0], Value(BigInt{true, 12}));
  EXPECT_EQ(a[1], Value(Bytes{1, 2}));
  EXPECT_TRUE(a[2].is_undefined());
  EXPECT_EQ(a[3], arr({1, "a"}));
  EXPECT_EQ(a[4], arr({"$$x", Value(BigInt{false, 1})}));
  EXPECT_EQ(a[5], Value(BigInt{false, 5}));  // BigInt(5) works in JS too
}

TEST(Json, SetItemsAreRevivedOneByOneNotAsATaggedPair) {
  // new Set(["$a", 1]) is sent as ["$Set",["$a",1]]: the item list itself is
  // not a tag (rivetkit maps reviveJsonCompatValue over the items).
  auto v = json::parse(R"(["$Set",["$a",1]])");
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, arr({"$a", 1}));
}

TEST(Json, BadTagPayloadsAreInvalidRequests) {
  EXPECT_EQ(json::parse(R"(["$BigInt","1x"])").error().qualified(), "actor.invalid_request");
  EXPECT_EQ(json::parse(R"(["$BigInt","99999999999999999999999"])").error().qualified(), "actor.invalid_request");
  EXPECT_EQ(json::parse(R"(["$Uint8Array",5])").error().qualified(), "actor.invalid_request");
  EXPECT_EQ(json::parse(R"(["$Uint8Array","a!"])").error().qualified(), "actor.invalid_request");
  EXPECT_EQ(json::parse(R"(["$Set",1])").error().qualified(), "actor.invalid_request");
  auto unknown = json::parse(R"({"a":[["$Date","x"]]})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("Unknown JSON encoding type: $Date"), std::string::npos);
}

TEST(Json, IntegersStayExactInt64AndOtherNumbersAreDoubles) {
  auto v = json::parse("[9007199254740993,-9223372036854775808,9223372036854775808,1.5,1e3,2.0,-0,1e400,-1e400,1e-400]");
  ASSERT_TRUE(v.ok()) << v.error().message;
  const auto& a = v->as_array();
  ASSERT_TRUE(a[0].is_int());
  EXPECT_EQ(a[0].as_int(), 9007199254740993);
  EXPECT_EQ(a[1].as_int(), INT64_MIN);
  ASSERT_TRUE(a[2].is_double());
  EXPECT_EQ(a[2].as_double(), 9223372036854775808.0);
  EXPECT_TRUE(a[3].is_double());
  ASSERT_TRUE(a[4].is_int());  // integral value written with an exponent
  EXPECT_EQ(a[4].as_int(), 1000);
  EXPECT_TRUE(a[5].is_int());
  ASSERT_TRUE(a[6].is_double());  // JSON.parse("-0") is -0
  EXPECT_TRUE(std::signbit(a[6].as_double()));
  EXPECT_EQ(a[7].as_double(), INFINITY);
  EXPECT_EQ(a[8].as_double(), -INFINITY);
  EXPECT_EQ(a[9], Value(0));
}

TEST(Json, RejectsWhatJsonParseRejects) {
  for (const char* text : {"", " ", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "1e", "+1", "-", "tru", "nul", "[1 2]",
                           "{\"a\" 1}", "{1:2}", "1 1", "\"a\tb\"", "\"\\x\"", "\"abc", "[", "{\"a\":", "'a'", "NaN",
                           "\"\\u12\""}) {
    EXPECT_FALSE(json::parse(text).ok()) << text;
  }
  EXPECT_TRUE(json::parse(" \t\r\n[ 1 , {\"a\" : [ ] } ]\n").ok());
}

TEST(Json, EscapesAndSurrogatePairsDecodeToUtf8) {
  auto v = json::parse(R"("\u00e9\ud83d\ude00\/\"\\\b\f\n\r\t")");
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->as_string(), "\xc3\xa9\xf0\x9f\x98\x80/\"\\\b\f\n\r\t");
}

TEST(Json, LoneSurrogatesAndInvalidUtf8BecomeReplacementCharacters) {
  EXPECT_EQ(json::parse(R"("a\ud83db")")->as_string(), "a\xef\xbf\xbd" "b");
  EXPECT_EQ(json::parse(R"("\ude00")")->as_string(), "\xef\xbf\xbd");
  EXPECT_EQ(json::parse(R"("\ud83d\u0041")")->as_string(), "\xef\xbf\xbd" "A");
  // Raw bytes as TextDecoder reads them: one U+FFFD per maximal bad subpart.
  EXPECT_EQ(json::parse("\"a\xff\xe2\x9c" "b\"")->as_string(), "a\xef\xbf\xbd\xef\xbf\xbd" "b");
}

TEST(Json, RepeatedKeysKeepTheFirstPositionAndTheLastValue) {
  auto v = json::parse(R"({"a":1,"b":2,"a":3})");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(json::dump(*v), R"({"a":3,"b":2})");
  // Also past the point where the builder switches to a hash index.
  std::string text = "{";
  for (int i = 0; i < 40; ++i) text += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  text += "\"k3\":\"last\",\"k39\":null}";
  auto big = json::parse(text);
  ASSERT_TRUE(big.ok()) << big.error().message;
  ASSERT_EQ(big->as_object().size(), 40u);
  EXPECT_EQ(big->as_object()[3].second, Value("last"));
  EXPECT_TRUE(big->as_object()[39].second.is_null());
}

TEST(Json, NestingUpTo128IsAcceptedAndDeeperIsRejected) {
  EXPECT_TRUE(json::parse(std::string(128, '[') + std::string(128, ']')).ok());
  EXPECT_FALSE(json::parse(std::string(129, '[') + std::string(129, ']')).ok());
  std::string objs;
  for (int i = 0; i < 129; ++i) objs += "{\"a\":";
  objs += "1" + std::string(129, '}');
  EXPECT_FALSE(json::parse(objs).ok());
}

TEST(Json, DumpWritesJsNumbersAtTheFormatBoundaries) {
  EXPECT_EQ(json::dump(Value(1e20)), "100000000000000000000");
  EXPECT_EQ(json::dump(Value(-1e21)), "-1e+21");
  EXPECT_EQ(json::dump(Value(1.5e-7)), "1.5e-7");
  EXPECT_EQ(json::dump(Value(5e-324)), "5e-324");
  EXPECT_EQ(json::dump(Value(1.7976931348623157e308)), "1.7976931348623157e+308");
  EXPECT_EQ(json::dump(Value(-0.0)), "0");
  EXPECT_EQ(json::dump(Value(NAN)), "null");
  EXPECT_EQ(json::dump(Value(-INFINITY)), "null");
  EXPECT_EQ(json::dump(Value(INT64_MIN)), "-9223372036854775808");
}

TEST(Json, DumpTagsBigIntsBytesAndEscapesDollarPairs) {
  Value v = obj({{"b", Value(BigInt{true, 5})},
                 {"u", Value(Bytes{0xfb, 0xff})},
                 {"e", arr({"$x", arr({"$$y", 1})})},
                 {"three", arr({"$x", 1, 2})},
                 {"nested_undefined", arr({Value(Undefined{}), 1})}});
  EXPECT_EQ(json::dump(v),
            R"({"b":["$BigInt","-5"],"u":["$Uint8Array","+/8="],"e":["$$x",["$$$y",1]],"three":["$x",1,2],)"
            R"("nested_undefined":[null,1]})");
  EXPECT_EQ(json::dump(Value(Undefined{})), "null");
}

TEST(Json, DumpEscapesLikeJsonStringify) {
  EXPECT_EQ(json::dump(Value("\"\\\b\f\n\r\t\x01\x1f\x7f/")), R"("\"\\\b\f\n\r\t\u0001\u001f)" "\x7f" R"(/")");
  EXPECT_EQ(json::dump(obj({{"k\"ey", 1}})), R"({"k\"ey":1})");
}

TEST(Json, ReviveAppliesToAlreadyDecodedValues) {
  auto v = json::revive(obj({{"x", arr({"$BigInt", "7"})}, {"y", arr({"$$z", 1})}}));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, obj({{"x", Value(BigInt{false, 7})}, {"y", arr({"$z", 1})}}));
  EXPECT_FALSE(json::revive(arr({"$Nope", 1})).ok());
}

TEST(Base64, RejectsBadPaddingAndLength) {
  EXPECT_FALSE(json::base64_decode("A").ok());
  EXPECT_FALSE(json::base64_decode("AQ===").ok());
  EXPECT_FALSE(json::base64_decode("AQI==").ok());
  EXPECT_EQ(*json::base64_decode(""), Bytes{});
  EXPECT_EQ(*json::base64_decode("AQ=="), Bytes{1});
  EXPECT_EQ(json::base64_encode(Bytes{}), "");
  EXPECT_EQ(json::base64_encode(Bytes{1}), "AQ==");
  EXPECT_EQ(json::base64_encode(Bytes{1}, true), "AQ");
}

#include "runtime/value/json.hpp"

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

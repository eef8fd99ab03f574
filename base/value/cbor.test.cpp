// CBOR vectors from ../shared/rivet-ref/captures and client-protocol.md §4.1.
#include "base/value/cbor.hpp"

#include <gtest/gtest.h>

using namespace anvil;

namespace {
Bytes hex(std::string_view h) {
  Bytes out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  return out;
}
std::string to_hex(const Bytes& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto c : b) { s += d[c >> 4]; s += d[c & 15]; }
  return s;
}
}  // namespace

TEST(Cbor, DecodesTheClientsCborArgsEnvelope) {
  // b9 0001 64"args" 85 01 61"s" f6 1b 000000000000000a b9 0001 61"a" 81 f5
  auto v = cbor::decode(hex("b90001646172677385016173f61b000000000000000ab900016161" "81f5"), cbor::Mode::Envelope);
  ASSERT_TRUE(v.ok()) << v.error().message;
  const Value* args = v->find("args");
  ASSERT_TRUE(args && args->is_array());
  const auto& a = args->as_array();
  ASSERT_EQ(a.size(), 5u);
  EXPECT_EQ(a[0], Value(1));
  EXPECT_EQ(a[1], Value("s"));
  EXPECT_TRUE(a[2].is_null());
  ASSERT_TRUE(a[3].is_bigint());  // 1b-encoded => bigint, as cbor-x decodes it
  EXPECT_EQ(a[3].as_bigint().magnitude, 10u);
  EXPECT_EQ(a[4], obj({{"a", arr({true})}}));
}

TEST(Cbor, EncodesTheServerOutputEnvelopeMinimally) {
  // a1 66"output" 81 61"x"  (observed)
  EXPECT_EQ(to_hex(cbor::encode(obj({{"output", arr({"x"})}}), cbor::Mode::Envelope)), "a1666f75747075748161" "78");
}

TEST(Cbor, CompatModeRevivesTaggedValues) {
  // The bare args of the spec: [1,"s",null,["$BigInt","10"],["$Uint8Array","AQID"],["$$x",1],{a:[true]}]
  auto v = cbor::decode(hex("87016173f6826724426967496e74623130826b2455696e743841727261796441514944826324247801b90001616181f5"), cbor::Mode::Compat);
  ASSERT_TRUE(v.ok()) << v.error().message;
  const auto& a = v->as_array();
  ASSERT_EQ(a.size(), 7u);
  ASSERT_TRUE(a[3].is_bigint());
  EXPECT_EQ(a[3].as_bigint().to_string(), "10");
  ASSERT_TRUE(a[4].is_bytes());
  EXPECT_EQ(a[4].as_bytes(), (Bytes{1, 2, 3}));
  EXPECT_EQ(a[5], arr({"$x", 1}));
}

TEST(Cbor, CompatModeTagsOnTheWayOut) {
  Value v = arr({Value(BigInt{false, 2}), Value(Bytes{1, 2, 3}), arr({"$x", 1})});
  auto back = cbor::decode(cbor::encode(v, cbor::Mode::Compat), cbor::Mode::Compat);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, v);
  // The wire form of 2n is ["$BigInt","2"].
  EXPECT_EQ(to_hex(cbor::encode(Value(BigInt{false, 2}), cbor::Mode::Compat)), "826724426967496e746132");
}

TEST(Cbor, UnknownDollarTagIsAnError) {
  auto v = cbor::decode(cbor::encode(arr({"$Nope", 1}), cbor::Mode::Storage), cbor::Mode::Compat);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, "invalid_request");
}

TEST(Cbor, StorageModeRoundTripsEveryValueKind) {
  Value v = obj({{"i", int64_t{5000000000}}, {"neg", -7}, {"d", 1.5}, {"big", Value(BigInt{true, 3})},
                 {"b", Value(Bytes{0, 255})}, {"u", Value(Undefined{})}, {"s", "héllo"}, {"n", nullptr},
                 {"a", arr({true, false, arr({"$x", 1})})}});
  auto back = cbor::decode(cbor::encode(v, cbor::Mode::Storage), cbor::Mode::Storage);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, v);
  EXPECT_TRUE(back->find("i")->is_int());
  EXPECT_TRUE(back->find("big")->is_bigint());
}

TEST(Cbor, EnvelopeEmitsLargeIntegersAsFloat64AndBigIntsAs1b) {
  EXPECT_EQ(cbor::encode(Value(int64_t{5000000000}), cbor::Mode::Envelope)[0], 0xfb);
  EXPECT_EQ(to_hex(cbor::encode(Value(BigInt{false, 1}), cbor::Mode::Envelope)), "1b0000000000000001");
}

TEST(Cbor, DecodesUndefinedHalfFloatsAndTag64) {
  EXPECT_TRUE(cbor::decode(hex("f7"), cbor::Mode::Envelope)->is_undefined());
  EXPECT_EQ(*cbor::decode(hex("f93e00"), cbor::Mode::Envelope), Value(1.5));
  EXPECT_EQ(*cbor::decode(hex("d84043010203"), cbor::Mode::Envelope), Value(Bytes{1, 2, 3}));
}

TEST(Cbor, TruncatedAndTrailingInputIsRejectedNotCrashing) {
  EXPECT_FALSE(cbor::decode(hex("83010203ff"), cbor::Mode::Envelope).ok());
  EXPECT_FALSE(cbor::decode(hex("8301"), cbor::Mode::Envelope).ok());
  EXPECT_FALSE(cbor::decode(hex("5bffffffffffffffff"), cbor::Mode::Envelope).ok());
  EXPECT_FALSE(cbor::decode(Bytes(1000, 0x81), cbor::Mode::Envelope).ok());  // nesting bomb
}

TEST(Cbor, TheCapturedQueueSendEnvelopeDecodesWithTimeoutUndefined) {
  // b9 0004 64"body" b9 0002 62"id" 01 65"value" 15 64"name" 64"jobs" 64"wait" f4 67"timeout" f7
  auto v = cbor::decode(hex("b9000464626f6479b9000262696401657661" "6c756515646e616d65646a6f627364776169" "74f46774696d656f7574f7"),
                        cbor::Mode::Envelope);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v->find("body"), obj({{"id", 1}, {"value", 21}}));
  EXPECT_EQ(*v->find("wait"), Value(false));
  EXPECT_TRUE(v->find("timeout")->is_undefined());
}

TEST(Cbor, EnvelopeEncodesEveryKindAsTheClientExpects) {
  EXPECT_EQ(to_hex(cbor::encode(Value(nullptr), cbor::Mode::Envelope)), "f6");
  EXPECT_EQ(to_hex(cbor::encode(Value(Undefined{}), cbor::Mode::Envelope)), "f7");
  EXPECT_EQ(to_hex(cbor::encode(Value(true), cbor::Mode::Envelope)), "f5");
  EXPECT_EQ(to_hex(cbor::encode(Value(23), cbor::Mode::Envelope)), "17");
  EXPECT_EQ(to_hex(cbor::encode(Value(24), cbor::Mode::Envelope)), "1818");
  EXPECT_EQ(to_hex(cbor::encode(Value(-1), cbor::Mode::Envelope)), "20");
  EXPECT_EQ(to_hex(cbor::encode(Value(int64_t{4294967295}), cbor::Mode::Envelope)), "1affffffff");
  EXPECT_EQ(to_hex(cbor::encode(Value(int64_t{-4294967296}), cbor::Mode::Envelope)), "3affffffff");
  EXPECT_EQ(to_hex(cbor::encode(Value(int64_t{4294967296}), cbor::Mode::Envelope)), "fb41f0000000000000");
  EXPECT_EQ(to_hex(cbor::encode(Value(2.0), cbor::Mode::Envelope)), "02");  // integral double => int
  EXPECT_EQ(to_hex(cbor::encode(Value(-0.0), cbor::Mode::Envelope)), "fb8000000000000000");
  EXPECT_EQ(to_hex(cbor::encode(Value(1.5), cbor::Mode::Envelope)), "fb3ff8000000000000");
  EXPECT_EQ(to_hex(cbor::encode(Value(BigInt{true, 1}), cbor::Mode::Envelope)), "3b0000000000000000");
  EXPECT_EQ(to_hex(cbor::encode(Value(Bytes{1, 2, 3}), cbor::Mode::Envelope)), "d84043010203");
  EXPECT_EQ(to_hex(cbor::encode(Value("héllo"), cbor::Mode::Envelope)), "6668c3a96c6c6f");
  EXPECT_EQ(to_hex(cbor::encode(arr({"$x", 1}), cbor::Mode::Envelope)), "8263242478" "01");
}

TEST(Cbor, CompatEncodesTheSpecsBareArgsByteForByte) {
  // client-protocol.md §4.1 bare args (after the 04 00 30 prefix).
  Value args = arr({1, "s", nullptr, Value(BigInt{false, 10}), Value(Bytes{1, 2, 3}), arr({"$x", 1}),
                    obj({{"a", arr({true})}})});
  // Ours writes the map as a1 where cbor-x writes b9 0001.
  EXPECT_EQ(to_hex(cbor::encode(args, cbor::Mode::Compat)),
            "87016173f6826724426967496e74623130826b2455696e743841727261796441514944826324247801a1616181f5");
  EXPECT_EQ(to_hex(cbor::encode(Value(Undefined{}), cbor::Mode::Compat)), "826a24556e646566696e656400");
}

TEST(Cbor, SetsAreArraysAndTheirItemsAreRevivedOneByOne) {
  // tag 258 (cbor-x Set) in an envelope
  EXPECT_EQ(*cbor::decode(hex("d9010282" "0102"), cbor::Mode::Envelope), arr({1, 2}));
  // compat ["$Set",["$a",1]] is the set {"$a", 1}
  auto v = cbor::decode(cbor::encode(arr({"$Set", arr({"$a", 1})}), cbor::Mode::Storage), cbor::Mode::Compat);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, arr({"$a", 1}));
}

TEST(Cbor, DatesBecomeTheirIsoStringAsJsonStringifyWouldSendThem) {
  // cbor-x: whole seconds as tag 1 + uint32, otherwise tag 1 + float64 seconds.
  EXPECT_EQ(*cbor::decode(hex("c11a5f5e1000"), cbor::Mode::Envelope), Value("2020-09-13T12:26:40.000Z"));
  EXPECT_EQ(*cbor::decode(hex("c1fb41d7d78400100000"), cbor::Mode::Envelope), Value("2020-09-13T12:26:40.250Z"));
  EXPECT_EQ(*cbor::decode(hex("c1fbc000000000000000"), cbor::Mode::Envelope), Value("1969-12-31T23:59:58.000Z"));
  EXPECT_EQ(*cbor::decode(hex("c100"), cbor::Mode::Compat), Value("1970-01-01T00:00:00.000Z"));
  EXPECT_EQ(cbor::decode(hex("c16130"), cbor::Mode::Envelope).error().qualified(), "actor.invalid_request");
  EXPECT_FALSE(cbor::decode(hex("c1fb7ff0000000000000"), cbor::Mode::Envelope).ok());  // Infinity: no valid date
  EXPECT_EQ(*cbor::decode(hex("c0736f6e6520737472696e67206173206974206973"), cbor::Mode::Envelope),
            Value("one string as it is"));
}

TEST(Cbor, RepeatedMapKeysKeepTheLastValue) {
  auto v = cbor::decode(hex("a3616101616202616103"), cbor::Mode::Envelope);
  ASSERT_TRUE(v.ok());
  ASSERT_EQ(v->as_object().size(), 2u);
  EXPECT_EQ(v->as_object()[0].first, "a");
  EXPECT_EQ(v->as_object()[0].second, Value(3));
}

TEST(Cbor, IndefiniteLengthItemsDecode) {
  // [_ 1, {_ "a": (_ "x", "y")}, (_ h'01', h'02')]
  auto v = cbor::decode(hex("9f01bf61617f61786179ffff5f41014102ffff"), cbor::Mode::Envelope);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(*v, arr({1, obj({{"a", "xy"}}), Value(Bytes{1, 2})}));
}

TEST(Cbor, BignumTagsWithinSixtyFourBitsAreBigInts) {
  EXPECT_EQ(*cbor::decode(hex("c2420100"), cbor::Mode::Envelope), Value(BigInt{false, 256}));
  EXPECT_EQ(*cbor::decode(hex("c3420100"), cbor::Mode::Envelope), Value(BigInt{true, 257}));
  EXPECT_FALSE(cbor::decode(hex("c249010000000000000000"), cbor::Mode::Envelope).ok());
  EXPECT_EQ(*cbor::decode(hex("3b7fffffffffffffff"), cbor::Mode::Envelope), Value(BigInt{true, 9223372036854775808u}));
  EXPECT_FALSE(cbor::decode(hex("3bffffffffffffffff"), cbor::Mode::Envelope).ok());
}

TEST(Cbor, StorageKeepsSmallAndHugeIntegersExactAndNeverEscapes) {
  EXPECT_EQ(to_hex(cbor::encode(Value(int64_t{5000000000}), cbor::Mode::Storage)), "1b000000012a05f200");
  EXPECT_EQ(to_hex(cbor::encode(Value(1.0), cbor::Mode::Storage)), "fb3ff0000000000000");
  EXPECT_EQ(to_hex(cbor::encode(Value(BigInt{false, 1}), cbor::Mode::Storage)), "c2480000000000000001");
  EXPECT_EQ(to_hex(cbor::encode(Value(Bytes{7}), cbor::Mode::Storage)), "4107");
  EXPECT_EQ(to_hex(cbor::encode(arr({"$x", 1}), cbor::Mode::Storage)), "8262247801");
  auto big = cbor::decode(cbor::encode(Value(INT64_MIN), cbor::Mode::Storage), cbor::Mode::Storage);
  ASSERT_TRUE(big.ok());
  ASSERT_TRUE(big->is_int());
  EXPECT_EQ(big->as_int(), INT64_MIN);
  auto d = cbor::decode(cbor::encode(Value(1.0), cbor::Mode::Storage), cbor::Mode::Storage);
  EXPECT_TRUE(d->is_double());
}

TEST(Cbor, EveryTruncationOfAValidMessageIsAnErrorNotACrash) {
  Bytes full = hex("b90001646172677385016173f61b000000000000000ab90001616181f5");
  for (size_t n = 0; n < full.size(); ++n) {
    auto v = cbor::decode(std::span<const uint8_t>(full.data(), n), cbor::Mode::Compat);
    ASSERT_FALSE(v.ok()) << n;
    EXPECT_EQ(v.error().qualified(), "actor.invalid_request");
  }
}

TEST(Cbor, HostileLengthsAndReservedBytesAreRejected) {
  EXPECT_FALSE(cbor::decode(hex("9bffffffffffffffff"), cbor::Mode::Envelope).ok());   // huge array
  EXPECT_FALSE(cbor::decode(hex("bbffffffffffffffff"), cbor::Mode::Envelope).ok());   // huge map
  EXPECT_FALSE(cbor::decode(hex("7bffffffffffffffff"), cbor::Mode::Envelope).ok());   // huge string
  EXPECT_FALSE(cbor::decode(hex("1c"), cbor::Mode::Envelope).ok());                   // reserved ai
  EXPECT_FALSE(cbor::decode(hex("ff"), cbor::Mode::Envelope).ok());                   // stray break
  EXPECT_FALSE(cbor::decode(hex("a1f6f6"), cbor::Mode::Envelope).ok());               // null key
  EXPECT_FALSE(cbor::decode(hex("d8ff00"), cbor::Mode::Envelope).ok());               // unknown tag
  EXPECT_FALSE(cbor::decode(hex("5f6161ff"), cbor::Mode::Envelope).ok());             // text chunk in bytes
  EXPECT_FALSE(cbor::decode(Bytes{}, cbor::Mode::Envelope).ok());
  Bytes tags(300, 0xc0);  // tag nesting bomb
  tags.push_back(0x60);
  EXPECT_FALSE(cbor::decode(tags, cbor::Mode::Envelope).ok());
}

TEST(Cbor, IntegerMapKeysBecomeStringsAsJsObjectKeysDo) {
  EXPECT_EQ(*cbor::decode(hex("a1016178"), cbor::Mode::Envelope), obj({{"1", "x"}}));
}

// CBOR vectors from ../shared/rivet-ref/captures and client-protocol.md §4.1.
#include "runtime/value/cbor.hpp"

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

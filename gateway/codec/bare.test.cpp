#include "gateway/codec/bare.hpp"

#include <array>

#include <gtest/gtest.h>

using namespace anvil;

TEST(Bare, UintIsLeb128) {
  bare::Writer w;
  w.uint(0);
  w.uint(127);
  w.uint(128);
  w.uint(300);
  EXPECT_EQ(w.bytes(), (Bytes{0x00, 0x7f, 0x80, 0x01, 0xac, 0x02}));
  bare::Reader r(w.bytes());
  EXPECT_EQ(r.uint(), 0u);
  EXPECT_EQ(r.uint(), 127u);
  EXPECT_EQ(r.uint(), 128u);
  EXPECT_EQ(r.uint(), 300u);
  EXPECT_TRUE(r.finish().ok());
}

TEST(Bare, FixedWidthIntegersAreLittleEndian) {
  bare::Writer w;
  w.u16(4);
  w.u64(500);
  EXPECT_EQ(w.bytes(), (Bytes{0x04, 0x00, 0xf4, 0x01, 0, 0, 0, 0, 0, 0}));
}

TEST(Bare, TrailingBytesAreRejected) {
  Bytes b{0x01, 0x02};
  bare::Reader r(b);
  r.u8();
  EXPECT_FALSE(r.finish().ok());
}

TEST(Bare, TruncatedStringFailsAndTheFailureSticks) {
  Bytes b{0x05, 'a', 'b'};
  bare::Reader r(b);
  EXPECT_EQ(r.string(), "");
  EXPECT_FALSE(r.ok());
  r.u8();
  EXPECT_FALSE(r.ok());
}

TEST(Bare, OptionalAndBoolAcceptOnlyZeroOrOne) {
  Bytes b{0x02};
  bare::Reader r(b);
  r.optional_present();
  EXPECT_FALSE(r.ok());
}

TEST(Bare, InvalidUtf8StringIsRejected) {
  Bytes b{0x01, 0xff};
  bare::Reader r(b);
  r.string();
  EXPECT_FALSE(r.ok());
}

TEST(Bare, UintRejectsNonCanonicalAndOverlongVarints) {
  for (Bytes b : {Bytes{0x80, 0x00}, Bytes{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
                  Bytes{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00}, Bytes{0x80}}) {
    bare::Reader r(b);
    r.uint();
    EXPECT_FALSE(r.ok());
  }
  Bytes max{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  bare::Reader r(max);
  EXPECT_EQ(r.uint(), UINT64_MAX);
  EXPECT_TRUE(r.finish().ok());
  bare::Writer w;
  w.uint(UINT64_MAX);
  EXPECT_EQ(w.bytes(), max);
}

TEST(Bare, StringsAndDataAreLengthPrefixed) {
  bare::Writer w;
  w.string("ev");
  w.data(Bytes{0x80});
  w.boolean(true);
  w.optional_present(false);
  EXPECT_EQ(w.bytes(), (Bytes{0x02, 'e', 'v', 0x01, 0x80, 0x01, 0x00}));
  bare::Reader r(w.bytes());
  EXPECT_EQ(r.string(), "ev");
  EXPECT_EQ(r.data(), Bytes{0x80});
  EXPECT_TRUE(r.boolean());
  EXPECT_FALSE(r.optional_present());
  EXPECT_TRUE(r.finish().ok());
}

TEST(Bare, FixedWidthReadsAreLittleEndianAndTruncationFails) {
  Bytes b{0x04, 0x00, 0xf4, 0x01, 0, 0, 0, 0, 0, 0};
  bare::Reader r(b);
  EXPECT_EQ(r.u16(), 4u);
  EXPECT_EQ(r.u64(), 500u);
  EXPECT_TRUE(r.finish().ok());
  Bytes short_u64{1, 2, 3};
  bare::Reader t(short_u64);
  t.u64();
  EXPECT_FALSE(t.ok());
  EXPECT_EQ(t.finish().error().qualified(), "actor.invalid_request");
}

TEST(Bare, HugeDeclaredLengthsFailWithoutAllocating) {
  Bytes b{0xff, 0xff, 0xff, 0xff, 0x0f, 'x'};
  bare::Reader r(b);
  EXPECT_TRUE(r.data().empty());
  EXPECT_FALSE(r.ok());
}

TEST(Bare, BoolRejectsTwo) {
  Bytes b{0x02};
  bare::Reader r(b);
  r.boolean();
  EXPECT_FALSE(r.ok());
}

TEST(Bare, U32AndI64AreFixedWidthLittleEndian) {
  bare::Writer w;
  w.u32(0x01020304);
  w.i64(-2);
  EXPECT_EQ(w.bytes(), (Bytes{0x04, 0x03, 0x02, 0x01, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  bare::Reader r(w.bytes());
  EXPECT_EQ(r.u32(), 0x01020304u);
  EXPECT_EQ(r.i64(), -2);
  EXPECT_TRUE(r.finish().ok());
  Bytes short_u32{1, 2, 3};
  bare::Reader t(short_u32);
  t.u32();
  EXPECT_FALSE(t.ok());
}

TEST(Bare, FixedDataHasNoLengthPrefix) {
  bare::Writer w;
  w.fixed(Bytes{9, 8, 7, 6});
  EXPECT_EQ(w.bytes(), (Bytes{9, 8, 7, 6}));
  bare::Reader r(w.bytes());
  std::array<uint8_t, 4> out{};
  r.fixed(out);
  EXPECT_EQ(out, (std::array<uint8_t, 4>{9, 8, 7, 6}));
  EXPECT_TRUE(r.finish().ok());
  Bytes three{1, 2, 3};
  bare::Reader t(three);
  t.fixed(out);
  EXPECT_FALSE(t.ok());
  EXPECT_EQ(out, (std::array<uint8_t, 4>{}));
}

TEST(Bare, CountLargerThanTheBytesLeftFailsFast) {
  Bytes ok{0x02, 'a', 'b'};
  bare::Reader r(ok);
  EXPECT_EQ(r.count(), 2u);
  EXPECT_TRUE(r.ok());
  Bytes huge{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00};
  bare::Reader t(huge);
  EXPECT_EQ(t.count(), 0u);
  EXPECT_FALSE(t.ok());
}

#include "gateway/codec/bare.hpp"

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

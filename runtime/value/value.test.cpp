#include "runtime/value/value.hpp"

#include <gtest/gtest.h>

using namespace anvil;

TEST(Value, NumbersCompareByNumericValueAsInJs) {
  EXPECT_EQ(Value(1), Value(1.0));
  EXPECT_NE(Value(1), Value(1.5));
  EXPECT_NE(Value(1), Value("1"));
}

TEST(Value, ObjectEqualityIgnoresKeyOrder) {
  EXPECT_EQ(obj({{"a", 1}, {"b", 2}}), obj({{"b", 2}, {"a", 1}}));
  EXPECT_NE(obj({{"a", 1}}), obj({{"a", 1}, {"b", 2}}));
}

TEST(Value, IndexingInsertsMissingFieldsInOrder) {
  Value v = Object{};
  v["x"] = 1;
  v["y"] = "z";
  v["x"] = 2;
  ASSERT_EQ(v.as_object().size(), 2u);
  EXPECT_EQ(v.as_object()[0].first, "x");
  EXPECT_EQ(*v.find("x"), Value(2));
}

TEST(BigInt, ParsesAndPrintsDecimal) {
  BigInt b;
  ASSERT_TRUE(BigInt::parse("-12", b));
  EXPECT_TRUE(b.negative);
  EXPECT_EQ(b.magnitude, 12u);
  EXPECT_EQ(b.to_string(), "-12");
  EXPECT_FALSE(BigInt::parse("1x", b));
  EXPECT_FALSE(BigInt::parse("99999999999999999999999", b));
  EXPECT_EQ(BigInt::from_int64(INT64_MIN).to_string(), "-9223372036854775808");
}

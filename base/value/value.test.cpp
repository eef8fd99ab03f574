#include "base/value/value.hpp"

#include <gtest/gtest.h>

#include "base/value/error.hpp"

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

TEST(Value, BigIntAndNumberAreDifferentKindsEvenWithTheSameMagnitude) {
  EXPECT_NE(Value(BigInt{false, 1}), Value(1));
  EXPECT_EQ(Value(BigInt{false, 1}), Value(BigInt::from_int64(1)));
}

TEST(Value, FindOnANonObjectIsNullAndIndexingTurnsItIntoAnObject) {
  Value v = arr({1});
  EXPECT_EQ(v.find("x"), nullptr);
  v["x"] = true;
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(*v.find("x"), Value(true));
}

TEST(BigInt, ZeroIsNeverNegative) {
  BigInt b;
  ASSERT_TRUE(BigInt::parse("-0", b));
  EXPECT_FALSE(b.negative);
  EXPECT_EQ(b.to_string(), "0");
  EXPECT_EQ(BigInt::from_int64(0).to_string(), "0");
  EXPECT_FALSE(BigInt::parse("", b));
  EXPECT_FALSE(BigInt::parse("-", b));
  ASSERT_TRUE(BigInt::parse("18446744073709551615", b));
  EXPECT_EQ(b.magnitude, UINT64_MAX);
}

TEST(Error, HttpStatusFollowsTheRuntimeTable) {
  auto status = [](const char* g, const char* c) { return http_status_for(make_error(g, c, "m")); };
  EXPECT_EQ(status("auth", "forbidden"), 403);
  EXPECT_EQ(status("actor", "action_not_found"), 404);
  EXPECT_EQ(status("actor", "not_found"), 404);
  EXPECT_EQ(status("actor", "action_timed_out"), 408);
  EXPECT_EQ(status("actor", "invalid_request"), 400);
  EXPECT_EQ(status("actor", "method_not_allowed"), 405);
  EXPECT_EQ(status("message", "incoming_too_long"), 400);
  EXPECT_EQ(status("message", "outgoing_too_long"), 400);
  EXPECT_EQ(status("queue", "anything"), 400);
  EXPECT_EQ(status("actor", "duplicate_key"), 400);
  EXPECT_EQ(status("actor", "not_registered"), 400);
  EXPECT_EQ(status("validation", "invalid_input"), 400);
  EXPECT_EQ(status("api", "not_found"), 404);
  EXPECT_EQ(status("guard", "query_unknown_param"), 400);
  EXPECT_EQ(status("namespace", "not_found"), 400);
}

TEST(Error, AFullDiskIs507AndAFailedDiskIs503) {
  EXPECT_EQ(http_status_for(make_error("storage", "disk_full", "m")), 507);
  EXPECT_EQ(http_status_for(make_error("storage", "io_error", "m")), 503);
}

TEST(Error, UserErrorsAndEverythingUnknownAre500) {
  EXPECT_EQ(http_status_for(make_error("user", "custom_code", "m")), 500);
  EXPECT_EQ(http_status_for(make_error("actor", "destroying", "m")), 500);
  EXPECT_EQ(http_status_for(make_error("guard", "actor_ready_timeout", "m")), 500);
  EXPECT_EQ(http_status_for(internal_error()), 500);
}

TEST(Error, InternalErrorIsTheSanitizedShape) {
  Error e = internal_error();
  EXPECT_EQ(e.group, "rivetkit");
  EXPECT_EQ(e.code, "internal_error");
  EXPECT_EQ(e.message, "An internal error occurred");
  EXPECT_FALSE(e.metadata.has_value());
  EXPECT_EQ(e.qualified(), "rivetkit.internal_error");
}

TEST(Result, HoldsAValueOrAnErrorAndDefaultsToInternalError) {
  Result<Value> ok = Value(3);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, Value(3));
  Result<Value> bad = make_error("actor", "invalid_request", "no");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().qualified(), "actor.invalid_request");
  EXPECT_EQ(Result<int>().error().qualified(), "rivetkit.internal_error");
}

#include "engine-api/http.hpp"

#include <gtest/gtest.h>

using namespace anvil::http;

TEST(Http, PercentDecodingHandlesEscapesAndRejectsTruncatedOnes) {
  EXPECT_EQ(percent_decode("k1%2Cj1"), "k1,j1");
  EXPECT_EQ(percent_decode("a+b"), "a+b");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_FALSE(percent_decode("%2").has_value());
  EXPECT_FALSE(percent_decode("%zz").has_value());
}

TEST(Http, PercentEncodingMatchesEncodeURIComponent) {
  EXPECT_EQ(percent_encode("s3cr/et"), "s3cr%2Fet");
  EXPECT_EQ(percent_encode("a b~!*'()"), "a%20b~!*'()");
}

TEST(Http, QueryParamsKeepOrderAndRawText) {
  auto q = parse_query("x=1&rvt-key=a%2Cb&y=%20+");
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[0].raw, "x=1");
  EXPECT_EQ(q[1].value, "a,b");
  EXPECT_EQ(q[2].value, "  ");
  EXPECT_EQ(query_value(q, "x"), "1");
  EXPECT_FALSE(query_value(q, "z").has_value());
}

TEST(Http, ErrorResponsesCarryTheSpecShapeAndErrorHeader) {
  auto r = error_response(anvil::make_error("actor", "not_found", "The actor does not exist or was destroyed."));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("x-rivet-error"), "actor.not_found");
  EXPECT_NE(r.body.find("\"group\":\"actor\""), std::string::npos);
  EXPECT_NE(r.body.find("\"code\":\"not_found\""), std::string::npos);
}

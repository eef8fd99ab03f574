#include "base/log/log.hpp"

#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

namespace anvil::log {
namespace {

// Lines a logger with `formatter` writes.
struct Capture {
  explicit Capture(std::unique_ptr<spdlog::formatter> f) {
    sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    sink->set_formatter(std::move(f));
    logger = std::make_shared<spdlog::logger>("", sink);
  }
  std::ostringstream out;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink;
  std::shared_ptr<spdlog::logger> logger;
};

TEST(JsonLog, EachLineIsOneObjectWithTheStableFields) {
  Capture c(std::make_unique<JsonFormatter>());
  c.logger->warn("disk \"almost\" full\n");
  const std::string line = c.out.str();
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
  EXPECT_NE(line.find("{\"ts\":\""), std::string::npos) << line;
  EXPECT_NE(line.find("Z\",\"level\":\"warning\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"msg\":\"disk \\\"almost\\\" full\\n\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"thread\":"), std::string::npos) << line;
  EXPECT_EQ(line.find("actorId"), std::string::npos) << "no actor outside a turn: " << line;
}

TEST(JsonLog, TheActorAndRequestContextOfTheThreadIsIncludedWhileSet) {
  Capture c(std::make_unique<JsonFormatter>());
  {
    Scope turn(Context{"act1", "counter", "", "", ""});
    Scope req(Context{"", "", "ray9", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"});
    c.logger->info("hello");
  }
  c.logger->info("after");
  const std::string out = c.out.str();
  const std::string first = out.substr(0, out.find('\n'));
  const std::string second = out.substr(out.find('\n') + 1);
  EXPECT_NE(first.find("\"actorId\":\"act1\",\"actorName\":\"counter\",\"rayId\":\"ray9\","
                       "\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b7\""),
            std::string::npos)
      << first;
  EXPECT_EQ(second.find("actorId"), std::string::npos) << "restored after the scope: " << second;
}

TEST(JsonLog, KeyValueWordsOfTheMessageBecomeFieldsWithoutOverridingTheFixedOnes) {
  Capture c(std::make_unique<JsonFormatter>());
  c.logger->info("sandbox process started userId=u_1 pid=42, level=evil msg=x userId=second a=");
  const std::string line = c.out.str();
  EXPECT_NE(line.find("\"userId\":\"u_1\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"pid\":\"42\""), std::string::npos) << line;
  EXPECT_EQ(line.find("\"level\":\"evil\""), std::string::npos) << line;
  EXPECT_EQ(line.find("\"userId\":\"second\""), std::string::npos) << line;
  EXPECT_EQ(line.find("\"a\":"), std::string::npos) << line;
}

TEST(TraceParentHeader, AValidHeaderIsParsedAndAChildKeepsTheTraceWithANewSpan) {
  auto tp = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(tp);
  EXPECT_EQ(tp->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(tp->parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(tp->header(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  auto child = child_of(*tp);
  EXPECT_EQ(child.trace_id, tp->trace_id);
  EXPECT_EQ(child.flags, "01");
  EXPECT_NE(child.parent_id, tp->parent_id);
  EXPECT_TRUE(parse_traceparent(child.header()));
}

TEST(TraceParentHeader, MalformedHeadersAreIgnored) {
  for (const char* bad : {"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                          "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
  EXPECT_TRUE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"))
      << "a later version may add fields";
}

TEST(TextLog, TheFormatNamesAreTextAndJsonOnly) {
  EXPECT_TRUE(set_format("text"));
  EXPECT_TRUE(set_format("json"));
  EXPECT_FALSE(set_format("xml"));
  EXPECT_TRUE(set_format("text"));
}

}  // namespace
}  // namespace anvil::log

#include "base/net/sse.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace anvil::net {
namespace {

std::vector<SseEvent> parse_in_pieces(const std::string& text, size_t piece) {
  std::vector<SseEvent> out;
  SseParser p;
  for (size_t i = 0; i < text.size(); i += piece)
    p.feed(std::string_view(text).substr(i, piece), [&](const SseEvent& e) { out.push_back(e); });
  return out;
}

TEST(Sse, EventsComeOutWholeWhateverTheReadBoundaries) {
  const std::string text =
      ": ping\r\n\r\nevent: message_start\r\nid: 1\r\ndata: {\"a\":1}\r\n\r\n"
      "event: content_block_delta\ndata: line one\ndata:line two\n\n"
      "data: no type\r\rdata: cut";
  for (size_t piece : {1u, 2u, 3u, 7u, 1000u}) {
    auto events = parse_in_pieces(text, piece);
    ASSERT_EQ(events.size(), 3u) << piece;
    EXPECT_EQ(events[0].event, "message_start");
    EXPECT_EQ(events[0].data, "{\"a\":1}");
    EXPECT_EQ(events[0].id, "1");
    EXPECT_EQ(events[1].event, "content_block_delta");
    EXPECT_EQ(events[1].data, "line one\nline two");
    EXPECT_EQ(events[1].id, "1");  // the last event id persists
    EXPECT_EQ(events[2].event, "message");
    EXPECT_EQ(events[2].data, "no type");
  }
}

TEST(Sse, AnEventLargerThanTheLimitStopsTheParser) {
  SseParser p(16);
  int n = 0;
  EXPECT_TRUE(p.feed("data: small\n\n", [&](const SseEvent&) { ++n; }));
  EXPECT_FALSE(p.feed("data: " + std::string(32, 'x'), [&](const SseEvent&) { ++n; }));
  EXPECT_EQ(n, 1);
}

}  // namespace
}  // namespace anvil::net

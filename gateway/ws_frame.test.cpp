// WebSocket framing: client frames decoded (masking, lengths, fragments,
// control frames, violations) and server frames encoded byte for byte.
#include "gateway/ws_frame.hpp"

#include <gtest/gtest.h>

using namespace anvil::gateway::wsframe;

namespace {

// A client frame as a browser would send it (masked).
std::string client_frame(uint8_t op, std::string_view payload, bool fin = true, bool mask = true, uint8_t rsv = 0) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | rsv | op));
  const uint64_t n = payload.size();
  const char m = mask ? static_cast<char>(0x80) : 0;
  if (n < 126) {
    f.push_back(static_cast<char>(m | n));
  } else if (n <= 0xffff) {
    f.push_back(static_cast<char>(m | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  } else {
    f.push_back(static_cast<char>(m | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((n >> (i * 8)) & 0xff));
  }
  const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  if (mask) f.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < n; ++i) f.push_back(static_cast<char>(payload[i] ^ (mask ? key[i & 3] : 0)));
  return f;
}

void feed(Decoder& d, const std::string& bytes) {
  d.feed({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
}

}  // namespace

TEST(WsFrame, DecodesTheRfcMaskedHelloExample) {
  // RFC 6455 §5.7: a single-frame masked text message "Hello".
  const uint8_t bytes[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  Decoder d(1024);
  d.feed(bytes);
  auto ev = d.next();
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->kind, Event::Message);
  EXPECT_TRUE(ev->text);
  EXPECT_EQ(ev->payload, "Hello");
  EXPECT_FALSE(d.next());
}

TEST(WsFrame, AllThreeLengthEncodingsAndManyFramesPerRead) {
  Decoder d(1 << 20);
  std::string small(5, 'a'), mid(300, 'b'), big(70000, 'c');
  feed(d, client_frame(kBinary, small) + client_frame(kBinary, mid) + client_frame(kText, big));
  for (auto* want : {&small, &mid, &big}) {
    auto ev = d.next();
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->payload, *want);
  }
  EXPECT_FALSE(d.next());
}

TEST(WsFrame, BytesArrivingOneAtATimeYieldTheMessageOnlyWhenComplete) {
  Decoder d(1024);
  std::string f = client_frame(kBinary, std::string("\x00\x01\x02", 3));
  for (size_t i = 0; i + 1 < f.size(); ++i) {
    feed(d, f.substr(i, 1));
    EXPECT_FALSE(d.next());
  }
  feed(d, f.substr(f.size() - 1));
  auto ev = d.next();
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->payload, std::string("\x00\x01\x02", 3));
  EXPECT_FALSE(ev->text);
}

TEST(WsFrame, FragmentsJoinAndControlFramesMayComeBetweenThem) {
  Decoder d(1024);
  feed(d, client_frame(kText, "Hel", false) + client_frame(kPing, "p") + client_frame(kContinuation, "lo", false) +
              client_frame(kContinuation, "!", true));
  auto ping = d.next();
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->kind, Event::Ping);
  EXPECT_EQ(ping->payload, "p");
  auto msg = d.next();
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->kind, Event::Message);
  EXPECT_TRUE(msg->text);
  EXPECT_EQ(msg->payload, "Hello!");
}

TEST(WsFrame, CloseCarriesCodeAndReason) {
  Decoder d(1024);
  feed(d, client_frame(kClose, close_payload(4001, "bye")));
  auto ev = d.next();
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->kind, Event::Close);
  EXPECT_EQ(ev->close_code, 4001);
  EXPECT_EQ(ev->payload, "bye");
  Decoder e(1024);
  feed(e, client_frame(kClose, ""));
  EXPECT_EQ(e.next()->close_code, 1005);
}

TEST(WsFrame, ViolationsEndTheConnectionWithTheRightCode) {
  struct Case {
    std::string bytes;
    uint16_t code;
  };
  std::vector<Case> cases = {
      {client_frame(kText, "x", true, /*mask=*/false), 1002},
      {client_frame(kText, "x", true, true, /*rsv=*/0x40), 1002},
      {client_frame(0x3, "x"), 1002},
      {client_frame(kContinuation, "x"), 1002},
      {client_frame(kText, "a", false) + client_frame(kText, "b"), 1002},
      {client_frame(kPing, "x", /*fin=*/false), 1002},
      {client_frame(kPing, std::string(126, 'x')), 1002},
      {client_frame(kClose, "x"), 1002},
      {client_frame(kClose, close_payload(1005, "")), 1002},
      {client_frame(kText, "\xc3\x28"), 1007},
      {client_frame(kBinary, std::string(2000, 'x')), 1009},
      {client_frame(kBinary, std::string(600, 'x'), false) + client_frame(kContinuation, std::string(600, 'x')), 1009},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    Decoder d(1024);
    feed(d, cases[i].bytes);
    EXPECT_FALSE(d.next()) << i;
    ASSERT_TRUE(d.violation()) << i;
    EXPECT_EQ(d.violation()->code, cases[i].code) << i;
  }
}

TEST(WsFrame, AnOversizedFrameIsRefusedFromItsHeaderAlone) {
  Decoder d(1024);
  std::string f = client_frame(kBinary, std::string(5000, 'x'));
  feed(d, f.substr(0, 8));  // header + mask key only
  EXPECT_FALSE(d.next());
  ASSERT_TRUE(d.violation());
  EXPECT_EQ(d.violation()->code, 1009);
}

TEST(WsFrame, ServerFramesAreUnmaskedWithTheShortestLength) {
  std::string out;
  append_frame(out, kText, "Hello");
  EXPECT_EQ(out, std::string("\x81\x05Hello", 7));
  out.clear();
  append_frame(out, kBinary, std::string(256, 'z'));
  EXPECT_EQ(out.substr(0, 4), std::string("\x82\x7e\x01\x00", 4));
  EXPECT_EQ(out.size(), 4u + 256u);
  out.clear();
  append_frame(out, kBinary, std::string(65536, 'z'));
  EXPECT_EQ(out.substr(0, 10), std::string("\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10));
  out.clear();
  append_frame(out, kClose, close_payload(1011, "actor.invalid_request"));
  EXPECT_EQ(out, std::string("\x88\x17\x03\xf3" "actor.invalid_request", 25));
}

TEST(WsFrame, CloseReasonsAreCutToFitAControlFrameOnACharacterBoundary) {
  std::string reason(122, 'a');
  reason += "\xc3\xa9";  // a 2-byte character straddling the 123-byte limit
  auto p = close_payload(1000, reason);
  EXPECT_EQ(p.size(), 2u + 122u);
  EXPECT_TRUE(valid_utf8(p.substr(2)));
}

TEST(WsFrame, Utf8Validation) {
  EXPECT_TRUE(valid_utf8("plain"));
  EXPECT_TRUE(valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xe2\x82"));          // truncated
}

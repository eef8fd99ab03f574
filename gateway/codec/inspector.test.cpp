// The inspector protocol v6 against bytes produced and decoded by rivetkit
// 2.3.19's own generated codec (node_modules/rivetkit/src/common/bare/
// generated/inspector/v6.ts), so a drift in any tag or field order fails here.
#include "gateway/codec/inspector.hpp"

#include <gtest/gtest.h>

#include "base/value/json.hpp"

using namespace anvil;
using namespace anvil::inspector;

namespace {

Bytes hex(const std::string& s) {
  Bytes out;
  for (size_t i = 0; i < s.size();) {
    if (s[i] == ' ') {
      ++i;
      continue;
    }
    out.push_back(static_cast<uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
    i += 2;
  }
  return out;
}

Bytes ascii(const std::string& s) { return Bytes(s.begin(), s.end()); }

}  // namespace

TEST(InspectorCodec, InitIsEncodedAsRivetkitDecodesIt) {
  Init init;
  init.state = hex("a1 65 63 6f 75 6e 74 01");  // {count: 1}
  init.rpcs = {"increment"};
  EXPECT_EQ(encode_init(init),
            hex("11 00 01 08 a1 65 63 6f 75 6e 74 01 01 01 09 69 6e 63 72 65 6d 65 6e 74 00 00 00 00 00 00"));
}

TEST(InspectorCodec, RequestsFromRivetkitsEncoderDecode) {
  auto state = decode_request(hex("01 01"));
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->kind, Request::Kind::kState);
  EXPECT_EQ(state->id, 1u);

  auto action = decode_request(hex("03 02 09 69 6e 63 72 65 6d 65 6e 74 02 81 05"));
  ASSERT_TRUE(action.ok());
  EXPECT_EQ(action->kind, Request::Kind::kAction);
  EXPECT_EQ(action->id, 2u);
  EXPECT_EQ(action->name, "increment");
  EXPECT_EQ(action->data, hex("81 05"));

  auto patch = decode_request(hex("00 0b b9 00 01 65 63 6f 75 6e 74 18 2a"));
  ASSERT_TRUE(patch.ok());
  EXPECT_EQ(patch->kind, Request::Kind::kPatchState);
  EXPECT_EQ(patch->data, hex("b9 00 01 65 63 6f 75 6e 74 18 2a"));

  auto queue = decode_request(hex("06 ac 02 c8 01"));
  ASSERT_TRUE(queue.ok());
  EXPECT_EQ(queue->kind, Request::Kind::kQueue);
  EXPECT_EQ(queue->id, 300u);
  EXPECT_EQ(queue->limit, 200u);

  auto replay = decode_request(hex("08 04 00"));
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->kind, Request::Kind::kWorkflowReplay);
  EXPECT_FALSE(replay->entry_id);

  auto schedules = decode_request(hex("0b 05"));
  ASSERT_TRUE(schedules.ok());
  EXPECT_EQ(schedules->kind, Request::Kind::kSchedules);
  EXPECT_EQ(schedules->id, 5u);

  Bytes del = hex("0d 09");
  for (const char* s : {"\x02s1", "\x02" "at"}) {
    Bytes part = ascii(s);
    del.insert(del.end(), part.begin(), part.end());
  }
  auto deleted = decode_request(del);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->kind, Request::Kind::kScheduleDelete);
  EXPECT_EQ(deleted->name, "s1");
  EXPECT_EQ(deleted->schedule_kind, "at");
}

TEST(InspectorCodec, AnswersAndPushesMatchRivetkitsBytes) {
  EXPECT_EQ(encode_state_response(1, hex("b9 00 01 65 63 6f 75 6e 74 01")),
            hex("00 01 01 0a b9 00 01 65 63 6f 75 6e 74 01 01"));
  EXPECT_EQ(encode_action_response(2, hex("06")), hex("02 02 01 06"));
  EXPECT_EQ(encode_state_updated(hex("b9 00 01 65 63 6f 75 6e 74 18 2a")),
            hex("05 0b b9 00 01 65 63 6f 75 6e 74 18 2a"));
  EXPECT_EQ(encode_error("boom"), hex("10 04 62 6f 6f 6d"));
  EXPECT_EQ(encode_queue_updated(3), hex("04 03"));
  EXPECT_EQ(encode_connections(std::nullopt, {}), hex("03 00"));
  EXPECT_EQ(encode_connections(std::nullopt, {Connection{"c1", hex("f6")}}), hex("03 01 02 63 31 01 f6"));
  QueueStatus q;
  q.size = 1;
  q.max_size = 1000;
  q.messages.push_back(QueueMessage{1, "jobs", 1700000000000});
  EXPECT_EQ(encode_queue_response(7, q), hex("0a 07 01 e8 07 01 01 04 6a 6f 62 73 80 d0 95 ff bc 31 00"));
}

TEST(InspectorCodec, BadFramesAreClearErrors) {
  for (const char* frame : {"", "0e 01", "01", "03 02 09 69 6e", "01 01 00", "ff ff ff ff ff ff ff ff ff ff ff"}) {
    auto r = decode_request(hex(frame));
    ASSERT_FALSE(r.ok()) << frame;
    EXPECT_EQ(r.error().qualified(), "inspector.invalid_request") << frame;
  }
}

TEST(InspectorCodec, WorkflowHistoryIsRivetkitsTransportEncoding) {
  // The JSON form Anvil's HTTP route answers; the expected bytes come from
  // rivetkit 2.3.19's encodeWorkflowHistoryTransport of the same history.
  auto history = json::parse(R"j({
    "nameRegistry": ["loop", "step"],
    "entries": [
      {"id": "loop~1/step",
       "location": [{"tag": "WorkflowNameIndex", "val": 0},
                    {"tag": "WorkflowLoopIterationMarker", "val": {"loop": 0, "iteration": 1}},
                    {"tag": "WorkflowNameIndex", "val": 1}],
       "kind": {"tag": "WorkflowStepEntry", "val": {"output": 5, "error": null}}},
      {"id": "nap", "location": [{"tag": "WorkflowNameIndex", "val": 1}],
       "kind": {"tag": "WorkflowSleepEntry", "val": {"deadline": 1000, "state": "pending"}}}],
    "entryMetadata": {
      "loop~1/step": {"status": "COMPLETED", "error": null, "attempts": 1, "lastAttemptAt": 10, "createdAt": 10,
                      "completedAt": 11, "rollbackCompletedAt": null, "rollbackError": null},
      "nap": {"status": "PENDING", "error": "boom", "attempts": 2, "lastAttemptAt": 20, "createdAt": 20,
              "completedAt": null, "rollbackCompletedAt": null, "rollbackError": null}}
  })j", /*revive=*/false);
  ASSERT_TRUE(history.ok());
  auto bytes = encode_workflow_history(*history);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_EQ(*bytes, hex("02046c6f6f700473746570020b6c6f6f707e312f7374657003000000000001000000000100000000010000000001"
                        "010500036e617001000100000002e80300000000000000020b6c6f6f707e312f737465700200010000000a0000"
                        "00000000000a00000000000000010b000000000000000000036e6170000104626f6f6d02000000140000000000"
                        "00001400000000000000000000"));

  auto bad = json::parse(R"j({"nameRegistry": [], "entries": [{"id": "x", "location": [],
    "kind": {"tag": "NoSuchEntry", "val": {}}}], "entryMetadata": {}})j", false);
  ASSERT_TRUE(bad.ok());
  auto refused = encode_workflow_history(*bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().qualified(), "inspector.invalid_history");
}

#include "storage/records.hpp"

#include <gtest/gtest.h>

using namespace anvil::storage;

TEST(Records, ActorRowRoundTripsThroughCapnProto) {
  ActorRow r;
  r.actor_id = "0123456789abcdefghijklmno";
  r.name = "counter";
  r.key = "a\\/b/\\0";
  r.namespace_name = "default";
  r.runner_name_selector = "default";
  r.crash_policy = "sleep";
  r.datacenter = "default";
  r.create_ts = 1795354964296;
  r.has_input = true;
  r.input = std::string("\xa1\x61\x61\x01", 4);
  r.generation = 7;
  r.inspector_token = std::string(64, 'f');
  auto bytes = encode(r);
  auto back = decode_actor_row(bytes);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->actor_id, r.actor_id);
  EXPECT_EQ(back->key, r.key);
  EXPECT_EQ(back->create_ts, r.create_ts);
  EXPECT_TRUE(back->has_input);
  EXPECT_EQ(back->input, r.input);
  EXPECT_EQ(back->generation, 7u);
  EXPECT_EQ(back->inspector_token, r.inspector_token);
}

TEST(Records, AnActorRowWithoutAnInspectorTokenReadsBackEmpty) {
  ActorRow r;
  r.actor_id = "0123456789abcdefghijklmno";
  auto back = decode_actor_row(encode(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->inspector_token, "");
}

TEST(Records, StateRowKeepsBinaryStateBytes) {
  StateRow r{3, std::string("\x00\xff\x01", 3), true};
  auto back = decode_state_row(encode(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->generation, 3u);
  EXPECT_EQ(back->state, r.state);
  EXPECT_TRUE(back->initialized);
}

TEST(Records, GarbageBytesAreACorruptRecordErrorNotACrash) {
  auto back = decode_state_row(std::string("\x05\x00\x00\x00garbage!", 12));
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.error().code, "corrupt_record");
}

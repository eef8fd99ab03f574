// The one normalizer and the one dedupe key rule.
#include "actors/growqr/events/grow_event.hpp"

#include <gtest/gtest.h>

#include "base/value/json.hpp"

using namespace anvil;
using namespace anvil::growqr;

namespace {

Value event(std::initializer_list<std::pair<std::string, Value>> overrides = {}, std::vector<std::string> drop = {}) {
  Value e = obj({{"id", "ev-1"},
                 {"type", "interview.completed"},
                 {"userId", "user-1"},
                 {"missionInstanceId", "m-1"},
                 {"missionType", "interview-to-offer"},
                 {"occurredAt", "2026-03-01T10:00:00.250Z"},
                 {"payload", obj({{"score", 7}})}});
  for (const auto& [k, v] : overrides) e[k] = v;
  for (const auto& k : drop) std::erase_if(e.as_object(), [&](const auto& kv) { return kv.first == k; });
  return e;
}

std::string field_of(const Result<GrowEvent>& r) {
  if (r.ok() || !r.error().metadata) return "";
  const Value* f = r.error().metadata->find("field");
  return f && f->is_string() ? f->as_string() : "";
}

}  // namespace

TEST(NormalizeGrowEvent, AValidEventIsTypedAndKeyedByItsId) {
  auto r = normalize_grow_event(event());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->type, "interview.completed");
  EXPECT_EQ(r->user_id, "user-1");
  EXPECT_EQ(*r->mission_instance_id, "m-1");
  EXPECT_EQ(*r->mission_type, "interview-to-offer");
  EXPECT_EQ(r->dedupe_key, "ev-1");
  EXPECT_EQ(r->payload.find("score")->as_int(), 7);
}

TEST(NormalizeGrowEvent, WithoutAnIdTheKeyIsDerivedFromRequestUserMissionServiceAndOperation) {
  Value e = event({{"requestId", "req-9"}, {"serviceId", "interview"}, {"operation", "review"}}, {"id"});
  auto a = normalize_grow_event(e);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->dedupe_key.size(), 64u);
  EXPECT_EQ(a->dedupe_key, derive_dedupe_key("req-9", "user-1", std::string("m-1"), std::string("interview"), "review"));
  // Same request, different payload or time: the same key (a retry of the same operation).
  Value retry = e;
  retry["payload"] = obj({{"score", 8}});
  retry["occurredAt"] = "2026-03-01T10:00:05Z";
  EXPECT_EQ(normalize_grow_event(retry)->dedupe_key, a->dedupe_key);
  // Any component differs: another key.
  Value other = e;
  other["operation"] = "configure";
  EXPECT_NE(normalize_grow_event(other)->dedupe_key, a->dedupe_key);
  Value no_mission = e;
  std::erase_if(no_mission.as_object(), [](const auto& kv) { return kv.first == "missionInstanceId"; });
  EXPECT_NE(normalize_grow_event(no_mission)->dedupe_key, a->dedupe_key);
}

TEST(NormalizeGrowEvent, AnEventWithNeitherIdNorRequestIdAndOperationIsInvalid) {
  auto r = normalize_grow_event(event({{"requestId", "req-1"}}, {"id"}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().qualified(), "event.invalid");
  EXPECT_EQ(field_of(r), "id");
}

TEST(NormalizeGrowEvent, EachMalformedFieldIsNamedInTheError) {
  struct Case {
    Value ev;
    std::string field;
  };
  std::vector<Case> cases{
      {Value(Array{}), "(event)"},
      {event({}, {"type"}), "type"},
      {event({{"type", ""}}), "type"},
      {event({{"userId", 42}}), "userId"},
      {event({}, {"occurredAt"}), "occurredAt"},
      {event({{"occurredAt", "yesterday"}}), "occurredAt"},
      {event({{"occurredAt", "2026-02-30T10:00:00Z"}}), "occurredAt"},
      {event({{"occurredAt", "2026-03-01T10:00:00"}}), "occurredAt"},  // no zone
      {event({}, {"payload"}), "payload"},
      {event({{"payload", "text"}}), "payload"},
      {event({{"missionInstanceId", Value(Array{})}}), "missionInstanceId"},
      {event({{"missionType", 1}}), "missionType"},
      {event({{"id", std::string(300, 'x')}}), "id"},
      {event({{"serviceId", true}}), "serviceId"},
  };
  for (const auto& c : cases) {
    auto r = normalize_grow_event(c.ev);
    ASSERT_FALSE(r.ok()) << json::dump(c.ev);
    EXPECT_EQ(r.error().qualified(), "event.invalid");
    EXPECT_EQ(field_of(r), c.field) << r.error().message;
  }
}

TEST(NormalizeGrowEvent, NullOptionalFieldsAreAbsentAndUnknownFieldsAreIgnored) {
  auto r = normalize_grow_event(event({{"missionInstanceId", nullptr}, {"extra", "x"}}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->mission_instance_id.has_value());
  EXPECT_EQ(r->to_json().find("extra"), nullptr);
}

TEST(NormalizeGrowEvent, ToJsonRoundTripsThroughTheNormalizer) {
  auto r = normalize_grow_event(event({{"occurredAt", "2026-03-01T12:00:00+05:30"}, {"requestId", "r"}}));
  ASSERT_TRUE(r.ok());
  auto again = normalize_grow_event(r->to_json());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->to_json(), r->to_json());
}

// The one mission registry (seed 000: "Normalize mission actor mapping into a
// single registry source used by routes, event actor, and mission
// registry"): every mission type and the actor type that runs it. Routes,
// growActor and userEventActor all resolve through it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anvil::growqr {

struct MissionType {
  std::string type;   // e.g. "interview-to-offer" (the wire name)
  std::string actor;  // the actor type that runs it, e.g. "interviewToOfferMission"
  std::string title;
};

// Every mission type, in catalog order.
const std::vector<MissionType>& mission_types();
// nullptr for an unknown type.
const MissionType* find_mission_type(std::string_view type);
// The type an actor type runs; nullptr when the actor is not a mission actor.
const MissionType* find_mission_type_by_actor(std::string_view actor);
// interview-to-offer has its own actor implementation; the others share one.
bool is_custom_mission_type(std::string_view type);

}  // namespace anvil::growqr

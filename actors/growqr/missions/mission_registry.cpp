// The one table of mission types (actors/growqr/mission_registry.hpp).
// Seed 000 names only interview-to-offer ("custom implementation") and says
// the "four mission actors are thin factory wrappers" without naming them:
// the four thin types below are our decision (docs/growqr.md, Missions).
#include "actors/growqr/mission_registry.hpp"

namespace anvil::growqr {

const std::vector<MissionType>& mission_types() {
  static const std::vector<MissionType> types = {
      {"interview-to-offer", "interviewToOfferMission", "Interview to offer"},
      {"resume-boost", "resumeBoostMission", "Resume boost"},
      {"roleplay-practice", "roleplayPracticeMission", "Roleplay practice"},
      {"skill-sprint", "skillSprintMission", "Skill sprint"},
      {"network-builder", "networkBuilderMission", "Network builder"},
  };
  return types;
}

const MissionType* find_mission_type(std::string_view type) {
  for (const auto& t : mission_types())
    if (t.type == type) return &t;
  return nullptr;
}

const MissionType* find_mission_type_by_actor(std::string_view actor) {
  for (const auto& t : mission_types())
    if (t.actor == actor) return &t;
  return nullptr;
}

bool is_custom_mission_type(std::string_view type) { return type == "interview-to-offer"; }

}  // namespace anvil::growqr

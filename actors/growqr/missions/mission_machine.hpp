// Typed state machines of GrowQR missions (seed 002: stages as an enum, an
// explicit transition table, an illegal transition rejected with a typed
// error and no state change). Two layers:
//  - the lifecycle every mission shares (MissionStatus x MissionEvent);
//  - the stage model: interview-to-offer's own typed stages, and one linear
//    model the four thin missions share.
// Pure functions: no I/O, so the tables are tested directly.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/value/error.hpp"

namespace anvil::growqr {

enum class MissionStatus { not_started, active, paused, completed, abandoned };
enum class MissionEvent { start, pause, resume, complete, abandon };

std::string_view to_string(MissionStatus s);
std::string_view to_string(MissionEvent e);
std::optional<MissionStatus> parse_mission_status(std::string_view s);
std::optional<MissionEvent> parse_mission_event(std::string_view s);

struct StatusTransition {
  MissionStatus from;
  MissionEvent event;
  MissionStatus to;
};

// Every legal lifecycle transition; anything else is illegal.
inline constexpr std::array<StatusTransition, 7> kStatusTransitions{{
    {MissionStatus::not_started, MissionEvent::start, MissionStatus::active},
    {MissionStatus::active, MissionEvent::pause, MissionStatus::paused},
    {MissionStatus::paused, MissionEvent::resume, MissionStatus::active},
    {MissionStatus::active, MissionEvent::complete, MissionStatus::completed},
    {MissionStatus::active, MissionEvent::abandon, MissionStatus::abandoned},
    {MissionStatus::paused, MissionEvent::abandon, MissionStatus::abandoned},
    {MissionStatus::not_started, MissionEvent::abandon, MissionStatus::abandoned},
}};

// The status `event` leads to, or nullopt when the table has no such row.
std::optional<MissionStatus> next_status(MissionStatus from, MissionEvent event);

// interview-to-offer's stages, in their natural order.
enum class InterviewStage { discovery, preparation, practice, interviewing, negotiation, offer };

struct InterviewStageTransition {
  InterviewStage from;
  InterviewStage to;
};

// Forward progress plus the two loops a real search has: another practice
// round after an interview, another interview round during negotiation.
inline constexpr std::array<InterviewStageTransition, 7> kInterviewStageTransitions{{
    {InterviewStage::discovery, InterviewStage::preparation},
    {InterviewStage::preparation, InterviewStage::practice},
    {InterviewStage::practice, InterviewStage::interviewing},
    {InterviewStage::interviewing, InterviewStage::practice},
    {InterviewStage::interviewing, InterviewStage::negotiation},
    {InterviewStage::negotiation, InterviewStage::interviewing},
    {InterviewStage::negotiation, InterviewStage::offer},
}};

std::string_view to_string(InterviewStage s);
std::optional<InterviewStage> parse_interview_stage(std::string_view s);

// What the shared mission implementation needs to know of a stage model.
struct StageModel {
  std::vector<std::string> stages;  // every stage, initial first
  std::string final_stage;          // reaching it completes the mission
  // Ok when `from -> to` is a legal stage change; mission.illegal_transition
  // {from, to} otherwise (an unknown stage is illegal too).
  Status (*check)(std::string_view from, std::string_view to);
  const std::string& initial() const { return stages.front(); }
};

const StageModel& interview_to_offer_stages();
// kickoff -> in_progress -> review -> done, and review -> in_progress.
const StageModel& thin_mission_stages();

// The typed error of a rejected transition: mission.illegal_transition with
// metadata {from, event} or {from, to}.
Error illegal_event(std::string_view from, std::string_view event);
Error illegal_stage(std::string_view from, std::string_view to);

}  // namespace anvil::growqr

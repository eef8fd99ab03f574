#include "actors/growqr/missions/mission_machine.hpp"

namespace anvil::growqr {
namespace {

constexpr std::array<std::pair<MissionStatus, std::string_view>, 5> kStatusNames{{
    {MissionStatus::not_started, "not_started"},
    {MissionStatus::active, "active"},
    {MissionStatus::paused, "paused"},
    {MissionStatus::completed, "completed"},
    {MissionStatus::abandoned, "abandoned"},
}};
constexpr std::array<std::pair<MissionEvent, std::string_view>, 5> kEventNames{{
    {MissionEvent::start, "start"},
    {MissionEvent::pause, "pause"},
    {MissionEvent::resume, "resume"},
    {MissionEvent::complete, "complete"},
    {MissionEvent::abandon, "abandon"},
}};
constexpr std::array<std::pair<InterviewStage, std::string_view>, 6> kStageNames{{
    {InterviewStage::discovery, "discovery"},
    {InterviewStage::preparation, "preparation"},
    {InterviewStage::practice, "practice"},
    {InterviewStage::interviewing, "interviewing"},
    {InterviewStage::negotiation, "negotiation"},
    {InterviewStage::offer, "offer"},
}};

template <typename E, size_t N>
std::string_view name_of(const std::array<std::pair<E, std::string_view>, N>& names, E e) {
  for (const auto& [k, v] : names)
    if (k == e) return v;
  return "unknown";
}
template <typename E, size_t N>
std::optional<E> parse_name(const std::array<std::pair<E, std::string_view>, N>& names, std::string_view s) {
  for (const auto& [k, v] : names)
    if (v == s) return k;
  return std::nullopt;
}

Status check_interview(std::string_view from, std::string_view to) {
  auto f = parse_interview_stage(from);
  auto t = parse_interview_stage(to);
  if (f && t)
    for (const auto& tr : kInterviewStageTransitions)
      if (tr.from == *f && tr.to == *t) return Ok{};
  return illegal_stage(from, to);
}

const std::vector<std::string> kThinStages = {"kickoff", "in_progress", "review", "done"};

Status check_thin(std::string_view from, std::string_view to) {
  auto index = [](std::string_view s) -> int {
    for (size_t i = 0; i < kThinStages.size(); ++i)
      if (kThinStages[i] == s) return static_cast<int>(i);
    return -1;
  };
  const int f = index(from), t = index(to);
  if (f >= 0 && t >= 0 && (t == f + 1 || (from == "review" && to == "in_progress"))) return Ok{};
  return illegal_stage(from, to);
}

}  // namespace

std::string_view to_string(MissionStatus s) { return name_of(kStatusNames, s); }
std::string_view to_string(MissionEvent e) { return name_of(kEventNames, e); }
std::string_view to_string(InterviewStage s) { return name_of(kStageNames, s); }
std::optional<MissionStatus> parse_mission_status(std::string_view s) { return parse_name(kStatusNames, s); }
std::optional<MissionEvent> parse_mission_event(std::string_view s) { return parse_name(kEventNames, s); }
std::optional<InterviewStage> parse_interview_stage(std::string_view s) { return parse_name(kStageNames, s); }

std::optional<MissionStatus> next_status(MissionStatus from, MissionEvent event) {
  for (const auto& t : kStatusTransitions)
    if (t.from == from && t.event == event) return t.to;
  return std::nullopt;
}

const StageModel& interview_to_offer_stages() {
  static const StageModel model = [] {
    StageModel m;
    for (const auto& [stage, name] : kStageNames) m.stages.emplace_back(name);
    m.final_stage = std::string(to_string(InterviewStage::offer));
    m.check = check_interview;
    return m;
  }();
  return model;
}

const StageModel& thin_mission_stages() {
  static const StageModel model{kThinStages, "done", check_thin};
  return model;
}

Error illegal_event(std::string_view from, std::string_view event) {
  return make_error("mission", "illegal_transition",
                    "A mission in status `" + std::string(from) + "` cannot `" + std::string(event) + "`.",
                    obj({{"from", std::string(from)}, {"event", std::string(event)}}));
}

Error illegal_stage(std::string_view from, std::string_view to) {
  return make_error("mission", "illegal_transition",
                    "A mission cannot move from stage `" + std::string(from) + "` to `" + std::string(to) + "`.",
                    obj({{"from", std::string(from)}, {"to", std::string(to)}}));
}

}  // namespace anvil::growqr

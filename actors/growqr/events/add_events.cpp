// add_events(app) with the one mission registry (missions/ implements
// find_mission_type). Kept apart from events.cpp so the events tests, which
// bring their own test registry, never need the missions library.
#include "actors/growqr/app.hpp"
#include "actors/growqr/events/events.hpp"

namespace anvil::growqr {

void add_events(AppDefinition& app) {
  EventsOptions opts;
  opts.resolve_mission = [](std::string_view type) { return find_mission_type(type); };
  add_events(app, std::move(opts));
}

}  // namespace anvil::growqr

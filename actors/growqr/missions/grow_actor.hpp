// growActor (key [userId]): the user's mission list and mission state control
// (seed 000). It creates and drives mission actors through the mission
// registry and keeps one entry per mission instance, fed by the missions'
// own pushes (missionChanged).
//
//   bootstrap()                          mirrors the user on first sight, reconciles
//                                        the list with grow_active_missions once per
//                                        wake, answers getActiveState()
//   getActiveState()                     {userId, missions: [...], active: [ids]}
//   startMission(type, missionInstanceId?)  unknown type -> mission.unknown_type;
//                                        without an id, an unfinished instance of the
//                                        type is returned, else "<type>-<seq>"
//   pauseMission(id) / resumeMission(id) mission.not_found, or
//                                        mission.illegal_transition checked against the
//                                        last known status; then the mission is driven
//   getMission(id)                       the entry (routes resolve the actor with it)
//   missionChanged(snapshot)             from mission actors
// Driving is asynchronous (ctx.call_actor has no awaitable form): the answer
// says what was requested; the mission's outcome arrives with missionChanged.
#pragma once

#include "runtime/actor_api.hpp"

namespace anvil::growqr {

ActorDefinition grow_actor();

}  // namespace anvil::growqr

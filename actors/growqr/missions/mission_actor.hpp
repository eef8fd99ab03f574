// Mission actors (key [userId, missionInstanceId]): one per mission instance,
// the owner of its lifecycle (MissionStatus) and stage. interview-to-offer
// has its own actor type and stage machine; the four thin types share one
// implementation registered under each type's actor name (mission registry).
//
// Actions (all answer the mission snapshot {userId, missionInstanceId, type,
// status, stage, version, data, artifacts, drift}):
//   start(input?)              not_started -> active, stage = the model's first
//   pause() / resume()         active <-> paused
//   applyStagePatch(patch)     {patchId | eventId | dedupeKey, stage?, data?}:
//                              idempotent per id (a repeated patch changes
//                              nothing and answers duplicate: true); needs
//                              status active; reaching the final stage
//                              completes the mission
//   addArtifact(artifact)      {key, kind?, content?, metadata?}: idempotent per key
//   getState()
// An illegal transition answers mission.illegal_transition {from, event|to}
// and leaves the state unchanged. Every change bumps `version` (persisted:
// it resumes at n+1 after a restart), is mirrored to grow_active_missions and
// pushed up to the user's growActor (missionChanged). The first action of
// every wake compares the actor with its row and heals drift (docs/growqr.md).
#pragma once

#include "actors/growqr/mission_registry.hpp"
#include "actors/growqr/missions/mission_machine.hpp"
#include "runtime/actor_api.hpp"

namespace anvil::growqr {

ActorDefinition interview_to_offer_mission();
// The shared thin implementation under `type.actor`.
ActorDefinition thin_mission(const MissionType& type);

}  // namespace anvil::growqr

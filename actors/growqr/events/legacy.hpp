// The legacy Redis observer (docs/growqr.md "Legacy observer"; seed 000
// l.125-131, seed 003's legacy Redis, D7). Product services that predate
// Grow Events leave two keys per task in Redis (the contract, as the seeds
// give no shapes):
//
//   tasks:<taskId>      JSON {userId, action, service?, missionInstanceId?,
//                       requestId?, ...}   written when the service takes the task
//   responses:<taskId>  JSON {status?: "completed"|"failed", result?, error?}
//                       written when it is done; it names no user or action
//
// The observer reads them without changing them (the services own the keys),
// records each task's context in Postgres (`legacy_tasks`) on first sight,
// and turns each response into one Grow Event through the one ingest path:
//   id         "legacy:<service>:<taskId>" (so its dedupe key; one event ever)
//   type       "<service>.<action>.<status>"
//   payload    {taskId, status, result, error, legacy: true}
//   serviceId, operation, requestId (or the task id), missionInstanceId from the task.
// A response whose task was never seen waits GROWQR_LEGACY_ORPHAN_MS and is
// then dead-lettered once (grow_events_dlq, stream "legacy:responses"); a task
// that shows up later still attributes it.
//
// Where: LEGACY_REDIS_URL, else the node's Redis; a service with its own
// <NAME>_REDIS_URL (INTERVIEW_REDIS_URL, ...) is observed there too, and its
// keys default to that service. When: LEGACY_REDIS_OBSERVERS=true|false;
// unset = on in development and test when Redis is configured, off in
// staging, demo and production (seed 003: "explicit flag"). Every
// GROWQR_LEGACY_POLL_MS (1000) the keys are listed with SCAN, so the cost is
// one pass over the key space per poll: fine for a migration bridge, not a
// substitute for the Grow Events stream.
#pragma once

#include <chrono>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/app_api.hpp"

namespace anvil::redis {
class Client;
}

namespace anvil::growqr {

struct LegacySource {
  std::string service;  // the keys' default service ("" = named by each task, else "legacy")
  std::string url;      // "" = the node's own Redis client
};

struct LegacyConfig {
  bool enabled = false;
  std::vector<LegacySource> sources;
  std::chrono::milliseconds poll{1'000};
  std::chrono::milliseconds orphan_after{300'000};
  size_t max_keys_per_poll = 10'000;
  // GROWQR_LEGACY_KEY_PREFIX: keys are <prefix>tasks:<id> (a Redis shared
  // with other tenants, tests).
  std::string key_prefix;
};

LegacyConfig legacy_config(const AppContext& app);

// What one source's observer remembers between polls (a restart forgets it:
// Postgres answers again).
struct LegacyState {
  std::set<std::string> tasks_recorded;    // context is in legacy_tasks
  std::set<std::string> responses_done;    // emitted or dead-lettered
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> orphans_seen;
};

struct LegacyPoll {
  int64_t tasks_recorded = 0, events_emitted = 0, dead_lettered = 0;
};

// One pass over `redis`'s tasks:* and responses:* keys.
Task<Result<LegacyPoll>> observe_legacy_once(AppContext& app, redis::Client& redis, const LegacySource& source,
                                             const LegacyConfig& cfg, LegacyState& state);

// Polls every source until app.stopping(); returns at once when disabled.
Task<Status> run_legacy_observer(AppContext& app, LegacyConfig cfg);

}  // namespace anvil::growqr

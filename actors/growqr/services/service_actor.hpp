// Service actors: the ONLY path from GrowQR to its product services (seed
// 000 lists them as registered while routes called clients directly; here
// routes and agents go through them). One implementation, registered under
// three names, each keyed by [userId]:
//
//   interviewService -> INTERVIEW_SERVICE_URL     roleplayService -> ROLEPLAY_SERVICE_URL
//   resumeService    -> RESUME_SERVICE_URL
//
// Actions (each takes one object):
//   configure({requestId, missionInstanceId?, config})       POST <url>/configure
//   createSession({requestId, missionInstanceId?, options})  POST <url>/sessions
//   review({requestId, missionInstanceId?, sessionId?, input}) POST <url>/review
//     -> {jobId, service, operation, status, result?, error?, attempts,
//         idempotencyKey, duplicate}
//   getJob(jobId) -> the same shape;  listJobs() -> [..] newest first
//
// Every call is a durable job. Its Idempotency-Key is derive_dedupe_key(
// requestId, userId, missionInstanceId, service, operation) (D2: the same
// rule as GrowEvents' dedupe key), sent on every attempt; a repeated request
// id returns the existing job without calling again. The first attempt runs
// inside the action; when the service is down (connect failure, timeout,
// 408/429/5xx) the job stays `pending` (the action answers it, it is not an
// error) and a durable schedule retries it with backoff
// (SERVICE_RETRY_BACKOFF_MS, default 1000, doubling to 60 s) up to
// SERVICE_JOB_MAX_ATTEMPTS (default 20) attempts, then `failed` (D15). A
// 4xx fails the job at once. A node killed mid-attempt finds the next
// attempt already scheduled (set before every attempt). Completion is
// broadcast as event `jobUpdated`.
#pragma once

#include <string>

#include "runtime/actor_api.hpp"
#include "runtime/app_api.hpp"

namespace anvil::growqr {

// "interview" -> interviewService, ...
ActorDefinition service_actor(const std::string& service);

}  // namespace anvil::growqr

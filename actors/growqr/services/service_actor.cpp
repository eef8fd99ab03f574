#include "actors/growqr/services/service_actor.hpp"

#include <algorithm>
#include <cctype>

#include <spdlog/spdlog.h>

#include "actors/growqr/app.hpp"
#include "actors/growqr/events/grow_event.hpp"
#include "actors/growqr/missions/app_util.hpp"
#include "base/value/json.hpp"

namespace anvil::growqr {
namespace {

using namespace std::chrono_literals;

constexpr size_t kMaxBody = 60 * 1024;
constexpr size_t kKeepJobs = 200;
constexpr int64_t kMaxBackoffMs = 60'000;

const std::string& user_of(const ActorContext& c) { return c.key().at(0); }
std::string service_of(const ActorContext& c) { return str_or(c.state(), "service"); }

std::string url_key(const std::string& service) {
  std::string k;
  for (char ch : service) k += ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return k + "_SERVICE_URL";
}

std::string path_of(const std::string& op) {
  if (op == "createSession") return "/sessions";
  return "/" + op;
}

Value job_view(const Value& job, bool duplicate) {
  Value out = obj({{"jobId", field_or_null(job, "jobId")},
                   {"service", field_or_null(job, "service")},
                   {"operation", field_or_null(job, "operation")},
                   {"status", field_or_null(job, "status")},
                   {"result", field_or_null(job, "result")},
                   {"error", field_or_null(job, "error")},
                   {"attempts", int_or(job, "attempts", 0)},
                   {"requestId", field_or_null(job, "requestId")},
                   {"missionInstanceId", field_or_null(job, "missionInstanceId")},
                   {"idempotencyKey", field_or_null(job, "idempotencyKey")},
                   {"duplicate", duplicate}});
  return out;
}

Value* find_job(ActorContext& c, const std::string& id) {
  Value& jobs = c.mutate_state()["jobs"];
  if (!jobs.is_object()) jobs = Object{};
  return jobs.find(id);
}

// Oldest finished jobs go once more than kKeepJobs are kept.
void trim_jobs(ActorContext& c) {
  Value& jobs = c.mutate_state()["jobs"];
  if (!jobs.is_object() || jobs.as_object().size() <= kKeepJobs) return;
  auto& o = jobs.as_object();
  for (auto it = o.begin(); it != o.end() && o.size() > kKeepJobs;) {
    if (str_or(it->second, "status") != "pending") {
      (void)c.kv_delete("job/" + it->first);
      it = o.erase(it);
    } else {
      ++it;
    }
  }
}

// One attempt of a job. Before calling, the next attempt is scheduled (a
// crash mid-call leaves it in place); the outcome replaces or cancels it.
Task<Value> attempt(ActorContext& c, std::string job_id) {
  Value* job = find_job(c, job_id);
  if (!job || str_or(*job, "status") != "pending") co_return job ? *job : Value();
  const std::string service = service_of(c), op = str_or(*job, "operation");
  const int64_t n = int_or(*job, "attempts", 0) + 1;
  const int64_t max_attempts = config_int(c, "SERVICE_JOB_MAX_ATTEMPTS", 20, 1, 10'000);
  const int64_t base = config_int(c, "SERVICE_RETRY_BACKOFF_MS", 1000, 1, 3'600'000);
  const int64_t backoff = std::min<int64_t>(kMaxBackoffMs, base << std::min<int64_t>(n - 1, 16));
  (*job)["attempts"] = n;
  (*job)["updatedAt"] = unix_ms();
  const std::string old_schedule = str_or(*job, "schedule");
  if (!old_schedule.empty()) (void)c.cancel_schedule(old_schedule);
  auto next = c.schedule_after(backoff + 15'000, "retryJob", {Value(job_id)});  // the safety net
  (*job)["schedule"] = next.ok() ? Value(*next) : Value("");
  const std::string key = str_or(*job, "idempotencyKey"), request_id = str_or(*job, "requestId");

  auto url = c.config(url_key(service));
  auto body = c.kv_get("job/" + job_id);
  Result<net::HttpResponse> res = make_error("service", "not_configured", url_key(service) + " is not set.");
  if (url && !url->empty() && body.ok() && body->has_value()) {
    net::HttpRequest req;
    req.method = "POST";
    req.url = *url + path_of(op);
    req.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
    req.body = **body;
    req.idempotency_key = key;
    req.request_id = request_id;
    req.total_timeout = 10s;
    req.retry.max_attempts = 2;
    req.retry.retry_budget = 12s;
    res = co_await c.http(std::move(req));
  }
  job = find_job(c, job_id);  // re-found: the state may have changed while waiting
  if (!job) co_return Value();
  const std::string schedule = str_or(*job, "schedule");
  if (res.ok()) {
    auto parsed = json::parse(res->body, false);
    (*job)["status"] = "completed";
    (*job)["result"] = parsed.ok() ? *parsed : Value(res->body);
    (*job)["error"] = Value();
  } else {
    const Error& e = res.error();
    const bool retry = (outbound_retryable(e) || e.qualified() == "service.not_configured") && n < max_attempts;
    (*job)["error"] = e.qualified() + ": " + e.message;
    if (retry) {
      // Sooner than the safety net: the backoff proper.
      if (!schedule.empty()) (void)c.cancel_schedule(schedule);
      auto soon = c.schedule_after(backoff, "retryJob", {Value(job_id)});
      (*job)["schedule"] = soon.ok() ? Value(*soon) : Value("");
      (*job)["nextAttemptAt"] = unix_ms() + backoff;
      spdlog::warn("service job pending userId={} service={} operation={} requestId={} idempotencyKey={} retryAttempt={} "
                   "backoffMs={} error={}",
                   user_of(c), service, op, request_id, key, n, backoff, e.message);
      co_return *job;
    }
    (*job)["status"] = "failed";
  }
  if (!schedule.empty()) (void)c.cancel_schedule(schedule);
  (*job)["schedule"] = "";
  (*job)["updatedAt"] = unix_ms();
  spdlog::info("service job {} userId={} service={} operation={} requestId={} idempotencyKey={} attempts={}",
               str_or(*job, "status"), user_of(c), service, op, request_id, key, n);
  Value done = *job;
  c.broadcast("jobUpdated", {job_view(done, false)});
  trim_jobs(c);
  co_return done;
}

Task<Result<Value>> submit(ActionContext& c, std::string op, Array args) {
  if (args.empty() || !args[0].is_object())
    co_return make_error("validation", "invalid_args", op + "({requestId, missionInstanceId?, ...}) takes one object.");
  Value req = args[0];
  const std::string request_id = str_or(req, "requestId");
  if (request_id.empty() || request_id.size() > 256)
    co_return make_error("validation", "invalid_args", op + " needs a requestId (the caller's stable request id).");
  const Value& mission = field_or_null(req, "missionInstanceId");
  const std::string service = service_of(c);
  const std::string key = derive_dedupe_key(request_id, user_of(c),
                                            mission.is_string() ? std::optional<std::string>(mission.as_string()) : std::nullopt,
                                            service, op);
  const std::string job_id = "job-" + key.substr(0, 24);
  if (Value* existing = find_job(c, job_id)) co_return job_view(*existing, true);

  Value body = req;
  std::erase_if(body.as_object(), [](const auto& f) { return f.first == "requestId" || f.first == "missionInstanceId"; });
  body["userId"] = user_of(c);
  body["requestId"] = request_id;
  if (mission.is_string()) body["missionInstanceId"] = mission;
  std::string text = json::dump(body);
  if (text.size() > kMaxBody) co_return make_error("validation", "too_large", "A service request holds at most 60 KiB.");
  if (auto st = c.kv_put("job/" + job_id, text); !st.ok()) co_return st.error();
  c.mutate_state()["jobs"][job_id] = obj({{"jobId", job_id},
                                          {"service", service},
                                          {"operation", op},
                                          {"status", "pending"},
                                          {"attempts", 0},
                                          {"requestId", request_id},
                                          {"missionInstanceId", mission.is_string() ? mission : Value()},
                                          {"idempotencyKey", key},
                                          {"createdAt", unix_ms()},
                                          {"schedule", ""}});
  Value out = co_await attempt(c, job_id);
  co_return job_view(out, false);
}

Task<Result<Value>> retry_job(ActionContext& c, Array args) {
  if (args.empty() || !args[0].is_string()) co_return Value();
  Value* job = find_job(c, args[0].as_string());
  if (!job) co_return Value();
  (*job)["schedule"] = "";  // the schedule that fired is gone
  const std::string job_id = args[0].as_string();
  Value out = co_await attempt(c, job_id);
  co_return job_view(out, false);
}

Result<Value> get_job(ActionContext& c, const Array& args) {
  if (args.empty() || !args[0].is_string()) return make_error("validation", "invalid_args", "getJob(jobId).");
  const Value& jobs = field_or_null(c.state(), "jobs");
  const Value* job = jobs.is_object() ? jobs.find(args[0].as_string()) : nullptr;
  if (!job) return make_error("service", "job_not_found", "No job `" + args[0].as_string() + "`.");
  return job_view(*job, false);
}

Result<Value> list_jobs(ActionContext& c, const Array&) {
  Array out;
  const Value& jobs = field_or_null(c.state(), "jobs");
  if (jobs.is_object())
    for (const auto& [_, job] : jobs.as_object()) out.push_back(job_view(job, false));
  std::reverse(out.begin(), out.end());
  return Value(std::move(out));
}

}  // namespace

ActorDefinition service_actor(const std::string& service) {
  ActorDefinition def(service + "Service");
  def.create_state([service](ActorContext& c, const Value&) -> Result<Value> {
       if (c.key().size() != 1 || c.key()[0].empty())
         return make_error("validation", "invalid_key", service + "Service's key is [userId].");
       return obj({{"service", service}, {"jobs", Object{}}});
     })
      .async_action("configure", [](ActionContext& c, Array args) { return submit(c, "configure", std::move(args)); })
      .async_action("createSession",
                    [](ActionContext& c, Array args) { return submit(c, "createSession", std::move(args)); })
      .async_action("review", [](ActionContext& c, Array args) { return submit(c, "review", std::move(args)); })
      .async_action("retryJob", retry_job)
      .action("getJob", get_job)
      .action("listJobs", list_jobs);
  return def;
}

void add_services(AppDefinition& app) {
  for (const char* s : {"interview", "roleplay", "resume"}) app.actor(service_actor(s));
  add_service_routes(app);
}

}  // namespace anvil::growqr

// The /events routes (docs/growqr.md "Events"): ingest, listing, replay and
// the dead-letter table. Routes validate, authenticate and translate; the
// durable progression belongs to userEventActor.
#include <spdlog/spdlog.h>

#include "actors/growqr/auth/auth.hpp"
#include "actors/growqr/events/events.hpp"
#include "actors/growqr/events/ingest.hpp"
#include "actors/growqr/events/log_fields.hpp"
#include "actors/growqr/events/routes.hpp"
#include "base/value/json.hpp"
#include "storage/pg/migrations.hpp"

namespace anvil::growqr {
namespace {

AppResponse bad_request(std::string field, std::string why) {
  return AppResponse::error(make_error("event", "invalid", "Invalid request: `" + field + "` " + why + ".",
                                       obj({{"field", field}})),
                            400);
}

Result<Value> json_body(const AppRequest& req) {
  if (req.body.empty()) return Value(Object{});
  auto v = json::parse(req.body, false);
  if (!v.ok() || !v->is_object())
    return make_error("event", "invalid", "Invalid request: the body is not a JSON object.",
                      obj({{"field", "(body)"}}));
  return v;
}

Result<int64_t> limit_param(const AppRequest& req, int64_t dflt, int64_t max) {
  auto l = req.query_param("limit");
  if (!l || l->empty()) return dflt;
  try {
    size_t used = 0;
    long long n = std::stoll(*l, &used);
    if (used != l->size() || n < 1) throw std::invalid_argument("limit");
    return std::min<int64_t>(n, max);
  } catch (const std::exception&) {
    return make_error("event", "invalid", "Invalid request: `limit` must be a positive integer.",
                      obj({{"field", "limit"}}));
  }
}

Task<AppResponse> post_event(AppContext& app, AppRequest req) {
  if (auto denied = check_service_token(app, req)) co_return *denied;
  auto body = json_body(req);
  if (!body.ok()) co_return AppResponse::error(body.error(), 400);
  auto ev = normalize_grow_event(*body);
  if (!ev.ok()) {
    LogFields f;
    f.request_id = req.request_id;
    spdlog::info("events: rejected invalid event: {} {}", ev.error().message, log_fields(f));
    co_return AppResponse::error(ev.error(), 400);
  }
  std::string source = "api";
  auto out = co_await ingest_event(app, std::move(*ev), std::move(source), req.request_id);
  if (!out.ok()) co_return AppResponse::error(out.error());
  co_return AppResponse::json(202, out->json());
}

Task<AppResponse> list_events(AppContext& app, AppRequest req) {
  if (auto denied = check_service_token(app, req)) co_return *denied;
  auto pool = events_pool(app);
  if (!pool.ok()) co_return AppResponse::error(pool.error());
  auto limit = limit_param(req, 50, 500);
  if (!limit.ok()) co_return AppResponse::error(limit.error(), 400);
  auto status = req.query_param("status");
  if (status && *status != kPending && *status != kProcessed && *status != kFailed && *status != kUnresolved)
    co_return bad_request("status", "must be pending, processed, failed or unresolved");
  auto user = req.query_param("userId");
  std::string sql = std::string("SELECT ") + kEventColumns +
                    " FROM grow_events WHERE ($1::text IS NULL OR processing_status = $1) "
                    "AND ($2::text IS NULL OR user_id = $2) ORDER BY received_at DESC, id LIMIT $3::int";
  Array params{status ? Value(*status) : Value(nullptr), user ? Value(*user) : Value(nullptr), Value(*limit)};
  auto rows = co_await (*pool)->query(std::move(sql), std::move(params));
  if (!rows.ok()) co_return AppResponse::error(rows.error());
  co_return AppResponse::json(200, obj({{"events", rows->rows}}));
}

Task<AppResponse> replay_events(AppContext& app, AppRequest req) {
  if (auto denied = check_service_token(app, req)) co_return *denied;
  auto pool = events_pool(app);
  if (!pool.ok()) co_return AppResponse::error(pool.error());
  auto body = json_body(req);
  if (!body.ok()) co_return AppResponse::error(body.error(), 400);
  const Value* status = body->find("status");
  if (!status || !status->is_string() || (status->as_string() != kFailed && status->as_string() != kUnresolved))
    co_return bad_request("status", "must be \"failed\" or \"unresolved\"");
  const Value* since = body->find("since");
  if (since && !since->is_nullish() && (!since->is_string() || !is_iso8601_instant(since->as_string())))
    co_return bad_request("since", "must be an ISO-8601 instant with a zone");
  const Value* dry = body->find("dryRun");
  if (dry && !dry->is_nullish() && !dry->is_bool()) co_return bad_request("dryRun", "must be a boolean");
  const bool dry_run = dry && dry->is_bool() && dry->as_bool();
  const Value* lim = body->find("limit");
  if (lim && !lim->is_nullish() && (!lim->is_int() || lim->as_int() < 1))
    co_return bad_request("limit", "must be a positive integer");
  const int64_t limit = lim && lim->is_int() ? std::min<int64_t>(lim->as_int(), 10'000) : 1'000;
  Value since_v = since && since->is_string() ? *since : Value(nullptr);

  std::string select =
      "SELECT id::text AS id, dedupe_key, user_id, type, mission_instance_id, mission_type, payload, event, "
      "occurred_at FROM grow_events WHERE processing_status = $1 "
      "AND ($2::timestamptz IS NULL OR received_at >= $2::timestamptz) ORDER BY received_at, id LIMIT $3::int";
  Array params{*status, since_v, Value(limit)};
  auto rows = co_await (*pool)->query(std::move(select), std::move(params));
  if (!rows.ok()) co_return AppResponse::error(rows.error());

  Array events;
  int64_t redriven = 0, errors = 0;
  for (const Value& row : rows->rows) {
    Value ev = event_of_row(row);
    Value item = obj({{"eventId", *ev.find("eventId")}, {"dedupeKey", *ev.find("dedupeKey")},
                      {"userId", *ev.find("userId")}});
    if (!dry_run) {
      // Claim the row first (a concurrent replay claims it once), then hand it
      // over; a failed hand-off leaves it `pending`, which the sweep re-hands.
      std::string claim =
          "UPDATE grow_events SET processing_status = 'pending' WHERE id = $1::uuid AND processing_status = $2 "
          "RETURNING id";
      Array claim_params{*ev.find("eventId"), *status};
      auto claimed = co_await (*pool)->query(std::move(claim), std::move(claim_params));
      if (!claimed.ok() || claimed->rows.empty()) {
        item["result"] = claimed.ok() ? "skipped" : "error";
        if (!claimed.ok()) ++errors;
        events.push_back(std::move(item));
        continue;
      }
      auto handed = co_await hand_to_user_actor(app, ev, true);
      if (handed.ok()) {
        ++redriven;
        item["result"] = "redriven";
      } else {
        ++errors;
        item["result"] = "error";
        item["error"] = handed.error().message;
      }
      spdlog::info("events: replay of a {} event: {} {}", status->as_string(), item["result"].as_string(),
                   event_log_fields(ev, ev.find("eventId")->as_string()));
    }
    events.push_back(std::move(item));
  }
  co_return AppResponse::json(dry_run ? 200 : 202,
                              obj({{"status", *status},
                                   {"since", since_v},
                                   {"dryRun", dry_run},
                                   {"matched", int64_t(rows->rows.size())},
                                   {"redriven", redriven},
                                   {"errors", errors},
                                   {"events", std::move(events)}}));
}

Task<AppResponse> list_dlq(AppContext& app, AppRequest req) {
  if (auto denied = check_service_token(app, req)) co_return *denied;
  auto pool = events_pool(app);
  if (!pool.ok()) co_return AppResponse::error(pool.error());
  auto limit = limit_param(req, 50, 500);
  if (!limit.ok()) co_return AppResponse::error(limit.error(), 400);
  auto since = req.query_param("since");
  if (since && !is_iso8601_instant(*since)) co_return bad_request("since", "must be an ISO-8601 instant with a zone");
  std::string sql = std::string("SELECT ") + kDlqColumns +
                    " FROM grow_events_dlq WHERE ($1::timestamptz IS NULL OR created_at >= $1::timestamptz) "
                    "ORDER BY id DESC LIMIT $2::int";
  Array params{since ? Value(*since) : Value(nullptr), Value(*limit)};
  auto rows = co_await (*pool)->query(std::move(sql), std::move(params));
  if (!rows.ok()) co_return AppResponse::error(rows.error());
  co_return AppResponse::json(200, obj({{"deadLetters", rows->rows}}));
}

Task<AppResponse> redrive_dlq(AppContext& app, AppRequest req) {
  if (auto denied = check_service_token(app, req)) co_return *denied;
  auto pool = events_pool(app);
  if (!pool.ok()) co_return AppResponse::error(pool.error());
  const std::string id = req.params["id"];
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos || id.size() > 18)
    co_return bad_request("id", "must be a dead letter id");
  auto body = json_body(req);
  if (!body.ok()) co_return AppResponse::error(body.error(), 400);
  std::string select = "SELECT id, stream, message_id, raw FROM grow_events_dlq WHERE id = $1::int8";
  Array params{id};
  auto rows = co_await (*pool)->query(std::move(select), std::move(params));
  if (!rows.ok()) co_return AppResponse::error(rows.error());
  if (rows->rows.empty())
    co_return AppResponse::error(make_error("events", "dlq_not_found", "No dead letter " + id + "."), 404);
  const Value& row = rows->rows[0];
  // The body's `event` replaces the stored one (a corrected event).
  Value event_json;
  if (const Value* fixed = body->find("event"); fixed && !fixed->is_nullish()) {
    event_json = *fixed;
  } else {
    auto parsed = json::parse(row.find("raw")->as_string(), false);
    if (!parsed.ok())
      co_return AppResponse::error(make_error("event", "invalid",
                                              "The dead letter's raw text is not JSON; send a corrected `event`.",
                                              obj({{"field", "event"}})),
                                   422);
    event_json = std::move(*parsed);
  }
  auto ev = normalize_grow_event(event_json);
  if (!ev.ok()) co_return AppResponse::error(ev.error(), 422);
  std::string source = "dlq:" + id;
  auto out = co_await ingest_event(app, std::move(*ev), std::move(source), req.request_id);
  if (!out.ok()) co_return AppResponse::error(out.error());
  std::string mark = "UPDATE grow_events_dlq SET redriven_at = now(), redrive_event_id = $2::uuid WHERE id = $1::int8";
  Array mark_params{id, out->event_id};
  auto marked = co_await (*pool)->query(std::move(mark), std::move(mark_params));
  if (!marked.ok()) co_return AppResponse::error(marked.error());
  Value res = out->json();
  res["dlqId"] = row.find("id")->as_int();
  co_return AppResponse::json(202, res);
}

}  // namespace

void add_event_routes(AppDefinition& app) {
  app.route("POST", "/events", post_event)
      .route("GET", "/events", list_events)
      .route("POST", "/events/replay", replay_events)
      .route("GET", "/events/dlq", list_dlq)
      .route("POST", "/events/dlq/:id/redrive", redrive_dlq);
}

}  // namespace anvil::growqr

#include "actors/growqr/missions/app_util.hpp"

#include <cctype>
#include <chrono>

#include "base/net/retry.hpp"
#include "base/value/json.hpp"
#include "storage/pg/migrations.hpp"

namespace anvil::growqr {

Result<Value> json_body(const AppRequest& req) {
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) return Value(Object{});
  auto v = json::parse(req.body, false);
  if (!v.ok()) return make_error("validation", "invalid_json", "The request body is not valid JSON.");
  if (!v->is_object()) return make_error("validation", "invalid_body", "The request body must be a JSON object.");
  return v;
}

AppResponse error_response(const Error& e) {
  int status = 0;
  const auto q = e.qualified();
  if (q == "auth.unauthenticated") status = 401;
  if (q == "mission.unknown_type" || q == "mission.not_found" || q == "workflow.run_not_found" ||
      q == "workflow.module_not_found" || q == "workflow.definition_not_found")
    status = 404;
  if (q == "mission.illegal_transition" || q == "mission.type_mismatch" || q == "workflow.module_already_run" ||
      q == "workflow.run_conflict")
    status = 409;
  if (q == "agent.chat_not_found" || q == "memory.not_found" || q == "conversation.not_found") status = 404;
  if (q == "agent.invalid_message" || q == "memory.invalid_path" || q == "conversation.invalid_message" ||
      q == "user.invalid_profile" ||
      q == "conversation.invalid_request")
    status = 400;
  if (q == "conversation.message_in_progress") status = 409;
  if (q == "workflow.service_not_configured" || q == "agent.llm_not_configured") status = 503;
  if (e.group == "llm" || q == "outbound.http_status" || q == "outbound.connect_failed") status = 502;
  if (q == "outbound.timeout") status = 504;
  return AppResponse::error(e, status);
}

bool outbound_retryable(const Error& e) {
  if (e.group != "outbound") return false;
  if (e.code == "connect_failed" || e.code == "timeout" || e.code == "connection_reset") return true;
  if (e.code == "http_status") return net::is_retryable_status(static_cast<int>(outbound_status(e)));
  return false;
}

int64_t outbound_status(const Error& e) {
  if (e.metadata)
    if (const Value* st = e.metadata->find("status"); st && st->is_int()) return st->as_int();
  return 0;
}

int64_t config_int(const ActorContext& c, std::string_view key, int64_t fallback, int64_t lo, int64_t hi) {
  auto v = c.config(key);
  if (!v || v->empty()) return fallback;
  try {
    size_t used = 0;
    const int64_t n = std::stoll(*v, &used);
    if (used == v->size() && n >= lo && n <= hi) return n;
  } catch (const std::exception&) {
  }
  return fallback;
}

std::string sha256_hex(std::string_view material) { return pg::sha256_hex(material); }

std::string derived_uuid(std::string_view material) {
  std::string h = sha256_hex(material).substr(0, 32);
  h[12] = '5';
  static const char* variant = "89ab";
  h[16] = variant[std::stoi(h.substr(16, 1), nullptr, 16) & 3];
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace anvil::growqr

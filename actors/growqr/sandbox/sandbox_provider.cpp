#include "actors/growqr/sandbox/sandbox_provider.hpp"

#include <spdlog/spdlog.h>

#include "actors/growqr/missions/app_util.hpp"
#include "actors/growqr/sandbox/docker_provider.hpp"
#include "actors/growqr/sandbox/process_provider.hpp"
#include "storage/pg/pool.hpp"

namespace anvil::growqr {
namespace {

// One OpenCode server for every user (development, tests). Nothing to start
// or stop: the operator runs it.
class StaticProvider final : public SandboxProvider {
 public:
  explicit StaticProvider(std::string url) : url_(std::move(url)) {}
  std::string name() const override { return "static"; }

  Task<Result<UserRuntime>> provision(ActorContext& c, std::string user_id) override {
    std::string running = "running", url = url_, none;
    auto st = co_await mirror_user_stack(c, user_id, running, url, none);
    if (!st.ok()) spdlog::warn("user_stacks not mirrored userId={}: {}", user_id, st.error().message);
    co_return UserRuntime{url_, "static", ""};
  }

  Task<Status> stop(ActorContext& c, std::string user_id) override {
    std::string stopped = "stopped", url = url_, none;
    co_return co_await mirror_user_stack(c, user_id, stopped, url, none);
  }

 private:
  std::string url_;
};

}  // namespace

Result<std::unique_ptr<SandboxProvider>> make_sandbox_provider(const ActorContext& c) {
  const std::string kind = c.config("SANDBOX_PROVIDER").value_or("static");
  if (kind == "static") {
    std::string url = c.config("OPENCODE_URL").value_or("");
    while (!url.empty() && url.back() == '/') url.pop_back();
    if (url.empty())
      return make_error("sandbox", "not_configured", "SANDBOX_PROVIDER=static needs OPENCODE_URL (the OpenCode server).");
    return std::unique_ptr<SandboxProvider>(std::make_unique<StaticProvider>(url));
  }
  if (kind == "process") {
    auto cfg = process_config_from(c);
    if (!cfg.ok()) return cfg.error();
    return std::unique_ptr<SandboxProvider>(make_process_provider(std::move(*cfg)));
  }
  if (kind == "docker") {
    auto cfg = docker_config_from(c);
    if (!cfg.ok()) return cfg.error();
    return std::unique_ptr<SandboxProvider>(make_docker_provider(*cfg));
  }
  return make_error("sandbox", "not_configured", "Unknown SANDBOX_PROVIDER `" + kind + "` (static, process or docker).");
}

std::vector<std::string> env_list(const std::string& csv) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < csv.size()) {
    auto end = csv.find(',', pos);
    if (end == std::string::npos) end = csv.size();
    if (end > pos) out.push_back(csv.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

int stable_port(const std::string& user_id, int start, int end, int probe) {
  if (start <= 0 || end < start) return 0;
  const uint64_t span = static_cast<uint64_t>(end - start + 1);
  const uint64_t h = std::stoull(sha256_hex(user_id).substr(0, 12), nullptr, 16);
  return start + static_cast<int>((h + static_cast<uint64_t>(probe)) % span);
}

Task<Status> mirror_user_stack(ActorContext& c, std::string user_id, std::string status, std::string opencode_url,
                               std::string last_error) {
  std::function<Result<Value>(pg::Tx&)> fn = [=](pg::Tx& tx) -> Result<Value> {
    auto u = tx.exec("INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING", {user_id});
    if (!u.ok()) return u.error();
    auto r = tx.exec(
        "INSERT INTO user_stacks (user_id, status, opencode_url, last_error) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (user_id) DO UPDATE SET status = EXCLUDED.status, opencode_url = EXCLUDED.opencode_url, "
        "last_error = EXCLUDED.last_error, updated_at = now()",
        {user_id, status, opencode_url, last_error.empty() ? Value() : Value(last_error)});
    if (!r.ok()) return r.error();
    return true;
  };
  auto r = co_await c.sql_transaction(std::move(fn));
  if (!r.ok()) {
    if (r.error().qualified() == "db.not_configured") co_return Ok{};
    co_return r.error();
  }
  co_return Ok{};
}

}  // namespace anvil::growqr

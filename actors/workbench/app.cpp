// The workbench application: its actor tree and its one route.
#include "actors/workbench/workbench.hpp"

#include "actors/workbench/common.hpp"

namespace anvil::workbench {

namespace {

// Outside development, sign-in must need the service token and webhooks
// their secret; the sandbox root must not be inside the data directory.
std::vector<std::string> check(const AppConfig& cfg) {
  std::vector<std::string> problems;
  auto get = [&](const char* k) -> std::string {
    auto it = cfg.find(k);
    return it == cfg.end() ? "" : it->second;
  };
  std::string env = get("APP_ENV");
  if (env.empty()) env = "development";
  if (env != "development" && env != "test") {
    if (get("WORKBENCH_SERVICE_TOKEN").size() < 16)
      problems.push_back("WORKBENCH_SERVICE_TOKEN (at least 16 bytes) is required outside development: without it "
                         "anyone could sign in as any user");
  }
  const std::string box = get("WORKBENCH_SANDBOX_DIR"), data = get("ANVIL_DATA_DIR");
  if (!box.empty() && !data.empty() && (box == data || box.rfind(data + "/", 0) == 0))
    problems.push_back("WORKBENCH_SANDBOX_DIR must be outside the data directory (the node stores no git state)");
  const std::string bwrap = get("WORKBENCH_SANDBOX_BWRAP");
  if (!bwrap.empty() && bwrap != "auto" && bwrap != "on" && bwrap != "off")
    problems.push_back("WORKBENCH_SANDBOX_BWRAP must be auto, on or off");
  return problems;
}

}  // namespace

AppDefinition app() {
  AppDefinition a("workbench");
  a.actor(organization_actor())
      .actor(history_actor())
      .actor(github_data_actor())
      .actor(auth_user_actor())
      .actor(repository_actor())
      .actor(task_actor())
      .actor(task_session_actor())
      .actor(session_status_sync_actor())
      .actor(sandbox_instance_actor())
      .validate(check);
  add_routes(a);
  return a;
}

}  // namespace anvil::workbench

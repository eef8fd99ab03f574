// POST /webhooks/github/:orgId: GitHub's webhook deliveries for one
// organization, handed with the raw body and signature to its githubData
// actor, which verifies and deduplicates them.
#include "actors/workbench/common.hpp"
#include "actors/workbench/workbench.hpp"

namespace anvil::workbench {
namespace {

Task<AppResponse> github_webhook(AppContext& c, AppRequest req) {
  const std::string org = req.params["orgId"];
  if (auto st = check_id("orgId", org); !st.ok()) co_return AppResponse::error(st.error(), 400);
  std::string name = "githubData";
  std::string action = "_handleWebhook";
  ActorKey key{org};
  Array args{obj({{"deliveryId", Value(req.header("x-github-delivery").value_or(""))},
                  {"event", Value(req.header("x-github-event").value_or(""))},
                  {"signature", Value(req.header("x-hub-signature-256").value_or(""))},
                  {"body", Value(std::move(req.body))}})};
  auto r = co_await c.actors().call(std::move(name), std::move(key), std::move(action), std::move(args));
  if (!r.ok()) {
    const Error& e = r.error();
    int status = 0;
    if (e.group == "auth") status = 401;
    else if (e.group == "workbench" && e.code == "not_found") status = 404;
    else if (e.group == "workbench" && e.code == "invalid_argument") status = 400;
    else if (e.group == "workbench" && e.code == "not_configured") status = 503;
    co_return AppResponse::error(e, status);
  }
  co_return AppResponse::json(200, *r);
}

}  // namespace

void add_routes(AppDefinition& app) { app.route("POST", "/webhooks/github/:orgId", github_webhook); }

}  // namespace anvil::workbench

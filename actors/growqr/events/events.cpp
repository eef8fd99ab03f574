#include "actors/growqr/events/events.hpp"

#include "actors/growqr/events/consumer.hpp"
#include "actors/growqr/events/routes.hpp"

namespace anvil::growqr {
namespace {

int64_t ms_config(const AppContext& app, std::string_view key, int64_t dflt) {
  auto v = app.config(key);
  if (!v || v->empty()) return dflt;
  try {
    return std::max<int64_t>(1, std::stoll(*v));
  } catch (const std::exception&) {
    return dflt;
  }
}

Task<Status> consumer_service(AppContext& app) { return run_consumer(app, consumer_config(app)); }

Task<Status> sweep_service(AppContext& app) {
  return run_pending_sweep(app, std::chrono::milliseconds(ms_config(app, "GROWQR_PENDING_SWEEP_MS", 30'000)),
                           std::chrono::milliseconds(ms_config(app, "GROWQR_PENDING_AGE_MS", 60'000)));
}

}  // namespace

void add_events(AppDefinition& app, EventsOptions opts) {
  app.actor(user_event_actor(std::move(opts)));
  add_event_routes(app);
  app.service("events-consumer", consumer_service);
  app.service("events-pending-sweep", sweep_service);
}

}  // namespace anvil::growqr

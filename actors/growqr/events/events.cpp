#include "actors/growqr/events/events.hpp"

#include "actors/growqr/events/consumer.hpp"
#include "actors/growqr/events/legacy.hpp"
#include "actors/growqr/events/routes.hpp"

namespace anvil::growqr {
namespace {

Task<Status> consumer_service(AppContext& app) { return run_consumer(app, consumer_config(app)); }

Task<Status> sweep_service(AppContext& app) {
  return run_pending_sweep(app, std::chrono::milliseconds(positive_config(app, "GROWQR_PENDING_SWEEP_MS", 30'000)),
                           std::chrono::milliseconds(positive_config(app, "GROWQR_PENDING_AGE_MS", 60'000)));
}

Task<Status> legacy_service(AppContext& app) { return run_legacy_observer(app, legacy_config(app)); }

}  // namespace

void add_events(AppDefinition& app, EventsOptions opts) {
  app.actor(user_event_actor(std::move(opts)));
  add_event_routes(app);
  app.service("events-consumer", consumer_service);
  app.service("events-pending-sweep", sweep_service);
  app.service("events-legacy-observer", legacy_service);
}

}  // namespace anvil::growqr

// The Redis stream consumer of Grow Events (docs/growqr.md "Events"): reads
// `grow:events` in group `anvil`, acknowledges an entry only once its event is
// recorded in Postgres (and handed to userEventActor) or dead-lettered
// (table grow_events_dlq AND stream `grow:events:dlq`).
#pragma once

#include <chrono>
#include <string>

#include "runtime/app_api.hpp"

namespace anvil::growqr {

struct ConsumerConfig {
  std::string stream = "grow:events";         // GROWQR_STREAM
  std::string group = "anvil";                // GROWQR_GROUP
  std::string dlq_stream = "grow:events:dlq";  // GROWQR_DLQ_STREAM
  std::string consumer;                       // GROWQR_CONSUMER, default <hostname>-<pid>
  int64_t max_deliveries = 5;                 // GROWQR_MAX_DELIVERIES
  std::chrono::milliseconds claim_idle{30'000};     // GROWQR_CLAIM_IDLE_MS
  std::chrono::milliseconds block{2'000};           // GROWQR_BLOCK_MS
  std::chrono::milliseconds retry_backoff{500};     // GROWQR_RETRY_BACKOFF_MS (doubling per delivery)
  std::chrono::milliseconds max_retry_backoff{30'000};
  size_t batch = 32;                                // GROWQR_BATCH
  // Test hook: after this many events recorded, return at once without
  // acknowledging the last one (what a SIGKILL between record and XACK leaves).
  int64_t stop_after_records_without_ack = -1;
};

// A positive integer config key, or `dflt` (a bad value is logged).
int64_t positive_config(const AppContext& app, std::string_view key, int64_t dflt);

// Sleeps `d` in short slices, returning early when the node stops.
Task<void> nap_unless_stopping(const AppContext& app, std::chrono::milliseconds d);

// The configuration from the app's config keys (defaults above).
ConsumerConfig consumer_config(const AppContext& app);

// Runs until app.stopping() (or the test hook fires). Without Redis it logs
// and returns at once.
Task<Status> run_consumer(AppContext& app, ConsumerConfig cfg);

// Re-hands `pending` rows older than `age` to userEventActor (a crash between
// the insert and the hand-off of an HTTP ingest leaves such a row); every
// `interval` until app.stopping(). GROWQR_PENDING_SWEEP_MS / GROWQR_PENDING_AGE_MS.
Task<Status> run_pending_sweep(AppContext& app, std::chrono::milliseconds interval, std::chrono::milliseconds age);
// One sweep; returns how many rows were re-handed.
Task<Result<int64_t>> sweep_pending_once(AppContext& app, std::chrono::milliseconds age);

}  // namespace anvil::growqr

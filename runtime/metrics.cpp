// Operator views of the node: Prometheus counters, an actor's workflow
// history and the admin actor listing/detail (runtime/inspect.hpp).
#include <unordered_set>

#include "runtime/core.hpp"
#include "runtime/instance.hpp"
#include "storage/pg/pool.hpp"
#include "storage/redis/client.hpp"

namespace anvil {

RuntimeMetrics::RuntimeMetrics()
    : actions(registry.counter("anvil_actions_total", "Actions answered, by actor type, action and outcome.",
                               {"name", "action", "outcome"})),
      action_seconds(registry.histogram("anvil_action_seconds",
                                        "Time an action's handler ran, from its start to its answer (before the "
                                        "commit).",
                                        {"name"}, metrics::latency_buckets())),
      errors(registry.counter("anvil_errors_total", "Errors actions answered with, by group and code.",
                              {"group", "code"})),
      sleeps(registry.counter("anvil_actor_sleeps_total", "Actors put to sleep, by actor type.", {"name"})),
      schedule_lag(registry.histogram("anvil_schedule_lag_seconds",
                                      "How late a schedule's action started after its due time.", {"name"},
                                      metrics::latency_buckets())),
      queue_depth(registry.gauge("anvil_queue_messages", "Messages waiting in the queues of awake actors, by type.",
                                 {"name"})),
      queue_messages(registry.counter("anvil_queue_messages_total",
                                      "Queue messages enqueued and processed, by actor type.", {"name", "event"})),
      actor_messages(registry.counter("anvil_actor_messages_total",
                                      "Actor-to-actor messages (call_actor, send_to) delivered, by outcome.",
                                      {"outcome"})) {}

void RuntimeMetrics::count_action(const std::string& actor, const std::string& action, bool known,
                                  const Status& outcome, double seconds) {
  actions.with({actor, known ? action : std::string(), outcome.ok() ? "ok" : "error"}).inc();
  if (known) action_seconds.with({actor}).observe(seconds);
  if (!outcome.ok()) errors.with({outcome.error().group, outcome.error().code}).inc();
}

void RuntimeCore::add_metrics_source(std::function<std::string()> source) {
  std::lock_guard lock(sources_mu_);
  metrics_sources_.push_back(std::move(source));
}

void RuntimeCore::register_storage_metrics() {
  stats.registry.callback(
      "anvil_storage_bytes",
      "Bytes RocksDB holds: kind=\"sst\" (live table files), \"memtable\" (not yet flushed), "
      "\"pending_compaction\" (estimated bytes compaction must still rewrite).",
      {"kind"}, [this] {
        const auto s = store_.stats();
        return metrics::GaugeRows{{{"sst"}, double(s.sst_bytes)},
                                  {{"memtable"}, double(s.memtable_bytes)},
                                  {{"pending_compaction"}, double(s.pending_compaction_bytes)}};
      });
  stats.registry.callback("anvil_storage_filesystem_bytes",
                          "The data directory's file system: kind=\"free\" (available to the node) or \"size\".",
                          {"kind"}, [this] {
                            const auto s = store_.stats();
                            return metrics::GaugeRows{{{"free"}, double(s.fs_free_bytes)},
                                                      {{"size"}, double(s.fs_total_bytes)}};
                          });
  stats.registry.callback("anvil_storage_compactions_running", "RocksDB compactions running now.", {}, [this] {
    return metrics::GaugeRows{{{}, double(store_.stats().running_compactions)}};
  });
  stats.registry.callback(
      "anvil_storage_write_stall",
      "RocksDB write stalls: kind=\"stopped\" is 1 while writes are stopped, kind=\"delayed_rate\" the "
      "throttled write rate in bytes/s (0 = not delayed).",
      {"kind"}, [this] {
        const auto s = store_.stats();
        return metrics::GaugeRows{{{"stopped"}, double(s.write_stopped)},
                                  {{"delayed_rate"}, double(s.delayed_write_rate)}};
      });
}

size_t RuntimeCore::awake_count() const {
  std::lock_guard lk(mu_);
  size_t n = 0;
  for (const auto& [_, e] : by_id_) n += e->instance != nullptr;
  return n;
}

size_t RuntimeCore::actor_count() const {
  // The directory lives in storage: RocksDB's key estimate of the actors
  // family (counting them would read every record).
  return store_.estimate_keys(storage::Family::kActors);
}

std::string RuntimeCore::metrics_text() const {
  std::string out;
  auto line = [&](const char* name, const char* help, const char* type, uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           std::to_string(v) + "\n";
  };
  line("anvil_actors", "Actors in the directory (awake or asleep; RocksDB's key estimate).", "gauge", actor_count());
  line("anvil_actors_awake", "Actors with an instance in memory.", "gauge", awake_count());
  const DirectoryStats dir = directory_stats();
  line("anvil_directory_cache_entries", "Directory entries in memory (awake, busy, or recently used actors).", "gauge",
       dir.resident);
  line("anvil_directory_cache_capacity", "Bound on the entries of idle sleeping actors kept in memory.", "gauge",
       dir.capacity);
  out += "# HELP anvil_directory_lookups_total Directory lookups, by whether the entry was in memory.\n"
         "# TYPE anvil_directory_lookups_total counter\n";
  out += "anvil_directory_lookups_total{result=\"hit\"} " + std::to_string(dir.hits) + "\n";
  out += "anvil_directory_lookups_total{result=\"miss\"} " + std::to_string(dir.misses) + "\n";
  line("anvil_directory_evictions_total", "Directory entries dropped from memory (read again from storage on use).",
       "counter", dir.evictions);
  line("anvil_commit_rounds_total", "Synced WAL writes (group-commit rounds).", "counter", pipeline_.rounds());
  line("anvil_commits_total", "Batches committed.", "counter", pipeline_.last_synced());
  line("anvil_storage_writable", "1 while the node accepts writes; 0 after a disk-full or disk error.", "gauge",
       pipeline_.health() == storage::CommitPipeline::Health::kWritable ? 1 : 0);
  out += "# HELP anvil_storage_errors_total Failed WAL writes, by kind (disk_full: ENOSPC; io_error: EIO and "
         "other failures).\n# TYPE anvil_storage_errors_total counter\n";
  out += "anvil_storage_errors_total{kind=\"disk_full\"} " + std::to_string(pipeline_.disk_full_errors()) + "\n";
  out += "anvil_storage_errors_total{kind=\"io_error\"} " + std::to_string(pipeline_.io_errors()) + "\n";
  line("anvil_storage_resumes_total", "Times writes resumed after the disk had room again.", "counter",
       pipeline_.resumes());
  line("anvil_workflow_step_reexecutions_total",
       "Workflow steps executed again by this process after an earlier execution of the same path.", "counter",
       workflow_reexecutions.load());
  out += "# HELP anvil_actor_wakes_total Actor instances started (created or woken from sleep), by actor type.\n"
         "# TYPE anvil_actor_wakes_total counter\n";
  for (const auto& [name, n] : wakes)
    out += "anvil_actor_wakes_total{name=\"" + name + "\"} " + std::to_string(n.load(std::memory_order_relaxed)) + "\n";
  out += stats.registry.text();
  out += pipeline_.metrics().text();
  {
    std::lock_guard lock(sources_mu_);
    for (const auto& source : metrics_sources_) out += source();
  }
  const Services services = this->services();
  if (services.http) out += services.http->metrics_text();
  if (services.pg) out += services.pg->metrics_text();
  if (services.redis) out += services.redis->metrics_text();
  return out;
}

std::string RuntimeCore::storage_state() const {
  switch (pipeline_.health()) {
    case storage::CommitPipeline::Health::kWritable:
      return "ok";
    case storage::CommitPipeline::Health::kDiskFull:
      return "disk_full";
    case storage::CommitPipeline::Health::kFailed:
      return "failed";
  }
  return "failed";
}

Result<Value> RuntimeCore::workflow_history(const std::string& actor_id) const {
  if (!find_by_id(actor_id)) return make_error("actor", "not_found", "The actor does not exist or was destroyed.");
  return inspect::workflow_history(store_, actor_id);
}

namespace {

// Awake = has an instance in the directory now. The set is taken before
// reading storage (never holding the directory lock across a store read).
inspect::AwakeFn awake_in(std::shared_ptr<const std::unordered_set<std::string>> ids) {
  return [ids = std::move(ids)](const storage::ActorRow& row) { return ids->count(row.actor_id) > 0; };
}

}  // namespace

uint64_t RuntimeCore::read_horizon() const {
  // While the storage refuses writes, the batches refused never reached
  // RocksDB: what a read sees is durable already, and waiting for the last
  // submitted (lost) batch would fail the read.
  if (pipeline_.health() != storage::CommitPipeline::Health::kWritable) return 0;
  return pipeline_.last_submitted();
}

std::shared_ptr<const std::unordered_set<std::string>> RuntimeCore::awake_ids() const {
  auto ids = std::make_shared<std::unordered_set<std::string>>();
  std::lock_guard lk(mu_);
  for (const auto& [id, e] : by_id_)
    if (e->instance) ids->insert(id);
  return ids;
}

Result<Pending<Value>> RuntimeCore::admin_actors(const inspect::ActorFilter& filter) const {
  auto page = inspect::list_actors(store_, filter, awake_in(awake_ids()));
  if (!page.ok()) return page.error();
  // Whatever the scan read was submitted before it ended.
  return Pending<Value>(std::move(*page), read_horizon());
}

Result<Pending<Value>> RuntimeCore::admin_actor(const std::string& actor_id, inspect::View view,
                                                const std::string& arg) const {
  auto detail = inspect::actor_view(store_, actor_id, view, arg, awake_in(awake_ids()));
  if (!detail.ok()) return detail.error();
  return Pending<Value>(std::move(*detail), read_horizon());
}

asio::awaitable<CallResult> RuntimeCore::admin_set_state(const std::string& actor_id, Value state) {
  // A turn like an action's: the state is replaced on the actor's strand,
  // onStateChange runs, and the reply waits for the commit.
  TurnBody body = [state = std::move(state)](Instance& inst) -> Result<Value> { return inst.replace_state(state); };
  co_return co_await turn(actor_id, std::move(body), true);
}

}  // namespace anvil

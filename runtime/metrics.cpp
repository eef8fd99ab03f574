// Operator views of the node: Prometheus counters, an actor's workflow
// history and the admin actor listing/detail (runtime/inspect.hpp).
#include <unordered_set>

#include "runtime/core.hpp"
#include "runtime/instance.hpp"
#include "storage/pg/pool.hpp"
#include "storage/redis/client.hpp"

namespace anvil {

size_t RuntimeCore::awake_count() const {
  std::lock_guard lk(mu_);
  size_t n = 0;
  for (const auto& [_, e] : by_id_) n += e->instance != nullptr;
  return n;
}

size_t RuntimeCore::actor_count() const {
  std::lock_guard lk(mu_);
  return by_id_.size();
}

std::string RuntimeCore::metrics_text() const {
  std::string out;
  auto line = [&](const char* name, const char* help, const char* type, uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           std::to_string(v) + "\n";
  };
  line("anvil_actors", "Actors in the directory (awake or asleep).", "gauge", actor_count());
  line("anvil_actors_awake", "Actors with an instance in memory.", "gauge", awake_count());
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

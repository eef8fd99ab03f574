// An instance under an operator's hand (the admin routes, `anvil actors`,
// the inspector routes): each operation is the body of one turn, so what it
// changes commits like an action's change and the reply waits for it.
#include "runtime/instance.hpp"

#include <algorithm>

#include "runtime/actor_db.hpp"
#include "runtime/instance_support.hpp"
#include "storage/records.hpp"

namespace anvil {
using namespace detail;

Value Instance::connections_view() const {
  Array out;
  for (const auto& c : entry_->conns) {
    Array subs;
    for (const auto& s : c->subscriptions) subs.emplace_back(s);
    out.push_back(obj({{"id", c->id},
                       {"params", c->params},
                       {"state", c->state},
                       {"subscriptions", Value(std::move(subs))},
                       {"ephemeral", c->ephemeral}}));
  }
  return Value(std::move(out));
}

Result<Value> Instance::operator_enqueue(std::string queue_name, Value body) {
  auto id = enqueue(std::move(queue_name), std::move(body), nullptr, /*any_name=*/true);
  if (!id.ok()) return id.error();
  const QueueMessage& m = queue_.back();
  // The id as a string, as rivetkit's inspector answers it (a u64).
  return obj({{"id", std::to_string(*id)}, {"name", m.name}, {"createdAtMs", m.created_at}});
}

Result<Value> Instance::purge_queue() {
  const int64_t n = static_cast<int64_t>(queue_.size());
  for (const auto& m : queue_) {
    rt_.store().del(batch(), storage::Family::kQueue, queue_key(actor_id, m.id));
    if (entry_->extras) entry_->extras->queue_waiters.erase(m.id);
  }
  queue_.clear();
  return obj({{"purged", n}});
}

Result<Value> Instance::cancel_schedule_now(const std::string& schedule_id) {
  auto r = cancel_schedule(schedule_id);
  if (!r.ok()) return r.error();
  return obj({{"cancelled", *r}});
}

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The records enclosing history path `p`: for "a~3/b/c", "a" (the loop
// whose iteration 3 holds it) and "a~3/b" (a join or race branch holder).
std::vector<std::string> enclosing(const std::string& p) {
  std::vector<std::string> out;
  for (size_t slash = p.find('/'); slash != std::string::npos; slash = p.find('/', slash + 1)) {
    std::string head = p.substr(0, slash);
    const size_t tilde = head.rfind('~');
    const size_t last = head.rfind('/');
    if (tilde != std::string::npos && (last == std::string::npos || tilde > last)) head.resize(tilde);
    out.push_back(std::move(head));
  }
  return out;
}

}  // namespace

Result<Value> Instance::replay_workflow(const std::optional<std::string>& from) {
  if (!def_.run_hook()) return make_error("actor", "workflow_not_enabled", "The actor has no run workflow.");
  auto& history = wfs().history;
  auto root = history.find("");
  if (root != history.end() && root->second.status != "completed" && root->second.status != "failed")
    return make_error("actor", "workflow_in_flight",
                      "Workflow replay is unavailable while the workflow is currently in flight.");
  std::vector<std::string> erase;
  if (!from || from->empty()) {
    for (const auto& [p, rec] : history) erase.push_back(p);
  } else {
    auto at = history.find(*from);
    if (at == history.end())
      return make_error("actor", "workflow_entry_not_found", "No workflow history entry `" + *from + "`.",
                        obj({{"entryId", *from}}));
    const int64_t since = at->second.started_ts;
    const auto parents = enclosing(*from);
    for (const auto& [p, rec] : history) {
      if (p.empty() || std::find(parents.begin(), parents.end(), p) != parents.end()) continue;
      if (p == *from || starts_with(p, *from + "/") || starts_with(p, *from + "~") || rec.started_ts >= since)
        erase.push_back(p);
    }
    // The enclosing entries that failed with it run again.
    for (const auto& p : parents) {
      auto it = history.find(p);
      if (it == history.end() || it->second.status != "failed") continue;
      WfRecord again = it->second;
      again.status = "running";
      again.error.clear();
      again.completed_ts = 0;
      wfs().write(p, std::move(again));
    }
    if (root != history.end()) {
      WfRecord again = root->second;
      again.status = "running";
      again.error.clear();
      again.completed_ts = 0;
      again.result = Value();
      wfs().write("", std::move(again));
    }
  }
  for (const auto& p : erase) {
    rt_.store().del(batch(), storage::Family::kWorkflow, actor_id + p);
    history.erase(p);
  }
  wfs().executed.clear();
  wf_finished_ = false;
  wf_requested_ = true;
  return obj({{"erased", static_cast<int64_t>(erase.size())}});
}

Result<Value> Instance::execute_sql(const std::string& sql, const Value& params) {
  if (!def_.database_options())
    return make_error("db", "not_enabled", "The actor type `" + name + "` declares no database.");
  Array positional = params.is_array() ? params.as_array() : Array{};
  if (params.is_object()) {
    auto d = database();
    if (!d.ok()) return d.error();
    auto bound = (*d)->bind_named(sql, params.as_object());
    if (!bound.ok()) return bound.error();
    positional = std::move(*bound);
  }
  auto rows = db_query(sql, positional);
  if (!rows.ok()) return rows.error();
  return obj({{"rows", Value(std::move(*rows))}});
}

}  // namespace anvil

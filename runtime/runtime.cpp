// The Runtime facade: every operation forwards to the runtime's core.
#include "runtime/runtime.hpp"

#include "runtime/core.hpp"

namespace anvil {

Runtime::Runtime(asio::io_context& io, storage::Store& store, storage::CommitPipeline& pipeline,
                 const Registry& registry)
    : core_(std::make_unique<RuntimeCore>(io, store, pipeline, registry)) {}
Runtime::~Runtime() = default;

Status Runtime::load() { return core_->load(); }
const Registry& Runtime::registry() const { return core_->registry(); }
void Runtime::set_services(Services s) { core_->set_services(s); }
Services Runtime::services() const { return core_->services(); }
asio::io_context& Runtime::io() { return core_->io(); }

Result<Resolved> Runtime::get_or_create(const CreateRequest& req, bool defer_commit) {
  return core_->get_or_create(req, defer_commit);
}
uint64_t Runtime::flush_create(const std::string& actor_id) { return core_->flush_create(actor_id); }
Result<Resolved> Runtime::create(const CreateRequest& req) { return core_->create(req); }
std::optional<ActorInfo> Runtime::find_by_key(const std::string& ns, const std::string& name,
                                              const ActorKey& key) const {
  return core_->find_by_key(ns, name, key);
}
std::optional<ActorInfo> Runtime::find_by_id(const std::string& id) const { return core_->find_by_id(id); }
bool Runtime::exists(const std::string& id) const { return core_->exists(id); }

Pending<std::vector<ActorInfo>> Runtime::list_by_name(const std::string& ns, const std::string& name) {
  return core_->list_by_name(ns, name);
}
Pending<std::vector<ActorInfo>> Runtime::list_by_key(const std::string& ns, const std::string& name,
                                                     const ActorKey& key) {
  return core_->list_by_key(ns, name, key);
}
Pending<ActorPage> Runtime::list_page(const std::string& ns, const std::string& name, const std::string& cursor,
                                     size_t limit) {
  return core_->list_page(ns, name, cursor, limit);
}
void Runtime::set_directory_cache(size_t entries) { core_->set_directory_cache(entries); }
Pending<std::vector<ActorInfo>> Runtime::list_by_ids(const std::vector<std::string>& ids) {
  return core_->list_by_ids(ids);
}

asio::awaitable<Status> Runtime::durable(uint64_t seq) { return core_->durable(seq); }

asio::awaitable<CallResult> Runtime::call_action(const std::string& actor_id, std::string action, Array args,
                                                 Value conn_params, std::string traceparent, std::string ray_id) {
  return core_->call_action(actor_id, std::move(action), std::move(args), std::move(conn_params), std::nullopt,
                            std::move(traceparent), std::move(ray_id));
}
asio::awaitable<CallResult> Runtime::guard_client(const std::string& actor_id, ClientRequest req) {
  return core_->guard_client(actor_id, std::move(req));
}
asio::awaitable<CallResult> Runtime::connect(const std::string& actor_id, Value params,
                                             std::shared_ptr<ConnSink> sink, std::string traceparent) {
  return core_->connect(actor_id, std::move(params), std::move(sink), std::move(traceparent));
}
asio::awaitable<PendingTurns> Runtime::conn_calls(const std::string& actor_id, const std::string& conn_id,
                                                  std::vector<ConnCall> calls) {
  return core_->conn_calls(actor_id, conn_id, std::move(calls));
}
asio::awaitable<DurableTurns> Runtime::finish(PendingTurns turns) { return core_->finish(std::move(turns)); }
asio::awaitable<CallResult> Runtime::settle(AsyncCall call) { return core_->settle(std::move(call)); }
asio::awaitable<void> Runtime::disconnect(const std::string& actor_id, const std::string& conn_id) {
  return core_->disconnect(actor_id, conn_id);
}
asio::awaitable<Result<QueueSendOutcome>> Runtime::queue_send(const std::string& actor_id, std::string name,
                                                              Value body, bool wait, uint64_t timeout_ms) {
  return core_->queue_send(actor_id, std::move(name), std::move(body), wait, timeout_ms);
}
asio::awaitable<CallResult> Runtime::raw_ws_open(const std::string& actor_id, RawRequest req,
                                                 std::shared_ptr<RawWebSocket> socket) {
  return core_->raw_ws_open(actor_id, std::move(req), std::move(socket));
}
asio::awaitable<void> Runtime::raw_ws_message(const std::string& actor_id, uint64_t handle, WsMessage msg) {
  return core_->raw_ws_message(actor_id, handle, std::move(msg));
}
asio::awaitable<void> Runtime::raw_ws_closed(const std::string& actor_id, uint64_t handle, uint16_t code,
                                             std::string reason) {
  return core_->raw_ws_closed(actor_id, handle, code, std::move(reason));
}
asio::awaitable<Result<RawResponse>> Runtime::raw_request(const std::string& actor_id, RawRequest req) {
  return core_->raw_request(actor_id, std::move(req));
}
asio::awaitable<Status> Runtime::destroy(const std::string& actor_id) { return core_->destroy(actor_id); }
asio::awaitable<void> Runtime::shutdown() { return core_->shutdown(); }
asio::awaitable<Status> Runtime::replace_local(const std::string& actor_id, std::vector<StoredRow> rows) {
  return core_->replace_local(actor_id, std::move(rows));
}
void Runtime::resume_background(const std::string& actor_id) { core_->resume_background(actor_id); }
std::optional<int64_t> Runtime::next_alarm(const std::string& actor_id) const { return core_->next_alarm(actor_id); }
void Runtime::set_host_hooks(HostHooks hooks) { core_->host_hooks = std::move(hooks); }
asio::awaitable<Status> Runtime::sleep(const std::string& actor_id) { return core_->sleep_actor(actor_id); }

Result<Value> Runtime::workflow_history(const std::string& actor_id) const {
  return core_->workflow_history(actor_id);
}
Result<Pending<Value>> Runtime::admin_actors(const inspect::ActorFilter& filter) const {
  return core_->admin_actors(filter);
}
Result<Pending<Value>> Runtime::admin_actor(const std::string& actor_id, inspect::View view,
                                            const std::string& arg) const {
  return core_->admin_actor(actor_id, view, arg);
}
asio::awaitable<CallResult> Runtime::admin_set_state(const std::string& actor_id, Value state) {
  return core_->admin_set_state(actor_id, std::move(state));
}
asio::awaitable<CallResult> Runtime::watch(const std::string& actor_id, std::weak_ptr<ActorWatcher> watcher) {
  return core_->watch(actor_id, std::move(watcher));
}
asio::awaitable<CallResult> Runtime::admin_operate(const std::string& actor_id, AdminOp op) {
  return core_->admin_operate(actor_id, std::move(op));
}
std::optional<std::string> Runtime::inspector_token(const std::string& actor_id) const {
  return core_->inspector_token(actor_id);
}
std::string Runtime::metrics_text() const { return core_->metrics_text(); }
void Runtime::add_metrics_source(std::function<std::string()> source) {
  core_->add_metrics_source(std::move(source));
}
std::string Runtime::storage_state() const { return core_->storage_state(); }
size_t Runtime::awake_count() const { return core_->awake_count(); }
size_t Runtime::actor_count() const { return core_->actor_count(); }

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace anvil

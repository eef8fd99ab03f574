#include "storage/records.hpp"

#include <algorithm>

#include <cstring>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include "schemas/anvil.capnp.h"

namespace anvil::storage {
namespace {

std::string to_bytes(capnp::MessageBuilder& msg) {
  auto words = capnp::messageToFlatArray(msg);
  auto bytes = words.asBytes();
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

// Cap'n Proto reads from word-aligned memory; RocksDB values are not aligned.
kj::Array<capnp::word> aligned_copy(std::string_view bytes) {
  auto words = kj::heapArray<capnp::word>((bytes.size() + sizeof(capnp::word) - 1) / sizeof(capnp::word));
  std::memset(words.begin(), 0, words.size() * sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  return words;
}

kj::ArrayPtr<const kj::byte> as_data(const std::string& s) {
  return kj::ArrayPtr<const kj::byte>(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

std::string from_data(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

Error corrupt(const char* what, const kj::Exception& e) {
  return make_error("storage", "corrupt_record",
                    std::string(what) + ": " + e.getDescription().cStr());
}

}  // namespace

std::string encode(const ActorRow& r) {
  capnp::MallocMessageBuilder msg;
  auto b = msg.initRoot<schema::ActorRecord>();
  b.setActorId(r.actor_id);
  b.setName(r.name);
  b.setKey(r.key);
  b.setNamespace(r.namespace_name);
  b.setRunnerNameSelector(r.runner_name_selector);
  b.setCrashPolicy(r.crash_policy);
  b.setCreateTs(r.create_ts);
  b.setHasInput(r.has_input);
  b.setInput(as_data(r.input));
  b.setGeneration(r.generation);
  b.setDatacenter(r.datacenter);
  b.setStartTs(r.start_ts);
  b.setSleepTs(r.sleep_ts);
  b.setInspectorToken(r.inspector_token);
  return to_bytes(msg);
}

std::string encode(const StateRow& r) {
  capnp::MallocMessageBuilder msg;
  auto b = msg.initRoot<schema::StateRecord>();
  b.setGeneration(r.generation);
  b.setState(as_data(r.state));
  b.setInitialized(r.initialized);
  return to_bytes(msg);
}

Result<ActorRow> decode_actor_row(std::string_view bytes) {
  try {
    auto words = aligned_copy(bytes);
    capnp::FlatArrayMessageReader reader(words);
    auto rec = reader.getRoot<schema::ActorRecord>();
    ActorRow r;
    r.actor_id = rec.getActorId();
    r.name = rec.getName();
    r.key = rec.getKey();
    r.namespace_name = rec.getNamespace();
    r.runner_name_selector = rec.getRunnerNameSelector();
    r.crash_policy = rec.getCrashPolicy();
    r.create_ts = rec.getCreateTs();
    r.has_input = rec.getHasInput();
    r.input = from_data(rec.getInput());
    r.generation = rec.getGeneration();
    r.datacenter = rec.getDatacenter();
    r.start_ts = rec.getStartTs();
    r.sleep_ts = rec.getSleepTs();
    r.inspector_token = rec.getInspectorToken();
    return r;
  } catch (const kj::Exception& e) {
    return corrupt("actor record", e);
  }
}

Result<StateRow> decode_state_row(std::string_view bytes) {
  try {
    auto words = aligned_copy(bytes);
    capnp::FlatArrayMessageReader reader(words);
    auto rec = reader.getRoot<schema::StateRecord>();
    StateRow r;
    r.generation = rec.getGeneration();
    r.state = from_data(rec.getState());
    r.initialized = rec.getInitialized();
    return r;
  } catch (const kj::Exception& e) {
    return corrupt("state record", e);
  }
}

std::string encode(const WorkflowRow& r) {
  capnp::MallocMessageBuilder msg;
  auto b = msg.initRoot<schema::WorkflowRecord>();
  b.setPath(r.path);
  b.setKind(r.kind);
  b.setStatus(r.status);
  b.setResult(as_data(r.result));
  b.setAttempts(r.attempts);
  b.setStartedTs(r.started_ts);
  b.setCompletedTs(r.completed_ts);
  b.setError(r.error);
  b.setIteration(r.iteration);
  b.setWakeTs(r.wake_ts);
  return to_bytes(msg);
}

Result<WorkflowRow> decode_workflow_row(std::string_view bytes) {
  try {
    auto words = aligned_copy(bytes);
    capnp::FlatArrayMessageReader reader(words);
    auto rec = reader.getRoot<schema::WorkflowRecord>();
    WorkflowRow r;
    r.path = rec.getPath();
    r.kind = rec.getKind();
    r.status = rec.getStatus();
    r.result = from_data(rec.getResult());
    r.attempts = rec.getAttempts();
    r.started_ts = rec.getStartedTs();
    r.completed_ts = rec.getCompletedTs();
    r.error = rec.getError();
    r.iteration = rec.getIteration();
    r.wake_ts = rec.getWakeTs();
    return r;
  } catch (const kj::Exception& e) {
    return corrupt("workflow record", e);
  }
}

std::string encode(const QueueRow& r) {
  capnp::MallocMessageBuilder msg;
  auto b = msg.initRoot<schema::QueueRecord>();
  b.setId(r.id);
  b.setName(r.name);
  b.setBody(as_data(r.body));
  b.setCreatedTs(r.created_ts);
  return to_bytes(msg);
}

std::string encode(const ScheduleRow& r) {
  capnp::MallocMessageBuilder msg;
  auto b = msg.initRoot<schema::ScheduleRecord>();
  b.setId(r.id);
  b.setAction(r.action);
  b.setArgs(as_data(r.args));
  b.setDueTs(r.due_ts);
  b.setCreatedTs(r.created_ts);
  b.setIntervalMs(r.interval_ms);
  b.setName(r.name);
  return to_bytes(msg);
}

Result<QueueRow> decode_queue_row(std::string_view bytes) {
  try {
    auto words = aligned_copy(bytes);
    capnp::FlatArrayMessageReader reader(words);
    auto rec = reader.getRoot<schema::QueueRecord>();
    return QueueRow{rec.getId(), rec.getName(), from_data(rec.getBody()), rec.getCreatedTs()};
  } catch (const kj::Exception& e) {
    return corrupt("queue record", e);
  }
}

Result<ScheduleRow> decode_schedule_row(std::string_view bytes) {
  try {
    auto words = aligned_copy(bytes);
    capnp::FlatArrayMessageReader reader(words);
    auto rec = reader.getRoot<schema::ScheduleRecord>();
    return ScheduleRow{rec.getId(),     rec.getAction(),     from_data(rec.getArgs()), rec.getDueTs(),
                       rec.getCreatedTs(), rec.getIntervalMs(), rec.getName()};
  } catch (const kj::Exception& e) {
    return corrupt("schedule record", e);
  }
}

std::string due_key(int64_t due_ts, std::string_view actor_id, std::string_view schedule_id) {
  std::string k(8, '\0');
  const uint64_t t = static_cast<uint64_t>(std::max<int64_t>(due_ts, 0));
  for (int i = 0; i < 8; ++i) k[i] = static_cast<char>((t >> (56 - 8 * i)) & 0xff);
  k.append(actor_id);
  k.append(schedule_id);
  return k;
}

bool parse_due_key(std::string_view key, size_t actor_id_length, DueEntry& out) {
  if (key.size() <= 8 + actor_id_length) return false;
  uint64_t t = 0;
  for (int i = 0; i < 8; ++i) t = (t << 8) | static_cast<unsigned char>(key[i]);
  out.due_ts = static_cast<int64_t>(t);
  out.actor_id.assign(key.substr(8, actor_id_length));
  out.schedule_id.assign(key.substr(8 + actor_id_length));
  return true;
}

}  // namespace anvil::storage

// Turns: running bodies on an actor's strand (run_turns), opening their
// results once durable (finish, settle), and applying what they left to do
// (TurnEffects) only after that.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "base/log/log.hpp"
#include "runtime/core.hpp"
#include "runtime/instance.hpp"

namespace anvil {
namespace {

Error not_found() { return make_error("actor", "not_found", "The actor does not exist or was destroyed."); }

// How often a caller is re-routed to a fresh instance when the one it found
// stopped (slept or failed) before running its action.
constexpr int kMaxRoutingAttempts = 8;

template <typename T>
void append(std::vector<T>& to, std::vector<T>& from) {
  if (to.empty()) {
    to.swap(from);
    return;
  }
  for (auto& x : from) to.push_back(std::move(x));
  from.clear();
}

}  // namespace

TurnEffects::TurnEffects() = default;
TurnEffects::TurnEffects(TurnEffects&&) noexcept = default;
TurnEffects& TurnEffects::operator=(TurnEffects&&) noexcept = default;
TurnEffects::~TurnEffects() = default;

bool TurnEffects::empty() const { return alarms.empty() && outbox.empty() && !drain && !workflow; }

void TurnEffects::merge(TurnEffects&& later) {
  seq = std::max(seq, later.seq);
  drain = drain || later.drain;
  workflow = workflow || later.workflow;
  append(alarms, later.alarms);
  append(outbox, later.outbox);
}

AsyncCall DurableTurns::take_async(size_t i) {
  AsyncCall call;
  call.outcome_ = std::move(slots_[i].async);
  call.actor_ = std::move(slots_[i].result.actor);
  return call;
}

asio::awaitable<Status> RuntimeCore::durable(uint64_t seq) {
  // Already synced (reads, or a write whose round finished): no hand-off.
  if (seq == 0 || pipeline_.synced_at_least(seq)) co_return Ok{};
  Status st = co_await pipeline_.async_wait(seq, asio::use_awaitable);
  if (!st.ok()) spdlog::error("commit {} failed: {}", seq, st.error().qualified());
  co_return st;  // storage.disk_full or storage.io_error: the write was not saved
}

asio::awaitable<CallResult> RuntimeCore::turn(const std::string& actor_id, TurnBody body, bool want_info) {
  std::vector<TurnBody> bodies;
  bodies.push_back(std::move(body));
  PendingTurns pending = co_await run_turns(actor_id, std::move(bodies), want_info);
  DurableTurns done = co_await finish(std::move(pending));
  if (done.is_async(0)) {
    AsyncCall call = done.take_async(0);
    co_return co_await settle(std::move(call));
  }
  co_return std::move(done.result(0));
}

asio::awaitable<PendingTurns> RuntimeCore::run_turns(const std::string& actor_id, std::vector<TurnBody> bodies,
                                                     bool want_info) {
  // What one visit of the actor's strand did: turns [from, next) ran.
  struct Visit {
    std::vector<detail::TurnSlot> slots;
    size_t next = 0;
    TurnEffects effects;
  };
  PendingTurns batch;
  batch.slots_.reserve(bodies.size());
  size_t done = 0;
  bool gone = false, closing = false;
  // Attempts count visits that made no progress (the instance stopped
  // before running anything); a visit cut short by an async call is progress.
  for (int attempt = 0; attempt < kMaxRoutingAttempts && done < bodies.size();) {
    if (closing_.load(std::memory_order_acquire)) {
      closing = true;
      break;
    }
    std::shared_ptr<ActorEntry> entry;
    auto inst = acquire(actor_id, &entry);
    if (!inst) {
      gone = true;
      break;
    }
    if (inst->fresh() && !entry->never_started.load()) {
      // Waking: the previous generation's last writes must be readable. A
      // write that was lost (failed, or refused after a failure) never will
      // be: storage already holds all there is, so the actor wakes from it.
      const uint64_t last = entry->last_seq.load();
      if (auto st = co_await durable(last); !st.ok() && !pipeline_.lost(last)) {
        while (batch.slots_.size() < bodies.size())
          batch.slots_.push_back(detail::TurnSlot{CallResult{st.error(), std::nullopt}, nullptr});
        co_return batch;
      }
    }
    // The strand side is plain synchronous code run by run_on(); no lambda
    // coroutine and no temporary lives across this co_await (GCC 12
    // miscompiles captured temporaries in co_await expressions). Each body
    // is its own turn, back to back; an instance that stops midway (sleep,
    // destroy, a failed start) leaves the rest for a fresh one.
    std::function<Visit()> work = [this, inst, entry, &bodies, done, want_info]() {
      // Lines logged while the turns run name the actor (--log-format json).
      log::Scope logging(log::Context{entry->info.actor_id, entry->info.name, {}, {}, {}});
      Visit v;
      v.next = done;
      for (; v.next < bodies.size(); ++v.next) {
        auto started = inst->begin_turn();
        if (!started) break;  // stopped: route the rest to a fresh instance
        detail::TurnSlot s;
        if (!started->ok()) {
          s.result.actor = info_of(entry);
          s.result.output = started->error();
        } else {
          s.result.output = bodies[v.next](*inst);
          s.async = inst->take_started_call();
          if (auto discarded = inst->end_turn()) {
            s.result.output = std::move(*discarded);
            // The async call (if any) still runs and ends aborted; nobody waits for it.
            s.async.reset();
          }
          if (want_info || !s.result.output.ok()) s.result.actor = info_of(entry);
        }
        // An async call's first turn is queued on the strand: later bodies
        // run after it, in a new visit, so they see what it did first.
        const bool yield_to_async = s.async != nullptr;
        v.slots.push_back(std::move(s));
        v.effects.merge(inst->take_effects());  // a failed first start still commits the create
        if (!started->ok() || yield_to_async) {
          ++v.next;
          break;
        }
      }
      return v;
    };
    Visit v = co_await run_on(inst->strand(), std::move(work));
    for (auto& s : v.slots) batch.slots_.push_back(std::move(s));
    batch.effects_.merge(std::move(v.effects));
    batch.entry_ = std::move(entry);
    if (v.next > done)
      attempt = 0;
    else
      ++attempt;
    done = v.next;
  }
  if (done < bodies.size()) {
    // Gone (never existed, destroyed, type not hosted) or kept stopping.
    Error e = closing ? make_error("actor", "stopping", "The node is shutting down; retry later.")
              : gone  ? not_found()
                      : make_error("actor", "stopping", "The actor kept stopping; retry later.");
    while (batch.slots_.size() < bodies.size())
      batch.slots_.push_back(detail::TurnSlot{CallResult{e, std::nullopt}, nullptr});
  }
  co_return batch;
}

asio::awaitable<DurableTurns> RuntimeCore::finish(PendingTurns turns) {
  DurableTurns out;
  out.slots_ = std::move(turns.slots_);
  if (auto st = co_await durable(turns.effects_.seq); !st.ok()) {
    for (auto& s : out.slots_) s.result.output = st.error();
    co_return out;
  }
  if (turns.entry_) apply(turns.entry_->info.actor_id, turns.effects_);
  co_return out;
}

void RuntimeCore::apply(const std::string& actor_id, TurnEffects& fx) {
  for (const auto& a : fx.alarms) arm_alarm(actor_id, a);
  if (fx.drain) schedule_drain(actor_id);
  if (fx.workflow) schedule_workflow(actor_id);
  for (auto& m : fx.outbox) dispatch(std::move(m));
  fx.outbox.clear();
}

asio::awaitable<CallResult> RuntimeCore::settle(AsyncCall call) {
  CallResult r;
  r.actor = std::move(call.actor_);
  if (!call.outcome_) {  // not an async call: nothing to wait for
    r.output = internal_error();
    co_return r;
  }
  AsyncOutcome outcome = co_await call.outcome_->wait();
  if (Status st = co_await durable(outcome.seq); !st.ok())
    r.output = st.error();
  else
    r.output = std::move(outcome.output);
  co_return r;
}

asio::awaitable<void> RuntimeCore::apply_when_durable(std::string actor_id, TurnEffects fx) {
  if (auto st = co_await durable(fx.seq); !st.ok()) co_return;  // durable() logged the failure
  apply(actor_id, fx);
}

void RuntimeCore::apply_after_durable(const std::string& actor_id, TurnEffects effects) {
  asio::co_spawn(io_, apply_when_durable(actor_id, std::move(effects)), asio::detached);
}

}  // namespace anvil

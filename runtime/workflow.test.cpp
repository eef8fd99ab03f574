// Workflow primitives on a real RocksDB: replay, loops, queue receive,
// durable sleep, retries, divergence, restart.
#include <filesystem>
#include <future>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "runtime/runtime.hpp"
#include "runtime/test_node.hpp"

using namespace anvil;

namespace {

using anvil::testing::Node;

std::string temp_dir(const std::string& name) { return anvil::testing::temp_dir("wf-" + name); }

Value& counter(ActorContext& c, const char* field) {
  Value& v = c.mutate_state()[field];
  if (!v.is_int()) v = 0;
  return v;
}

Result<Value> get_field(ActionContext& c, const char* field) {
  const Value* v = c.state().find(field);
  return v ? *v : Value();
}

// A workflow with observable step executions: `runs` counts how often the
// step body actually ran (process-wide), `state.done` what it recorded.
struct Probe {
  std::atomic<int> step_runs{0};
  std::atomic<int> failures_left{0};
};

ActorDefinition steps_actor(std::shared_ptr<Probe> probe) {
  ActorDefinition def("steps");
  def.initial_state(obj({{"done", Array{}}}))
      .queue("go")
      .run([probe](Workflow& wf) -> Result<Value> {
        auto a = wf.step("a", [&]() -> Result<Value> {
          probe->step_runs++;
          wf.actor().mutate_state()["done"].as_array().emplace_back("a");
          return 1;
        });
        if (!a.ok()) return a.error();
        // Waits for a message: the workflow suspends and replays later.
        auto msg = wf.queue_next("wait", {"go"});
        if (!msg.ok()) return msg.error();
        auto b = wf.step("b", [&]() -> Result<Value> {
          probe->step_runs++;
          if (probe->failures_left > 0) {
            probe->failures_left--;
            wf.actor().mutate_state()["done"].as_array().emplace_back("b-failed-attempt");  // rolled back
            return user_error("transient", "transient");
          }
          wf.actor().mutate_state()["done"].as_array().emplace_back(msg->body);
          return a->as_int() + 1;
        }, StepOptions{3, std::chrono::milliseconds(20), {}});
        if (!b.ok()) return b.error();
        if (auto st = wf.sleep("nap", std::chrono::milliseconds(50)); !st.ok()) return st.error();
        wf.actor().mutate_state()["finished"] = *b;
        return *b;
      })
      .action("done", [](ActionContext& c, const Array&) { return get_field(c, "done"); })
      .action("finished", [](ActionContext& c, const Array&) { return get_field(c, "finished"); })
      .action("sleep", [](ActionContext& c, const Array&) -> Result<Value> {
        c.sleep();
        return true;
      });
  return def;
}

}  // namespace

TEST(Workflow, StepsRunOnceAndTheWorkflowResumesWhenAMessageArrives) {
  auto dir = temp_dir("resume");
  auto probe = std::make_shared<Probe>();
  Registry reg;
  reg.add(steps_actor(probe));
  Node n(dir, reg);
  auto id = n.get_or_create("steps");
  EXPECT_EQ(n.wait_for(id, "done", [](const Value& v) { return v.as_array().size() == 1; }), arr({"a"}));
  EXPECT_TRUE(n.call(id, "finished")->is_null());  // waiting on the queue
  n.send(id, "go", "msg");
  EXPECT_EQ(n.wait_for(id, "finished", [](const Value& v) { return !v.is_null(); }), Value(2));
  EXPECT_EQ(*n.call(id, "done"), arr({"a", "msg"}));
  EXPECT_EQ(probe->step_runs, 2);  // replays never re-ran step a
  std::filesystem::remove_all(dir);
}

TEST(Workflow, AFailingStepIsRetriedWithItsStateChangesRolledBack) {
  auto dir = temp_dir("retry");
  auto probe = std::make_shared<Probe>();
  probe->failures_left = 2;
  Registry reg;
  reg.add(steps_actor(probe));
  Node n(dir, reg);
  auto id = n.get_or_create("steps");
  n.send(id, "go", "m");
  EXPECT_EQ(n.wait_for(id, "finished", [](const Value& v) { return !v.is_null(); }), Value(2));
  EXPECT_EQ(*n.call(id, "done"), arr({"a", "m"}));  // no trace of the failed attempts
  EXPECT_EQ(probe->step_runs, 4);                   // a once, b three times
  auto history = n.rt().workflow_history(id);
  ASSERT_TRUE(history.ok());
  bool found = false;
  for (const auto& rec : history->as_array())
    if (rec.find("path")->as_string() == "b") {
      found = true;
      EXPECT_EQ(rec.find("attempts")->as_int(), 3);
      EXPECT_EQ(rec.find("status")->as_string(), "completed");
    }
  EXPECT_TRUE(found);
  std::filesystem::remove_all(dir);
}

TEST(Workflow, ReplayAfterRestartNeverReExecutesACompletedStep) {
  auto dir = temp_dir("restart");
  auto probe = std::make_shared<Probe>();
  Registry reg;
  reg.add(steps_actor(probe));
  std::string id;
  {
    Node n(dir, reg);
    id = n.get_or_create("steps");
    n.wait_for(id, "done", [](const Value& v) { return v.as_array().size() == 1; });
  }
  EXPECT_EQ(probe->step_runs, 1);
  Node n(dir, reg);  // the running workflow resumes by itself
  n.send(id, "go", "after-restart");
  EXPECT_EQ(n.wait_for(id, "finished", [](const Value& v) { return !v.is_null(); }), Value(2));
  EXPECT_EQ(*n.call(id, "done"), arr({"a", "after-restart"}));
  EXPECT_EQ(probe->step_runs, 2);
  std::filesystem::remove_all(dir);
}

TEST(Workflow, ADurableSleepWakesASleepingActor) {
  auto dir = temp_dir("sleep");
  auto probe = std::make_shared<Probe>();
  Registry reg;
  reg.add(steps_actor(probe));
  Node n(dir, reg);
  auto id = n.get_or_create("steps");
  n.send(id, "go", "m");
  n.wait_for(id, "done", [](const Value& v) { return v.as_array().size() == 2; });
  ASSERT_TRUE(n.call(id, "sleep").ok());  // during the 50 ms nap
  EXPECT_EQ(n.wait_for(id, "finished", [](const Value& v) { return !v.is_null(); }), Value(2));
  std::filesystem::remove_all(dir);
}

TEST(Workflow, LoopsRecordIterationsAndPruneOldHistory) {
  auto dir = temp_dir("loop");
  Registry reg;
  ActorDefinition def("looper");
  def.initial_state(obj({{"n", 0}}))
      .queue("q")
      .run([](Workflow& wf) -> Result<Value> {
        return wf.loop("l", [](Workflow& it) -> Result<LoopResult> {
          auto m = it.queue_next("recv", {"q"});
          if (!m.ok()) return m.error();
          if (m->body == Value("stop")) return LoopResult::finish("stopped");
          auto s = it.step("add", [&]() -> Result<Value> {
            Value& n = counter(it.actor(), "n");
            n = n.as_int() + m->body.as_int();
            return n;
          });
          if (!s.ok()) return s.error();
          return LoopResult::next();
        }, /*history_size=*/3);
      })
      .action("n", [](ActionContext& c, const Array&) { return get_field(c, "n"); });
  reg.add(def);
  Node n(dir, reg);
  auto id = n.get_or_create("looper");
  for (int i = 1; i <= 10; ++i) n.send(id, "q", i);
  EXPECT_EQ(n.wait_for(id, "n", [](const Value& v) { return v == Value(55); }), Value(55));
  auto history = n.rt().workflow_history(id);
  ASSERT_TRUE(history.ok());
  int iteration_records = 0;
  for (const auto& rec : history->as_array()) {
    const auto& path = rec.find("path")->as_string();
    if (path.rfind("l~", 0) == 0) ++iteration_records;
    if (path == "l") {
      EXPECT_EQ(rec.find("iteration")->as_int(), 10);
    }
  }
  EXPECT_LE(iteration_records, 2 * 4);  // at most history_size (+1) iterations x 2 records
  n.send(id, "q", "stop");
  bool done = false;
  for (int i = 0; i < 200 && !done; ++i) {
    auto h = n.rt().workflow_history(id);  // keep the result alive for the loop
    for (const auto& rec : h->as_array())
      if (rec.find("path")->as_string().empty() && rec.find("status")->as_string() == "completed") done = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(done);
  std::filesystem::remove_all(dir);
}

TEST(Workflow, HistoryThatDisagreesWithTheCodeFailsTheRunWithAClearError) {
  auto dir = temp_dir("diverge");
  auto version = std::make_shared<std::atomic<int>>(1);
  Registry reg;
  ActorDefinition def("versioned");
  def.queue("q").run([version](Workflow& wf) -> Result<Value> {
    if (*version == 1) {
      auto s = wf.step("x", []() -> Result<Value> { return 1; });
      if (!s.ok()) return s.error();
    } else {
      auto m = wf.queue_next("x", {"q"});  // same name, different kind
      if (!m.ok()) return m.error();
    }
    auto m = wf.queue_next("wait", {"q"});
    if (!m.ok()) return m.error();
    return true;
  });
  reg.add(def);
  std::string id;
  {
    Node n(dir, reg);
    id = n.get_or_create("versioned");
    for (int i = 0; i < 100; ++i) {
      auto h = n.rt().workflow_history(id);
      if (h.ok() && h->as_array().size() >= 2) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  *version = 2;
  Node n(dir, reg);
  std::string error;
  for (int i = 0; i < 200 && error.empty(); ++i) {
    auto h = n.rt().workflow_history(id);
    for (const auto& rec : h->as_array())
      if (rec.find("path")->as_string().empty() && rec.find("status")->as_string() == "failed")
        error = rec.find("error")->as_string();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(error.find("workflow.history_divergent"), std::string::npos) << error << " history: " << debug_string(*n.rt().workflow_history(id));
  std::filesystem::remove_all(dir);
}

TEST(Workflow, JoinWaitsForEveryBranchAndRaceTakesTheFirstToFinish) {
  auto dir = temp_dir("join-race");
  Registry reg;
  ActorDefinition def("branches");
  def.initial_state(obj({{"joined", Value()}, {"raced", Value()}}))
      .queue("a")
      .queue("b")
      .run([](Workflow& wf) -> Result<Value> {
        auto wait_for = [](const char* q) {
          return [q](Workflow& w) -> Result<Value> {
            auto m = w.queue_next("recv", {q});
            if (!m.ok()) return m.error();
            return m->body;
          };
        };
        auto joined = wf.join("both", {{"a", wait_for("a")}, {"b", wait_for("b")}});
        if (!joined.ok()) return joined.error();
        auto rec = wf.step("record-join", [&]() -> Result<Value> {
          wf.actor().mutate_state()["joined"] = *joined;
          return true;
        });
        if (!rec.ok()) return rec.error();
        auto raced = wf.race("first", {{"a", wait_for("a")}, {"b", wait_for("b")}});
        if (!raced.ok()) return raced.error();
        auto rec2 = wf.step("record-race", [&]() -> Result<Value> {
          wf.actor().mutate_state()["raced"] = *raced;
          return true;
        });
        if (!rec2.ok()) return rec2.error();
        return true;
      })
      .action("get", [](ActionContext& c, const Array&) -> Result<Value> { return c.state(); });
  reg.add(def);
  Node n(dir, reg);
  auto id = n.get_or_create("branches");
  n.send(id, "b", "b1");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(n.call(id, "get")->find("joined")->is_null());  // still waiting for branch a
  n.send(id, "a", "a1");
  auto joined = n.wait_for(id, "get", [](const Value& v) { return !v.find("joined")->is_null(); });
  EXPECT_EQ(*joined.find("joined"), obj({{"a", "a1"}, {"b", "b1"}}));
  n.send(id, "b", "b2");
  auto raced = n.wait_for(id, "get", [](const Value& v) { return !v.find("raced")->is_null(); });
  EXPECT_EQ(*raced.find("raced"), obj({{"winner", "b"}, {"value", "b2"}}));
  std::filesystem::remove_all(dir);
}

TEST(Workflow, AFailedRunCompensatesCompletedStepsInReverseOrder) {
  auto dir = temp_dir("rollback");
  Registry reg;
  ActorDefinition def("saga");
  def.initial_state(obj({{"log", Array{}}}))
      .run([](Workflow& wf) -> Result<Value> {
        auto log = [&wf](const char* s) { wf.actor().mutate_state()["log"].as_array().emplace_back(s); };
        if (auto st = wf.rollback_checkpoint("start"); !st.ok()) return st.error();
        StepOptions reserve;
        reserve.rollback = [](ActorContext& c, const Value&) -> Status {
          c.mutate_state()["log"].as_array().emplace_back("undo-reserve");
          return Ok{};
        };
        auto a = wf.step("reserve", [&]() -> Result<Value> { log("reserve"); return 1; }, reserve);
        if (!a.ok()) return a.error();
        StepOptions charge;
        charge.rollback = [](ActorContext& c, const Value&) -> Status {
          c.mutate_state()["log"].as_array().emplace_back("undo-charge");
          return Ok{};
        };
        auto b = wf.step("charge", [&]() -> Result<Value> { log("charge"); return 2; }, charge);
        if (!b.ok()) return b.error();
        StepOptions once;
        once.max_attempts = 1;
        auto c = wf.step("ship", [&]() -> Result<Value> { return user_error("no stock", "no_stock"); }, once);
        if (!c.ok()) return c.error();
        return true;
      })
      .action("log", [](ActionContext& c, const Array&) -> Result<Value> { return *c.state().find("log"); });
  reg.add(def);
  Node n(dir, reg);
  auto id = n.get_or_create("saga");
  auto log = n.wait_for(id, "log", [](const Value& v) { return v.as_array().size() >= 4; });
  EXPECT_EQ(log, arr({"reserve", "charge", "undo-charge", "undo-reserve"}));
  std::string status;
  auto h = n.rt().workflow_history(id);
  for (const auto& rec : h->as_array())
    if (rec.find("path")->as_string().empty()) status = rec.find("status")->as_string();
  EXPECT_EQ(status, "failed");
  std::filesystem::remove_all(dir);
}

TEST(Workflow, GetVersionGivesNewRunsTheLatestAndInFlightRunsVersionOne) {
  auto dir = temp_dir("version");
  auto with_gate = std::make_shared<std::atomic<bool>>(false);
  Registry reg;
  ActorDefinition def("gated");
  def.initial_state(obj({{"v", Value()}}))
      .queue("go")
      .run([with_gate](Workflow& wf) -> Result<Value> {
        auto s = wf.step("first", []() -> Result<Value> { return 1; });
        if (!s.ok()) return s.error();
        int64_t v = 1;
        if (*with_gate) v = wf.get_version("gate", 2);  // added while a run was in flight
        auto m = wf.queue_next("wait", {"go"});
        if (!m.ok()) return m.error();
        auto rec = wf.step("record", [&]() -> Result<Value> {
          wf.actor().mutate_state()["v"] = v;
          return true;
        });
        if (!rec.ok()) return rec.error();
        return true;
      })
      .action("v", [](ActionContext& c, const Array&) -> Result<Value> { return *c.state().find("v"); });
  reg.add(def);
  std::string old_run;
  {
    Node n(dir, reg);
    old_run = n.get_or_create("gated");
    for (int i = 0; i < 100; ++i) {
      auto h = n.rt().workflow_history(old_run);
      if (h.ok() && h->as_array().size() >= 2) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  *with_gate = true;
  Node n(dir, reg);
  CreateRequest cr;
  cr.name = "gated";
  cr.key = {"fresh"};
  auto fresh = n.rt().get_or_create(cr);
  ASSERT_TRUE(fresh.ok());
  ASSERT_TRUE(n.run(n.rt().durable(fresh->seq)).ok());
  // In-flight run: its history already ran past the gate's position? No:
  // it is waiting at "wait", after where the gate now stands, so it gets 1.
  n.send(old_run, "go", 1);
  n.send(fresh->info.actor_id, "go", 1);
  EXPECT_EQ(n.wait_for(old_run, "v", [](const Value& v) { return !v.is_null(); }), Value(1));
  EXPECT_EQ(n.wait_for(fresh->info.actor_id, "v", [](const Value& v) { return !v.is_null(); }), Value(2));
  std::filesystem::remove_all(dir);
}

TEST(Workflow, RemovedSatisfiesADeletedEntryWhileAnUnvisitedOneIsDivergent) {
  auto dir = temp_dir("removed");
  auto version = std::make_shared<std::atomic<int>>(1);
  Registry reg;
  ActorDefinition def("evolving");
  def.queue("go").run([version](Workflow& wf) -> Result<Value> {
    if (*version == 1) {
      auto s = wf.step("old", []() -> Result<Value> { return 1; });
      if (!s.ok()) return s.error();
    } else if (*version == 2) {
      wf.removed("old", "step");
    }  // version 3 forgets the entry entirely
    auto m = wf.queue_next("wait", {"go"});
    if (!m.ok()) return m.error();
    return true;
  });
  reg.add(def);
  auto root_status = [](Node& n, const std::string& id) {
    auto h = n.rt().workflow_history(id);
    for (const auto& rec : h->as_array())
      if (rec.find("path")->as_string().empty())
        return rec.find("status")->as_string() + " " + (rec.find("error") ? rec.find("error")->as_string() : "");
    return std::string();
  };
  std::string a, b;
  {
    Node n(dir, reg);
    a = n.get_or_create("evolving");
    CreateRequest cr;
    cr.name = "evolving";
    cr.key = {"b"};
    b = n.rt().get_or_create(cr)->info.actor_id;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  *version = 2;
  {
    Node n(dir, reg);
    n.send(a, "go", 1);
    std::string st;
    for (int i = 0; i < 200 && st.rfind("completed", 0) != 0; ++i) {
      st = root_status(n, a);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(st.substr(0, 9), "completed") << st;
  }
  *version = 3;
  Node n(dir, reg);
  n.send(b, "go", 1);
  std::string st;
  for (int i = 0; i < 200 && st.rfind("failed", 0) != 0; ++i) {
    st = root_status(n, b);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(st.find("was not visited"), std::string::npos) << st;
  std::filesystem::remove_all(dir);
}

TEST(Workflow, LoopStateCarriesAcrossIterationsAndRestarts) {
  auto dir = temp_dir("loop-state");
  Registry reg;
  ActorDefinition def("summer");
  def.initial_state(obj({{"total", Value()}}))
      .queue("q")
      .run([](Workflow& wf) -> Result<Value> {
        auto total = wf.loop("sum", Value(0), [](Workflow& it, const Value& acc) -> Result<LoopResult> {
          auto m = it.queue_next("recv", {"q"});
          if (!m.ok()) return m.error();
          if (m->body.is_string()) return LoopResult::finish(acc);
          return LoopResult::next(acc.as_int() + m->body.as_int());
        });
        if (!total.ok()) return total.error();
        auto rec = wf.step("record", [&]() -> Result<Value> {
          wf.actor().mutate_state()["total"] = *total;
          return true;
        });
        if (!rec.ok()) return rec.error();
        return *total;
      })
      .action("total", [](ActionContext& c, const Array&) -> Result<Value> { return *c.state().find("total"); });
  reg.add(def);
  std::string id;
  {
    Node n(dir, reg);
    id = n.get_or_create("summer");
    for (int i = 1; i <= 4; ++i) n.send(id, "q", i);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  Node n(dir, reg);  // the loop resumes with its persisted state (10)
  n.send(id, "q", 5);
  n.send(id, "q", "done");
  EXPECT_EQ(n.wait_for(id, "total", [](const Value& v) { return !v.is_null(); }), Value(15));
  std::filesystem::remove_all(dir);
}

TEST(Workflow, QueueNextForTimesOutAndCompleteAnswersAWaitingSender) {
  auto dir = temp_dir("next-for");
  Registry reg;
  ActorDefinition def("answering");
  def.initial_state(obj({{"timedOut", false}}))
      .queue("q")
      .run([](Workflow& wf) -> Result<Value> {
        auto first = wf.queue_next_for("maybe", {"q"}, std::chrono::milliseconds(100));
        if (!first.ok()) return first.error();
        if (!*first) {
          auto rec = wf.step("note-timeout", [&]() -> Result<Value> {
            wf.actor().mutate_state()["timedOut"] = true;
            return true;
          });
          if (!rec.ok()) return rec.error();
        }
        auto m = wf.queue_next("ask", {"q"});
        if (!m.ok()) return m.error();
        wf.complete(*m, obj({{"answer", m->body.as_int() * 2}}));
        return true;
      })
      .action("timedOut", [](ActionContext& c, const Array&) -> Result<Value> { return *c.state().find("timedOut"); });
  reg.add(def);
  Node n(dir, reg);
  auto id = n.get_or_create("answering");
  EXPECT_EQ(n.wait_for(id, "timedOut", [](const Value& v) { return v == Value(true); }), Value(true));
  auto out = n.run(n.rt().queue_send(id, "q", Value(21), /*wait=*/true, 5000));
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(out->status, "completed");
  ASSERT_TRUE(out->response.has_value());
  EXPECT_EQ(*out->response, obj({{"answer", 42}}));
  std::filesystem::remove_all(dir);
}

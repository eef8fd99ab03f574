// Test support for the GrowQR mission and workflow-run parts: a private
// Postgres schema with the growqr migrations, an in-process node (real
// RocksDB) hosting the parts' actors with the pool and the outbound client,
// and an AppHost to call the routes. stop_node() drops the node like kill -9;
// start_node() brings up a new one on the same data directory.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "actors/growqr/app.hpp"
#include "anvil_migrations/growqr.hpp"
#include "base/value/json.hpp"
#include "runtime/app_host.hpp"
#include "runtime/test_node.hpp"
#include "storage/pg/migrations.hpp"
#include "storage/pg/test_db.hpp"

namespace anvil::growqr::testing {

// The whole application (its services are not started by these tests).
inline AppDefinition& parts_app() {
  static AppDefinition app = growqr::app();
  return app;
}

inline const Registry& parts_registry() {
  static const Registry reg = [] {
    Registry r;
    for (const auto& d : parts_app().actors()) r.add(d);
    return r;
  }();
  return reg;
}

struct HttpResult {
  int status = 0;
  Value body;
  std::string raw;
  double seconds = 0;
};

class GrowqrTest : public pg::testing::SchemaTest {
 protected:
  void SetUp() override {
    SchemaTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    pool_ = make_pool(4);
    auto st = pg::apply_migrations(*pool_, "growqr", pg::embedded::growqr());
    ASSERT_TRUE(st.ok()) << st.error().message;
    dir_ = anvil::testing::temp_dir("growqr-" + schema_);
    start_node();
  }
  void TearDown() override {
    stop_node();
    pool_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    SchemaTest::TearDown();
  }

  void start_node() {
    if (!pool_) pool_ = make_pool(4);
    node_ = std::make_unique<anvil::testing::Node>(dir_, *registry_);
    node_->enable_http();
    Services s = node_->rt().services();
    s.pg = pool_.get();
    // What actors and routes read (ctx.config, AppContext::config): the
    // test's own map, so a test may also change it after start_node.
    s.config = live_config_;
    node_->rt().set_services(s);
    host_ = std::make_unique<AppHost>(node_->rt(), std::map<std::string, std::string>(config_.begin(), config_.end()));
    host_->add(parts_app());
  }
  // Like kill -9: nothing is flushed or stopped gracefully. The node's pool
  // dies with it (a new one comes with start_node): statements still in
  // flight complete into the halted node, never into a destroyed one.
  void stop_node() {
    host_.reset();
    if (node_) node_->halt();
    pool_.reset();
    node_.reset();
  }

  HttpResult request(const std::string& method, const std::string& target, const std::string& body = "",
                     std::vector<std::pair<std::string, std::string>> headers = {}) {
    AppRequest req;
    req.method = method;
    auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = target.substr(q + 1);
    req.headers = std::move(headers);
    req.body = body;
    req.request_id = "req-test";
    const auto t0 = std::chrono::steady_clock::now();
    auto res = node_->run(host_->handle(std::move(req)));
    HttpResult out;
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!res) return out;  // no route: status 0
    out.status = res->status;
    out.raw = res->body;
    auto parsed = json::parse(res->body, false);
    if (parsed.ok()) out.body = *parsed;
    return out;
  }

  // Calls an action on an actor (get-or-create), as another actor or a route would.
  Result<Value> call(const std::string& name, ActorKey key, const std::string& action, Array args = {}) {
    auto id = node_->get_or_create(name, std::move(key));
    return node_->call(id, action, std::move(args));
  }

  Array rows(const std::string& sql, Array params = {}) {
    if (!pool_) pool_ = make_pool(4);  // between stop_node() and start_node()
    auto r = pg::query_sync(*pool_, sql, std::move(params));
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r->rows : Array{};
  }
  int64_t count(const std::string& sql, Array params = {}) {
    auto r = rows(sql, std::move(params));
    return r.empty() ? -1 : r[0].find("n")->as_int();
  }

  // Polls `pred` for up to `timeout`; true when it held.
  static bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
  }

  std::shared_ptr<ConfigMap> live_config_ = std::make_shared<ConfigMap>();
  ConfigMap& config_ = *live_config_;
  const Registry* registry_ = &parts_registry();  // a fixture may set its own in its constructor
  std::unique_ptr<pg::Pool> pool_;
  std::string dir_;
  std::unique_ptr<anvil::testing::Node> node_;
  std::unique_ptr<AppHost> host_;
};

}  // namespace anvil::growqr::testing

#include "storage/pg/migrations.hpp"

#include <algorithm>
#include <thread>

#include <gtest/gtest.h>

#include "anvil_migrations/growqr.hpp"
#include "storage/pg/test_db.hpp"

using namespace anvil;
using namespace anvil::pg;
using anvil::pg::testing::SchemaTest;

namespace {

class PgMigrations : public SchemaTest {};

std::vector<Migration> two_migrations() {
  return {
      {1, "0001_items.sql", "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);"},
      {2, "0002_seed.sql", "ALTER TABLE items ADD COLUMN tag text; INSERT INTO items VALUES (1, 'first', 'x');"},
  };
}

Value applied_rows(Pool& pool, const std::string& set) {
  auto r = query_sync(pool,
                      "SELECT version, name, checksum, applied_at FROM schema_migrations WHERE set_name = $1 "
                      "ORDER BY version",
                      {set});
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? Value(r->rows) : Value(nullptr);
}

Status insert(Pool& pool, const std::string& sql, Array params) {
  auto r = query_sync(pool, sql, std::move(params));
  if (!r) return r.take_error();
  return Ok{};
}

std::string sqlstate(const Status& s) {
  if (s.ok() || !s.error().metadata) return "";
  const Value* v = s.error().metadata->find("sqlstate");
  return v ? v->as_string() : "";
}

}  // namespace

TEST(PgChecksum, Sha256IsLowerCaseHex) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(PgMigrations, ApplyingTwiceIsANoOp) {
  auto pool = make_pool(2);
  auto first = apply_migrations(*pool, "demo", two_migrations());
  ASSERT_TRUE(first.ok()) << first.error().message;
  Value before = applied_rows(*pool, "demo");
  ASSERT_EQ(before.as_array().size(), 2u);
  EXPECT_EQ(*before.as_array()[0].find("name"), Value("0001_items.sql"));
  EXPECT_EQ(*before.as_array()[1].find("checksum"), Value(sha256_hex(two_migrations()[1].sql)));

  auto second = apply_migrations(*pool, "demo", two_migrations());
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(applied_rows(*pool, "demo"), before);  // same rows, same applied_at
  auto items = query_sync(*pool, "SELECT count(*) AS n FROM items");
  EXPECT_EQ(*items->rows[0].find("n"), Value(1));
}

TEST_F(PgMigrations, NewMigrationsAreAppliedInVersionOrder) {
  auto pool = make_pool(1);
  auto ms = two_migrations();
  ASSERT_TRUE(apply_migrations(*pool, "demo", {ms[0]}).ok());
  ms.push_back({3, "0003_more.sql", "INSERT INTO items VALUES (2, 'second', 'y');"});
  std::reverse(ms.begin(), ms.end());  // the runner orders by version
  auto st = apply_migrations(*pool, "demo", ms);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(applied_rows(*pool, "demo").as_array().size(), 3u);
}

TEST_F(PgMigrations, AChangedMigrationIsRefusedByName) {
  auto pool = make_pool(1);
  ASSERT_TRUE(apply_migrations(*pool, "demo", two_migrations()).ok());
  auto changed = two_migrations();
  changed[0].sql += "\n-- edited after release";
  changed.push_back({3, "0003_more.sql", "CREATE TABLE never (id int);"});
  auto st = apply_migrations(*pool, "demo", changed);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().qualified(), "db.migration_changed");
  EXPECT_NE(st.error().message.find("0001_items.sql"), std::string::npos) << st.error().message;
  // Nothing after the refusal was applied.
  auto never = query_sync(*pool, "SELECT to_regclass('never') IS NULL AS missing");
  EXPECT_EQ(*never->rows[0].find("missing"), Value(true));
}

TEST_F(PgMigrations, AnAppliedVersionTheBinaryDoesNotKnowIsRefused) {
  auto pool = make_pool(1);
  ASSERT_TRUE(apply_migrations(*pool, "demo", two_migrations()).ok());
  auto older = two_migrations();
  older.pop_back();
  auto st = apply_migrations(*pool, "demo", older);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().qualified(), "db.migration_unknown");
  EXPECT_NE(st.error().message.find("0002_seed.sql"), std::string::npos) << st.error().message;
}

TEST_F(PgMigrations, SetsAreTrackedSeparately) {
  auto pool = make_pool(1);
  ASSERT_TRUE(apply_migrations(*pool, "demo", two_migrations()).ok());
  auto other = apply_migrations(*pool, "other", {{1, "0001_other.sql", "CREATE TABLE other (id int);"}});
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_EQ(applied_rows(*pool, "other").as_array().size(), 1u);
}

TEST_F(PgMigrations, AFailingMigrationLeavesNoTraceAndIsReported) {
  auto pool = make_pool(1);
  std::vector<Migration> ms{{1, "0001_ok.sql", "CREATE TABLE ok (id int);"},
                            {2, "0002_broken.sql", "CREATE TABLE half (id int); SELECT * FROM missing_table;"}};
  auto st = apply_migrations(*pool, "demo", ms);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().qualified(), "db.query_failed");
  EXPECT_NE(st.error().message.find("0002_broken.sql"), std::string::npos) << st.error().message;
  EXPECT_EQ(applied_rows(*pool, "demo").as_array().size(), 1u);
  auto half = query_sync(*pool, "SELECT to_regclass('half') IS NULL AS missing");
  EXPECT_EQ(*half->rows[0].find("missing"), Value(true));
}

TEST_F(PgMigrations, ConcurrentAppliersApplyEachMigrationOnce) {
  // CREATE TABLE without IF NOT EXISTS: a second application would fail.
  std::vector<Migration> ms{{1, "0001_a.sql", "CREATE TABLE a (id int); INSERT INTO a VALUES (1);"},
                            {2, "0002_b.sql", "CREATE TABLE b (id int); INSERT INTO a VALUES (2);"},
                            {3, "0003_c.sql", "INSERT INTO a VALUES (3);"}};
  constexpr int kNodes = 4;
  std::vector<std::unique_ptr<Pool>> pools;
  for (int i = 0; i < kNodes; ++i) pools.push_back(make_pool(1));
  std::vector<Status> results(kNodes);
  std::vector<std::thread> nodes;
  for (int i = 0; i < kNodes; ++i)
    nodes.emplace_back([&, i] { results[i] = apply_migrations(*pools[i], "demo", ms); });
  for (auto& t : nodes) t.join();
  for (auto& r : results) EXPECT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(applied_rows(*pools[0], "demo").as_array().size(), 3u);
  auto a = query_sync(*pools[0], "SELECT count(*) AS n FROM a");
  EXPECT_EQ(*a->rows[0].find("n"), Value(3));
}

TEST(PgEmbedded, TheGrowqrSetIsEmbeddedInVersionOrder) {
  const auto& ms = embedded::growqr();
  ASSERT_GE(ms.size(), 4u);
  for (size_t i = 0; i < ms.size(); ++i) {
    EXPECT_EQ(ms[i].version, int(i + 1));
    EXPECT_EQ(ms[i].name.substr(0, 5), (i + 1 < 10 ? "000" : "00") + std::to_string(i + 1) + "_");
    EXPECT_FALSE(ms[i].sql.empty());
  }
  EXPECT_EQ(ms[0].name, "0001_identity.sql");
}

TEST_F(PgMigrations, TheGrowqrSetAppliesToAnEmptySchemaAndItsConstraintsHold) {
  auto pool = make_pool(2);
  auto st = apply_migrations(*pool, "growqr", embedded::growqr());
  ASSERT_TRUE(st.ok()) << st.error().message;
  ASSERT_TRUE(apply_migrations(*pool, "growqr", embedded::growqr()).ok());

  auto tables = query_sync(*pool,
                           "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                           "ORDER BY table_name");
  ASSERT_TRUE(tables.ok());
  std::vector<std::string> names;
  for (const auto& row : tables->rows) names.push_back(row.find("table_name")->as_string());
  for (const char* t : {"users", "user_stacks", "actors", "repos", "opencode_sessions", "events", "grow_events",
                        "dead_letters", "legacy_task_contexts", "grow_active_missions", "projections",
                        "projection_applied", "workflow_definitions", "workflow_runs", "workflow_run_modules",
                        "workflow_approvals", "workflow_events", "workflow_artifacts", "qscore_snapshots",
                        "grow_conversations", "messages", "session_memory", "schema_migrations"})
    EXPECT_NE(std::find(names.begin(), names.end(), t), names.end()) << "missing table " << t;

  // grow_events: one row per dedupe_key; processing_status is a closed set.
  const std::string ev = "INSERT INTO grow_events (dedupe_key, user_id, type, processing_status) VALUES ($1, $2, $3, $4)";
  ASSERT_TRUE(insert(*pool, ev, {"svc:req-1", "user_1", "interview.completed", "pending"}).ok());
  EXPECT_EQ(sqlstate(insert(*pool, ev, {"svc:req-1", "user_1", "interview.completed", "pending"})), "23505");
  EXPECT_EQ(sqlstate(insert(*pool, ev, {"svc:req-2", "user_1", "interview.completed", "done"})), "23514");
  EXPECT_EQ(sqlstate(insert(*pool, ev, {"svc:req-3", "user_1", "x", nullptr})), "23502");
  auto ignored = query_sync(*pool,
                            "INSERT INTO grow_events (dedupe_key, user_id, type) VALUES ($1, $2, $3) "
                            "ON CONFLICT (dedupe_key) DO NOTHING",
                            {"svc:req-1", "user_1", "interview.completed"});
  ASSERT_TRUE(ignored.ok());
  EXPECT_EQ(ignored->affected, 0);

  // Foreign keys to users; workflow module retry bounds; insert-or-ignore artifacts.
  EXPECT_EQ(sqlstate(insert(*pool, "INSERT INTO actors (user_id, name) VALUES ($1, $2)", {"nobody", "growAgent"})),
            "23503");
  ASSERT_TRUE(insert(*pool, "INSERT INTO users (id, email) VALUES ($1, $2)", {"user_1", "a@example.com"}).ok());
  ASSERT_TRUE(insert(*pool, "INSERT INTO workflow_definitions (id, name) VALUES ($1, $2)",
                     {"job-application", "Job application"})
                  .ok());
  auto run = query_sync(*pool,
                        "INSERT INTO workflow_runs (definition_id, user_id, idempotency_key) VALUES ($1, $2, $3) "
                        "RETURNING id",
                        {"job-application", "user_1", "req-9"});
  ASSERT_TRUE(run.ok()) << run.error().message;
  Value run_id = *run->rows[0].find("id");
  EXPECT_EQ(sqlstate(insert(*pool, "INSERT INTO workflow_runs (definition_id, user_id, idempotency_key) VALUES ($1, $2, $3)",
                            {"job-application", "user_1", "req-9"})),
            "23505");
  const std::string mod =
      "INSERT INTO workflow_run_modules (run_id, module_id, position, idempotency_key, retry_count, max_retries) "
      "VALUES ($1::uuid, $2, $3, $4, $5, $6)";
  ASSERT_TRUE(insert(*pool, mod, {run_id, "resume", 0, "k-1", 0, 3}).ok());
  EXPECT_EQ(sqlstate(insert(*pool, mod, {run_id, "cover", 1, "k-1", 0, 3})), "23505");
  EXPECT_EQ(sqlstate(insert(*pool, mod, {run_id, "cover", 1, "k-2", 4, 3})), "23514");
  const std::string art =
      "INSERT INTO workflow_artifacts (run_id, module_id, artifact_key, content) VALUES ($1::uuid, $2, $3, $4) "
      "ON CONFLICT (run_id, module_id, artifact_key) DO NOTHING";
  auto a1 = query_sync(*pool, art, {run_id, "resume", "resume.md", "v1"});
  auto a2 = query_sync(*pool, art, {run_id, "resume", "resume.md", "v2"});
  ASSERT_TRUE(a1.ok() && a2.ok());
  EXPECT_EQ(a1->affected, 1);
  EXPECT_EQ(a2->affected, 0);
}

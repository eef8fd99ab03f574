// Test support: a real Postgres from ANVIL_POSTGRES_URL (scripts/services.sh
// start exports it) and one private schema per test, so tests run in parallel.
// Without the URL a test is skipped, unless CI is set: then it fails, because
// CI must never pass by skipping.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "storage/pg/pool.hpp"

namespace anvil::pg::testing {

inline std::optional<std::string> postgres_url() {
  const char* url = std::getenv("ANVIL_POSTGRES_URL");
  if (!url || !*url) return std::nullopt;
  return std::string(url);
}

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && *ci;
}

// Use at the top of a test body or SetUp().
#define ANVIL_REQUIRE_POSTGRES()                                                          \
  do {                                                                                  \
    if (!::anvil::pg::testing::postgres_url()) {                                        \
      if (::anvil::pg::testing::in_ci()) FAIL() << "ANVIL_POSTGRES_URL is not set (CI)"; \
      GTEST_SKIP() << "ANVIL_POSTGRES_URL is not set; run scripts/services.sh start";   \
    }                                                                                   \
  } while (0)

// `url` with its search_path set to `schema` (libpq URI `options`).
inline std::string url_with_schema(const std::string& url, const std::string& schema) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
}

// A schema named after the running test, created empty and dropped at the end.
class SchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ANVIL_REQUIRE_POSTGRES();
    base_url_ = *postgres_url();
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->name()).substr(0, 30);
    for (auto& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
    schema_ = "t_" + name + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    admin_ = std::make_unique<Pool>(PoolOptions{base_url_, 1});
    ASSERT_TRUE(query_sync(*admin_, "DROP SCHEMA IF EXISTS " + schema_ + " CASCADE").ok());
    auto r = query_sync(*admin_, "CREATE SCHEMA " + schema_);
    ASSERT_TRUE(r.ok()) << r.error().message;
    url_ = url_with_schema(base_url_, schema_);
  }
  void TearDown() override {
    if (admin_) (void)query_sync(*admin_, "DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
  }
  // A pool whose connections see only this test's schema.
  std::unique_ptr<Pool> make_pool(size_t connections = 4) {
    return std::make_unique<Pool>(PoolOptions{url_, connections});
  }

  std::string base_url_, url_, schema_;
  std::unique_ptr<Pool> admin_;  // on the default search_path
};

}  // namespace anvil::pg::testing

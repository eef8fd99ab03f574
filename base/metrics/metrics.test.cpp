#include "base/metrics/metrics.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace anvil::metrics {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(Metrics, CountersAreRenderedWithTheirLabelsHelpAndType) {
  Registry r;
  auto& actions = r.counter("anvil_actions_total", "Actions run.", {"name", "outcome"});
  actions.with({"counter", "ok"}).inc();
  actions.with({"counter", "ok"}).inc(2);
  actions.with({"counter", "error"}).inc();
  const std::string t = r.text();
  EXPECT_TRUE(has_line(t, "# HELP anvil_actions_total Actions run.")) << t;
  EXPECT_TRUE(has_line(t, "# TYPE anvil_actions_total counter")) << t;
  EXPECT_TRUE(has_line(t, "anvil_actions_total{name=\"counter\",outcome=\"ok\"} 3")) << t;
  EXPECT_TRUE(has_line(t, "anvil_actions_total{name=\"counter\",outcome=\"error\"} 1")) << t;
}

TEST(Metrics, LabelValuesAreEscaped) {
  Registry r;
  r.counter("x_total", "x", {"v"}).with({"a\"b\\c\nd"}).inc();
  EXPECT_TRUE(has_line(r.text(), "x_total{v=\"a\\\"b\\\\c\\nd\"} 1")) << r.text();
}

TEST(Metrics, HistogramBucketsAreCumulativeWithSumAndCount) {
  Registry r;
  static const std::vector<double> bounds = {0.1, 1};
  auto& h = r.histogram("lat_seconds", "Latency.", {}, bounds);
  h.with({}).observe(0.05);
  h.with({}).observe(0.5);
  h.with({}).observe(0.5);
  h.with({}).observe(7);
  const std::string t = r.text();
  EXPECT_TRUE(has_line(t, "# TYPE lat_seconds histogram")) << t;
  EXPECT_TRUE(has_line(t, "lat_seconds_bucket{le=\"0.1\"} 1")) << t;
  EXPECT_TRUE(has_line(t, "lat_seconds_bucket{le=\"1\"} 3")) << t;
  EXPECT_TRUE(has_line(t, "lat_seconds_bucket{le=\"+Inf\"} 4")) << t;
  EXPECT_TRUE(has_line(t, "lat_seconds_sum 8.05")) << t;
  EXPECT_TRUE(has_line(t, "lat_seconds_count 4")) << t;
}

TEST(Metrics, CallbackGaugesAreReadAtScrapeTime) {
  Registry r;
  int depth = 1;
  r.callback("q_depth", "Depth.", {"name"}, [&] { return GaugeRows{{{"a"}, double(depth)}}; });
  EXPECT_TRUE(has_line(r.text(), "q_depth{name=\"a\"} 1"));
  depth = 5;
  EXPECT_TRUE(has_line(r.text(), "q_depth{name=\"a\"} 5"));
}

TEST(Metrics, ConcurrentIncrementsAreAllCounted) {
  Registry r;
  auto& c = r.counter("c_total", "c", {"k"});
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) c.with({"same"}).inc();
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(c.with({"same"}).value(), 40000u);
}

}  // namespace
}  // namespace anvil::metrics

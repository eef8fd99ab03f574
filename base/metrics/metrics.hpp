// Prometheus metrics: counters, gauges and histograms in labelled families,
// rendered in the text exposition format (version 0.0.4).
//
// A Registry owns families; a family hands out one cell per combination of
// label values, created on first use and kept for the registry's life, so a
// caller may keep the reference it got. Updating a cell is lock-free
// (atomics); finding one by labels takes the family's lock briefly. Gauges
// whose value is read at scrape time are `callback` families instead.
//
// Names and labels follow Prometheus' conventions: `anvil_` prefix, base
// units (seconds, bytes), `_total` for counters. Every family the node
// exports is listed in docs/operator-guide.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace anvil::metrics {

class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void add(int64_t n) { v_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  void observe(double v);
  // Cumulative counts per bound (then +Inf), the sum and the count.
  std::vector<uint64_t> cumulative() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  const std::vector<double>& bounds() const { return *bounds_; }

 private:
  const std::vector<double>* bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_->size() + 1 (+Inf)
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// Bucket bounds in seconds for latencies from 50 µs to 10 s.
const std::vector<double>& latency_buckets();
// Bucket bounds for sizes/counts: 1, 2, 4, … 4096.
const std::vector<double>& count_buckets();

using Labels = std::vector<std::string>;  // values, in the family's label order

template <typename Cell>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<Cell>()> make)
      : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)),
        make_(std::move(make)) {}
  // The cell for these label values (as many as the family has labels).
  Cell& with(const Labels& values) {
    std::lock_guard lock(mu_);
    auto& slot = cells_[values];
    if (!slot) slot = make_();
    return *slot;
  }
  Cell& with(std::initializer_list<std::string> values) { return with(Labels(values)); }
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Calls fn(labels, cell) for each cell, in label order.
  template <typename Fn>
  void each(Fn&& fn) const {
    std::lock_guard lock(mu_);
    for (const auto& [labels, cell] : cells_) fn(labels, *cell);
  }

 private:
  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<Cell>()> make_;
  mutable std::mutex mu_;
  std::map<Labels, std::unique_ptr<Cell>> cells_;
};

// Rows of a gauge read at scrape time: (label values, value).
using GaugeRows = std::vector<std::pair<Labels, double>>;

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  Family<Counter>& counter(const std::string& name, const std::string& help, std::vector<std::string> labels = {});
  Family<Gauge>& gauge(const std::string& name, const std::string& help, std::vector<std::string> labels = {});
  Family<Histogram>& histogram(const std::string& name, const std::string& help, std::vector<std::string> labels,
                               const std::vector<double>& bounds);
  // A gauge family computed when scraped.
  void callback(const std::string& name, const std::string& help, std::vector<std::string> labels,
                std::function<GaugeRows()> read);
  // Every family in registration order, in Prometheus text format.
  std::string text() const;

 private:
  struct Entry;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

// A label value or help text escaped for the exposition format.
std::string escape_label(const std::string& v);
// A sample line: name{l1="v1",...} value
std::string sample(const std::string& name, const std::vector<std::string>& label_names, const Labels& values,
                   const std::string& value, const std::string& extra_label = "", const std::string& extra_value = "");
std::string format_number(double v);

}  // namespace anvil::metrics

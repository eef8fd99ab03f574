#include "base/metrics/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <variant>

namespace anvil::metrics {

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_->size() && v > (*bounds_)[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::cumulative() const {
  std::vector<uint64_t> out(bounds_->size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

const std::vector<double>& latency_buckets() {
  static const std::vector<double> b = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,    5,     10};
  return b;
}

const std::vector<double>& count_buckets() {
  static const std::vector<double> b = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
  return b;
}

std::string escape_label(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string sample(const std::string& name, const std::vector<std::string>& label_names, const Labels& values,
                   const std::string& value, const std::string& extra_label, const std::string& extra_value) {
  std::string out = name;
  bool any = false;
  auto add = [&](const std::string& k, const std::string& v) {
    out += any ? "," : "{";
    any = true;
    out += k + "=\"" + escape_label(v) + "\"";
  };
  for (size_t i = 0; i < label_names.size() && i < values.size(); ++i) add(label_names[i], values[i]);
  if (!extra_label.empty()) add(extra_label, extra_value);
  if (any) out += "}";
  out += " " + value + "\n";
  return out;
}

struct Registry::Entry {
  std::string type;  // counter, gauge, histogram
  std::variant<std::unique_ptr<Family<Counter>>, std::unique_ptr<Family<Gauge>>, std::unique_ptr<Family<Histogram>>>
      family;
  // callback gauges
  std::string name, help;
  std::vector<std::string> labels;
  std::function<GaugeRows()> read;
};

Registry::Registry() = default;
Registry::~Registry() = default;

Family<Counter>& Registry::counter(const std::string& name, const std::string& help, std::vector<std::string> labels) {
  auto e = std::make_unique<Entry>();
  e->type = "counter";
  auto fam = std::make_unique<Family<Counter>>(name, help, std::move(labels), [] { return std::make_unique<Counter>(); });
  auto& ref = *fam;
  e->family = std::move(fam);
  std::lock_guard lock(mu_);
  entries_.push_back(std::move(e));
  return ref;
}

Family<Gauge>& Registry::gauge(const std::string& name, const std::string& help, std::vector<std::string> labels) {
  auto e = std::make_unique<Entry>();
  e->type = "gauge";
  auto fam = std::make_unique<Family<Gauge>>(name, help, std::move(labels), [] { return std::make_unique<Gauge>(); });
  auto& ref = *fam;
  e->family = std::move(fam);
  std::lock_guard lock(mu_);
  entries_.push_back(std::move(e));
  return ref;
}

Family<Histogram>& Registry::histogram(const std::string& name, const std::string& help,
                                       std::vector<std::string> labels, const std::vector<double>& bounds) {
  auto e = std::make_unique<Entry>();
  e->type = "histogram";
  const std::vector<double>* b = &bounds;
  auto fam = std::make_unique<Family<Histogram>>(name, help, std::move(labels),
                                                 [b] { return std::make_unique<Histogram>(b); });
  auto& ref = *fam;
  e->family = std::move(fam);
  std::lock_guard lock(mu_);
  entries_.push_back(std::move(e));
  return ref;
}

void Registry::callback(const std::string& name, const std::string& help, std::vector<std::string> labels,
                        std::function<GaugeRows()> read) {
  auto e = std::make_unique<Entry>();
  e->type = "callback";
  e->name = name;
  e->help = help;
  e->labels = std::move(labels);
  e->read = std::move(read);
  std::lock_guard lock(mu_);
  entries_.push_back(std::move(e));
}

namespace {

std::string header(const std::string& name, const std::string& help, const char* type) {
  return "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

std::string Registry::text() const {
  std::vector<const Entry*> entries;
  {
    std::lock_guard lock(mu_);
    for (const auto& e : entries_) entries.push_back(e.get());
  }
  std::string out;
  for (const Entry* e : entries) {
    if (e->type == "callback") {
      out += header(e->name, e->help, "gauge");
      for (const auto& [labels, v] : e->read()) out += sample(e->name, e->labels, labels, format_number(v));
    } else if (e->type == "counter") {
      const auto& f = *std::get<0>(e->family);
      out += header(f.name(), f.help(), "counter");
      f.each([&](const Labels& l, const Counter& c) {
        out += sample(f.name(), f.label_names(), l, std::to_string(c.value()));
      });
    } else if (e->type == "gauge") {
      const auto& f = *std::get<1>(e->family);
      out += header(f.name(), f.help(), "gauge");
      f.each([&](const Labels& l, const Gauge& g) {
        out += sample(f.name(), f.label_names(), l, std::to_string(g.value()));
      });
    } else {
      const auto& f = *std::get<2>(e->family);
      out += header(f.name(), f.help(), "histogram");
      f.each([&](const Labels& l, const Histogram& h) {
        const auto cum = h.cumulative();
        const auto& bounds = h.bounds();
        for (size_t i = 0; i < bounds.size(); ++i)
          out += sample(f.name() + "_bucket", f.label_names(), l, std::to_string(cum[i]), "le",
                        format_number(bounds[i]));
        out += sample(f.name() + "_bucket", f.label_names(), l, std::to_string(cum.back()), "le", "+Inf");
        out += sample(f.name() + "_sum", f.label_names(), l, format_number(h.sum()));
        out += sample(f.name() + "_count", f.label_names(), l, std::to_string(h.count()));
      });
    }
  }
  return out;
}

}  // namespace anvil::metrics

#include "storage/pg/pool.hpp"

#include <poll.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <random>

#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "base/value/json.hpp"

namespace anvil::pg {

namespace detail {

struct Session {
  std::unique_ptr<pqxx::connection> conn;
};

struct TxState {
  pqxx::transaction_base* tx = nullptr;
  Counters* counters = nullptr;
  std::optional<Error> first_error;  // the statement that aborted the transaction
  bool retryable = false;            // first_error was 40001 / 40P01
  bool connection_lost = false;
};

}  // namespace detail

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2'000);
constexpr int kTransactionRetries = 3;

// Type OIDs (src/include/catalog/pg_type.dat); stable across versions.
enum : pqxx::oid {
  kBool = 16, kBytea = 17, kInt8 = 20, kInt2 = 21, kInt4 = 23, kOid = 26, kJson = 114,
  kFloat4 = 700, kFloat8 = 701, kTimestamp = 1114, kTimestamptz = 1184, kNumeric = 1700, kJsonb = 3802,
};

Error unavailable(std::string what) { return make_error("db", "unavailable", "Postgres unavailable: " + std::move(what)); }

// libpq messages end in newlines and may span lines ("could not connect ...\n\tIs the server running").
std::string first_line(std::string_view s) {
  auto nl = s.find('\n');
  std::string out(s.substr(0, nl));
  while (!out.empty() && (out.back() == ' ' || out.back() == '\r')) out.pop_back();
  return out;
}

bool retryable_sqlstate(std::string_view state) { return state == "40001" || state == "40P01"; }

// Connection exceptions (class 08) and server shutdown / termination
// (57P01..57P03) mean the statement met a dead connection, not bad SQL.
bool connection_sqlstate(std::string_view state) {
  return state.substr(0, 2) == "08" || state == "57P01" || state == "57P02" || state == "57P03";
}

// The server's message without libpq's "ERROR:  " prefix; DETAIL/HINT lines
// go to metadata.
Error query_failed(std::string_view what, std::string sqlstate) {
  std::string text(what);
  Object meta{{"sqlstate", Value(sqlstate)}};
  std::string message;
  size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    auto strip = [&](std::string_view prefix) {
      if (line.rfind(prefix, 0) != 0) return false;
      line.erase(0, prefix.size());
      while (!line.empty() && line.front() == ' ') line.erase(0, 1);
      return true;
    };
    if (strip("DETAIL:")) meta.emplace_back("detail", Value(line));
    else if (strip("HINT:")) meta.emplace_back("hint", Value(line));
    else if (message.empty() && !line.empty()) {
      strip("ERROR:");
      strip("FATAL:");
      message = line;
    }
  }
  if (message.empty()) message = "query failed";
  return make_error("db", "query_failed", message, Value(std::move(meta)));
}

// --- Value -> parameter text --------------------------------------------------

std::string hex_bytea(const Bytes& b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + b.size() * 2);
  for (uint8_t c : b) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string double_text(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, res.ptr);
}

std::optional<std::string> param_text(const Value& v) {
  struct Visitor {
    std::optional<std::string> operator()(std::nullptr_t) const { return std::nullopt; }
    std::optional<std::string> operator()(Undefined) const { return std::nullopt; }
    std::optional<std::string> operator()(bool b) const { return std::string(b ? "true" : "false"); }
    std::optional<std::string> operator()(int64_t i) const { return std::to_string(i); }
    std::optional<std::string> operator()(double d) const { return double_text(d); }
    std::optional<std::string> operator()(const BigInt& b) const { return b.to_string(); }
    std::optional<std::string> operator()(const std::string& s) const { return s; }
    std::optional<std::string> operator()(const Bytes& b) const { return hex_bytea(b); }
    std::optional<std::string> operator()(const Array&) const { return json::dump(*self); }
    std::optional<std::string> operator()(const Object&) const { return json::dump(*self); }
    const Value* self;
  };
  return std::visit(Visitor{&v}, v.storage());
}

// --- result text -> Value ---------------------------------------------------------

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Value bytea_value(std::string_view text) {
  Bytes out;
  if (text.substr(0, 2) != "\\x") return Value(std::string(text));  // bytea_output is set to hex
  out.reserve((text.size() - 2) / 2);
  for (size_t i = 2; i + 1 < text.size(); i += 2) out.push_back(uint8_t(hex_digit(text[i]) << 4 | hex_digit(text[i + 1])));
  return Value(std::move(out));
}

Value int_value(std::string_view text) {
  int64_t v = 0;
  auto res = std::from_chars(text.data(), text.data() + text.size(), v);
  if (res.ec != std::errc()) return Value(std::string(text));
  return Value(v);
}

Value float_value(std::string_view text) {
  std::string s(text);  // strtod accepts NaN / Infinity / -Infinity as Postgres prints them
  return Value(std::strtod(s.c_str(), nullptr));
}

// A decimal with at most 15 significant digits converts to the nearest double
// and back without change (DBL_DIG); longer ones stay exact as text.
Value numeric_value(std::string_view text) {
  int significant = 0;
  bool leading = true;
  int pending_zeros = 0;  // zeros after the last non-zero digit: significant only if followed by one
  for (char c : text) {
    if (c < '0' || c > '9') continue;  // sign, '.', letters of NaN/Infinity
    if (c == '0') {
      if (!leading) ++pending_zeros;
      continue;
    }
    leading = false;
    significant += pending_zeros + 1;
    pending_zeros = 0;
  }
  std::string s(text);
  double d = std::strtod(s.c_str(), nullptr);
  bool nonzero_text = !leading;
  if (significant > 15 || (std::isinf(d) && s.find("Infinity") == std::string::npos) ||
      (d == 0 && nonzero_text))
    return Value(std::move(s));
  return Value(d);
}

// "2024-05-01 10:00:00.5+00" -> "2024-05-01T10:00:00.5Z" (session TimeZone is UTC);
// infinity and BC dates keep Postgres' text.
Value timestamp_value(std::string_view text, bool with_zone) {
  std::string s(text);
  if (s.size() < 19 || s[10] != ' ' || s.find(" BC") != std::string::npos) return Value(std::move(s));
  s[10] = 'T';
  if (with_zone) {
    auto sign = s.find_first_of("+-", 19);
    if (sign != std::string::npos) {
      std::string zone = s.substr(sign);
      s.erase(sign);
      if (zone == "+00" || zone == "-00" || zone == "+00:00") zone = "Z";
      else if (zone.size() == 3) zone += ":00";
      s += zone;
    }
  }
  return Value(std::move(s));
}

Value field_value(const pqxx::field& f, pqxx::oid type) {
  if (f.is_null()) return Value(nullptr);
  std::string_view text(f.c_str(), f.size());
  switch (type) {
    case kBool: return Value(text == "t");
    case kInt2:
    case kInt4:
    case kInt8:
    case kOid: return int_value(text);
    case kFloat4:
    case kFloat8: return float_value(text);
    case kNumeric: return numeric_value(text);
    case kJson:
    case kJsonb: {
      auto parsed = json::parse(text, /*revive=*/false);
      if (parsed.ok()) return std::move(parsed).value();
      return Value(std::string(text));
    }
    case kBytea: return bytea_value(text);
    case kTimestamptz: return timestamp_value(text, true);
    case kTimestamp: return timestamp_value(text, false);
    default: return Value(std::string(text));
  }
}

QueryResult to_query_result(const pqxx::result& r) {
  QueryResult out;
  const auto ncols = r.columns();
  std::vector<pqxx::oid> types(ncols);
  out.columns.reserve(ncols);
  for (pqxx::row::size_type c = 0; c < ncols; ++c) {
    out.columns.emplace_back(r.column_name(c));
    types[c] = r.column_type(c);
  }
  out.rows.reserve(r.size());
  for (const auto& row : r) {
    Object o;
    o.reserve(ncols);
    for (pqxx::row::size_type c = 0; c < ncols; ++c) o.emplace_back(out.columns[c], field_value(row[c], types[c]));
    out.rows.emplace_back(std::move(o));
  }
  out.affected = int64_t(r.affected_rows());
  return out;
}

// Why a statement, BEGIN or COMMIT failed, from whatever libpqxx threw.
struct Failure {
  Error error;
  bool retryable = false;
  bool connection_lost = false;
};

Failure classify(const std::exception& e, const pqxx::connection_base* conn) {
  bool open = conn && conn->is_open();
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e))
    return {unavailable("connection lost during COMMIT; the transaction may or may not have committed"), false, true};
  if (dynamic_cast<const pqxx::broken_connection*>(&e))
    return {unavailable("connection lost (" + first_line(e.what()) + ")"), false, true};
  if (auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    if (!open || connection_sqlstate(sql->sqlstate()))
      return {unavailable("connection lost (" + first_line(e.what()) + ")"), false, true};
    return {query_failed(e.what(), sql->sqlstate()), retryable_sqlstate(sql->sqlstate()), false};
  }
  if (dynamic_cast<const pqxx::serialization_failure*>(&e)) return {query_failed(e.what(), "40001"), true, false};
  if (dynamic_cast<const pqxx::deadlock_detected*>(&e)) return {query_failed(e.what(), "40P01"), true, false};
  if (dynamic_cast<const pqxx::statement_completion_unknown*>(&e))
    return {unavailable("statement outcome unknown (" + first_line(e.what()) + ")"), false, !open};
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e)) return {query_failed(e.what(), "40000"), false, false};
  if (!open) return {unavailable("connection lost (" + first_line(e.what()) + ")"), false, true};
  // usage/conversion errors from libpqxx itself: the statement never ran as asked.
  return {query_failed(e.what(), ""), false, false};
}

std::string conninfo_for(const PoolOptions& o) {
  std::string c = o.url;
  if (c.find("connect_timeout") != std::string::npos) return c;
  auto secs = std::max<long long>(1, (o.connect_timeout.count() + 999) / 1000);
  bool uri = c.rfind("postgresql://", 0) == 0 || c.rfind("postgres://", 0) == 0;
  if (uri) c += (c.find('?') == std::string::npos ? "?" : "&");
  else if (!c.empty()) c += " ";
  c += "connect_timeout=" + std::to_string(secs);
  return c;
}

// Runs one statement through the extended protocol (so a single statement,
// never string-interpolated values).
QueryResult exec_statement(pqxx::transaction_base& tx, std::string_view sql, const Array& params) {
  std::vector<std::optional<std::string>> texts;
  texts.reserve(params.size());
  for (const auto& p : params) texts.push_back(param_text(p));
  return to_query_result(tx.exec_params(std::string(sql), pqxx::prepare::make_dynamic_params(texts)));
}

// Micro-seconds spent in statements, for anvil_pg_busy_seconds_total.
struct BusyTimer {
  detail::Counters& c;
  Clock::time_point start = Clock::now();
  explicit BusyTimer(detail::Counters& counters) : c(counters) { c.in_flight.fetch_add(1, std::memory_order_relaxed); }
  ~BusyTimer() {
    c.in_flight.fetch_sub(1, std::memory_order_relaxed);
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
    c.busy_micros.fetch_add(uint64_t(us), std::memory_order_relaxed);
  }
};

}  // namespace

Error not_configured_error() {
  return make_error("db", "not_configured", "Postgres is not configured (set ANVIL_POSTGRES_URL)");
}

// --- Tx -------------------------------------------------------------------------------

namespace {
// Remembers the statement that aborted the transaction.
Error record_failure(detail::TxState& st, const std::exception& e) {
  auto f = classify(e, &st.tx->conn());
  st.first_error = f.error;
  st.retryable = f.retryable;
  st.connection_lost = f.connection_lost;
  return std::move(f.error);
}
}  // namespace

Result<QueryResult> Tx::exec(std::string_view sql, const Array& params) {
  auto& st = state_;
  if (st.first_error) return *st.first_error;  // Postgres rejects everything after a failed statement
  st.counters->statements.fetch_add(1, std::memory_order_relaxed);
  try {
    return exec_statement(*st.tx, sql, params);
  } catch (const std::exception& e) {
    return record_failure(st, e);
  }
}

Status Tx::exec_script(std::string_view sql) {
  auto& st = state_;
  if (st.first_error) return *st.first_error;
  st.counters->statements.fetch_add(1, std::memory_order_relaxed);
  try {
    st.tx->exec(std::string(sql));
    return Ok{};
  } catch (const std::exception& e) {
    return record_failure(st, e);
  }
}

// --- Pool -----------------------------------------------------------------------------

Pool::Pool(PoolOptions opts) : opts_(std::move(opts)), conninfo_(conninfo_for(opts_)) {
  if (opts_.connections == 0) opts_.connections = 1;
  for (size_t i = 0; i < opts_.connections; ++i) {
    sessions_.push_back(std::make_unique<detail::Session>());
    free_.push_back(sessions_.back().get());
  }
  threads_.reserve(opts_.connections);
  for (size_t i = 0; i < opts_.connections; ++i) threads_.emplace_back([this] { worker(); });
  warm_up();
}

Pool::~Pool() {
  std::deque<std::unique_ptr<detail::Job>> abandoned;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    abandoned.swap(jobs_);
  }
  jobs_cv_.notify_all();
  for (auto& job : abandoned) job->abandon(make_error("db", "shutting_down", "Postgres pool is shutting down"));
  for (auto& t : threads_) t.join();
  counters_.open.store(0);
}

void Pool::enqueue(std::unique_ptr<detail::Job> job) {
  {
    std::unique_lock lock(mu_);
    if (!stopping_) {
      jobs_.push_back(std::move(job));
      lock.unlock();
      jobs_cv_.notify_one();
      return;
    }
  }
  job->abandon(make_error("db", "shutting_down", "Postgres pool is shutting down"));
}

void Pool::worker() {
  for (;;) {
    std::unique_ptr<detail::Job> job;
    {
      std::unique_lock lock(mu_);
      jobs_cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;  // queued jobs are abandoned by the destructor
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    detail::Session* s = acquire();
    job->run(*s);
    job.reset();
    release(s);
  }
}

detail::Session* Pool::acquire() {
  std::unique_lock lock(mu_);
  sessions_cv_.wait(lock, [&] { return !free_.empty(); });
  auto* s = free_.back();
  free_.pop_back();
  return s;
}

void Pool::release(detail::Session* s) {
  {
    std::lock_guard lock(mu_);
    free_.push_back(s);
  }
  sessions_cv_.notify_one();
}

void Pool::warm_up() {
  struct WarmUp final : detail::Job {
    Pool& pool;
    explicit WarmUp(Pool& p) : pool(p) {}
    void run(detail::Session& s) override { (void)pool.ensure_connected(s); }
    void abandon(Error) override {}
  };
  enqueue(std::make_unique<WarmUp>(*this));
}

namespace {
void drop(detail::Session& s, detail::Counters& c) {
  if (!s.conn) return;
  s.conn.reset();
  c.open.fetch_sub(1, std::memory_order_relaxed);
}

// True when the server closed (or wrote to) a connection that should be idle:
// it sends a FATAL message before closing on pg_terminate_backend or shutdown.
bool closed_while_idle(const pqxx::connection& conn) {
  if (!conn.is_open()) return true;
  pollfd p{conn.sock(), POLLIN, 0};
  int n = ::poll(&p, 1, 0);
  return n != 0;  // readable, hung up, or poll error
}
}  // namespace

Status Pool::ensure_connected(detail::Session& s) {
  if (s.conn) {
    if (!closed_while_idle(*s.conn)) return Ok{};
    drop(s, counters_);
    counters_.connections_lost.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("postgres: connection closed by the server while idle; reconnecting");
  }
  {
    std::lock_guard lock(mu_);
    auto now = Clock::now();
    if (now < retry_at_) {
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(retry_at_ - now).count();
      return unavailable("cannot connect (" + last_connect_error_ + "); next attempt in " + std::to_string(wait) + " ms");
    }
  }
  try {
    auto conn = std::make_unique<pqxx::connection>(conninfo_);
    pqxx::nontransaction setup(*conn);
    setup.exec("SET TimeZone TO 'UTC'; SET DateStyle TO 'ISO, YMD'; SET bytea_output TO 'hex'; "
               "SET client_encoding TO 'UTF8'; SET statement_timeout TO " +
               std::to_string(opts_.statement_timeout.count()));
    setup.commit();
    s.conn = std::move(conn);
  } catch (const std::exception& e) {
    std::string why = first_line(e.what());
    {
      std::lock_guard lock(mu_);
      backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
      retry_at_ = Clock::now() + backoff_;
      last_connect_error_ = why;
    }
    counters_.connect_failures.fetch_add(1, std::memory_order_relaxed);
    if (healthy_.exchange(false)) spdlog::error("postgres: cannot connect: {}", why);
    return unavailable("cannot connect (" + why + ")");
  }
  {
    std::lock_guard lock(mu_);
    backoff_ = std::chrono::milliseconds(0);
    retry_at_ = {};
  }
  counters_.connects.fetch_add(1, std::memory_order_relaxed);
  counters_.open.fetch_add(1, std::memory_order_relaxed);
  if (!healthy_.exchange(true)) spdlog::info("postgres: connected");
  return Ok{};
}

void Pool::connection_lost(detail::Session& s) {
  drop(s, counters_);
  counters_.connections_lost.fetch_add(1, std::memory_order_relaxed);
  counters_.unavailable.fetch_add(1, std::memory_order_relaxed);
  healthy_.store(false, std::memory_order_relaxed);
}

Result<QueryResult> Pool::run_query(detail::Session& s, std::string_view sql, const Array& params) {
  counters_.statements.fetch_add(1, std::memory_order_relaxed);
  if (auto st = ensure_connected(s); !st) {
    counters_.unavailable.fetch_add(1, std::memory_order_relaxed);
    return st.take_error();
  }
  BusyTimer timer(counters_);
  try {
    pqxx::nontransaction n(*s.conn);
    auto r = exec_statement(n, sql, params);
    healthy_.store(true, std::memory_order_relaxed);
    return r;
  } catch (const std::exception& e) {
    auto f = classify(e, s.conn.get());
    if (f.connection_lost) connection_lost(s);
    else counters_.query_failed.fetch_add(1, std::memory_order_relaxed);
    return std::move(f.error);
  }
}

namespace {
Result<Value> call(const std::function<Result<Value>(Tx&)>& fn, Tx& tx) {
  try {
    return fn(tx);
  } catch (const std::exception& e) {
    return make_error("db", "transaction_failed", std::string("transaction function threw: ") + e.what());
  } catch (...) {
    return make_error("db", "transaction_failed", "transaction function threw");
  }
}

// A short jittered pause before rerunning a transaction that lost a
// serialization conflict, so the contenders do not collide again.
void retry_pause(int attempt) {
  thread_local std::minstd_rand rng(std::random_device{}());
  std::this_thread::sleep_for(std::chrono::milliseconds(5 * (attempt + 1) + rng() % 10));
}
}  // namespace

Result<Value> Pool::run_transaction(detail::Session& s, const std::function<Result<Value>(Tx&)>& fn) {
  counters_.transactions.fetch_add(1, std::memory_order_relaxed);
  for (int attempt = 0;; ++attempt) {
    if (auto st = ensure_connected(s); !st) {
      counters_.unavailable.fetch_add(1, std::memory_order_relaxed);
      return st.take_error();
    }
    BusyTimer timer(counters_);
    std::optional<Failure> server;  // a statement, BEGIN or COMMIT failed
    std::optional<Error> fn_error;  // fn's own error: returned in preference
    try {
      pqxx::work w(*s.conn);
      detail::TxState state;
      state.tx = &w;
      state.counters = &counters_;
      Tx tx(state);
      Result<Value> r = call(fn, tx);
      if (!state.first_error && r.ok()) {
        w.commit();
        healthy_.store(true, std::memory_order_relaxed);
        return r;
      }
      if (!r.ok()) fn_error = r.take_error();
      if (state.first_error) server = Failure{*state.first_error, state.retryable, state.connection_lost};
      if (!state.connection_lost) w.abort();
    } catch (const std::exception& e) {
      server = classify(e, s.conn.get());
    }
    counters_.rollbacks.fetch_add(1, std::memory_order_relaxed);
    if (!server) return std::move(*fn_error);
    if (server->connection_lost) {
      connection_lost(s);
      return std::move(fn_error ? *fn_error : server->error);
    }
    healthy_.store(true, std::memory_order_relaxed);
    if (server->retryable && attempt < kTransactionRetries) {
      counters_.retries.fetch_add(1, std::memory_order_relaxed);
      retry_pause(attempt);
      continue;
    }
    counters_.query_failed.fetch_add(1, std::memory_order_relaxed);
    return std::move(fn_error ? *fn_error : server->error);
  }
}

asio::awaitable<Result<QueryResult>> Pool::query(std::string sql, Array params) {
  std::function<Result<QueryResult>(detail::Session&)> work = [this, sql = std::move(sql),
                                                               params = std::move(params)](detail::Session& s) {
    return run_query(s, sql, params);
  };
  auto op = async_run<QueryResult>(std::move(work), asio::use_awaitable);
  Result<QueryResult> r = co_await std::move(op);
  co_return r;
}

asio::awaitable<Result<Value>> Pool::transaction(std::function<Result<Value>(Tx&)> fn) {
  std::function<Result<Value>(detail::Session&)> work = [this, fn = std::move(fn)](detail::Session& s) {
    return run_transaction(s, fn);
  };
  auto op = async_run<Value>(std::move(work), asio::use_awaitable);
  Result<Value> r = co_await std::move(op);
  co_return r;
}

std::string Pool::metrics_text() const {
  size_t queued;
  {
    std::lock_guard lock(mu_);
    queued = jobs_.size();
  }
  const auto& c = counters_;
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, const std::string& value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + value + "\n";
  };
  auto u = [](uint64_t v) { return std::to_string(v); };
  metric("anvil_pg_up", "gauge", "1 when the last contact with Postgres succeeded.", healthy() ? "1" : "0");
  metric("anvil_pg_connections_max", "gauge", "Size of the connection pool.", u(opts_.connections));
  metric("anvil_pg_connections_open", "gauge", "Open connections.", std::to_string(c.open.load()));
  metric("anvil_pg_queue_depth", "gauge", "Statements and transactions waiting for a connection.", u(queued));
  metric("anvil_pg_in_flight", "gauge", "Statements and transactions running.", std::to_string(c.in_flight.load()));
  metric("anvil_pg_statements_total", "counter", "Statements sent (queries and statements in transactions).",
         u(c.statements.load()));
  metric("anvil_pg_query_failed_total", "counter", "Statements and transactions the server rejected.",
         u(c.query_failed.load()));
  metric("anvil_pg_unavailable_total", "counter", "Calls that failed with db.unavailable.", u(c.unavailable.load()));
  metric("anvil_pg_transactions_total", "counter", "Transactions started.", u(c.transactions.load()));
  metric("anvil_pg_transaction_rollbacks_total", "counter", "Transaction attempts rolled back.",
         u(c.rollbacks.load()));
  metric("anvil_pg_transaction_retries_total", "counter", "Transactions rerun after 40001/40P01.",
         u(c.retries.load()));
  metric("anvil_pg_connects_total", "counter", "Connections opened.", u(c.connects.load()));
  metric("anvil_pg_connect_failures_total", "counter", "Failed connection attempts.", u(c.connect_failures.load()));
  metric("anvil_pg_connections_lost_total", "counter", "Connections found broken and dropped.",
         u(c.connections_lost.load()));
  char busy[32];
  std::snprintf(busy, sizeof busy, "%.6f", double(c.busy_micros.load()) / 1e6);
  metric("anvil_pg_busy_seconds_total", "counter", "Time connections spent running statements.", busy);
  return out;
}

// --- blocking helpers ------------------------------------------------------------------

Result<QueryResult> query_sync(Pool& pool, std::string sql, Array params) {
  auto* s = pool.acquire();
  auto r = pool.run_query(*s, sql, params);
  pool.release(s);
  return r;
}

Result<Value> transaction_sync(Pool& pool, std::function<Result<Value>(Tx&)> fn) {
  auto* s = pool.acquire();
  auto r = pool.run_transaction(*s, fn);
  pool.release(s);
  return r;
}

}  // namespace anvil::pg

// `anvil actors ls|get`: the operator's view of actors, from a running node
// (--endpoint, its admin routes GET /admin/actors[/{id}]) or from a data
// directory (--data-dir, a RocksDB secondary instance: read-only, safe while
// the node runs). Both go through runtime/inspect.hpp, so they print the
// same JSON.
#include "tools/actors_cli.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <spdlog/spdlog.h>

#include "base/net/http_client.hpp"
#include "base/value/json.hpp"
#include "tools/cli_http.hpp"
#include "engine-api/http.hpp"
#include "runtime/actor_key.hpp"
#include "storage/records.hpp"
#include "storage/store.hpp"

namespace anvil::tools {
namespace {

constexpr int kOk = 0, kFailed = 1, kUsage = 2;

constexpr const char* kUsageText = R"(Usage:
  anvil actors ls  [filters] [--json] SOURCE    list actors (id, name, key, awake)
  anvil actors get ID        [--json] SOURCE    show one actor (state, key, times, sizes)
  anvil actors get --name NAME --key KEY [--namespace NS] [--json] SOURCE
                                                the same, found by name and key (KEY in
                                                serialized form, e.g. `org/user-1`)
  anvil actors state ID      [--json] SOURCE    print its state as JSON
  anvil actors state ID --set JSON --endpoint URL
                                                replace its state, in a turn (online only)
  anvil actors schedules ID  [--json] SOURCE    its pending schedules
  anvil actors schedules ID --cancel SID --endpoint URL
                                                cancel one schedule (online only)
  anvil actors conns ID      [--json] --endpoint URL
                                                its open connections (online only:
                                                connections live in the node's memory)
  anvil actors queue ID [--limit N] [--json] SOURCE
                                                its queued messages (default at most 100)
  anvil actors queue ID --send NAME [--body JSON] --endpoint URL
                                                queue a message (any queue name; online only)
  anvil actors queue ID --purge --yes --endpoint URL
                                                delete every queued message (online only)
  anvil actors kv ID [--prefix P] [--json] SOURCE
                                                its KV entries (keys starting with P)
  anvil actors workflow ID   [--json] SOURCE    its workflow history
  anvil actors workflow ID --replay [--from PATH] --endpoint URL
                                                run its finished (completed or failed)
                                                workflow again from the entry at history
                                                PATH, or from the start (online only)
  anvil actors sql ID "SELECT ..." [--json] SOURCE
                                                a read-only query on its SQLite database
  anvil actors destroy ID --yes --endpoint URL  destroy it and all its data (online only)

SOURCE (exactly one):
  --endpoint URL       a running node, e.g. http://127.0.0.1:6420   [ANVIL_ENDPOINT]
                       (its admin routes /admin/actors...; needs the admin
                       token when the node has one)
  --admin-token TOKEN  the node's admin token                      [ANVIL_ADMIN_TOKEN]
  --ca-file FILE       trust the PEM certificates in FILE for an https://
                       endpoint, besides the system's CAs           [ANVIL_CA_FILE]
  --data-dir DIR       a data directory (the node's --data-dir), read without
                       writing; safe while a node runs on it

Filters (ls):
  --name NAME          only actors of this type
  --key-prefix P       keys starting with P (serialized form: components joined
                       by '/'; the last component may be partial: `user-`
                       matches ["user-1"], `org/` matches ["org", anything])
  --namespace NS       only this namespace (default: every namespace)
  --awake | --asleep   only awake / only sleeping actors
  --limit N            one page of at most N actors (1-1000); the next page's
                       cursor goes to stderr (`next cursor: ...`)
  --cursor C           start after actor id C (from a previous page)
  Without --limit every page is fetched.

Output: a table, or with --json: ls prints a JSON array of
{"id","name","key","awake"}; get prints one object with "id","name","key",
"awake","state","inspectorToken" (the Bearer token of its /inspector/* routes)
and more (docs/operator-guide.md).
Bytes and bigints use rivetkit's JSON-compat tags (["$Uint8Array","<base64>"]).
Exit codes: 0 ok, 1 not found or failed, 2 usage.
)";

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

int usage(const std::string& msg) {
  std::cerr << "anvil actors: " << msg << "\n\nRun `anvil actors --help` for usage.\n";
  return kUsage;
}

// --- the two sources ---

class Source {
 public:
  virtual ~Source() = default;
  // A page: {"actors": [...], "cursor": id|null}.
  virtual Result<Value> list(const inspect::ActorFilter& f) = 0;
  virtual Result<Value> view(const std::string& id, inspect::View view, const std::string& arg) = 0;
  // Online only (nullopt offline): changes go through the node.
  virtual std::optional<Result<Value>> set_state(const std::string&, const Value&) { return std::nullopt; }
  virtual std::optional<Result<Value>> destroy(const std::string&) { return std::nullopt; }
  // An operation under /admin/actors/{id}`suffix` (online only).
  virtual std::optional<Result<Value>> operate(const std::string&, const std::string&, const std::string&,
                                               const Value&) {
    return std::nullopt;
  }
};

class OfflineSource : public Source {
 public:
  explicit OfflineSource(std::unique_ptr<DataDirReader> r) : r_(std::move(r)) {}
  Result<Value> list(const inspect::ActorFilter& f) override { return r_->list(f); }
  Result<Value> view(const std::string& id, inspect::View view, const std::string& arg) override {
    return r_->view(id, view, arg);
  }

 private:
  std::unique_ptr<DataDirReader> r_;
};

class OnlineSource : public Source {
 public:
  OnlineSource(std::string endpoint, std::string admin_token, std::string ca_file)
      : endpoint_(std::move(endpoint)), token_(std::move(admin_token)), ca_file_(std::move(ca_file)) {
    while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
  }

  Result<Value> list(const inspect::ActorFilter& f) override {
    std::string q = "limit=" + std::to_string(f.limit);
    auto add = [&](const char* name, const std::string& v) {
      if (!v.empty()) q += std::string("&") + name + "=" + http::percent_encode(v);
    };
    add("namespace", f.namespace_name);
    add("name", f.name);
    add("keyPrefix", f.key_prefix);
    add("cursor", f.cursor);
    if (f.awake) q += std::string("&awake=") + (*f.awake ? "true" : "false");
    return fetch("GET", "/admin/actors?" + q);
  }
  Result<Value> view(const std::string& id, inspect::View view, const std::string& arg) override {
    const std::string base = "/admin/actors/" + http::percent_encode(id);
    switch (view) {
      case inspect::View::kDetail:
        return fetch("GET", base);
      case inspect::View::kState:
        return fetch("GET", base + "/state");
      case inspect::View::kSchedules:
        return fetch("GET", base + "/schedules");
      case inspect::View::kWorkflow:
        return fetch("GET", base + "/workflow");
      case inspect::View::kKv:
        return fetch("GET", base + "/kv" + (arg.empty() ? "" : "?prefix=" + http::percent_encode(arg)));
      case inspect::View::kSql:
        return fetch("POST", base + "/sql", json::dump(obj({{"sql", arg}})));
      case inspect::View::kQueue:
        return fetch("GET", base + "/queue" + (arg.empty() ? "" : "?limit=" + http::percent_encode(arg)));
      case inspect::View::kRivetWorkflow:
        break;
    }
    return make_error("cli", "bad_view", "Unknown view.");
  }
  std::optional<Result<Value>> set_state(const std::string& id, const Value& state) override {
    auto r = fetch("PUT", "/admin/actors/" + http::percent_encode(id) + "/state", json::dump(state));
    if (!r.ok()) return Result<Value>(r.error());
    const Value* s = r->find("state");
    return Result<Value>(s ? *s : Value());
  }
  std::optional<Result<Value>> destroy(const std::string& id) override {
    return fetch("DELETE", "/actors/" + http::percent_encode(id));
  }
  std::optional<Result<Value>> operate(const std::string& id, const std::string& method, const std::string& suffix,
                                       const Value& body) override {
    return fetch(method, "/admin/actors/" + http::percent_encode(id) + suffix, body.is_null() ? "" : json::dump(body));
  }

 private:
  Result<Value> fetch(const std::string& method, const std::string& path, std::string body = {}) {
    net::HttpRequest req;
    req.method = method;
    req.url = endpoint_ + path;
    if (!body.empty()) {
      req.headers.emplace_back("content-type", "application/json");
      req.body = std::move(body);
    }
    if (!token_.empty()) req.headers.emplace_back("authorization", "Bearer " + token_);
    Result<net::HttpResponse> res = request_once(std::move(req), ca_file_);
    if (!res.ok()) {
      // A non-2xx answer: the node's own error ({group, code, message}).
      const Error& e = res.error();
      const Value* body = e.metadata ? e.metadata->find("body") : nullptr;
      if (body && body->is_string()) {
        auto parsed = json::parse(body->as_string(), /*revive=*/false);
        if (parsed.ok() && parsed->is_object() && parsed->find("group") && parsed->find("code")) {
          const Value* msg = parsed->find("message");
          return make_error(parsed->find("group")->as_string(), parsed->find("code")->as_string(),
                            msg && msg->is_string() ? msg->as_string() : std::string());
        }
      }
      return e;
    }
    // Revived, so that dumping it again gives the node's text back (bytes
    // and bigints keep their JSON-compat tags).
    return json::parse(res->body, /*revive=*/true);
  }

  std::string endpoint_, token_, ca_file_;
};

// --- output ---

std::string key_text(const Value& key) {
  ActorKey k;
  if (key.is_array())
    for (const auto& part : key.as_array()) k.push_back(part.is_string() ? part.as_string() : "");
  return serialize_key(k);
}

std::string field_text(const Value* v) {
  if (!v || v->is_null()) return "-";
  if (v->is_string()) return v->as_string();
  return json::dump(*v);
}

// ms since epoch => "2026-12-02T00:06:59.123Z"
std::string time_text(const Value* v) {
  if (!v || !v->is_int()) return "-";
  const int64_t ms = v->as_int();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

void print_table(const Array& actors) {
  std::vector<std::array<std::string, 4>> rows;
  rows.push_back({"ID", "NAME", "KEY", "AWAKE"});
  for (const auto& a : actors) {
    const Value* key = a.find("key");
    const Value* awake = a.find("awake");
    rows.push_back({field_text(a.find("id")), field_text(a.find("name")), key ? key_text(*key) : "-",
                    awake && awake->is_bool() && awake->as_bool() ? "yes" : "no"});
  }
  std::array<size_t, 4> width{};
  for (const auto& r : rows)
    for (size_t i = 0; i < 4; ++i) width[i] = std::max(width[i], r[i].size());
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < 4; ++i) {
      line += r[i];
      if (i + 1 < 4) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

void print_detail(const Value& a) {
  auto row = [](const char* label, const std::string& v) { std::cout << label << v << "\n"; };
  row("id:          ", field_text(a.find("id")));
  row("name:        ", field_text(a.find("name")));
  row("key:         ", a.find("key") ? key_text(*a.find("key")) : "-");
  row("namespace:   ", field_text(a.find("namespace")));
  const Value* awake = a.find("awake");
  row("awake:       ", awake && awake->is_bool() && awake->as_bool() ? "yes" : "no");
  row("created:     ", time_text(a.find("createdAt")));
  row("started:     ", time_text(a.find("startTs")));
  row("slept:       ", time_text(a.find("sleepTs")));
  row("generation:  ", field_text(a.find("generation")));
  row("inspector:   ", field_text(a.find("inspectorToken")));
  row("state bytes: ", field_text(a.find("stateBytes")));
  row("kv keys:     ", field_text(a.find("kvKeys")));
  row("queue:       ", field_text(a.find("queueMessages")));
  row("schedules:   ", field_text(a.find("schedules")));
  row("workflow:    ", field_text(a.find("workflowRecords")));
  row("db pages:    ", field_text(a.find("dbPages")));
  const Value* input = a.find("input");
  if (input && !input->is_null()) row("input:       ", json::dump(*input));
  const Value* state = a.find("state");
  row("state:       ", state ? json::dump(*state) : "-");
}

int report(const std::string& cmd, const Error& e) {
  std::cerr << "anvil actors " << cmd << ": " << e.message << " (" << e.qualified() << ")\n";
  return kFailed;
}

// --- offline: who holds the data directory ---

// When process `pid` started, in ms since epoch (0 when unknown).
int64_t process_start_ms(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');  // the command name may hold spaces and ')'
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  unsigned long long start_ticks = 0;
  // Field 3 (state) is the first after the name; starttime is field 22.
  for (int i = 3; i <= 22 && (fields >> f); ++i)
    if (i == 22) start_ticks = std::strtoull(f.c_str(), nullptr, 10);
  std::ifstream pstat("/proc/stat");
  std::string line;
  long long btime = 0;
  while (std::getline(pstat, line))
    if (line.rfind("btime ", 0) == 0) btime = std::atoll(line.c_str() + 6);
  const long ticks = sysconf(_SC_CLK_TCK);
  if (!btime || !start_ticks || ticks <= 0) return 0;
  return btime * 1000 + static_cast<int64_t>(start_ticks * 1000 / static_cast<unsigned long long>(ticks));
}

// Whether a process holds RocksDB's LOCK file (it takes a POSIX write lock
// on it for as long as the database is open), and that process's start
// time. An open-file-description lock query sees locks of every process,
// this one included, and takes none.
std::optional<int64_t> lock_holder(const std::string& rocksdb_dir) {
  int fd = ::open((rocksdb_dir + "/LOCK").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;
  const int rc = ::fcntl(fd, F_OFD_GETLK, &fl);
  ::close(fd);
  if (rc != 0 || fl.l_type == F_UNLCK) return std::nullopt;
  return fl.l_pid > 0 ? process_start_ms(fl.l_pid) : 0;
}

}  // namespace

// --- DataDirReader ---

Result<std::unique_ptr<DataDirReader>> DataDirReader::open(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string db = dir + "/rocksdb";
  if (!fs::exists(db + "/CURRENT", ec)) {
    if (!fs::exists(dir + "/CURRENT", ec))
      return make_error("cli", "no_data_dir", "No Anvil data directory at " + dir + " (no rocksdb/ in it).");
    db = dir;
  }
  std::unique_ptr<DataDirReader> r(new DataDirReader());
  // Before opening: a node that starts after this point is not seen
  // running, and the view below predates its wakes anyway.
  r->holder_ = lock_holder(db);
  std::string tmpl = (fs::temp_directory_path(ec) / "anvil-cli-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return make_error("cli", "io_error", "Cannot create a temporary directory.");
  r->scratch_ = tmpl;
  auto store = storage::Store::open_secondary(db, r->scratch_);
  if (!store.ok()) return store.error();
  r->store_ = std::move(*store);
  return r;
}

DataDirReader::~DataDirReader() {
  store_.reset();
  if (!scratch_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(scratch_, ec);
  }
}

bool DataDirReader::awake(const storage::ActorRow& row) const {
  // Awake: a node runs on the directory, the record's newest start has no
  // sleep after it, and that start is this node's (not one of a node that
  // was killed before the running one started).
  if (!holder_) return false;
  if (row.start_ts == 0 || row.sleep_ts != 0) return false;
  return row.start_ts >= *holder_;
}

Result<Value> DataDirReader::list(const inspect::ActorFilter& filter) const {
  return inspect::list_actors(*store_, filter, [this](const storage::ActorRow& row) { return awake(row); });
}

Result<Value> DataDirReader::get(const std::string& actor_id) const {
  return inspect::get_actor(*store_, actor_id, [this](const storage::ActorRow& row) { return awake(row); });
}

Result<Value> DataDirReader::view(const std::string& actor_id, inspect::View view, const std::string& arg) const {
  return inspect::actor_view(*store_, actor_id, view, arg,
                             [this](const storage::ActorRow& row) { return awake(row); });
}

// --- the command ---

namespace {

void print_rows(const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

// The table form of a view (--json prints the value itself).
void print_view(inspect::View view, const Value& v) {
  std::vector<std::vector<std::string>> rows;
  switch (view) {
    case inspect::View::kDetail:
      print_detail(v);
      return;
    case inspect::View::kState:
      std::cout << json::dump(v) << "\n";
      return;
    case inspect::View::kSchedules:
      rows.push_back({"ID", "ACTION", "DUE", "EVERY (ms)", "NAME", "ARGS"});
      for (const auto& r : v.as_array())
        rows.push_back({field_text(r.find("id")), field_text(r.find("action")), time_text(r.find("dueTs")),
                        field_text(r.find("intervalMs")), field_text(r.find("name")), json::dump(*r.find("args"))});
      break;
    case inspect::View::kKv:
      rows.push_back({"KEY", "VALUE"});
      for (const auto& r : v.as_array()) rows.push_back({field_text(r.find("key")), field_text(r.find("value"))});
      break;
    case inspect::View::kWorkflow:
      rows.push_back({"PATH", "KIND", "STATUS", "ATTEMPTS", "STARTED", "COMPLETED", "ERROR"});
      for (const auto& r : v.as_array()) {
        const Value* path = r.find("path");
        rows.push_back({path && path->is_string() && path->as_string().empty() ? "(run)" : field_text(path),
                        field_text(r.find("kind")), field_text(r.find("status")), field_text(r.find("attempts")),
                        time_text(r.find("startedTs")), time_text(r.find("completedTs")), field_text(r.find("error"))});
      }
      break;
    case inspect::View::kQueue:
      rows.push_back({"ID", "NAME", "CREATED", "BODY"});
      for (const auto& r : v.find("messages")->as_array())
        rows.push_back({field_text(r.find("id")), field_text(r.find("name")), time_text(r.find("createdAtMs")),
                        json::dump(*r.find("body"))});
      print_rows(rows);
      std::cout << "(" << field_text(v.find("size")) << " of at most " << field_text(v.find("maxSize")) << " queued"
                << (v.find("truncated")->as_bool() ? ", list truncated" : "") << ")\n";
      return;
    case inspect::View::kRivetWorkflow:
      std::cout << json::dump(v) << "\n";
      return;
    case inspect::View::kSql: {
      std::vector<std::string> header;
      for (const auto& c : v.find("columns")->as_array()) header.push_back(field_text(&c));
      rows.push_back(header);
      for (const auto& r : v.find("rows")->as_array()) {
        std::vector<std::string> cells;
        for (const auto& c : r.as_array()) cells.push_back(c.is_null() ? "NULL" : field_text(&c));
        rows.push_back(cells);
      }
      print_rows(rows);
      const size_t n = v.find("rows")->as_array().size();
      std::cout << "(" << n << " row" << (n == 1 ? "" : "s")
                << (v.find("truncated")->as_bool() ? ", truncated" : "") << ")\n";
      return;
    }
  }
  print_rows(rows);
}

}  // namespace

int actors_command(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << kUsageText;
    return kUsage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsageText;
    return kOk;
  }
  const std::string cmd = args[0];
  static const std::map<std::string, inspect::View> kViews = {
      {"get", inspect::View::kDetail},        {"state", inspect::View::kState},
      {"schedules", inspect::View::kSchedules}, {"kv", inspect::View::kKv},
      {"workflow", inspect::View::kWorkflow}, {"sql", inspect::View::kSql},
      {"queue", inspect::View::kQueue},
  };
  if (cmd != "ls" && cmd != "destroy" && cmd != "conns" && !kViews.count(cmd))
    return usage("unknown command `" + cmd + "`");
  // The command reports its own errors; the libraries' warnings (a refused
  // request, RocksDB's notes) would only repeat them.
  spdlog::set_level(spdlog::level::err);

  std::string endpoint, data_dir, id, sql_text, kv_prefix;
  std::optional<std::string> new_state, by_key;
  std::string by_name;
  std::string admin_token = env_or("ANVIL_ADMIN_TOKEN", "");
  std::string ca_file = env_or("ANVIL_CA_FILE", "");
  bool as_json = false, paged = false, yes = false, purge = false, replay = false;
  std::optional<std::string> cancel_id, send_queue, send_body, replay_from, queue_limit;
  inspect::ActorFilter filter;
  std::vector<std::string> positional;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto next = [&]() -> std::optional<std::string> {
      if (i + 1 >= args.size()) return std::nullopt;
      return args[++i];
    };
    std::optional<std::string> v;
    if (a == "--help" || a == "-h") {
      std::cout << kUsageText;
      return kOk;
    } else if (a == "--json") {
      as_json = true;
    } else if (a == "--endpoint") {
      if (!(v = next()) || v->empty()) return usage("--endpoint needs a URL");
      endpoint = *v;
    } else if (a == "--admin-token") {
      if (!(v = next()) || v->empty()) return usage("--admin-token needs a value");
      admin_token = *v;
    } else if (a == "--ca-file") {
      if (!(v = next()) || v->empty()) return usage("--ca-file needs a PEM file");
      ca_file = *v;
    } else if (a == "--data-dir") {
      if (!(v = next()) || v->empty()) return usage("--data-dir needs a directory");
      data_dir = *v;
    } else if (cmd == "get" && (a == "--name" || a == "--key" || a == "--namespace")) {
      if (!(v = next())) return usage(a + " needs a value");
      if (a == "--name")
        by_name = *v;
      else if (a == "--key")
        by_key = *v;
      else
        filter.namespace_name = *v;
    } else if (cmd == "ls" && a == "--name") {
      if (!(v = next()) || v->empty()) return usage("--name needs an actor name");
      filter.name = *v;
    } else if (cmd == "ls" && a == "--key-prefix") {
      if (!(v = next())) return usage("--key-prefix needs a key prefix");
      filter.key_prefix = *v;
    } else if (cmd == "ls" && a == "--namespace") {
      if (!(v = next()) || v->empty()) return usage("--namespace needs a namespace");
      filter.namespace_name = *v;
    } else if (cmd == "ls" && (a == "--awake" || a == "--asleep")) {
      const bool want = a == "--awake";
      if (filter.awake && *filter.awake != want) return usage("--awake and --asleep exclude each other");
      filter.awake = want;
    } else if (cmd == "ls" && a == "--limit") {
      if (!(v = next())) return usage("--limit needs a number");
      char* end = nullptr;
      long n = std::strtol(v->c_str(), &end, 10);
      if (v->empty() || *end != '\0' || n < 1 || n > 1000) return usage("--limit must be a number from 1 to 1000");
      filter.limit = static_cast<size_t>(n);
      paged = true;
    } else if (cmd == "ls" && a == "--cursor") {
      if (!(v = next()) || v->empty()) return usage("--cursor needs an actor id");
      filter.cursor = *v;
    } else if (cmd == "kv" && a == "--prefix") {
      if (!(v = next())) return usage("--prefix needs a key prefix");
      kv_prefix = *v;
    } else if (cmd == "state" && a == "--set") {
      if (!(v = next())) return usage("--set needs the new state as JSON");
      new_state = *v;
    } else if ((cmd == "destroy" || cmd == "queue") && a == "--yes") {
      yes = true;
    } else if (cmd == "schedules" && a == "--cancel") {
      if (!(v = next()) || v->empty()) return usage("--cancel needs a schedule id");
      cancel_id = *v;
    } else if (cmd == "queue" && a == "--purge") {
      purge = true;
    } else if (cmd == "queue" && a == "--send") {
      if (!(v = next()) || v->empty()) return usage("--send needs a queue name");
      send_queue = *v;
    } else if (cmd == "queue" && a == "--body") {
      if (!(v = next())) return usage("--body needs the message body as JSON");
      send_body = *v;
    } else if (cmd == "queue" && a == "--limit") {
      if (!(v = next())) return usage("--limit needs a number");
      char* end = nullptr;
      long n = std::strtol(v->c_str(), &end, 10);
      if (v->empty() || *end != '\0' || n < 1) return usage("--limit must be a positive number");
      queue_limit = *v;
    } else if (cmd == "workflow" && a == "--replay") {
      replay = true;
    } else if (cmd == "workflow" && a == "--from") {
      if (!(v = next())) return usage("--from needs a workflow history path");
      replay_from = *v;
    } else if (cmd != "ls" && (a.rfind("--", 0) != 0 || a == "--")) {
      positional.push_back(a == "--" && i + 1 < args.size() ? args[++i] : a);
    } else {
      return usage("unknown option `" + a + "` for `" + cmd + "`");
    }
  }
  const bool by_name_and_key = cmd == "get" && positional.empty() && (!by_name.empty() || by_key);
  if (by_name_and_key && (by_name.empty() || !by_key)) return usage("get by name needs both --name NAME and --key KEY");
  if (cmd == "get" && !positional.empty() && (!by_name.empty() || by_key))
    return usage("get takes an ID or --name and --key, not both");
  if (cmd != "ls" && !by_name_and_key) {
    const size_t want = cmd == "sql" ? 2 : 1;
    if (positional.size() < want) return usage(cmd == "sql" ? "sql needs an actor ID and a statement" : cmd + " needs an actor ID");
    if (positional.size() > want) return usage("unexpected argument `" + positional[want] + "`");
    id = positional[0];
    if (cmd == "sql") sql_text = positional[1];
  }
  if (endpoint.empty() && data_dir.empty()) endpoint = env_or("ANVIL_ENDPOINT", "");
  if (!endpoint.empty() && !data_dir.empty()) return usage("give --endpoint or --data-dir, not both");
  if (endpoint.empty() && data_dir.empty())
    return usage("give --endpoint URL (a running node) or --data-dir DIR (a data directory)");
  if (purge && send_queue) return usage("--purge and --send exclude each other");
  if (send_body && !send_queue) return usage("--body goes with --send NAME");
  if (replay_from && !replay) return usage("--from goes with --replay");
  std::string change_flag = new_state ? " --set" : cancel_id ? " --cancel" : purge ? " --purge" : send_queue ? " --send"
                            : replay ? " --replay" : "";
  const bool changes = cmd == "destroy" || !change_flag.empty();
  if (changes && !data_dir.empty())
    return usage("`" + cmd + change_flag +
                 "` changes the actor: it runs on the node (--endpoint), never on a data directory");
  if (cmd == "conns" && !data_dir.empty())
    return usage("conns lists live connections: they exist only in a running node's memory (--endpoint)");
  if (cmd == "destroy" && !yes) return usage("destroy deletes the actor and all its data; confirm with --yes");
  if (purge && !yes) return usage("--purge deletes every queued message; confirm with --yes");
  std::optional<Value> parsed_state;
  if (new_state) {
    auto v = json::parse(*new_state, /*revive=*/true);
    if (!v.ok()) return usage("--set: not valid JSON: " + v.error().message);
    parsed_state = std::move(*v);
  }

  std::unique_ptr<Source> source;
  if (!data_dir.empty()) {
    auto reader = DataDirReader::open(data_dir);
    if (!reader.ok()) return report(cmd, reader.error());
    source = std::make_unique<OfflineSource>(std::move(*reader));
  } else {
    source = std::make_unique<OnlineSource>(endpoint, admin_token, ca_file);
  }

  if (cmd == "destroy") {
    auto r = *source->destroy(id);
    if (!r.ok()) return report(cmd, r.error());
    if (as_json)
      std::cout << json::dump(obj({{"id", id}, {"destroyed", true}})) << "\n";
    else
      std::cout << "destroyed " << id << "\n";
    return kOk;
  }
  // The online operations (AdminOp): the node answers a JSON value.
  std::optional<Result<Value>> op;
  if (cmd == "conns") {
    op = source->operate(id, "GET", "/connections", Value());
  } else if (cancel_id) {
    op = source->operate(id, "DELETE", "/schedules/" + http::percent_encode(*cancel_id), Value());
  } else if (purge) {
    op = source->operate(id, "DELETE", "/queue", Value());
  } else if (send_queue) {
    Value body;
    if (send_body) {
      auto b = json::parse(*send_body, /*revive=*/true);
      if (!b.ok()) return usage("--body: not valid JSON: " + b.error().message);
      body = std::move(*b);
    }
    op = source->operate(id, "POST", "/queue", obj({{"name", *send_queue}, {"body", std::move(body)}}));
  } else if (replay) {
    op = source->operate(id, "POST", "/workflow/replay", obj({{"entryId", replay_from.value_or("")}}));
  }
  if (op) {
    if (!op->ok()) return report(cmd, op->error());
    const Value& v = **op;
    if (as_json) {
      std::cout << json::dump(v) << "\n";
    } else if (cmd == "conns") {
      std::vector<std::vector<std::string>> rows{{"ID", "PARAMS", "STATE", "SUBSCRIPTIONS", "HTTP"}};
      for (const auto& c : v.as_array())
        rows.push_back({field_text(c.find("id")), json::dump(*c.find("params")), json::dump(*c.find("state")),
                        json::dump(*c.find("subscriptions")), c.find("ephemeral")->as_bool() ? "yes" : "no"});
      print_rows(rows);
    } else if (cancel_id) {
      if (!v.find("cancelled")->as_bool())
        return report(cmd, make_error("schedule", "not_found", "No pending schedule " + *cancel_id + "."));
      std::cout << "cancelled schedule " << *cancel_id << "\n";
    } else if (purge) {
      std::cout << "purged " << field_text(v.find("purged")) << " message(s)\n";
    } else if (send_queue) {
      std::cout << "queued message " << field_text(v.find("id")) << " on `" << *send_queue << "`\n";
    } else {
      std::cout << "replaying the workflow" << (replay_from && !replay_from->empty() ? " from `" + *replay_from + "`" : "")
                << " (" << field_text(v.find("erased")) << " history entries erased)\n";
    }
    if (cancel_id && !v.find("cancelled")->as_bool()) return kFailed;
    return kOk;
  }
  if (parsed_state) {
    auto r = *source->set_state(id, *parsed_state);
    if (!r.ok()) return report(cmd, r.error());
    std::cout << json::dump(*r) << "\n";
    return kOk;
  }
  if (by_name_and_key) {
    // The actor of (namespace,) name and key: the listing narrowed by the
    // key as a prefix, then the exact key.
    inspect::ActorFilter f = filter;
    f.name = by_name;
    f.key_prefix = *by_key;
    f.limit = 1000;
    std::vector<std::string> found;
    for (;;) {
      auto page = source->list(f);
      if (!page.ok()) return report(cmd, page.error());
      for (const auto& a : page->find("actors")->as_array())
        if (key_text(*a.find("key")) == serialize_key(deserialize_key(*by_key))) found.push_back(a.find("id")->as_string());
      const Value* c = page->find("cursor");
      if (!c || !c->is_string()) break;
      f.cursor = c->as_string();
    }
    if (found.empty())
      return report(cmd, make_error("actor", "not_found", "No `" + by_name + "` actor has the key " + *by_key + "."));
    if (found.size() > 1)
      return report(cmd, make_error("cli", "ambiguous", "Actors in several namespaces have that name and key; add --namespace."));
    id = found[0];
  }
  if (cmd != "ls") {
    const inspect::View view = kViews.at(cmd);
    auto v = source->view(id, view, cmd == "sql" ? sql_text : cmd == "queue" ? queue_limit.value_or("") : kv_prefix);
    if (!v.ok()) return report(cmd, v.error());
    if (as_json)
      std::cout << json::dump(*v) << "\n";
    else
      print_view(view, *v);
    return kOk;
  }

  Array all;
  if (!paged) filter.limit = 1000;
  for (;;) {
    auto page = source->list(filter);
    if (!page.ok()) return report(cmd, page.error());
    const Value* actors = page->find("actors");
    const Value* cursor = page->find("cursor");
    if (!actors || !actors->is_array()) return report(cmd, make_error("cli", "bad_response", "No `actors` array."));
    for (const auto& a : actors->as_array()) all.push_back(a);
    const bool more = cursor && cursor->is_string();
    if (paged) {
      if (more) std::cerr << "next cursor: " << cursor->as_string() << "\n";
      break;
    }
    if (!more) break;
    filter.cursor = cursor->as_string();
  }
  if (as_json)
    std::cout << json::dump(Value(std::move(all))) << "\n";
  else
    print_table(all);
  return kOk;
}

}  // namespace anvil::tools

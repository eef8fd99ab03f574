// `anvil events ...`: the GrowQR event operator commands, over a running
// node's routes (docs/growqr.md, "Replay contract").
//   anvil events replay --status failed|unresolved [--since ISO] [--dry-run] [--limit N]
//   anvil events dlq [--since ISO] [--limit N]
//   anvil events redrive DLQ_ID
// Common: --endpoint URL (ANVIL_ENDPOINT, default http://127.0.0.1:6420),
//         --token TOKEN (GROWQR_SERVICE_TOKEN). Prints the node's JSON answer;
//         exit 0 on 2xx, 1 otherwise (the error printed on stderr).
#include "tools/events_cli.hpp"

#include <cstdlib>
#include <future>
#include <iostream>
#include <optional>

#include "base/net/http_client.hpp"
#include "base/value/json.hpp"
#include "tools/cli_http.hpp"
#include "engine-api/http.hpp"

namespace anvil::tools {
namespace {

constexpr const char* kUsage = R"(Usage:
  anvil events replay --status failed|unresolved [--since ISO-8601] [--dry-run] [--limit N]
  anvil events dlq [--since ISO-8601] [--limit N]
  anvil events redrive DLQ_ID
Options: --endpoint URL [ANVIL_ENDPOINT, default http://127.0.0.1:6420]
         --token TOKEN  [GROWQR_SERVICE_TOKEN]
         --ca-file FILE trust these PEM certificates for https:// [ANVIL_CA_FILE]
)";

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

}  // namespace

int events_command(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  std::string endpoint = env_or("ANVIL_ENDPOINT", "http://127.0.0.1:6420");
  std::string token = env_or("GROWQR_SERVICE_TOKEN", "");
  std::string ca_file = env_or("ANVIL_CA_FILE", "");
  std::optional<std::string> status, since, limit, dlq_id;
  bool dry_run = false;
  const std::string& cmd = args[0];
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto next = [&]() -> std::optional<std::string> {
      if (i + 1 >= args.size()) return std::nullopt;
      return args[++i];
    };
    if (a == "--endpoint") {
      auto v = next();
      if (!v) return std::cerr << "anvil events: --endpoint needs a URL\n", 2;
      endpoint = *v;
    } else if (a == "--token") {
      auto v = next();
      if (!v) return std::cerr << "anvil events: --token needs a value\n", 2;
      token = *v;
    } else if (a == "--ca-file") {
      auto v = next();
      if (!v || v->empty()) return std::cerr << "anvil events: --ca-file needs a PEM file\n", 2;
      ca_file = *v;
    } else if (a == "--status") {
      if (!(status = next())) return std::cerr << "anvil events: --status needs failed|unresolved\n", 2;
    } else if (a == "--since") {
      if (!(since = next())) return std::cerr << "anvil events: --since needs an ISO-8601 instant\n", 2;
    } else if (a == "--limit") {
      if (!(limit = next())) return std::cerr << "anvil events: --limit needs a number\n", 2;
    } else if (a == "--dry-run") {
      dry_run = true;
    } else if (cmd == "redrive" && !dlq_id && a.rfind("--", 0) != 0) {
      dlq_id = a;
    } else {
      std::cerr << "anvil events: unknown option `" << a << "`\n\n" << kUsage;
      return 2;
    }
  }
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();

  net::HttpRequest req;
  req.headers.emplace_back("content-type", "application/json");
  if (!token.empty()) req.headers.emplace_back("authorization", "Bearer " + token);
  if (cmd == "replay") {
    if (!status || (*status != "failed" && *status != "unresolved")) {
      std::cerr << "anvil events replay: --status failed|unresolved is required\n";
      return 2;
    }
    Object body{{"status", *status}, {"dryRun", dry_run}};
    if (since) body.emplace_back("since", *since);
    if (limit) body.emplace_back("limit", static_cast<int64_t>(std::atoll(limit->c_str())));
    req.method = "POST";
    req.url = endpoint + "/events/replay";
    req.body = json::dump(Value(std::move(body)));
  } else if (cmd == "dlq") {
    req.method = "GET";
    req.url = endpoint + "/events/dlq";
    std::string q;
    if (since) q += "since=" + http::percent_encode(*since);
    if (limit) q += std::string(q.empty() ? "" : "&") + "limit=" + http::percent_encode(*limit);
    if (!q.empty()) req.url += "?" + q;
  } else if (cmd == "redrive") {
    if (!dlq_id) {
      std::cerr << "anvil events redrive: DLQ_ID is required\n";
      return 2;
    }
    req.method = "POST";
    req.url = endpoint + "/events/dlq/" + http::percent_encode(*dlq_id) + "/redrive";
    req.body = "{}";
  } else {
    std::cerr << "anvil events: unknown command `" << cmd << "`\n\n" << kUsage;
    return 2;
  }
  Result<net::HttpResponse> res = request_once(std::move(req), ca_file);
  if (!res.ok()) {
    const Error& e = res.error();
    if (e.metadata && e.metadata->find("body") && e.metadata->find("body")->is_string())
      std::cout << e.metadata->find("body")->as_string() << "\n";
    std::cerr << "anvil events " << cmd << ": " << e.qualified() << ": " << e.message << "\n";
    return 1;
  }
  std::cout << res->body << "\n";
  return 0;
}

}  // namespace anvil::tools

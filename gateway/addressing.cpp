#include "gateway/addressing.hpp"

#include <algorithm>
#include <array>
#include <vector>

#include "base/value/cbor.hpp"
#include "base/value/json.hpp"
#include "engine-api/http.hpp"

namespace anvil::gateway {
namespace {

Error guard_error(std::string code, std::string message) {
  return make_error("guard", std::move(code), std::move(message));
}

constexpr std::array<std::string_view, 10> kRvtParams = {
    "rvt-namespace", "rvt-method", "rvt-runner", "rvt-pool", "rvt-key",
    "rvt-input", "rvt-region", "rvt-crash-policy", "rvt-token", "rvt-skip-ready-wait"};

constexpr std::string_view kGateway = "/gateway";

}  // namespace

std::optional<Result<QueryAddress>> parse_query_address(std::string_view raw_query) {
  auto params = http::parse_query(raw_query);
  QueryAddress qa;
  bool any_rvt = false;
  std::vector<std::string> seen;
  std::string rest;
  for (const auto& p : params) {
    if (p.name.rfind("rvt-", 0) != 0) {
      if (!rest.empty()) rest += '&';
      rest += p.raw;
      continue;
    }
    any_rvt = true;
    if (std::find(kRvtParams.begin(), kRvtParams.end(), p.name) == kRvtParams.end())
      return Result<QueryAddress>(guard_error("query_unknown_param", "Unknown query parameter `" + p.name + "`."));
    if (std::find(seen.begin(), seen.end(), p.name) != seen.end())
      return Result<QueryAddress>(guard_error("query_duplicate_param", "Duplicate query parameter `" + p.name + "`."));
    seen.push_back(p.name);
    if (p.name == "rvt-namespace") qa.namespace_name = p.value;
    else if (p.name == "rvt-method") qa.method = p.value;
    else if (p.name == "rvt-runner" || p.name == "rvt-pool") qa.runner = p.value;
    else if (p.name == "rvt-key") qa.key = split_query_key(p.value);
    else if (p.name == "rvt-region") qa.region = p.value;
    else if (p.name == "rvt-crash-policy") qa.crash_policy = p.value;
    else if (p.name == "rvt-token") qa.token = p.value;
    else if (p.name == "rvt-input") {
      auto bytes = json::base64_decode(p.value);
      if (!bytes.ok())
        return Result<QueryAddress>(guard_error("query_invalid_base64_input", "`rvt-input` is not valid base64url."));
      auto v = cbor::decode(*bytes, cbor::Mode::Compat);
      if (!v.ok())
        return Result<QueryAddress>(guard_error("query_invalid_cbor_input", "`rvt-input` is not valid CBOR."));
      qa.input = std::move(*v);
    }
  }
  if (!any_rvt) return std::nullopt;
  if (qa.method != "get" && qa.method != "getOrCreate")
    return Result<QueryAddress>(guard_error("query_invalid_params", "`rvt-method` must be `get` or `getOrCreate`."));
  if (qa.method == "get") {
    for (std::string_view p : {"rvt-runner", "rvt-pool", "rvt-input", "rvt-region", "rvt-crash-policy"})
      if (std::find(seen.begin(), seen.end(), p) != seen.end())
        return Result<QueryAddress>(guard_error("query_get_disallowed_params",
                                                "`" + std::string(p) + "` is not allowed with rvt-method=get."));
  }
  qa.actor_query = std::move(rest);
  return Result<QueryAddress>(std::move(qa));
}

Result<GatewayPath> split_gateway_path(std::string_view path) {
  const bool under_gateway = path.substr(0, kGateway.size()) == kGateway &&
                             (path.size() == kGateway.size() || path[kGateway.size()] == '/');
  std::string_view rest = under_gateway ? path.substr(kGateway.size()) : std::string_view();
  if (rest.empty() || rest == "/") return make_error("api", "not_found", "The requested resource was not found");
  rest.remove_prefix(1);
  size_t slash = rest.find('/');
  GatewayPath out;
  out.segment = rest.substr(0, slash);
  out.actor_path = slash == rest.npos ? "/" : std::string(rest.substr(slash));
  return out;
}

Result<DirectAddress> parse_direct_segment(std::string_view segment) {
  size_t at = segment.find('@');
  auto id = http::percent_decode(segment.substr(0, at));
  if (!id) return make_error("actor", "invalid_request", "Malformed actor id in path.");
  DirectAddress out;
  out.actor_id = std::move(*id);
  if (at != segment.npos) {
    auto tok = http::percent_decode(segment.substr(at + 1));
    if (!tok) return make_error("actor", "invalid_request", "Malformed token in path.");
    out.token = std::move(*tok);
  }
  return out;
}

}  // namespace anvil::gateway

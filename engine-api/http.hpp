// Transport-neutral HTTP request/response used by the manager API and the
// gateway routes; the Beast server in gateway/ converts to and from these.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/value/error.hpp"
#include "base/value/value.hpp"

namespace anvil::http {

using Headers = std::vector<std::pair<std::string, std::string>>;  // names lowercased

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // raw (still percent-encoded) path, without the query
  std::string query;   // raw query without '?', "" when none
  Headers headers;
  std::string body;
  // The peer connected from this host (127.0.0.0/8, ::1): admin endpoints
  // without an admin token are served only to such peers (gateway/access.hpp).
  bool from_loopback = false;
  // The request's ray id (a sane `x-rivet-ray-id` of the client, else one
  // the router made): on the reply, and on the log lines of the turns the
  // request runs. Set by gateway::Router.
  std::string ray_id;

  std::optional<std::string_view> header(std::string_view lower_name) const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;

  void set_header(std::string name, std::string value);
  std::optional<std::string_view> header(std::string_view lower_name) const;
};

// Percent-decoding. `form` also turns '+' into ' ' (URLSearchParams).
// Returns nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s, bool form = false);
std::string percent_encode(std::string_view s);  // encodeURIComponent

struct QueryParam {
  std::string raw;  // the "k=v" text as received
  std::string name, value;  // form-decoded
};
// Splits a raw query on '&'; params with malformed escapes keep raw text.
std::vector<QueryParam> parse_query(std::string_view raw);
std::optional<std::string> query_value(const std::vector<QueryParam>& q, std::string_view name);

// Splits a raw path into segments ("/a/b" => {"a","b"}); no decoding.
std::vector<std::string_view> split_path(std::string_view path);

// A JSON response body (application/json).
Response json_response(int status, const Value& body);
// The spec's JSON error shape; status from http_status_for unless given;
// adds x-rivet-error: <group>.<code>.
Response error_response(const Error& e, int status = 0);

}  // namespace anvil::http

// Gateway addressing (gateway/addressing.hpp): the request target of an
// actor-gateway request, `/gateway/<id>[@token]/<actor path>?<query>` or
// `/gateway/<name>/…?rvt-…`. The input is the raw request target; it is
// split at the first '?' as the HTTP server does. Checks: rejections are
// clean Errors in the gateway's vocabulary; the non-rvt params are kept raw
// and in order; percent_decode(percent_encode(s)) == s.
#include "engine-api/http.hpp"
#include "gateway/addressing.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace anvil;
using namespace anvil::gateway;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::run([&] {
    std::string_view target = fuzz::text({data, size});
    size_t q = target.find('?');
    std::string_view path = target.substr(0, q);
    std::string_view query = q == target.npos ? std::string_view() : target.substr(q + 1);

    auto gp = split_gateway_path(path);
    if (!gp.ok()) {
      FUZZ_CHECK(gp.error().qualified() == "api.not_found");
    } else {
      FUZZ_CHECK(gp->segment.find('/') == std::string_view::npos);
      FUZZ_CHECK(!gp->actor_path.empty() && gp->actor_path[0] == '/');
      auto direct = parse_direct_segment(gp->segment);
      if (!direct.ok()) fuzz::check_invalid_request(direct.error());
      (void)http::split_path(gp->actor_path);
    }

    auto qa = parse_query_address(query);
    if (qa && !qa->ok()) {
      FUZZ_CHECK(qa->error().group == "guard" && !qa->error().message.empty(), qa->error().qualified());
    } else if (qa) {
      const QueryAddress& a = qa->value();
      FUZZ_CHECK(a.method == "get" || a.method == "getOrCreate");
      // The actor's own params: every non-rvt param, raw, in order.
      std::string rest;
      for (const auto& p : http::parse_query(query)) {
        if (p.name.rfind("rvt-", 0) == 0) continue;
        if (!rest.empty()) rest += '&';
        rest += p.raw;
      }
      FUZZ_CHECK(a.actor_query == rest);
    }

    auto decoded = http::percent_decode(target);
    std::string raw(target);
    auto back = http::percent_decode(http::percent_encode(raw));
    FUZZ_CHECK(back && *back == raw);
    if (decoded) FUZZ_CHECK(http::percent_decode(http::percent_encode(*decoded)) == decoded);
  });
}

// json::parse (HTTP bodies and WebSocket frames with encoding "json",
// x-rivet-conn-params, rivet_conn_params.*) and base64_decode (rvt-input,
// "$Uint8Array" payloads). Checks: rejection is actor.invalid_request; what
// parses re-encodes to text that parses again, and dump is a fixpoint after
// one cycle; values JSON can carry exactly come back equal.
#include "base/value/json.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace anvil;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::run([&] {
    std::string_view in = fuzz::text({data, size});
    for (bool revive : {true, false}) {
      auto v = json::parse(in, revive);
      if (!v.ok()) {
        fuzz::check_invalid_request(v.error());
        continue;
      }
      std::string once = json::dump(*v);
      auto back = json::parse(once, /*revive=*/true);
      FUZZ_CHECK(back.ok(), once);
      FUZZ_CHECK(json::dump(*back) == once, once);
      if (fuzz::json_exact(*v)) FUZZ_CHECK(*back == *v, once);
    }
    auto b = json::base64_decode(in);
    if (!b.ok()) {
      fuzz::check_invalid_request(b.error());
    } else {
      auto again = json::base64_decode(json::base64_encode(*b));
      FUZZ_CHECK(again.ok() && *again == *b);
      auto url = json::base64_decode(json::base64_encode(*b, /*url_safe=*/true));
      FUZZ_CHECK(url.ok() && *url == *b);
    }
  });
}

// ServicesFake: GrowQR's product services (interview, roleplay, resume, or
// any name) behind one loopback server, each under its own prefix, so a
// node is configured with e.g. INTERVIEW_SERVICE_URL = url("interview").
// The seeds give no payload shapes; this is the contract GrowQR's service
// actors speak (docs/growqr.md, "Service actors"):
//
//   POST <base>/configure  {userId, missionInstanceId?, config}
//                          -> 200 {configured: true, configId, config}
//   POST <base>/sessions   {userId, missionInstanceId?, options}
//                          -> 201 {sessionId, url}
//   POST <base>/review     {userId, missionInstanceId?, sessionId?, input}
//                          -> 200 {reviewId, score, feedback}
//   GET  <base>/health     -> 200 {ok: true}
//
// Every POST must carry an Idempotency-Key; the same key answers the first
// response again (a well-behaved service deduplicates) and counts one
// effect. Missing key -> 400. effects(service, op) counts distinct keys,
// calls(service, op) every request; keys() lists what arrived, in order.
//
// What a product service publishes (docs/growqr.md "Events", "Legacy
// observer"), each once per effect, into a real Redis:
//   publish_events(url): XADD <stream> * event <GrowEvent JSON> with id
//     "<service>-evt-<n>", type "<service>.<op>.completed", serviceId,
//     operation, requestId and missionInstanceId from the request;
//   legacy_keys(url, prefix): SET <prefix>tasks:<taskId> {userId, action, service,
//     missionInstanceId?, requestId?} at once and responses:<taskId>
//     {status: "completed", result} after it (or, while hold_responses(true),
//     on release_responses()); forget_tasks() DELs the tasks:* keys (a
//     legacy service's own cleanup or TTL).
//
// Faults: down() answers 503 (with Retry-After: 1) to everything until up();
// refuse() closes the listener (connection refused) until up() reopens it
// on the same port; fail_next(n, status).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/value/value.hpp"
#include "tests/fakes/fake_http.hpp"

namespace anvil::fakes {

class ServicesFake {
 public:
  ServicesFake();
  ~ServicesFake();

  // "http://127.0.0.1:<port>/<service>"
  std::string url(const std::string& service) const;

  void down();
  void refuse();
  void up();
  void fail_next(int n, int status = 500);

  int calls(const std::string& service, const std::string& op) const;
  int effects(const std::string& service, const std::string& op) const;
  std::vector<std::string> keys() const;
  // The last body received for (service, op), or null.
  Value last_body(const std::string& service, const std::string& op) const;

  void publish_events(std::string redis_url, std::string stream = "grow:events");
  void legacy_keys(std::string redis_url, std::string key_prefix = "");
  void hold_responses(bool hold);
  void release_responses();
  void forget_tasks();
  std::vector<std::string> task_ids() const;  // legacy tasks written, in order

 private:
  FakeResponse handle(const RecordedRequest& req);
  void publish(const std::string& service, const std::string& op, const Value& body, const Value& out,
               const std::string& n);  // with mu_ held
  void listen(uint16_t port);

  mutable std::mutex mu_;
  bool down_ = false;                                  // GUARDED_BY(mu_)
  int fail_left_ = 0, fail_status_ = 500;              // GUARDED_BY(mu_)
  std::map<std::string, int> calls_;                   // GUARDED_BY(mu_) "service/op"
  std::map<std::string, std::string> first_response_;  // GUARDED_BY(mu_) "service/op/key" -> body
  std::map<std::string, int> effects_;                 // GUARDED_BY(mu_)
  std::map<std::string, Value> last_body_;             // GUARDED_BY(mu_)
  std::vector<std::string> keys_;                      // GUARDED_BY(mu_)
  int next_id_ = 1;                                    // GUARDED_BY(mu_)
  std::string events_url_, events_stream_, legacy_url_, legacy_prefix_;  // GUARDED_BY(mu_)
  bool hold_ = false;                                  // GUARDED_BY(mu_)
  std::vector<std::pair<std::string, std::string>> held_;  // GUARDED_BY(mu_) taskId -> response JSON
  std::vector<std::string> task_ids_;                  // GUARDED_BY(mu_)
  uint16_t port_ = 0;
  std::unique_ptr<FakeHttpServer> server_;  // null while refusing
};

}  // namespace anvil::fakes

// Envoy mode: this node joins a Rivet Engine as a runner ("envoy") and hosts
// the actors the engine places on it (docs/envoy.md). One WebSocket to the
// engine's `/envoys/connect` carries the envoy protocol v8
// (gateway/codec/envoy.hpp):
//
// - after the engine's Init the node sends Metadata naming its actor types;
//   it answers every Ping with a Pong;
// - CommandStartActor adopts the engine's actor (its id, key, input and
//   create time) into the local runtime and reports Running;
//   CommandStopActor puts it to sleep (or destroys it) and reports Stopped.
//   Commands are handled in order per actor, acknowledged once handled, and
//   a command replayed after a reconnect is not handled twice;
// - events carry a per-(actor, generation) index, are kept until the engine
//   acknowledges them and are sent again after a reconnect;
// - HTTP requests arriving through the engine's tunnel are served by the
//   node's Router exactly as `/gateway/{actorId}/…` requests on its own
//   port (actions, raw onRequest, inspector), and answered through the
//   tunnel; request bodies may arrive streamed, in chunks;
// - WebSockets arriving through the tunnel (the connection protocol's
//   `/connect` and raw `/websocket/…`) are relayed over a local socket to
//   the node's own WebSocket gateway, message for message, both ways;
// - drain(): ToRivetStopping, after which the engine moves every actor away
//   (CommandStopActor GoingAway), then the socket closes.
//
// The connection is re-opened with backoff whenever it drops. Each process
// uses a fresh envoy key unless one is given, so a restarted node is never
// sent traffic for actors it no longer hosts.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include "base/value/asio.hpp"
#include "base/net/url.hpp"
#include "gateway/codec/envoy.hpp"
#include "storage/commit_pipeline.hpp"
#include "gateway/router.hpp"
#include "runtime/runtime.hpp"

namespace anvil::gateway {

struct EnvoyOptions {
  std::string engine_url;  // http(s)://host:port of the engine's guard (its public port)
  std::string ca_file;     // https: a PEM bundle trusted besides the system's CAs
  std::string token;       // the engine's admin token ("" when it has none)
  std::string namespace_name = "default";
  std::string pool = "default";  // the runner config (pool) this node serves
  std::string envoy_key;         // "" = a random key per process
  uint32_t version = 1;          // deployment version (the engine prefers the highest)
  std::chrono::milliseconds reconnect_min{100}, reconnect_max{5'000};
  size_t max_message_bytes = 64 * 1024 * 1024;  // largest frame taken from the engine
  // WebSockets through the tunnel are relayed to this node's own plain
  // HTTP listener on 127.0.0.1 (main.cpp starts one for the envoy), so they
  // run the gateway's WebSocket code unchanged. 0: refused (close 1011).
  uint16_t local_port = 0;
};

// The actors the engine runs on this node now, shared with the runtime
// before it loads (Runtime::set_host_hooks via hooks()): only these may be
// woken, and the envoy hears when one of them stops on its own (idle
// sleep, ctx.sleep(), ctx.destroy()). Thread-safe.
class HostedActors : public std::enable_shared_from_this<HostedActors> {
 public:
  bool contains(const std::string& actor_id) const;
  void add(const std::string& actor_id);
  void remove(const std::string& actor_id);
  size_t size() const;
  // The listener of stops (set by the envoy; none before).
  void set_listener(std::function<void(const std::string& actor_id, bool destroyed)> fn);
  HostHooks hooks();  // for Runtime::set_host_hooks; keeps this object alive

  static std::shared_ptr<HostedActors> make() { return std::shared_ptr<HostedActors>(new HostedActors()); }

 private:
  HostedActors() = default;
  mutable std::mutex mu_;
  std::unordered_set<std::string> ids_;
  std::function<void(const std::string&, bool)> listener_;
};

class Envoy;

// The commit pipeline's second stage in envoy mode (storage/commit_pipeline.hpp
// Replicator): every batch's actor rows go to the engine's actor KV
// (gateway/envoy_kv.hpp) before the batch counts as durable. Made before
// the runtime loads (the pipeline takes it before its first batch); the
// envoy attaches once made. Without an attached, connected envoy a batch
// with actor rows fails (envoy.not_connected) and its turn reports an error.
class EnvoyReplicator : public storage::Replicator {
 public:
  explicit EnvoyReplicator(const storage::Store& store) : store_(store) {}
  void attach(std::weak_ptr<Envoy> envoy);
  void replicate(std::vector<Item> items,
                 std::function<void(std::vector<std::pair<uint64_t, Error>>)> done) override;

 private:
  const storage::Store& store_;
  std::mutex mu_;
  std::weak_ptr<Envoy> envoy_;
};

class Envoy : public std::enable_shared_from_this<Envoy> {
 public:
  // Checks the options (the URL http:// or https:// with a host and no path;
  // the key 3–128 identifier characters; a readable CA file); envoy.invalid_config
  // otherwise.
  // `hosted`: the object whose hooks() the runtime was given before load().
  static Result<std::shared_ptr<Envoy>> make(asio::io_context& io, Runtime& rt, Router& router,
                                             std::shared_ptr<HostedActors> hosted, EnvoyOptions opts);
  ~Envoy();

  // Connects and keeps the connection up until stop()/drain().
  void start();
  // Graceful drain: tells the engine this node is stopping, waits until the
  // engine has stopped every actor hosted here (or `bound` passed), then
  // closes the connection.
  asio::awaitable<void> drain(std::chrono::milliseconds bound);
  // Closes the connection at once (actors stay as they are locally).
  void stop();

  const std::string& envoy_key() const { return opts_.envoy_key; }
  bool connected() const { return connected_.load(); }
  size_t hosted_actors() const { return hosted_set_->size(); }
  // Prometheus text: connection state, reconnects, commands, events, tunnel requests.
  std::string metrics_text() const;

 private:
  friend class EnvoyReplicator;
  struct Impl;
  Envoy(asio::io_context& io, Runtime& rt, Router& router, std::shared_ptr<HostedActors> hosted, EnvoyOptions opts,
        net::Url url);
  asio::awaitable<void> drain_on_strand(std::shared_ptr<Envoy> self, std::chrono::milliseconds bound);

  EnvoyOptions opts_;
  std::shared_ptr<HostedActors> hosted_set_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> connected_{false};
};

}  // namespace anvil::gateway

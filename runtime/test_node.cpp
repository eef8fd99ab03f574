// Test support: the storage side of testing::Node (see test_node.hpp).
#include "runtime/test_node.hpp"

#include "storage/commit_pipeline.hpp"
#include "storage/store.hpp"

namespace anvil::testing {

Node::Node(const std::string& dir, const Registry& registry, std::shared_ptr<rocksdb::FileSystem> fs,
           std::optional<net::ClientOptions> http) {
  auto s = storage::Store::open({dir, true, std::move(fs)});
  if (!s.ok()) throw std::runtime_error(s.error().message);
  store_ = std::move(s.value());
  pipeline_ = std::make_unique<storage::CommitPipeline>(*store_, io_.get_executor(), std::chrono::milliseconds(50));
  rt_ = std::make_unique<Runtime>(io_, *store_, *pipeline_, registry);
  if (http) enable_http(std::move(*http));
  auto st = rt_->load();
  if (!st.ok()) throw std::runtime_error(st.error().message);
  for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
}

void Node::halt() {
  work_.reset();
  io_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

Node::~Node() {
  halt();
  rt_.reset();
  http_.reset();
  pipeline_.reset();
  store_.reset();
}

}  // namespace anvil::testing

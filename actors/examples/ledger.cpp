// Example actor for the KV API: a ledger of string entries kept in actor KV
// (not in state), plus a vars-based cache counter that resets on every wake.
#include "actors/examples/examples.hpp"

namespace anvil::actors {
namespace {

Result<std::string> string_arg(const Array& args, size_t i, const char* what) {
  if (i >= args.size() || !args[i].is_string())
    return make_error("actor", "invalid_request", std::string(what) + " must be a string");
  return args[i].as_string();
}

}  // namespace

ActorDefinition ledger_actor() {
  ActorDefinition def("ledger");
  def.initial_state(obj({{"writes", 0}}))
      .create_vars([](ActorContext&) -> Result<Value> { return obj({{"reads", 0}}); })
      .action("put",
              [](ActionContext& c, const Array& args) -> Result<Value> {
                auto key = string_arg(args, 0, "key");
                auto value = string_arg(args, 1, "value");
                if (!key.ok()) return key.error();
                if (!value.ok()) return value.error();
                if (auto st = c.kv_put(*key, *value); !st.ok()) return st.error();
                Value& w = c.mutate_state()["writes"];
                w = w.as_int() + 1;
                return w;
              })
      .action("get",
              [](ActionContext& c, const Array& args) -> Result<Value> {
                auto key = string_arg(args, 0, "key");
                if (!key.ok()) return key.error();
                Value& reads = c.vars()["reads"];
                reads = (reads.is_int() ? reads.as_int() : 0) + 1;
                auto v = c.kv_get(*key);
                if (!v.ok()) return v.error();
                return *v ? Value(**v) : Value();
              })
      .action("delete",
              [](ActionContext& c, const Array& args) -> Result<Value> {
                auto key = string_arg(args, 0, "key");
                if (!key.ok()) return key.error();
                if (auto st = c.kv_delete(*key); !st.ok()) return st.error();
                return true;
              })
      .action("list",
              [](ActionContext& c, const Array& args) -> Result<Value> {
                std::string prefix = args.empty() || !args[0].is_string() ? "" : args[0].as_string();
                auto entries = c.kv_list_prefix(prefix, {});
                if (!entries.ok()) return entries.error();
                Object out;
                for (auto& [k, v] : *entries) out.emplace_back(k, v);
                return Value(std::move(out));
              })
      .action("reads", [](ActionContext& c, const Array&) -> Result<Value> { return c.vars()["reads"]; });
  return def;
}

void register_examples(Registry& registry) { registry.add(ledger_actor()); }

}  // namespace anvil::actors

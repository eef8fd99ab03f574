#include "actors/growqr/app.hpp"

#include "anvil_migrations/growqr.hpp"

namespace anvil::growqr {

AppDefinition app() {
  AppDefinition a("growqr");
  a.needs_postgres().migrations("growqr", &pg::embedded::growqr());
  add_missions(a);
  add_workflows(a);
  add_events(a);
  add_agent(a);
  add_conversations(a);
  add_home(a);
  add_memory(a);
  add_subagents(a);
  add_services(a);
  add_environment(a);
  add_auth(a);  // last: attaches ownership to the user-keyed types added above
  return a;
}

}  // namespace anvil::growqr

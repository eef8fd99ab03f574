#include "actors/growqr/memory/memory_store.hpp"

#include <cctype>

#include "actors/growqr/missions/app_util.hpp"

namespace anvil::growqr {

std::unique_ptr<MemoryStore> make_gitea_memory_store(std::string url, std::string token, std::string owner,
                                                     std::string repo, std::string email_domain);
std::unique_ptr<MemoryStore> make_local_memory_store(std::string git_dir);

std::string memory_owner(const std::string& user_id) {
  std::string base;
  for (char ch : user_id) {
    if (base.size() >= 24) break;
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c)) base += static_cast<char>(std::tolower(c));
    else if (!base.empty() && base.back() != '-') base += '-';
  }
  while (!base.empty() && base.back() == '-') base.pop_back();
  if (base.empty()) base = "user";
  return base + "-" + sha256_hex(user_id).substr(0, 8);
}

Result<std::unique_ptr<MemoryStore>> make_memory_store(const ActorContext& c, const std::string& user_id) {
  const std::string repo = c.config("GITEA_MEMORY_REPO").value_or("growqr-memory");
  if (auto url = c.config("GITEA_URL"); url && !url->empty()) {
    auto token = c.config("GITEA_TOKEN");
    if (!token || token->empty())
      return make_error("memory", "not_configured", "GITEA_URL is set but GITEA_TOKEN (an admin token) is not.");
    std::string base = *url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    return make_gitea_memory_store(base, *token, memory_owner(user_id), repo,
                                   c.config("GITEA_EMAIL_DOMAIN").value_or("growqr.local"));
  }
  std::string env = c.config("APP_ENV").value_or(c.config("GROWQR_ENV").value_or(""));
  if (!env.empty() && env != "development" && env != "test")
    return make_error("memory", "not_configured",
                      "Long-term memory needs GITEA_URL and GITEA_TOKEN outside development (APP_ENV=" + env + ").");
  std::string dir = c.config("GROWQR_MEMORY_DIR").value_or("");
  if (dir.empty()) {
    auto data = c.config("ANVIL_DATA_DIR");
    if (!data || data->empty())
      return make_error("memory", "not_configured", "Neither GITEA_URL, GROWQR_MEMORY_DIR nor ANVIL_DATA_DIR is set.");
    dir = *data + "/growqr/memory";
  }
  return make_local_memory_store(dir + "/" + memory_owner(user_id) + ".git");
}

}  // namespace anvil::growqr

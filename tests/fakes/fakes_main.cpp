// anvil-fakes: the local fakes of external systems as one process, for tests
// written in other languages (the Node end-to-end and browser tests).
//
//   anvil-fakes [--anthropic] [--anthropic-rules FILE.json] [--anthropic-latency-ms N] [--opencode]
//               [--opencode-port N] [--github] [--github-port N] [--github-dir DIR]
//               [--github-webhook URL] [--github-secret S] [--github-token T]
//               [--github-repo owner/name]... [--until-signal]
//
// Starts the fakes asked for on 127.0.0.1 (ephemeral ports), prints one JSON
// line naming their base URLs, e.g. {"anthropic":"http://127.0.0.1:40123/"},
// ({"opencode": "http://127.0.0.1:40124"} with --opencode), and serves
// until stdin closes or SIGTERM/SIGINT arrives. `--opencode-port N` serves
// the OpenCode fake on that port (what the process sandbox provider starts,
// one per user); `--until-signal` ignores stdin (a child started with stdin
// on /dev/null) and serves until SIGTERM/SIGINT.
//
// --github (implied by any --github-* flag) serves the GitHub fake
// (github_fake.hpp): {"github": "http://127.0.0.1:P"} is the API base, and
// {"githubDir": DIR} where its bare repositories live (--github-dir, or a
// fresh temporary directory removed at exit). --github-repo owner/name
// (repeatable) creates a repository with one commit on main; webhooks go
// to --github-webhook signed with --github-secret; --github-token makes
// the API and git require that token.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <unistd.h>

#include "base/value/json.hpp"
#include "tests/fakes/anthropic_fake.hpp"
#include "tests/fakes/github_fake.hpp"
#include "tests/fakes/opencode_fake.hpp"

using namespace anvil;

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

int usage(const std::string& why) {
  std::cerr << "anvil-fakes: " << why
            << "\nusage: anvil-fakes [--anthropic] [--anthropic-rules FILE.json] [--anthropic-latency-ms N] "
               "[--opencode] [--opencode-port N] [--github] [--github-port N] [--github-dir DIR] "
               "[--github-webhook URL] [--github-secret S] [--github-token T] [--github-repo owner/name]... "
               "[--until-signal]\n"
               "  --github            serve the GitHub REST + git smart HTTP fake (webhooks on ref changes)\n"
               "  --github-port N     its port (default: ephemeral)\n"
               "  --github-dir DIR    where its bare repositories live (default: a temporary directory)\n"
               "  --github-webhook U  POST webhooks (push, create, delete, pull_request) to U\n"
               "  --github-secret S   sign them: X-Hub-Signature-256 = sha256=HMAC-SHA256(S, body)\n"
               "  --github-token T    require Authorization: Bearer|token T (git: Basic auth, password T)\n"
               "  --github-repo O/N   create repository O/N with one commit on main (repeatable)\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bool anthropic = false, opencode = false, until_signal = false;
  int opencode_port = 0;
  std::string rules_file;
  int latency_ms = 0;
  bool github = false;
  int github_port = 0;
  fakes::GithubFake::Options github_options;
  std::vector<std::string> github_repos;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--anthropic") {
      anthropic = true;
    } else if (a == "--anthropic-rules") {
      const char* v = value();
      if (!v) return usage("--anthropic-rules needs a file");
      rules_file = v;
      anthropic = true;
    } else if (a == "--anthropic-latency-ms") {
      const char* v = value();
      if (!v) return usage("--anthropic-latency-ms needs a number");
      latency_ms = std::atoi(v);
      anthropic = true;
    } else if (a == "--opencode") {
      opencode = true;
    } else if (a == "--opencode-port") {
      const char* v = value();
      opencode_port = v ? std::atoi(v) : 0;
      if (opencode_port <= 0 || opencode_port > 65535) return usage("--opencode-port needs a port number");
      opencode = true;
    } else if (a == "--github") {
      github = true;
    } else if (a == "--github-port") {
      const char* v = value();
      github_port = v ? std::atoi(v) : 0;
      if (github_port <= 0 || github_port > 65535) return usage("--github-port needs a port number");
      github = true;
    } else if (a == "--github-dir" || a == "--github-webhook" || a == "--github-secret" || a == "--github-token" ||
               a == "--github-repo") {
      const char* v = value();
      if (!v) return usage(a + " needs a value");
      if (a == "--github-dir") github_options.root_dir = v;
      if (a == "--github-webhook") github_options.webhook_url = v;
      if (a == "--github-secret") github_options.webhook_secret = v;
      if (a == "--github-token") github_options.token = v;
      if (a == "--github-repo") {
        const std::string repo = v;
        const auto slash = repo.find('/');
        if (slash == std::string::npos || slash == 0 || slash + 1 == repo.size())
          return usage("--github-repo needs owner/name");
        github_repos.push_back(repo);
      }
      github = true;
    } else if (a == "--until-signal") {
      until_signal = true;
    } else if (a == "--help" || a == "-h") {
      return usage("local fakes of external APIs");
    } else {
      return usage("unknown argument `" + a + "`");
    }
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);

  Value urls = Object{};
  std::unique_ptr<fakes::AnthropicFake> llm;
  if (anthropic) {
    fakes::AnthropicFake::Options o;
    o.record = false;
    llm = std::make_unique<fakes::AnthropicFake>(o);
    if (!rules_file.empty()) {
      std::ifstream in(rules_file);
      std::stringstream text;
      text << in.rdbuf();
      auto rules = json::parse(text.str(), false);
      if (!in || !rules.ok() || !rules->is_array()) return usage("cannot read a JSON array of rules from " + rules_file);
      llm->rules_from_json(*rules);
    }
    llm->latency(std::chrono::milliseconds(latency_ms));
    urls["anthropic"] = llm->url();
  }
  std::unique_ptr<fakes::OpenCodeFake> runtime;
  if (opencode) {
    runtime = std::make_unique<fakes::OpenCodeFake>(static_cast<uint16_t>(opencode_port));
    urls["opencode"] = runtime->url();
  }
  std::unique_ptr<fakes::GithubFake> gh;
  std::string github_temp;
  if (github) {
    if (github_options.root_dir.empty()) {
      char tmpl[] = "/tmp/anvil-github-fake-XXXXXX";
      if (!::mkdtemp(tmpl)) return usage("cannot create a temporary directory for --github");
      github_options.root_dir = github_temp = tmpl;
    }
    gh = std::make_unique<fakes::GithubFake>(github_options);
    gh->start(static_cast<uint16_t>(github_port));
    for (const auto& repo : github_repos) {
      const auto slash = repo.find('/');
      auto st = gh->create_repo(repo.substr(0, slash), repo.substr(slash + 1));
      if (!st.ok()) return usage("cannot create " + repo + ": " + st.error().message);
    }
    urls["github"] = gh->base_url();
    urls["githubDir"] = std::filesystem::absolute(github_options.root_dir).string();
  }
  std::cout << json::dump(urls) << std::endl;

  // Until stdin closes (the test that started us ended) or a signal.
  while (!g_stop) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    const int n = until_signal ? (::poll(nullptr, 0, 200), 0) : ::poll(&p, 1, 200);
    if (n > 0 && !until_signal) {
      char buf[256];
      if (::read(STDIN_FILENO, buf, sizeof buf) <= 0) break;
    }
  }
  if (gh) gh->stop();
  if (!github_temp.empty()) std::filesystem::remove_all(github_temp);
  return 0;
}

// anvil-fakes: the local fakes of external systems as one process, for tests
// written in other languages (the Node end-to-end and browser tests).
//
//   anvil-fakes [--anthropic] [--anthropic-rules FILE.json] [--anthropic-latency-ms N] [--opencode]
//               [--opencode-port N] [--until-signal]
//
// Starts the fakes asked for on 127.0.0.1 (ephemeral ports), prints one JSON
// line naming their base URLs, e.g. {"anthropic":"http://127.0.0.1:40123/"},
// ({"opencode": "http://127.0.0.1:40124"} with --opencode), and serves
// until stdin closes or SIGTERM/SIGINT arrives. `--opencode-port N` serves
// the OpenCode fake on that port (what the process sandbox provider starts,
// one per user); `--until-signal` ignores stdin (a child started with stdin
// on /dev/null) and serves until SIGTERM/SIGINT.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <poll.h>
#include <unistd.h>

#include "base/value/json.hpp"
#include "tests/fakes/anthropic_fake.hpp"
#include "tests/fakes/opencode_fake.hpp"

using namespace anvil;

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

int usage(const std::string& why) {
  std::cerr << "anvil-fakes: " << why
            << "\nusage: anvil-fakes [--anthropic] [--anthropic-rules FILE.json] [--anthropic-latency-ms N] "
               "[--opencode] [--opencode-port N] [--until-signal]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bool anthropic = false, opencode = false, until_signal = false;
  int opencode_port = 0;
  std::string rules_file;
  int latency_ms = 0;
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
  return 0;
}

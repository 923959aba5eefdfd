// outboxd-demo-receiver: the webhook endpoint of the README's demo.
//
//   outboxd-demo-receiver --secret S [--flaky-path /flaky] [--flaky-failures 2]
//
// Listens on 127.0.0.1 on a port the kernel picks and prints `listening on http://127.0.0.1:PORT`
// as its first line, so a script can read the port. Then prints one line per request: when, path,
// event, webhook-id, which attempt of that webhook-id it is, whether both signatures verify with
// S, and the status it answered. Never the body's data: it may hold personal data. Requests to the
// flaky path get 503 with Retry-After: 1 for the first N, then 200; every other path gets 200.
// Stops on SIGINT or SIGTERM.

#include <pthread.h>
#include <simdjson.h>

#include <atomic>
#include <cctype>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/receiver.hpp"

namespace {
using outboxd::test::reaction;
using outboxd::test::received_request;
using outboxd::test::receiver;

// How long the printer sleeps on the receiver's condition variable before looking at the stop
// flag: receiver has no way to wake a waiter from outside, so this bounds the exit latency.
constexpr auto kStopCheckEvery = std::chrono::milliseconds(200);
// Header values and event names are printed at most this long.
constexpr std::size_t kMaxShown = 80;

struct settings {
  std::string secret;
  std::string flaky_path = "/flaky";
  std::size_t flaky_failures = 2;
};

constexpr std::string_view kUsage =
    "usage: outboxd-demo-receiver --secret SECRET [--flaky-path PATH] [--flaky-failures N]\n"
    "  --secret          the webhook's secret, to verify both signatures\n"
    "  --flaky-path      path answering 503 (Retry-After: 1) at first (default /flaky)\n"
    "  --flaky-failures  how many 503s before it answers 200 (default 2)\n";

// Returns nullopt after printing why (or the usage for --help, with *exit_code 0).
std::optional<settings> parse_arguments(int argc, char** argv, int* exit_code) {
  settings parsed;
  bool have_secret = false;
  const auto fail = [&](const std::string& why) {
    std::fprintf(stderr, "outboxd-demo-receiver: %s\n%.*s", why.c_str(),
                 static_cast<int>(kUsage.size()), kUsage.data());
    *exit_code = 2;
    return std::nullopt;
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view name = argv[i];
    std::optional<std::string_view> value;
    if (const auto equals = name.find('='); name.starts_with("--") && equals != name.npos) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
    }
    if (name == "--help" || name == "-h") {
      std::printf("%.*s", static_cast<int>(kUsage.size()), kUsage.data());
      *exit_code = 0;
      return std::nullopt;
    }
    if (name != "--secret" && name != "--flaky-path" && name != "--flaky-failures") {
      return fail("unknown argument " + std::string(name));
    }
    if (!value) {
      if (i + 1 >= argc) return fail(std::string(name) + " needs a value");
      value = argv[++i];
    }
    if (name == "--secret") {
      parsed.secret = *value;
      have_secret = true;
    } else if (name == "--flaky-path") {
      if (!value->starts_with('/')) return fail("--flaky-path must start with /");
      parsed.flaky_path = *value;
    } else {
      const auto [end, ec] =
          std::from_chars(value->data(), value->data() + value->size(), parsed.flaky_failures);
      if (ec != std::errc() || end != value->data() + value->size()) {
        return fail("--flaky-failures needs a number");
      }
    }
  }
  if (!have_secret) return fail("--secret is required");
  return parsed;
}

// Header values, paths and event names come from the network: keep them to one short line.
std::string printable(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, kMaxShown)) {
    out.push_back(std::isprint(static_cast<unsigned char>(c)) != 0 ? c : '?');
  }
  if (text.size() > kMaxShown) out += "...";
  return out.empty() ? "-" : out;
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

// The body's top-level "event" (outboxd's bodies are {"event":…,"timestamp":…,…,"data":…}); the
// rest of the body is deliberately never looked at.
std::string event_of(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element document;
  if (parser.parse(body.data(), body.size()).get(document) != simdjson::SUCCESS) return "-";
  std::string_view event;
  if (document["event"].get_string().get(event) != simdjson::SUCCESS) return "-";
  return printable(event);
}

std::string header_or_dash(const received_request& request, const std::string& name) {
  const auto found = request.headers.find(name);
  return found == request.headers.end() ? "-" : printable(found->second);
}

// Wall-clock HH:MM:SS.mmm (UTC) of a request recorded on the steady clock.
std::string clock_text(std::chrono::steady_clock::time_point received_at) {
  const auto wall = std::chrono::system_clock::now() -
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(
                        std::chrono::steady_clock::now() - received_at);
  const std::time_t seconds = std::chrono::system_clock::to_time_t(wall);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(
                          wall.time_since_epoch() % std::chrono::seconds(1))
                          .count();
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::snprintf(text, sizeof text, "%02d:%02d:%02d.%03dZ", utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(millis));
  return text;
}

// Prints requests as they arrive, until `stopping` is set (then prints what is left).
class printer {
 public:
  printer(const receiver& source, const settings& config) : source_(source), config_(config) {}

  void run(const std::atomic<bool>& stopping) {
    while (!stopping.load()) {
      if (source_.wait_for_count(printed_ + 1, kStopCheckEvery)) print_new();
    }
    print_new();
  }

 private:
  void print_new() {
    const std::vector<received_request> all = source_.requests();
    for (; printed_ < all.size(); ++printed_) print(all[printed_]);
    std::fflush(stdout);
  }

  void print(const received_request& request) {
    const std::string_view path = path_of(request.target);
    // The answer follows from the script: the flaky path's first N requests got 503.
    int status = 200;
    if (path == config_.flaky_path && flaky_seen_++ < config_.flaky_failures) status = 503;

    std::string id = header_or_dash(request, "webhook-id");
    if (id == "-") id = header_or_dash(request, "x-ferriskey-delivery-id");
    const int attempt = id == "-" ? 0 : ++attempts_[id];

    const bool standard =
        outboxd::test::verify_standard_webhooks(config_.secret, request.headers, request.body);
    const bool ferriskey =
        outboxd::test::verify_ferriskey(config_.secret, request.headers, request.body);
    std::printf(
        "%s %s %s event=%s webhook-id=%s attempt=%d standard-webhooks: %s ferriskey: %s "
        "-> %d\n",
        clock_text(request.received_at).c_str(), printable(request.method).c_str(),
        printable(path).c_str(), event_of(request.body).c_str(), id.c_str(), attempt,
        standard ? "valid" : "INVALID", ferriskey ? "valid" : "INVALID", status);
  }

  const receiver& source_;
  const settings& config_;
  std::size_t printed_ = 0;
  std::size_t flaky_seen_ = 0;
  std::map<std::string, int> attempts_;
};

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  const std::optional<settings> config = parse_arguments(argc, argv, &exit_code);
  if (!config) return exit_code;

  // Blocked before any thread starts, so every thread inherits the mask and only sigwait below
  // ever sees these signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  // A shell starts background jobs with SIGINT ignored, and an ignored signal is discarded before
  // sigwait can take it: restore the default (never run, as the signals stay blocked).
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (const int error = pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr); error != 0) {
    std::fprintf(stderr, "outboxd-demo-receiver: pthread_sigmask failed (%d)\n", error);
    return 1;
  }

  try {
    receiver endpoint;
    endpoint.react(config->flaky_path,
                   std::vector<reaction>(
                       config->flaky_failures,
                       reaction{.status = 503, .body = "try again later", .retry_after = "1"}));
    std::printf("listening on %s\n", endpoint.url("").c_str());
    std::fflush(stdout);

    std::atomic<bool> stopping{false};
    printer out(endpoint, *config);
    std::thread printing([&] { out.run(stopping); });

    int received_signal = 0;
    const int error = sigwait(&stop_signals, &received_signal);
    stopping.store(true);
    printing.join();
    if (error != 0) {
      std::fprintf(stderr, "outboxd-demo-receiver: sigwait failed (%d)\n", error);
      return 1;
    }
    std::fprintf(stderr, "outboxd-demo-receiver: stopping on %s\n",
                 received_signal == SIGINT ? "SIGINT" : "SIGTERM");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "outboxd-demo-receiver: %s\n", e.what());
    return 1;
  }
  return 0;
}

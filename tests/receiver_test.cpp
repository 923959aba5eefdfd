#include "support/receiver.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <filesystem>
#include <optional>
#include <string>
#include <type_traits>

namespace outboxd::test {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

constexpr auto kClientTimeout = std::chrono::seconds(10);
constexpr auto kWait = milliseconds(10'000);

using response = http::response<http::string_body>;

// A small Beast client. Each step is an async operation run to completion on the client's own
// io_context, because Beast's stream deadlines (which bound every step here) only apply to async
// operations.
template <typename Stream>
class client {
 public:
  client() requires std::is_same_v<Stream, beast::tcp_stream> : stream_(io_) {}
  explicit client(ssl::context& context) : stream_(io_, context) {}

  Stream& stream() { return stream_; }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  beast::error_code connect(std::uint16_t port) {
    lowest().expires_after(kClientTimeout);
    const tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), port);
    return complete([&](auto handler) { lowest().async_connect(endpoint, handler); });
  }

  beast::error_code handshake() {
    lowest().expires_after(kClientTimeout);
    return complete(
        [&](auto handler) { stream_.async_handshake(ssl::stream_base::client, handler); });
  }

  beast::error_code send(const http::request<http::string_body>& request) {
    lowest().expires_after(kClientTimeout);
    return complete([&](auto handler) { http::async_write(stream_, request, handler); });
  }

  beast::error_code receive(response& into,
                            std::chrono::steady_clock::duration timeout = kClientTimeout) {
    lowest().expires_after(timeout);
    return complete([&](auto handler) { http::async_read(stream_, buffer_, into, handler); });
  }

  // Appends whatever raw bytes arrive next (at most 64 KiB) to `into`.
  beast::error_code read_some(std::string& into) {
    lowest().expires_after(kClientTimeout);
    std::array<char, 64 * 1024> chunk;
    std::size_t got = 0;
    const auto ec = complete([&](auto handler) {
      stream_.async_read_some(asio::buffer(chunk),
                              [&got, handler](beast::error_code e, std::size_t n) mutable {
                                got = n;
                                handler(e);
                              });
    });
    into.append(chunk.data(), got);
    return ec;
  }

 private:
  template <typename Start>
  beast::error_code complete(Start start) {
    std::optional<beast::error_code> result;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    io_.restart();
    io_.run();  // until the operation completes: the stream's deadline bounds it
    return result.value_or(asio::error::timed_out);
  }

  asio::io_context io_;
  Stream stream_;
  beast::flat_buffer buffer_;
};

using plain_client = client<beast::tcp_stream>;
using tls_client = client<ssl::stream<beast::tcp_stream>>;

http::request<http::string_body> post(std::string target, std::string body = "{}",
                                      bool keep_alive = true) {
  http::request<http::string_body> request{http::verb::post, target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.set(http::field::content_type, "application/json");
  request.body() = std::move(body);
  request.keep_alive(keep_alive);
  request.prepare_payload();
  return request;
}

// One request on a fresh connection.
response exchange(const receiver& r, std::string target) {
  plain_client c;
  response res;
  EXPECT_FALSE(c.connect(r.port()));
  EXPECT_FALSE(c.send(post(std::move(target))));
  EXPECT_FALSE(c.receive(res));
  return res;
}

bool is_reset_or_eof(beast::error_code ec) {
  return ec == asio::error::connection_reset || ec == asio::error::eof ||
         ec == http::error::end_of_stream;
}

TEST(receiver, keep_alive_serves_many_requests_on_one_connection) {
  receiver r;
  EXPECT_EQ(r.url("/hook"), "http://127.0.0.1:" + std::to_string(r.port()) + "/hook");
  EXPECT_FALSE(r.wait_for_count(1, milliseconds(20)));

  plain_client c;
  ASSERT_FALSE(c.connect(r.port()));
  for (int i = 0; i < 2; ++i) {
    auto request = post("/hook?n=" + std::to_string(i), "body " + std::to_string(i));
    request.set("X-Custom-Header", "Value " + std::to_string(i));
    ASSERT_FALSE(c.send(request));
    response res;
    ASSERT_FALSE(c.receive(res));
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), "ok");
    EXPECT_TRUE(res.keep_alive());
    EXPECT_EQ(res[http::field::content_type], "text/plain");
  }

  EXPECT_EQ(r.connections_accepted(), 1u);
  EXPECT_EQ(r.count(), 2u);
  EXPECT_EQ(r.count("/hook"), 2u);
  EXPECT_EQ(r.count("/elsewhere"), 0u);
  const auto seen = r.requests("/hook");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].method, "POST");
  EXPECT_EQ(seen[1].target, "/hook?n=1");
  EXPECT_EQ(seen[1].body, "body 1");
  ASSERT_TRUE(seen[1].headers.contains("x-custom-header"));
  EXPECT_EQ(seen[1].headers.at("x-custom-header"), "Value 1");
  EXPECT_EQ(seen[1].headers.at("content-type"), "application/json");
  EXPECT_LE(seen[0].received_at, seen[1].received_at);
}

TEST(receiver, answers_a_scripted_sequence_then_the_fallback_forever) {
  receiver r;
  r.react("/hook", {reaction::with_status(500),
                    reaction{.status = 503, .body = "busy", .retry_after = "7"}});
  r.react("/moved", {}, reaction{.status = 308, .body = "", .location = "/hook"});

  const response first = exchange(r, "/hook");
  EXPECT_EQ(first.result_int(), 500);
  EXPECT_EQ(first.body(), "status");
  EXPECT_EQ(first.count(http::field::retry_after), 0u);

  const response second = exchange(r, "/hook?attempt=2");  // the query does not change the path
  EXPECT_EQ(second.result_int(), 503);
  EXPECT_EQ(second.body(), "busy");
  EXPECT_EQ(second[http::field::retry_after], "7");

  for (int i = 0; i < 2; ++i) {
    const response later = exchange(r, "/hook");
    EXPECT_EQ(later.result_int(), 200);
    EXPECT_EQ(later.body(), "ok");
  }
  for (int i = 0; i < 2; ++i) {
    const response moved = exchange(r, "/moved");
    EXPECT_EQ(moved.result_int(), 308);
    EXPECT_EQ(moved[http::field::location], "/hook");
    EXPECT_EQ(moved.body(), "");
  }
  EXPECT_EQ(exchange(r, "/unscripted").result_int(), 200);
  EXPECT_EQ(r.count("/hook"), 4u);
  EXPECT_EQ(r.count("/moved"), 2u);
  EXPECT_EQ(r.count(), 7u);
}

TEST(receiver, honours_connection_close) {
  receiver r;
  plain_client c;
  ASSERT_FALSE(c.connect(r.port()));
  ASSERT_FALSE(c.send(post("/hook", "{}", /*keep_alive=*/false)));
  response res;
  ASSERT_FALSE(c.receive(res));
  EXPECT_FALSE(res.keep_alive());
  std::string rest;
  EXPECT_TRUE(is_reset_or_eof(c.read_some(rest)));
  EXPECT_TRUE(rest.empty());
}

TEST(receiver, reset_drops_the_connection_after_reading_the_request) {
  receiver r;
  r.react("/hook", {reaction{.what = reaction::kind::reset}});
  plain_client c;
  ASSERT_FALSE(c.connect(r.port()));
  ASSERT_FALSE(c.send(post("/hook")));
  response res;
  const auto ec = c.receive(res);
  EXPECT_TRUE(is_reset_or_eof(ec)) << ec.message();
  EXPECT_EQ(r.count("/hook"), 1u);
  // The script is used up: the next request is answered.
  EXPECT_EQ(exchange(r, "/hook").result_int(), 200);
}

TEST(receiver, hang_never_answers_and_destruction_does_not_wait_for_the_client) {
  std::optional<receiver> r(std::in_place);
  r->react("/hook", {reaction{.what = reaction::kind::hang}},
           reaction{.what = reaction::kind::hang});
  plain_client c;
  ASSERT_FALSE(c.connect(r->port()));
  ASSERT_FALSE(c.send(post("/hook")));
  ASSERT_TRUE(r->wait_for_count(1, kWait, "/hook"));
  response res;
  EXPECT_EQ(c.receive(res, milliseconds(300)), beast::error::timeout);

  // A second client is still connected and unanswered when the receiver goes away.
  plain_client still_waiting;
  ASSERT_FALSE(still_waiting.connect(r->port()));
  ASSERT_FALSE(still_waiting.send(post("/hook")));
  ASSERT_TRUE(r->wait_for_count(2, kWait, "/hook"));
  const auto start = std::chrono::steady_clock::now();
  r.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  // ...and learns that by the connection ending, without a response.
  EXPECT_TRUE(is_reset_or_eof(still_waiting.receive(res)));
}

TEST(receiver, dribble_sends_the_whole_response_slowly) {
  receiver r;
  constexpr milliseconds kInterval(5);
  r.react("/hook", {reaction{.what = reaction::kind::dribble,
                             .status = 202,
                             .body = "dribbled",
                             .dribble_interval = kInterval}});
  plain_client c;
  ASSERT_FALSE(c.connect(r.port()));
  ASSERT_FALSE(c.send(post("/hook")));
  const auto start = std::chrono::steady_clock::now();
  response res;
  ASSERT_FALSE(c.receive(res));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(res.result_int(), 202);
  EXPECT_EQ(res.body(), "dribbled");
  // The status line alone is more than 20 bytes, one interval each.
  EXPECT_GE(took, 20 * kInterval);
  // Keep-alive still holds after a dribbled response.
  ASSERT_FALSE(c.send(post("/hook")));
  ASSERT_FALSE(c.receive(res));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(r.connections_accepted(), 1u);
}

TEST(receiver, endless_streams_chunks_until_the_client_leaves) {
  receiver r;
  r.react("/hook", {reaction{.what = reaction::kind::endless}});
  plain_client c;
  ASSERT_FALSE(c.connect(r.port()));
  ASSERT_FALSE(c.send(post("/hook")));
  std::string received;
  constexpr std::size_t kEnough = 256 * 1024;
  // Each read returns at least one byte, so this ends; the cap only guards against a stall.
  for (int reads = 0; reads < 100'000 && received.size() < kEnough; ++reads) {
    ASSERT_FALSE(c.read_some(received));
  }
  EXPECT_GE(received.size(), kEnough);
  EXPECT_TRUE(received.starts_with("HTTP/1.1 200 OK\r\n")) << received.substr(0, 40);
  const auto header_end = received.find("\r\n\r\n");
  ASSERT_NE(header_end, std::string::npos);
  EXPECT_NE(received.substr(0, header_end).find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_EQ(received.substr(header_end + 4, 6), "4000\r\n");
}

TEST(receiver, tls_serves_a_client_that_trusts_its_ca) {
  std::string ca_file;
  {
    receiver r({.tls = true});
    EXPECT_EQ(r.url("/hook"), "https://127.0.0.1:" + std::to_string(r.port()) + "/hook");
    ca_file = r.ca_file();
    ASSERT_TRUE(std::filesystem::exists(ca_file));

    ssl::context context(ssl::context::tls_client);
    context.load_verify_file(ca_file);
    context.set_verify_mode(ssl::verify_peer);
    // The certificate names both; the name is checked against the certificate only.
    for (const char* name : {"127.0.0.1", "localhost"}) {
      tls_client c(context);
      c.stream().set_verify_callback(ssl::host_name_verification(name));
      ASSERT_FALSE(c.connect(r.port()));
      const auto ec = c.handshake();
      ASSERT_FALSE(ec) << name << ": " << ec.message();
      for (int i = 0; i < 2; ++i) {
        ASSERT_FALSE(c.send(post("/hook")));
        response res;
        ASSERT_FALSE(c.receive(res));
        EXPECT_EQ(res.result_int(), 200);
        EXPECT_EQ(res.body(), "ok");
      }
    }
    EXPECT_EQ(r.count("/hook"), 4u);
    EXPECT_EQ(r.connections_accepted(), 2u);
  }
  EXPECT_FALSE(std::filesystem::exists(ca_file)) << "the CA file outlived its receiver";
}

TEST(receiver, tls_fails_the_handshake_for_an_untrusting_or_misnamed_client) {
  receiver r({.tls = true});
  {
    ssl::context untrusting(ssl::context::tls_client);
    untrusting.set_verify_mode(ssl::verify_peer);
    tls_client c(untrusting);
    c.stream().set_verify_callback(ssl::host_name_verification("127.0.0.1"));
    ASSERT_FALSE(c.connect(r.port()));
    EXPECT_TRUE(c.handshake());
  }
  {
    ssl::context trusting(ssl::context::tls_client);
    trusting.load_verify_file(r.ca_file());
    trusting.set_verify_mode(ssl::verify_peer);
    tls_client c(trusting);
    c.stream().set_verify_callback(ssl::host_name_verification("127.0.0.2"));
    ASSERT_FALSE(c.connect(r.port()));
    EXPECT_TRUE(c.handshake());
  }
  EXPECT_EQ(r.count(), 0u);
}

// ---- signature checks

const std::map<std::string, std::string> kStandardHeaders{
    {"webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"},
    {"webhook-timestamp", "1614265330"},
    {"webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}};
constexpr std::string_view kStandardSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view kStandardBody = R"({"test": 2432232314})";

TEST(verify_standard_webhooks, accepts_the_reference_vector) {
  EXPECT_TRUE(verify_standard_webhooks(kStandardSecret, kStandardHeaders, kStandardBody));
}

TEST(verify_standard_webhooks, accepts_a_match_among_several_signatures) {
  auto headers = kStandardHeaders;
  headers["webhook-signature"] =
      "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + headers["webhook-signature"];
  EXPECT_TRUE(verify_standard_webhooks(kStandardSecret, headers, kStandardBody));
}

TEST(verify_standard_webhooks, rejects_changes_and_missing_headers) {
  EXPECT_FALSE(
      verify_standard_webhooks(kStandardSecret, kStandardHeaders, R"({"test": 2432232315})"));
  auto other_id = kStandardHeaders;
  other_id["webhook-id"] = "msg_other";
  EXPECT_FALSE(verify_standard_webhooks(kStandardSecret, other_id, kStandardBody));
  auto other_version = kStandardHeaders;
  other_version["webhook-signature"] = "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
  EXPECT_FALSE(verify_standard_webhooks(kStandardSecret, other_version, kStandardBody));
  EXPECT_FALSE(verify_standard_webhooks("whsec_bm90IHRoZSBrZXk=", kStandardHeaders, kStandardBody));
  for (const char* missing : {"webhook-id", "webhook-timestamp", "webhook-signature"}) {
    auto headers = kStandardHeaders;
    headers.erase(missing);
    EXPECT_FALSE(verify_standard_webhooks(kStandardSecret, headers, kStandardBody)) << missing;
  }
}

const std::map<std::string, std::string> kFerrisKeyHeaders{
    {"x-ferriskey-timestamp", "1700000000"},
    {"x-ferriskey-signature", "2f4dc2daabe94fe62ccc966f1649f0c78e521b4d54314bc0713a873e61cd3305"}};
constexpr std::string_view kFerrisKeyBody = R"({"event":"user.created"})";

TEST(verify_ferriskey, accepts_the_reference_vector) {
  EXPECT_TRUE(verify_ferriskey("a-secret", kFerrisKeyHeaders, kFerrisKeyBody));
}

TEST(verify_ferriskey, rejects_changes_and_missing_headers) {
  auto later = kFerrisKeyHeaders;
  later["x-ferriskey-timestamp"] = "1700000001";
  EXPECT_FALSE(verify_ferriskey("a-secret", later, kFerrisKeyBody));
  EXPECT_FALSE(verify_ferriskey("another-secret", kFerrisKeyHeaders, kFerrisKeyBody));
  EXPECT_FALSE(verify_ferriskey("a-secret", kFerrisKeyHeaders, R"({"event":"user.deleted"})"));
  for (const char* missing : {"x-ferriskey-timestamp", "x-ferriskey-signature"}) {
    auto headers = kFerrisKeyHeaders;
    headers.erase(missing);
    EXPECT_FALSE(verify_ferriskey("a-secret", headers, kFerrisKeyBody)) << missing;
  }
}

}  // namespace
}  // namespace outboxd::test

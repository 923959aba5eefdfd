// What a receiver sends back is untrusted: each hostile answer ends the attempt within its
// deadline and byte bounds, with the error code or status that says what happened. (The daemon
// end to end, its memory and the other endpoints meanwhile: hostile_receiver_pgtest.)
#include <gtest/gtest.h>

#include "support/hostile_receivers.hpp"
#include "support/post_harness.hpp"
#include "support/receiver.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

constexpr auto kDeadline = 1500ms;
constexpr std::size_t kMaxBody = 1000;

http::client_options hostile_options() {
  auto options = local_client_options();
  options.connect_timeout = 1000ms;
  options.request_timeout = kDeadline;
  options.max_response_bytes = kMaxBody;
  return options;
}

// One post to a receiver that answers with `what`; the receiver stays for inspection.
struct one_post {
  receiver server;
  http::response res;

  explicit one_post(const reaction& what) {
    server.react("/hook", {}, what);
    post_harness client(hostile_options());
    const auto req = make_request(server.url("/hook"));
    res = client.post(req);
  }
};

TEST(hostile_receiver, every_hostile_answer_ends_in_time_and_in_bounds_with_its_code) {
  receiver server;
  const auto cases = hostile_cases();
  for (const auto& c : cases) server.react("/" + c.name, {}, c.what);
  post_harness client(hostile_options());
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto req = make_request(server.url("/" + c.name));
    const auto res = client.post(req);
    std::printf("%-20s status %d, error %s (%s), %zu body bytes, %lld ms\n", c.name.c_str(),
                res.status, res.error_code.c_str(), res.error_detail.c_str(),
                res.body_prefix.size(), static_cast<long long>(res.duration.count()));
    EXPECT_EQ(res.error_code, c.error_code) << res.error_detail;
    EXPECT_EQ(res.status, c.status);
    EXPECT_LE(res.body_prefix.size(), kMaxBody);
    // Nothing outlives the deadline (plus scheduling slack); what needs no deadline ends well
    // before it.
    EXPECT_LT(res.duration, kDeadline + 500ms);
    if (c.ends_at_deadline) {
      EXPECT_GE(res.duration, kDeadline);
    } else {
      EXPECT_LT(res.duration, kDeadline);
    }
    // A connection that misbehaved is never pooled for the next attempt (a complete gzip answer
    // is a well-formed response: its connection may be reused).
    if (c.what.what != reaction::kind::respond) {
      EXPECT_EQ(client.client().idle_connections(), 0u);
    }
    client.client().close_idle();
  }
}

TEST(hostile_receiver, a_huge_or_endless_body_is_kept_up_to_the_limit_only) {
  const one_post p(reaction{.what = reaction::kind::huge_length});
  EXPECT_EQ(p.res.status, 200);
  EXPECT_EQ(p.res.body_prefix, std::string(kMaxBody, 'x'));
}

TEST(hostile_receiver, headers_that_never_end_are_a_protocol_error_at_the_head_limit) {
  const one_post p(reaction{.what = reaction::kind::endless_headers});
  EXPECT_EQ(p.res.error_code, "protocol");
  EXPECT_NE(p.res.error_detail.find("header limit"), std::string::npos) << p.res.error_detail;
}

TEST(hostile_receiver, a_gzip_body_is_recorded_raw_and_compression_is_never_asked_for) {
  const one_post p(reaction{.body = kGzipBody, .headers = {{"Content-Encoding", "gzip"}}});
  EXPECT_EQ(p.res.status, 200);
  EXPECT_EQ(p.res.body_prefix, kGzipBody);  // not inflated: a small body cannot become a big one
  ASSERT_EQ(p.server.count(), 1u);
  EXPECT_EQ(p.server.requests().front().headers.count("accept-encoding"), 0u);
}

TEST(hostile_receiver, interim_responses_are_capped) {
  receiver server;
  server.react("/few", {}, reaction{.what = reaction::kind::interim_flood, .interim_responses = 3});
  server.react("/many", {},
               reaction{.what = reaction::kind::interim_flood, .interim_responses = 1000});
  post_harness client(hostile_options());
  const auto few_req = make_request(server.url("/few"));
  const auto few = client.post(few_req);
  EXPECT_EQ(few.error_code, "") << few.error_detail;  // a handful is legal HTTP: skipped
  EXPECT_EQ(few.status, 200);
  const auto many_req = make_request(server.url("/many"));
  const auto many = client.post(many_req);
  EXPECT_EQ(many.error_code, "protocol");
  EXPECT_NE(many.error_detail.find("interim"), std::string::npos) << many.error_detail;
}

TEST(hostile_receiver, a_close_mid_response_is_a_reset_not_a_status) {
  const one_post p(reaction{.what = reaction::kind::truncate, .body = "half"});
  EXPECT_EQ(p.res.error_code, "reset") << p.res.error_detail;
  EXPECT_EQ(p.res.status, 0);
  EXPECT_NE(p.res.error_detail.find("partial message"), std::string::npos) << p.res.error_detail;
}

}  // namespace
}  // namespace outboxd::test

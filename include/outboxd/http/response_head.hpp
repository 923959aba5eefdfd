#pragma once

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <optional>
#include <string>

namespace outboxd::http {

// How the client reads a receiver's response. Everything in it is untrusted bytes, so the limits
// live here, in one place that the client and the response parser's fuzz target share.

// buffer_body: the client reads the body in bounded steps into its own buffer.
using response_parser = boost::beast::http::response_parser<boost::beast::http::buffer_body>;

// Interim 1xx responses skipped before the final one; a server sending more is broken.
inline constexpr int kMaxInterimResponses = 8;
// Status line and fields together. Receivers answer webhooks with a few headers; a head that does
// not end by here fails the attempt as a protocol error (header_limit), never buffered on.
inline constexpr std::size_t kMaxResponseHeadBytes = 16 * 1024;

// Applies the client's limits to a fresh parser: the head at most kMaxResponseHeadBytes, and no
// body limit in the parser because the client cuts the body at max_response_bytes itself.
void limit_response_parser(response_parser& parser);

// 100 Continue and friends precede the real answer. 101 is not one of them: a protocol switch
// outboxd never asked for is reported as the status.
bool is_interim_status(int status);

// What the client keeps from a final response's head.
struct response_head {
  int status = 0;
  std::optional<std::string> retry_after;  // verbatim
  std::optional<std::string> date;         // verbatim
};
response_head read_response_head(const response_parser::value_type& message);

}  // namespace outboxd::http

#include "outboxd/http/response_head.hpp"

namespace outboxd::http {

namespace bhttp = boost::beast::http;

void limit_response_parser(response_parser& parser) {
  parser.header_limit(static_cast<std::uint32_t>(kMaxResponseHeadBytes));
  parser.body_limit(boost::none);
}

bool is_interim_status(int status) { return status >= 100 && status < 200 && status != 101; }

response_head read_response_head(const response_parser::value_type& message) {
  response_head head;
  head.status = message.result_int();
  if (const auto found = message.find(bhttp::field::retry_after); found != message.end()) {
    head.retry_after = std::string(found->value());
  }
  if (const auto found = message.find(bhttp::field::date); found != message.end()) {
    head.date = std::string(found->value());
  }
  return head;
}

}  // namespace outboxd::http

// libFuzzer target: the bytes a receiver answers with, read as the webhook client reads them:
// Beast's response parser under the client's limits (limit_response_parser), interim 1xx
// responses skipped up to kMaxInterimResponses, the body cut at max_response_bytes, then
// Retry-After and Date parsed as the deliverer does and the body made storable text.
//
// Input: one byte choosing how many bytes each read returns (network reads split anywhere),
// then the response bytes.

#include "outboxd/http/response_head.hpp"

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/system/system_error.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "outboxd/json_text.hpp"
#include "outboxd/retry_policy.hpp"

namespace {

namespace bhttp = boost::beast::http;
using boost::system::error_code;

// The client's default --max-response-bytes.
constexpr std::size_t kMaxBody = 4096;

// A SyncReadStream over bytes in memory, `step` bytes per read, then end of stream: what a
// receiver that sends these bytes and closes looks like to the parser.
class memory_stream {
 public:
  memory_stream(std::string_view bytes, std::size_t step) : rest_(bytes), step_(step) {}

  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, error_code& ec) {
    ec = {};
    if (rest_.empty()) {
      ec = boost::asio::error::eof;
      return 0;
    }
    const auto copied = boost::asio::buffer_copy(
        buffers, boost::asio::buffer(rest_.data(), std::min(step_, rest_.size())));
    rest_.remove_prefix(copied);
    return copied;
  }
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers) {
    error_code ec;
    const auto read = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return read;
  }

 private:
  std::string_view rest_;
  std::size_t step_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = data[0] % 64 + 1;
  memory_stream stream(outboxd::fuzz::as_text(data + 1, size - 1), step);
  boost::beast::flat_buffer buffer;

  std::optional<outboxd::http::response_parser> parser;
  error_code ec;
  for (int interim = 0;; ++interim) {
    parser.emplace();
    outboxd::http::limit_response_parser(*parser);
    bhttp::read_header(stream, buffer, *parser, ec);
    if (ec) return 0;  // the attempt fails with protocol, reset or io
    const int status = parser->get().result_int();
    if (!outboxd::http::is_interim_status(status) ||
        interim + 1 >= outboxd::http::kMaxInterimResponses) {
      break;
    }
  }
  auto& message = parser->get();
  const auto head = outboxd::http::read_response_head(message);
  OUTBOXD_FUZZ_CHECK(head.status >= 0 && head.status <= 999);

  // The body in bounded steps, cut one byte past the limit, as the client reads it.
  std::string body;
  std::vector<char> scratch;
  while (!parser->is_done()) {
    const std::size_t room = kMaxBody - body.size();
    scratch.resize(std::min<std::size_t>(room + 1, 16 * 1024));
    message.body().data = scratch.data();
    message.body().size = scratch.size();
    bhttp::read(stream, buffer, *parser, ec);
    const std::size_t got = scratch.size() - message.body().size;
    body.append(scratch.data(), std::min(got, room));
    if (got > room) break;
    if (ec && ec != bhttp::error::need_buffer) break;
  }
  OUTBOXD_FUZZ_CHECK(body.size() <= kMaxBody);

  if (head.retry_after) {
    const auto receiver_now = head.date ? outboxd::parse_http_date(*head.date) : std::nullopt;
    const auto delay = outboxd::parse_retry_after(
        *head.retry_after, receiver_now.value_or(std::chrono::system_clock::now()));
    if (delay) OUTBOXD_FUZZ_CHECK(*delay >= std::chrono::milliseconds(0));
  }
  // The body prefix is stored in a text column: valid UTF-8 without NUL.
  const auto stored = outboxd::to_storable_text(body);
  OUTBOXD_FUZZ_CHECK(stored.find('\0') == std::string::npos);
  return 0;
}

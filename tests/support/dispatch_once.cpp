#include "support/dispatch_once.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "outboxd/wake_signal.hpp"

namespace outboxd::test {
namespace asio = boost::asio;

dispatch_result dispatch_once(const std::string& url, int batch_size) {
  asio::io_context io;
  wake_signal wake(io.get_executor());
  dispatcher once(io.get_executor(),
                  {.database = {.url = url, .application_name = "outboxd test dispatcher"},
                   .batch_size = batch_size},
                  wake);
  auto result = asio::co_spawn(io, once.dispatch_batch(), asio::use_future);
  io.run();
  return result.get();
}

}  // namespace outboxd::test

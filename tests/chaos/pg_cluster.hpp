#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace outboxd::chaos {

// A PostgreSQL cluster of the harness's own, in a temporary directory under /tmp, on a free
// loopback port: restarting it must not disturb the shared test server other tests use. As root
// the server programs run as the `postgres` user (they refuse root).
//
// synchronous_commit stays on: an immediate shutdown loses asynchronous commits a client already
// saw succeed, which would show up as lost events that outboxd never had. fsync and
// full_page_writes are off, since the operating system itself never crashes here.
class pg_cluster {
 public:
  pg_cluster();   // initdb and start; throws std::runtime_error with the server's log tail
  ~pg_cluster();  // immediate stop, directory removed
  pg_cluster(const pg_cluster&) = delete;
  pg_cluster& operator=(const pg_cluster&) = delete;

  std::uint16_t port() const { return port_; }
  // postgresql://postgres@127.0.0.1:PORT/DATABASE
  std::string url(const std::string& database = "postgres") const;

  enum class shutdown { fast, immediate };
  // pg_ctl restart -m fast|immediate, waiting until it accepts connections again. Throws if it
  // does not come back within a minute.
  void restart(shutdown mode);

 private:
  // Runs a server program (as the cluster's owner), output appended to the cluster's log.
  // Returns its exit status; kills it after `timeout`.
  int run(const std::vector<std::string>& command, std::chrono::seconds timeout) const;
  std::string log_tail() const;

  std::string bindir_;
  std::string dir_;
  std::uint16_t port_ = 0;
};

}  // namespace outboxd::chaos

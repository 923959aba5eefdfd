#pragma once

#include <condition_variable>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>

#include "outboxd/http/resolver.hpp"

namespace outboxd::test {

// A lookup function for http::resolver_options::lookup in place of getaddrinfo: "stuck.test"
// blocks until unstick() (at most 10 s), as getaddrinfo does for a name whose DNS never answers,
// then is 127.0.0.2; "missing.test" does not exist; any other name is 127.0.0.1. Counts lookups
// per name. Must outlive the resolvers using it; its destructor unsticks.
class scripted_lookup {
 public:
  scripted_lookup() = default;
  ~scripted_lookup();
  scripted_lookup(const scripted_lookup&) = delete;
  scripted_lookup& operator=(const scripted_lookup&) = delete;

  http::lookup_function function();
  std::size_t calls(const std::string& host);
  void unstick();

 private:
  std::mutex mutex_;
  std::condition_variable unstuck_;
  bool stuck_ = true;
  std::map<std::string, std::size_t> calls_;
};

}  // namespace outboxd::test

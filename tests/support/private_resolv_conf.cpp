#include "support/private_resolv_conf.hpp"

#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace outboxd::test {

std::string use_private_resolv_conf(const std::string& contents) {
  const auto failed = [](const std::string& step) { return step + ": " + std::strerror(errno); };
  std::string path = "/tmp/outboxd-resolv-XXXXXX";
  const int fd = ::mkstemp(path.data());
  if (fd < 0) return failed("mkstemp");
  ::close(fd);
  {
    std::ofstream file(path);
    file << contents;
    if (!file) return "cannot write " + path;
  }
  if (::unshare(CLONE_NEWNS) != 0) return failed("unshare(CLONE_NEWNS)");
  // Mounts are shared with the parent namespace by default (systemd): make ours private first.
  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return failed("making / a private subtree");
  }
  if (::mount(path.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0) {
    return failed("bind-mounting " + path + " over /etc/resolv.conf");
  }
  // The mount holds the file open; its name is no longer needed.
  ::unlink(path.c_str());
  return {};
}

}  // namespace outboxd::test

#include "chaos/pg_cluster.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace outboxd::chaos {
namespace fs = std::filesystem;

namespace {

// The newest installed server, as scripts/lib/postgres.sh picks it.
std::string newest_bindir() {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    if (fs::exists(entry.path() / "bin" / "pg_ctl")) found.push_back(entry.path() / "bin");
  }
  if (found.empty()) {
    throw std::runtime_error("no PostgreSQL server under /usr/lib/postgresql/*/bin");
  }
  std::sort(found.begin(), found.end(), [](const fs::path& a, const fs::path& b) {
    const auto major = [](const fs::path& p) {
      return std::stoi(p.parent_path().filename().string());
    };
    return major(a) < major(b);
  });
  return found.back().string();
}

// A port nothing listens on right now (the kernel's choice for port 0). Another process may take
// it before the server binds it; the caller retries then.
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace

pg_cluster::pg_cluster() : bindir_(newest_bindir()) {
  std::string pattern = "/tmp/outboxd-chaos-pg.XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  if (::geteuid() == 0) {
    const passwd* owner = ::getpwnam("postgres");
    if (owner == nullptr || ::chown(dir_.c_str(), owner->pw_uid, owner->pw_gid) != 0) {
      throw std::runtime_error("cannot hand " + dir_ + " to the postgres user");
    }
  }
  if (run({bindir_ + "/initdb", "-D", dir_ + "/data", "--auth=trust", "-U", "postgres",
           "--encoding=UTF8", "--locale=C"},
          std::chrono::seconds(120)) != 0) {
    throw std::runtime_error("initdb failed:\n" + log_tail());
  }
  for (int attempt = 0; attempt < 10; ++attempt) {
    port_ = free_port();
    const std::string settings = "-c listen_addresses=127.0.0.1 -c port=" + std::to_string(port_) +
                                 " -c unix_socket_directories=" + dir_ +
                                 " -c max_connections=300 -c shared_buffers=128MB"
                                 " -c fsync=off -c full_page_writes=off -c synchronous_commit=on";
    if (run({bindir_ + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/server.log", "-w", "-t",
             "60", "-o", settings, "start"},
            std::chrono::seconds(90)) == 0) {
      return;
    }
    run({bindir_ + "/pg_ctl", "-D", dir_ + "/data", "-m", "immediate", "-w", "stop"},
        std::chrono::seconds(60));
  }
  throw std::runtime_error("PostgreSQL did not start:\n" + log_tail());
}

pg_cluster::~pg_cluster() {
  run({bindir_ + "/pg_ctl", "-D", dir_ + "/data", "-m", "immediate", "-w", "-t", "60", "stop"},
      std::chrono::seconds(90));
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

std::string pg_cluster::url(const std::string& database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

void pg_cluster::restart(shutdown mode) {
  const char* how = mode == shutdown::fast ? "fast" : "immediate";
  if (run({bindir_ + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/server.log", "-m", how, "-w",
           "-t", "60", "restart"},
          std::chrono::seconds(90)) != 0) {
    throw std::runtime_error(std::string("pg_ctl restart -m ") + how + " failed:\n" + log_tail());
  }
}

int pg_cluster::run(const std::vector<std::string>& command, std::chrono::seconds timeout) const {
  std::vector<std::string> argv_storage;
  if (::geteuid() == 0) argv_storage = {"/usr/sbin/runuser", "-u", "postgres", "--"};
  argv_storage.insert(argv_storage.end(), command.begin(), command.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log = dir_ + "/programs.log";
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // The harness's working directory may be unreadable by `postgres`.
    if (::chdir(dir_.c_str()) != 0) ::_exit(126);
    if (log_fd >= 0) {
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (log_fd >= 0) ::close(log_fd);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return 128 + SIGKILL;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string pg_cluster::log_tail() const {
  std::string out;
  for (const char* name : {"/programs.log", "/server.log"}) {
    std::ifstream file(dir_ + name);
    std::stringstream content;
    content << file.rdbuf();
    const auto text = content.str();
    out += std::string("--- ") + name + "\n" +
           (text.size() > 4000 ? text.substr(text.size() - 4000) : text);
  }
  return out;
}

}  // namespace outboxd::chaos

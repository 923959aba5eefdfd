#include "support/dns_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

namespace outboxd::test {
namespace {

constexpr std::uint16_t kDnsPort = 53;
constexpr std::uint16_t kTypeA = 1;
constexpr std::size_t kHeaderBytes = 12;
constexpr std::uint32_t kAnswerTtlSeconds = 60;

struct question {
  std::string name;     // lower-case, no trailing dot
  std::size_t end = 0;  // offset just past QTYPE and QCLASS
  std::uint16_t type = 0;
};

std::uint16_t read16(const unsigned char* at) {
  return static_cast<std::uint16_t>((at[0] << 8) | at[1]);
}

void put16(std::vector<unsigned char>& out, std::uint16_t value) {
  out.push_back(static_cast<unsigned char>(value >> 8));
  out.push_back(static_cast<unsigned char>(value & 0xFF));
}

// The first question of a query (compression never appears in a question of a stub's query).
std::optional<question> parse_question(const unsigned char* packet, std::size_t size) {
  if (size < kHeaderBytes || read16(packet + 4) < 1) return std::nullopt;
  question q;
  std::size_t at = kHeaderBytes;
  for (;;) {
    if (at >= size) return std::nullopt;
    const std::size_t length = packet[at++];
    if (length == 0) break;
    if (length > 63 || at + length > size) return std::nullopt;
    if (!q.name.empty()) q.name += '.';
    for (std::size_t i = 0; i < length; ++i) {
      q.name += static_cast<char>(std::tolower(packet[at + i]));
    }
    at += length;
  }
  if (at + 4 > size) return std::nullopt;
  q.type = read16(packet + at);
  q.end = at + 4;
  return q;
}

}  // namespace

boost::asio::ip::address_v4 private_loopback_address() {
  const auto pid = static_cast<unsigned>(::getpid());
  return boost::asio::ip::address_v4({127, 53, static_cast<unsigned char>((pid >> 8) & 0xFF),
                                      static_cast<unsigned char>(1 + pid % 254)});
}

dns_server::dns_server(boost::asio::ip::address_v4 address,
                       std::map<std::string, boost::asio::ip::address_v4> answers,
                       std::set<std::string> silent)
    : answers_(std::move(answers)), silent_(std::move(silent)) {
  socket_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (socket_ < 0) {
    error_ = std::string("socket: ") + std::strerror(errno);
    return;
  }
  // The serving loop checks for shutdown this often.
  timeval wait{.tv_sec = 0, .tv_usec = 100'000};
  ::setsockopt(socket_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_port = htons(kDnsPort);
  local.sin_addr.s_addr = htonl(address.to_uint());
  if (::bind(socket_, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
    error_ = "bind " + address.to_string() + ":53: " + std::strerror(errno);
    ::close(socket_);
    socket_ = -1;
    return;
  }
  thread_ = std::thread([this] { serve(); });
}

dns_server::~dns_server() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  if (socket_ >= 0) ::close(socket_);
}

std::size_t dns_server::queries(const std::string& name) const {
  std::lock_guard lock(mutex_);
  const auto found = queries_.find(name);
  return found == queries_.end() ? 0 : found->second;
}

void dns_server::serve() {
  std::array<unsigned char, 512> packet{};
  while (!stopping_) {
    sockaddr_in peer{};
    socklen_t peer_size = sizeof peer;
    const auto got = ::recvfrom(socket_, packet.data(), packet.size(), 0,
                                reinterpret_cast<sockaddr*>(&peer), &peer_size);
    if (got <= 0) continue;  // the receive timeout, to look at stopping_
    const auto size = static_cast<std::size_t>(got);
    const auto q = parse_question(packet.data(), size);
    if (!q) continue;
    {
      std::lock_guard lock(mutex_);
      ++queries_[q->name];
    }
    if (silent_.contains(q->name)) continue;

    const auto found = answers_.find(q->name);
    const bool answer_a = found != answers_.end() && q->type == kTypeA;
    // Header: the query's id; QR, opcode 0, AA, the query's RD, RA; NOERROR or NXDOMAIN.
    std::vector<unsigned char> reply(packet.begin(), packet.begin() + static_cast<long>(q->end));
    reply[2] = static_cast<unsigned char>(0x84 | (packet[2] & 0x01));
    reply[3] = static_cast<unsigned char>(0x80 | (found == answers_.end() ? 3 : 0));
    reply[4] = 0;
    reply[5] = 1;  // one question
    reply[6] = 0;
    reply[7] = answer_a ? 1 : 0;
    std::fill(reply.begin() + 8, reply.begin() + 12, 0);  // no authority, no additional
    if (answer_a) {
      put16(reply, 0xC00C);  // the name: a pointer to the question's
      put16(reply, kTypeA);
      put16(reply, 1);  // class IN
      put16(reply, static_cast<std::uint16_t>(kAnswerTtlSeconds >> 16));
      put16(reply, static_cast<std::uint16_t>(kAnswerTtlSeconds & 0xFFFF));
      put16(reply, 4);
      const auto bytes = found->second.to_bytes();
      reply.insert(reply.end(), bytes.begin(), bytes.end());
    }
    ::sendto(socket_, reply.data(), reply.size(), 0, reinterpret_cast<const sockaddr*>(&peer),
             peer_size);
  }
}

}  // namespace outboxd::test

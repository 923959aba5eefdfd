#include "outboxd/pg/transport.hpp"

#include <boost/asio/ip/address.hpp>

namespace outboxd::pg {
namespace {

bool is_loopback(const std::string& text) {
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(text, ec);
  if (ec) return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
  }
  return address.is_loopback();
}

}  // namespace

bool crosses_network_in_clear(const session_transport& transport) {
  if (transport.encrypted) return false;
  // libpq names a Unix socket by its directory (or "@name" for Linux's abstract namespace).
  if (transport.host.starts_with('/') || transport.host.starts_with('@')) return false;
  // The address actually connected to decides; a name is judged only when libpq gives none.
  const auto& judged = transport.address.empty() ? transport.host : transport.address;
  return !is_loopback(judged);
}

}  // namespace outboxd::pg

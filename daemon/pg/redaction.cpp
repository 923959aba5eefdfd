#include "outboxd/pg/redaction.hpp"

#include <cctype>

namespace outboxd::pg {
namespace {

void replace_all(std::string& text, std::string_view secret) {
  if (secret.empty()) return;
  constexpr std::string_view kMask = "***";
  for (auto at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + kMask.size())) {
    text.replace(at, secret.size(), kMask);
  }
}

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// "postgresql://user:password@host/db": the user-info ends at an '@' before the path or query.
void uri_password(std::string_view uri, std::vector<std::string>& out) {
  const auto scheme_end = uri.find("://");
  const auto authority = uri.substr(scheme_end + 3);
  const auto at = authority.substr(0, authority.find_first_of("/?")).rfind('@');
  if (at == std::string_view::npos) return;
  const auto user_info = authority.substr(0, at);
  const auto colon = user_info.find(':');
  if (colon != std::string_view::npos) out.emplace_back(user_info.substr(colon + 1));
}

// "host=x password='it''s' port=5432": every password= value, quoted ('...' with \-escapes) or
// up to the next space.
void keyword_passwords(std::string_view text, std::vector<std::string>& out) {
  constexpr std::string_view kKeyword = "password";
  for (auto at = text.find(kKeyword); at != std::string_view::npos;
       at = text.find(kKeyword, at + 1)) {
    if (at > 0 && !is_space(text[at - 1])) continue;  // e.g. "sslpassword" is a different key
    auto rest = text.substr(at + kKeyword.size());
    while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
    if (rest.empty() || rest.front() != '=') continue;
    rest.remove_prefix(1);
    while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
    std::string value;
    if (!rest.empty() && rest.front() == '\'') {
      // Both the raw quoted text and its unescaped value may be echoed.
      std::size_t i = 1;
      for (; i < rest.size() && rest[i] != '\''; ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
        value += rest[i];
      }
      const auto raw = rest.substr(1, i - 1);
      if (raw != value) out.emplace_back(raw);
    } else {
      std::size_t i = 0;
      while (i < rest.size() && !is_space(rest[i])) value += rest[i++];
    }
    out.push_back(std::move(value));
  }
}

}  // namespace

std::vector<std::string> conninfo_passwords(std::string_view conninfo) {
  std::vector<std::string> out;
  if (conninfo.starts_with("postgresql://") || conninfo.starts_with("postgres://")) {
    uri_password(conninfo, out);
    // A URI's query may carry password=... too.
    const auto query = conninfo.find('?');
    if (query != std::string_view::npos) {
      std::string params(conninfo.substr(query + 1));
      for (auto& c : params) {
        if (c == '&') c = ' ';
      }
      keyword_passwords(params, out);
    }
  } else {
    keyword_passwords(conninfo, out);
  }
  std::erase_if(out, [](const std::string& p) { return p.empty(); });
  return out;
}

std::string without_credentials(std::string message, std::string_view conninfo) {
  replace_all(message, conninfo);
  for (const auto& password : conninfo_passwords(conninfo)) replace_all(message, password);
  return message;
}

}  // namespace outboxd::pg

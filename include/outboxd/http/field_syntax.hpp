#pragma once

#include <string_view>

namespace outboxd::http {

// HTTP field syntax (RFC 9110), shared by the signer, which validates a webhook's own headers,
// and the client, which refuses to put anything unsafe on the wire.

// tchar (§5.6.2): what a header name is made of.
bool is_token_char(char c);
// A non-empty run of tchar.
bool is_token(std::string_view name);
// CR, LF and NUL would split or truncate a request; the other controls (all below 0x20 but HTAB,
// and DEL) are not allowed in a field value either, and receivers handle them inconsistently.
bool is_forbidden_in_value(char c);
// ASCII case-insensitive equality, as header names and URL schemes compare.
bool equals_ignoring_case(std::string_view a, std::string_view b);

}  // namespace outboxd::http

#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace outboxd::pg {

// The password of a libpq connection string, as written: the user-info's after its ':' in a
// postgresql:// URI, the value of password= in a key=value string (quotes removed). Found even
// in a string libpq refuses, which is when libpq's error may quote it back. Empty: none.
std::vector<std::string> conninfo_passwords(std::string_view conninfo);

// `message` with the whole connection string and each of its passwords replaced by "***".
// libpq's connect errors can quote the URI whole ('unexpected character ... in URI: "..."') or a
// part of it ('invalid percent-encoded token: "..."'); every connect error goes through here.
std::string without_credentials(std::string message, std::string_view conninfo);

}  // namespace outboxd::pg

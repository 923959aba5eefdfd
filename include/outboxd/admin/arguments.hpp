#pragma once

#include <string>
#include <string_view>

namespace outboxd::admin {

// Checks of an admin command's arguments, before anything touches the database. Each throws
// config_error naming `what`.

// A webhook id: a UUID in its canonical 8-4-4-4-12 hex form. Returned lower-cased.
std::string require_uuid(std::string_view text, std::string_view what);
// A delivery or event id: a whole number from 1 up.
std::string require_id(std::string_view text, std::string_view what);

}  // namespace outboxd::admin

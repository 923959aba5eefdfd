#pragma once

#include <string>
#include <string_view>

namespace outboxd {

// Appends `text` as a JSON string literal (quotes included). Invalid UTF-8 and NUL become U+FFFD,
// so the result is always valid JSON that PostgreSQL's jsonb accepts.
void append_json_string(std::string& out, std::string_view text);

// `bytes` as valid UTF-8 without NUL: what a PostgreSQL text column can hold. Invalid sequences
// and NUL become U+FFFD. Response bodies from receivers are arbitrary bytes.
std::string to_storable_text(std::string_view bytes);

}  // namespace outboxd

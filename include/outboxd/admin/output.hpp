#pragma once

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace outboxd::admin {

// Rows printed as aligned columns under a header, for people. Cells are shown as given, except
// that control characters are escaped, so a receiver's response cannot break the layout.
class text_table {
 public:
  explicit text_table(std::vector<std::string> header);
  void add(std::vector<std::string> row);
  std::size_t size() const { return rows_.size(); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// "name: value" lines with the values aligned.
void print_fields(std::ostream& out,
                  const std::vector<std::pair<std::string, std::string>>& fields);

// A JSON document built by appending: valid JSON by construction (strings escaped, invalid UTF-8
// replaced), for --json. Commas are placed by the writer.
class json_writer {
 public:
  json_writer& begin_object();
  json_writer& end_object();
  json_writer& begin_array();
  json_writer& end_array();
  json_writer& key(std::string_view name);
  json_writer& string(std::string_view value);
  // A number given as PostgreSQL's text for it (bigint, numeric); empty is null.
  json_writer& number(std::string_view text);
  json_writer& boolean(bool value);
  json_writer& null();
  // string(), or null when empty.
  json_writer& string_or_null(std::string_view value);
  const std::string& text() const { return out_; }

 private:
  void before_value();
  std::string out_;
  std::vector<bool> first_;  // per open container: nothing written in it yet
  bool after_key_ = false;
};

// A duration for people: "850ms", "12.3s", "5m 02s", "3h 04m", "2d 03h".
std::string format_age(long long milliseconds);

// A setting's duration as the flags take it: "250ms", "5s", "2m", "1h" (the largest exact unit).
std::string format_duration(long long milliseconds);

// Bounded and printable: at most `max_chars` characters, then "…".
std::string excerpt(std::string_view text, std::size_t max_chars);

}  // namespace outboxd::admin

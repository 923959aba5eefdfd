#include "outboxd/schedule_column.hpp"

#include <gtest/gtest.h>

namespace outboxd {
namespace {

using std::chrono::milliseconds;

TEST(schedule_column, reads_array_to_string_of_the_delays) {
  EXPECT_EQ(parse_schedule_column("5000,60000"),
            (std::vector<milliseconds>{milliseconds(5000), milliseconds(60000)}));
  EXPECT_EQ(parse_schedule_column("0"), std::vector<milliseconds>{milliseconds(0)});
  EXPECT_TRUE(parse_schedule_column("").empty());  // unset: the daemon's schedule
}

TEST(schedule_column, an_unreadable_column_means_the_daemons_schedule) {
  EXPECT_TRUE(parse_schedule_column("5000,x").empty());
  EXPECT_TRUE(parse_schedule_column("-1").empty());
  EXPECT_TRUE(parse_schedule_column("5000,,6000").empty());
}

// Found by the claimed_row fuzz target: a bigint this large overflowed the jitter's arithmetic
// (a negative delay) and would overflow PostgreSQL's interval when the retry is written.
TEST(schedule_column, a_delay_beyond_a_century_is_unreadable) {
  EXPECT_TRUE(parse_schedule_column("9223372036854775807").empty());
  EXPECT_TRUE(parse_schedule_column("5000,3153600000001").empty());
  EXPECT_EQ(parse_schedule_column("3153600000000"),
            std::vector<milliseconds>{milliseconds(3'153'600'000'000)});
}

}  // namespace
}  // namespace outboxd

// Connection strings hold the database password; libpq's connect errors may quote them. Every
// form of password is found and masked, including in strings libpq refuses.
#include <gtest/gtest.h>

#include "outboxd/pg/redaction.hpp"

namespace outboxd::pg {
namespace {

using passwords = std::vector<std::string>;

TEST(secret_redaction, finds_the_password_of_every_connection_string_form) {
  EXPECT_EQ(conninfo_passwords("postgresql://app:s3cr%20t@db:5432/iam"), passwords{"s3cr%20t"});
  EXPECT_EQ(conninfo_passwords("postgres://app:pw@[::1]:5432/iam?sslmode=require"),
            passwords{"pw"});
  EXPECT_EQ(conninfo_passwords("postgresql://app@db/iam?password=inquery&sslmode=require"),
            passwords{"inquery"});
  EXPECT_EQ(conninfo_passwords("postgresql://app@db/iam"), passwords{});
  EXPECT_EQ(conninfo_passwords("postgresql://db/iam"), passwords{});
  // A ':' after the authority is not user-info.
  EXPECT_EQ(conninfo_passwords("postgresql://db/iam?options=a:b@c"), passwords{});
  EXPECT_EQ(conninfo_passwords("host=db password=plain port=5432"), passwords{"plain"});
  EXPECT_EQ(conninfo_passwords("host=db password = spaced"), passwords{"spaced"});
  EXPECT_EQ(conninfo_passwords(R"(password='it\'s quoted' host=db)"),
            (passwords{R"(it\'s quoted)", "it's quoted"}));
  EXPECT_EQ(conninfo_passwords("sslpassword=keyfilepass host=db"), passwords{});
  // Broken strings still give up their password.
  EXPECT_EQ(conninfo_passwords("postgresql://app:bad%zz@db/iam"), passwords{"bad%zz"});
  EXPECT_EQ(conninfo_passwords("host=db password='unterminated"), passwords{"unterminated"});
}

TEST(secret_redaction, masks_the_string_and_its_password_wherever_quoted) {
  const std::string uri = "postgresql://app:hunter2@[::1/iam";
  EXPECT_EQ(without_credentials(
                "end of string reached when looking for matching \"]\" in IPv6 host address in "
                "URI: \"" +
                    uri + "\"",
                uri),
            "end of string reached when looking for matching \"]\" in IPv6 host address in URI: "
            "\"***\"");
  EXPECT_EQ(without_credentials("invalid percent-encoded token: \"hunter2%zz\"",
                                "postgresql://app:hunter2%zz@db/iam"),
            "invalid percent-encoded token: \"***\"");
  EXPECT_EQ(without_credentials("hunter2 and hunter2", "host=db password=hunter2"), "*** and ***");
  EXPECT_EQ(without_credentials("connection refused", "host=db password=hunter2"),
            "connection refused");
}

}  // namespace
}  // namespace outboxd::pg

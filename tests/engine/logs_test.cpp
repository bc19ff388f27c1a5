// The engine's side of `flotilla logs`: durations and terminal-safe text. The reading of the
// store is the syslog addon's (tests/plugins/addon_syslog/logs_query_test.cpp).
#include "logs.hpp"

#include <catch2/catch.hpp>

TEST_CASE("parse_duration reads s, m, h, d and sums", "[logs]") {
  CHECK(flotilla::parse_duration("30s").value() == std::chrono::seconds(30));
  CHECK(flotilla::parse_duration("10m").value() == std::chrono::seconds(600));
  CHECK(flotilla::parse_duration("2h").value() == std::chrono::seconds(7200));
  CHECK(flotilla::parse_duration("1d").value() == std::chrono::seconds(86400));
  CHECK(flotilla::parse_duration("1h30m").value() == std::chrono::seconds(5400));
  for (const char* bad : {"", "10", "m", "10x", "-5m", "1.5h", "10m ", "99999999999d"}) {
    const auto r = flotilla::parse_duration(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("invalid duration") != std::string::npos);
  }
}

TEST_CASE("escape_log_text escapes controls, C1, invalid UTF-8 and backslashes and keeps text", "[logs]") {
  CHECK(flotilla::escape_log_text("plain text") == "plain text");
  CHECK(flotilla::escape_log_text("a\tb\x01\x1b[31m\x7f") == "a\\x09b\\x01\\x1b[31m\\x7f");
  CHECK(flotilla::escape_log_text("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  CHECK(flotilla::escape_log_text("bad \xff\xfe end") == "bad \\xff\\xfe end");
  CHECK(flotilla::escape_log_text("trunc \xe2\x82") == "trunc \\xe2\\x82");
  CHECK(flotilla::escape_log_text("overlong \xc0\xaf") == "overlong \\xc0\\xaf");
  CHECK(flotilla::escape_log_text("c1 \xc2\x9b") == "c1 \\xc2\\x9b");
  CHECK(flotilla::escape_log_text(std::string("nul \0 x", 7)) == "nul \\x00 x");
  CHECK(flotilla::escape_log_text("back\\slash") == "back\\\\slash");
}


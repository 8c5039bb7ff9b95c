// SPDX-License-Identifier: Apache-2.0
// core/strings.h and core/net.h: locale-free case and whitespace helpers, host:port parsing.
#include <catch2/catch.hpp>

#include "core/encoding.h"
#include "core/net.h"
#include "core/random.h"
#include "core/strings.h"
#include "tests/support/support.h"

using namespace keyport;

TEST_CASE("ascii_lower and ascii_upper change A-Z and a-z only", "[unit][core]") {
  CHECK(ascii_lower("Contoso.VAULT.azure.NET") == "contoso.vault.azure.net");
  CHECK(ascii_upper("0a1b-cdef") == "0A1B-CDEF");
  // Bytes outside ASCII letters stay as they are, whatever the locale would say about them.
  CHECK(ascii_lower("\xC4\xD6@[`{Z") == "\xC4\xD6@[`{z");
  CHECK(ascii_upper("\xE4\xF6@[`{a") == "\xE4\xF6@[`{A");
  CHECK(ascii_lower("").empty());
}

TEST_CASE("iequals and starts_with_icase compare ASCII letters without case", "[unit][core]") {
  CHECK(iequals("Bearer", "bEARER"));
  CHECK_FALSE(iequals("Bearer", "Bearer "));
  CHECK_FALSE(iequals("a", "b"));
  CHECK(iequals("", ""));
  // '@' and '`' differ from 'A' and 'a' by the case bit: they must not compare equal to letters.
  CHECK_FALSE(iequals("@", "`"));
  CHECK_FALSE(iequals("\xC4", "\xE4"));
  CHECK(starts_with_icase("Token:slot=1", "token:"));
  CHECK(starts_with_icase("VAULT:", "vault:"));
  CHECK_FALSE(starts_with_icase("vau", "vault:"));
  CHECK(starts_with_icase("anything", ""));
}

TEST_CASE("trim removes ASCII whitespace at both ends only", "[unit][core]") {
  CHECK(trim(" \t\r\n\v\fa b\t\n") == "a b");
  CHECK(trim("no-space") == "no-space");
  CHECK(trim(" \t ").empty());
  CHECK(trim("").empty());
  CHECK(trim("\xA0x\xA0") == "\xA0x\xA0");  // a Latin-1 no-break space is not ASCII whitespace
}

TEST_CASE("escape_for_log keeps printable ASCII and escapes every other byte", "[unit][core]") {
  CHECK(escape_for_log("GET /keys/k1?api-version=7.5") == "GET /keys/k1?api-version=7.5");
  // A newline cannot start a forged line; ESC, NUL, DEL and non-ASCII bytes are spelled out.
  CHECK(escape_for_log("/keys/a\n2026 caller=admin DELETE") ==
        "/keys/a\\x0a2026 caller=admin DELETE");
  CHECK(escape_for_log(std::string("a\x1b[2Jb\0c\x7f\xc3\xa9", 11)) ==
        "a\\x1b[2Jb\\x00c\\x7f\\xc3\\xa9");
  CHECK(escape_for_log("\r\t") == "\\x0d\\x09");
  // The escape character itself is escaped, so "\x0a" typed by a client stays distinguishable.
  CHECK(escape_for_log("a\\x0a") == "a\\\\x0a");
  CHECK(escape_for_log("").empty());
}

TEST_CASE("parse_host_port accepts host:port and [IPv6]:port", "[unit][core]") {
  auto a = parse_host_port("127.0.0.1:8443");
  REQUIRE_OK(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 8443);
  auto b = parse_host_port("[::1]:443");
  REQUIRE_OK(b);
  CHECK(b->host == "::1");
  CHECK(b->port == 443);
  auto c = parse_host_port("Contoso.Vault.Azure.Net:65535");
  REQUIRE_OK(c);
  CHECK(c->host == "Contoso.Vault.Azure.Net");  // case is the caller's business
  CHECK(c->port == 65535);
  auto d = parse_host_port("h:00443");
  REQUIRE_OK(d);
  CHECK(d->port == 443);
}

TEST_CASE("parse_host_port refuses malformed ports and hosts with a message", "[unit][core]") {
  for (const char* text : {"host:0x10", "host:65536", "host:99999", "host:123456", "host:",
                           "host:-1", "host:+80", "host: 80", "host:80 ", "", ":443", "[]:443",
                           "host", "[::1]", "[::1]443", "[::1:443", "::1:443", "host:0"}) {
    INFO(text);
    auto r = parse_host_port(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == ErrorCode::kInvalidArgument);
    CHECK(r.error().message().find(std::string("\"") + text + "\"") != std::string::npos);
  }
  CHECK(parse_host_port("host:0x10").error().message().find("1 to 65535") != std::string::npos);
}

TEST_CASE("parse_host_port: port 0 and a default port only when the caller allows them",
          "[unit][core]") {
  auto any = parse_host_port("127.0.0.1:0", PortZero::kAllow);
  REQUIRE_OK(any);
  CHECK(any->port == 0);
  CHECK(parse_host_port("h:65536", PortZero::kAllow).error().message().find("0 to 65535") !=
        std::string::npos);
  auto bare = parse_host_port_or("vault.example", 443);
  REQUIRE_OK(bare);
  CHECK(bare->host == "vault.example");
  CHECK(bare->port == 443);
  auto v6 = parse_host_port_or("[fe80::1]", 443);
  REQUIRE_OK(v6);
  CHECK(v6->host == "fe80::1");
  CHECK(v6->port == 443);
  CHECK_FALSE(parse_host_port_or("vault.example:", 443));  // a ':' promises a port
  CHECK_FALSE(parse_host_port_or("vault.example:0", 443));
}

TEST_CASE("host_only and join_host_port", "[unit][core]") {
  CHECK(host_only("127.0.0.1:8443") == "127.0.0.1");
  CHECK(host_only("[::1]:8443") == "::1");
  CHECK(host_only("[::1]") == "::1");
  CHECK(host_only("contoso.vault.azure.net") == "contoso.vault.azure.net");
  CHECK(host_only("::1") == "::1");
  CHECK(host_only("fe80::1:2") == "fe80::1:2");
  CHECK(host_only("") == "");
  CHECK(join_host_port("::1", 8443) == "[::1]:8443");
  CHECK(join_host_port("localhost", 0) == "localhost:0");
  auto back = parse_host_port(join_host_port("fe80::2", 443));
  REQUIRE_OK(back);
  CHECK(back->host == "fe80::2");
}

TEST_CASE("is_ip_literal knows IPv4 and IPv6 literals and nothing else", "[unit][core]") {
  CHECK(is_ip_literal("127.0.0.1"));
  CHECK(is_ip_literal("::1"));
  CHECK(is_ip_literal("fe80::1"));
  CHECK_FALSE(is_ip_literal("kpvault.localhost"));
  CHECK_FALSE(is_ip_literal("[::1]"));
  CHECK_FALSE(is_ip_literal("1.2.3"));
  CHECK_FALSE(is_ip_literal(""));
}

TEST_CASE("percent_decode decodes %XX, '+' only in forms, and refuses broken escapes",
          "[unit][core]") {
  CHECK(*percent_decode("https%3A%2F%2Flocalhost%3a8443") == "https://localhost:8443");
  CHECK(*percent_decode("a+b") == "a+b");
  CHECK(*percent_decode("a+b", /*plus_is_space=*/true) == "a b");
  CHECK(*percent_decode("%00") == std::string(1, '\0'));
  for (const char* bad : {"%", "%4", "%zz", "abc%2"}) {
    auto r = percent_decode(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == ErrorCode::kFormat);
    // The lenient mode (request targets) keeps a broken escape as it is.
    CHECK(*percent_decode(bad, false, BadEscape::kKeep) == bad);
  }
  CHECK(*percent_decode("%zz%41+", true, BadEscape::kKeep) == "%zzA ");
}

TEST_CASE("format_uuid and random_uuid give the 8-4-4-4-12 form, version 4", "[unit][core]") {
  Bytes b(16);
  for (std::size_t i = 0; i < b.size(); ++i) {
    b[i] = static_cast<std::uint8_t>(i * 17);
  }
  CHECK(format_uuid(b) == "00112233-4455-6677-8899-aabbccddeeff");
  CHECK(format_uuid(Bytes(15)).empty());
  const std::string u = random_uuid();
  REQUIRE(u.size() == 36);
  CHECK(u[14] == '4');
  CHECK((u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b'));
  CHECK(u != random_uuid());
}

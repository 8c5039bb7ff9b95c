// SPDX-License-Identifier: Apache-2.0
// skr/url.h: the http(s) URL subset authorities, policies and key resolvers are given.
#include <catch2/catch.hpp>

#include "skr/url.h"

using keyport::skr::parse_url;

TEST_CASE("parse_url splits scheme, host, port and path", "[unit][skr]") {
  auto u = parse_url("HTTPS://Shared.EUS.Attest.Azure.NET:8443/certs?api-version=1");
  REQUIRE(u);
  CHECK(u->scheme == "https");
  CHECK(u->host == "shared.eus.attest.azure.net");
  CHECK(u->port == 8443);
  CHECK(u->effective_port() == 8443);
  CHECK(u->path_and_query == "/certs?api-version=1");
  CHECK(u->host_port() == "shared.eus.attest.azure.net:8443");
  CHECK(u->origin() == "https://shared.eus.attest.azure.net:8443");

  auto plain = parse_url("http://127.0.0.1");
  REQUIRE(plain);
  CHECK(plain->port == 0);
  CHECK(plain->effective_port() == 80);
  CHECK(plain->path_and_query.empty());
  CHECK(plain->origin() == "http://127.0.0.1");

  auto query_only = parse_url("https://h?x=1");
  REQUIRE(query_only);
  CHECK(query_only->path_and_query == "/?x=1");
  CHECK(query_only->effective_port() == 443);
}

TEST_CASE("parse_url takes bracketed IPv6 hosts", "[unit][skr]") {
  auto u = parse_url("https://[::1]:9443/x");
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->port == 9443);
  CHECK(u->host_port() == "[::1]:9443");
  auto no_port = parse_url("https://[FE80::1]");
  REQUIRE(no_port);
  CHECK(no_port->host == "fe80::1");
  CHECK(no_port->host_port() == "[fe80::1]");
}

TEST_CASE("parse_url refuses what it does not understand", "[unit][skr]") {
  for (const char* text : {
           "",
           "ftp://host/",
           "https//host",
           "https://",
           "https:///path",
           "https://user@host/",
           "https://host/#frag",
           "https://ho st/",
           "https://host\t/",
           "https://host:/",
           "https://host:0/",
           "https://host:65536/",
           "https://host:0x10/",
           "https://host:-1/",
           "https://[::1/",
           "https://[]/",
           "https://[::1]x/",
           "https://[::1]:/",
           "https://[g::1]/",
           "https://ho%73t/",
       }) {
    INFO(text);
    CHECK_FALSE(parse_url(text));
  }
}

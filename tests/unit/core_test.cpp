// SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>

#include <filesystem>

#include "cli/exit_codes.h"
#include "core/algorithms.h"
#include "core/encoding.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/secret.h"
#include "tests/support/support.h"

using namespace keyport;

namespace {
std::string decode_to_string(std::string_view in) {
  auto r = base64url_decode(in);
  REQUIRE_OK(r);
  return std::string(r->begin(), r->end());
}
}  // namespace

TEST_CASE("base64url round-trips the RFC 4648 section 10 vectors without padding", "[unit][core]") {
  // RFC 4648 §10: BASE64("foobar") = "Zm9vYmFy" etc.; the URL-safe alphabet is identical here.
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
  };
  for (auto [plain, encoded] : vectors) {
    CHECK(base64url_encode(as_bytes(plain)) == encoded);
    CHECK(decode_to_string(encoded) == plain);
  }
  // Padded input is accepted too.
  CHECK(decode_to_string("Zg==") == "f");
  CHECK(decode_to_string("Zm8=") == "fo");
}

TEST_CASE("base64url uses - and _ and rejects the standard alphabet", "[unit][core]") {
  const std::uint8_t data[] = {0xfb, 0xff, 0xbf};
  CHECK(base64url_encode(data) == "-_-_");
  CHECK(base64_encode(data) == "+/+/");
  CHECK_ERROR_CODE(base64url_decode("+/+/"), ErrorCode::kFormat);
  CHECK_ERROR_CODE(base64url_decode("Zg="), ErrorCode::kFormat);    // wrong padding
  CHECK_ERROR_CODE(base64url_decode("Zg==="), ErrorCode::kFormat);  // excess padding
  CHECK_ERROR_CODE(base64url_decode("Z"), ErrorCode::kFormat);      // impossible length
  CHECK_ERROR_CODE(base64url_decode("Zh"), ErrorCode::kFormat);     // non-zero trailing bits
  CHECK_ERROR_CODE(base64url_decode("Zm 9v"), ErrorCode::kFormat);  // whitespace
  CHECK_ERROR_CODE(base64url_decode("Zm9v\n"), ErrorCode::kFormat);
  CHECK_ERROR_CODE(base64url_decode("Zg==Zg"), ErrorCode::kFormat);  // padding in the middle
}

TEST_CASE("hex decodes both cases and rejects odd lengths and bad digits", "[unit][core]") {
  auto r = hex_decode("00ffAB");
  REQUIRE_OK(r);
  CHECK(hex_encode(*r) == "00ffab");
  CHECK_ERROR_CODE(hex_decode("abc"), ErrorCode::kFormat);
  CHECK_ERROR_CODE(hex_decode("zz"), ErrorCode::kFormat);
}

TEST_CASE("strict JSON rejects duplicate members at any depth", "[unit][core][json]") {
  REQUIRE_OK(parse_json_strict(R"({"a":1,"b":{"a":2}})"));
  auto dup = parse_json_strict(R"({"a":1,"a":2})");
  REQUIRE_FALSE(dup);
  CHECK(dup.error().code() == ErrorCode::kFormat);
  CHECK_THAT(dup.error().message(), Catch::Contains("duplicate member \"a\""));
  auto nested = parse_json_strict(R"({"h":[{"x":1},{"k":1,"k":2}]})");
  REQUIRE_FALSE(nested);
  CHECK_THAT(nested.error().message(), Catch::Contains("$.h[1]"));
}

TEST_CASE("strict JSON refuses a NUL byte instead of ending the document there",
          "[unit][core][json]") {
  // nlohmann's lexer alone would read {"kty":"EC"} and ignore the rest.
  const std::string two(R"({"kty":"EC"})"
                        "\0"
                        R"({"kty":"RSA"})",
                        26);
  REQUIRE(two.size() == 26);
  auto r = parse_json_strict(two);
  REQUIRE_FALSE(r);
  CHECK(r.error().message() == "JSON syntax error at byte 13: a NUL byte");
  CHECK_FALSE(parse_json_strict(std::string("{\"a\":\"x\0y\"}", 11)));
  CHECK(scan_json(std::string("[1]\0", 4)).error.has_value());
}

// Issue 18: a REST error body quoted "[json.exception.out_of_range.406] number overflow parsing
// '1e999'": the library's own text, with the input in it.
TEST_CASE("strict JSON says a number is out of range in its own words", "[unit][core][json]") {
  auto r = parse_json_strict(R"({"attributes": {"exp": 1e999}})");
  REQUIRE_FALSE(r);
  CHECK(r.error().code() == ErrorCode::kFormat);
  CHECK(r.error().message() == "JSON number out of range");
  CHECK(r.error().message().find("json.exception") == std::string::npos);
}

TEST_CASE("strict JSON bounds depth and size and reports syntax errors", "[unit][core][json]") {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  CHECK_ERROR_CODE(parse_json_strict(deep), ErrorCode::kFormat);
  JsonLimits small;
  small.max_bytes = 4;
  CHECK_ERROR_CODE(parse_json_strict("[1,2,3]", small), ErrorCode::kFormat);
  auto bad = parse_json_strict("{\"a\":}");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message(), Catch::Contains("byte"));
  CHECK_ERROR_CODE(parse_json_strict("\"\xff\""), ErrorCode::kFormat);  // invalid UTF-8
}

TEST_CASE("SecretBytes compares in constant time and moves out clean", "[unit][core]") {
  const std::uint8_t k[] = {1, 2, 3, 4};
  SecretBytes a(k);
  SecretBytes b = a.clone();
  CHECK(a.ct_equal(b));
  b.reveal_mut(SecretAccess::unsafe())[0] = 9;
  CHECK_FALSE(a.ct_equal(b));
  SecretBytes c = std::move(a);
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): moved-from state is part of the contract
  CHECK(c.size() == 4);
  c.truncate(2);
  CHECK(c.size() == 2);
  static_assert(!std::is_copy_constructible_v<SecretBytes>);
}

TEST_CASE("atomic write never clobbers unless asked and leaves no temp file", "[unit][core][io]") {
  auto dir = test::make_scratch_subdir("io");
  auto path = dir / "out.bin";
  REQUIRE_OK(write_file_atomic(path, std::string_view("one")));
  CHECK_ERROR_CODE(write_file_atomic(path, std::string_view("two")), ErrorCode::kAlreadyExists);
  CHECK(*read_text_file(path) == "one");
  WriteOptions force;
  force.overwrite = true;
  REQUIRE_OK(write_file_atomic(path, std::string_view("three"), force));
  CHECK(*read_text_file(path) == "three");
  CHECK_ERROR_CODE(write_file_atomic(dir / "missing" / "x", std::string_view("x")),
                   ErrorCode::kNotFound);
  std::size_t count = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++count;
  }
  CHECK(count == 1);
  CHECK_ERROR_CODE(read_file(dir / "absent"), ErrorCode::kNotFound);
  CHECK_ERROR_CODE(read_file(path, 2), ErrorCode::kInvalidArgument);
}

TEST_CASE("key specs and wrap algorithms parse their names", "[unit][core]") {
  CHECK(all_key_specs().size() == 10);
  for (const auto& spec : all_key_specs()) {
    auto parsed = parse_key_spec(spec.name());
    REQUIRE_OK(parsed);
    CHECK(*parsed == spec);
  }
  CHECK(parse_key_spec("EC-P256K")->curve == Curve::kP256K);
  CHECK_ERROR_CODE(parse_key_spec("rsa-1024"), ErrorCode::kInvalidArgument);
  for (auto alg : all_wrap_algs())
    CHECK(*parse_wrap_alg(wrap_alg_name(alg)) == alg);
  CHECK(wrap_alg_hash(WrapAlg::kRsaAesKeyWrap) == OaepHash::kSha1);
  CHECK_ERROR_CODE(parse_wrap_alg("A256KW"), ErrorCode::kInvalidArgument);
  CHECK(*curve_from_oid_der(curve_oid_der(Curve::kP521)) == Curve::kP521);
}

TEST_CASE("a batch writer publishes staged files on commit and removes them on abort",
          "[unit][core][io]") {
  auto dir = test::make_scratch_subdir("batch");
  auto count_entries = [&] {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      (void)e;
      ++n;
    }
    return n;
  };
  {
    AtomicBatchWriter w;
    REQUIRE_OK(w.stage(dir / "a", as_bytes("A")));
    REQUIRE_OK(w.stage(dir / "b", as_bytes("B")));
    CHECK(w.staged() == 2);
    CHECK(count_entries() == 0);  // staged files have no name yet (O_TMPFILE on ext4 and tmpfs)
    CHECK_FALSE(std::filesystem::exists(dir / "a"));
  }  // destroyed without commit: nothing remains
  CHECK(count_entries() == 0);

  AtomicBatchWriter w;
  REQUIRE_OK(w.stage(dir / "a", as_bytes("A")));
  REQUIRE_OK(w.stage(dir / "b", as_bytes("B")));
  REQUIRE_OK(
      write_file_atomic(dir / "b", std::string_view("someone else's")));  // appears meanwhile
  CHECK_ERROR_CODE(w.stage(dir / "b", as_bytes("B2")), ErrorCode::kAlreadyExists);
  auto results = w.commit();
  REQUIRE(results.size() == 2);
  CHECK(results[0].has_value());
  CHECK_ERROR_CODE(results[1], ErrorCode::kAlreadyExists);
  CHECK(*read_text_file(dir / "a") == "A");
  CHECK(*read_text_file(dir / "b") == "someone else's");
  CHECK(count_entries() == 2);
}

TEST_CASE("error categories have stable names and their own exit codes", "[unit][core]") {
  using cli::exit_code_for;
  CHECK(to_string(ErrorCode::kFailedPrecondition) == "failed-precondition");
  CHECK(to_string(ErrorCode::kUnavailable) == "unavailable");
  CHECK(to_string(ErrorCode::kPermissionDenied) == "permission-denied");
  // README "Exit codes": a refusal for a missing earlier step is not a PIN problem (7), and a
  // server's own failure is not a cryptographic one (4).
  CHECK(exit_code_for(ErrorCode::kFailedPrecondition) == 12);
  CHECK(exit_code_for(ErrorCode::kUnavailable) == 13);
  CHECK(exit_code_for(ErrorCode::kPermissionDenied) == 7);
  CHECK(exit_code_for(ErrorCode::kAuth) == 7);
  CHECK(exit_code_for(ErrorCode::kCrypto) == 4);
  CHECK(exit_code_for(ErrorCode::kInternal) == 1);
}

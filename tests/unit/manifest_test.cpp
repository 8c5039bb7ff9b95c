// SPDX-License-Identifier: Apache-2.0
// Batch manifests (transfer/batch.h): JSON and CSV, with errors that name the line.
#include <catch2/catch.hpp>

#include "core/file_io.h"
#include "tests/support/support.h"
#include "transfer/batch.h"

using namespace keyport;

namespace {
std::filesystem::path write(const std::string& name, const std::string& text) {
  auto dir = test::make_scratch_subdir("manifest");
  auto p = dir / name;
  REQUIRE_OK(write_file_atomic(p, text));
  return p;
}
}  // namespace

TEST_CASE("a CSV manifest reads quoted fields, optional columns and resolves KEKs beside it",
          "[unit][manifest]") {
  auto p =
      write("keys.csv",
            "key,kek,kid,enc,output\r\n"
            "app-1,kek.pem,https://v.vault.azure.net/keys/K/0123456789abcdef0123456789abcdef,,\r\n"
            "\"pkcs11:object=a,b;type=private\",/abs/kek.pem,,RSA_AES_KEY_WRAP_256,\"out "
            "\"\"1\"\".byok\"\n");
  auto m = transfer::read_manifest(p);
  REQUIRE_OK(m);
  REQUIRE(m->size() == 2);
  CHECK((*m)[0].key == "app-1");
  CHECK((*m)[0].kek == (p.parent_path() / "kek.pem").string());
  CHECK((*m)[0].kid.has_value());
  CHECK_FALSE((*m)[0].enc.has_value());
  CHECK((*m)[1].key == "pkcs11:object=a,b;type=private");
  CHECK((*m)[1].kek == "/abs/kek.pem");
  CHECK_FALSE((*m)[1].kid.has_value());
  CHECK(*(*m)[1].enc == "RSA_AES_KEY_WRAP_256");
  CHECK(*(*m)[1].output == "out \"1\".byok");
}

TEST_CASE("a JSON manifest is an array or an items object and refuses unknown members",
          "[unit][manifest]") {
  auto a = transfer::read_manifest(write("a.json", R"([{"key":"k1","kek":"kek.pem"}])"));
  REQUIRE_OK(a);
  CHECK(a->size() == 1);
  auto b = transfer::read_manifest(
      write("b.json", R"({"items":[{"key":"k1","kek":"k.pem","output":"x.byok"}]})"));
  REQUIRE_OK(b);
  CHECK(*(*b)[0].output == "x.byok");
  auto unknown =
      transfer::read_manifest(write("c.json", R"([{"key":"k1","kek":"k.pem","label":"x"}])"));
  CHECK_ERROR_CODE(unknown, ErrorCode::kFormat);
  CHECK_THAT(unknown.error().message(), Catch::Contains("item 0") && Catch::Contains("label"));
  CHECK_ERROR_CODE(transfer::read_manifest(write("d.json", R"([{"key":"k1"}])")),
                   ErrorCode::kFormat);
  CHECK_ERROR_CODE(
      transfer::read_manifest(write("e.json", R"([{"key":"k1","kek":"a","kek":"b"}])")),
      ErrorCode::kFormat);
}

TEST_CASE("a CSV manifest without the needed columns or with a broken row is refused by line",
          "[unit][manifest]") {
  auto no_kek = transfer::read_manifest(write("a.csv", "key,kid\nk1,x\n"));
  CHECK_ERROR_CODE(no_kek, ErrorCode::kFormat);
  CHECK_THAT(no_kek.error().message(), Catch::Contains("\"kek\""));
  auto extra = transfer::read_manifest(write("b.csv", "key,kek\nk1,kek.pem,surplus\n"));
  CHECK_ERROR_CODE(extra, ErrorCode::kFormat);
  CHECK_THAT(extra.error().message(), Catch::Contains("row 2"));
  CHECK_ERROR_CODE(transfer::read_manifest(write("c.csv", "key,kek,colour\nk,k\n")),
                   ErrorCode::kFormat);
  CHECK_ERROR_CODE(transfer::read_manifest(write("d.csv", "key,kek\n\"unterminated,k\n")),
                   ErrorCode::kFormat);
  CHECK_ERROR_CODE(transfer::read_manifest(write("e.csv", "key,kek\n,kek.pem\n")),
                   ErrorCode::kFormat);
}

// SPDX-License-Identifier: Apache-2.0
// The bad-input corpus (tests/badinput/cases.json) through libkeyport's C API, as an embedding
// program calls it (libkeyport.so.0): every `byok inspect --strict FILE` case through
// kp_byok_inspect (the lint path of examples/c/lint_byok.c) and every `byok export ... --kek FILE`
// / `--kid` / `--enc` case through kp_export_byok on a SoftHSM2 token. Each must give the status
// the CLI's exit code promises (kp_status values are the CLI's exit codes), with a message, no
// crash, and no file written.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "core/json.h"
#include "include/keyport/keyport.h"
#include "tests/badinput/cases.h"
#include "tests/cli/cli_rig.h"
#include "tests/support/support.h"

using namespace keyport;
namespace fs = std::filesystem;

namespace {

std::string read_input(const Json& c) {
  const fs::path p = test::source_dir() / "tests/badinput/inputs" / c["input"].get<std::string>();
  REQUIRE(fs::exists(p));
  return test::cli::read_text(p);
}

std::vector<std::string> args_of(const Json& c) {
  std::vector<std::string> out;
  if (c["kind"] != "cli") {
    return out;
  }
  for (const auto& a : c["args"]) {
    out.push_back(a.is_string() ? a.get<std::string>() : a.dump());
  }
  return out;
}

// The value after `flag` in `args`, or nullptr.
const std::string* flag_value(const std::vector<std::string>& args, const std::string& flag) {
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == flag) {
      return &args[i + 1];
    }
  }
  return nullptr;
}

const uint8_t* bytes_of(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

// What the error says, freed.
std::string take_message(kp_error* err) {
  std::string m = err != nullptr && kp_error_message(err) != nullptr ? kp_error_message(err) : "";
  kp_error_free(err);
  return m;
}

}  // namespace

TEST_CASE("bad .byok files through kp_byok_inspect: the CLI's verdict, a report, no crash",
          "[hardening][badinput][capi]") {
  std::size_t n = 0;
  for (const auto& c : test::load_badinput_cases()) {
    const auto args = args_of(c);
    if (c["kind"] != "cli" || args.size() != 4 || args[0] != "byok" || args[1] != "inspect" ||
        args[2] != "--strict" || args[3] != "{in}") {
      continue;
    }
    INFO("case " << c["id"].get<std::string>());
    const std::string file = read_input(c);
    char* report = nullptr;
    std::size_t errors = 0;
    std::size_t warnings = 0;
    kp_error* err = nullptr;
    const kp_status st = kp_byok_inspect(bytes_of(file), file.size(), nullptr, 0, &report, &errors,
                                         &warnings, nullptr, &err);
    // The lint example's rule, which is the CLI's with --strict: a refused call is its status;
    // a report with errors (or, strictly, warnings) is bad input.
    int verdict = static_cast<int>(st);
    if (st == KP_OK) {
      REQUIRE(report != nullptr);
      CHECK(parse_json_strict(report).has_value());
      verdict = errors + warnings > 0 ? KP_ERR_BAD_INPUT : KP_OK;
    } else {
      CHECK_FALSE(take_message(err).empty());
      err = nullptr;
    }
    kp_free(report);
    kp_error_free(err);
    CHECK(verdict == c["exit"].get<int>());
    ++n;
  }
  CHECK(n >= 25);
  WARN("kp_byok_inspect bad-input cases run: " << n);
}

TEST_CASE("bad KEKs, kids and enc values through kp_export_byok: the CLI's status, no file",
          "[hardening][badinput][capi]") {
  test::cli::Rig rig{"badinput-capi"};
  rig.generate("ec-p256", "app-ec");
  auto kek = test::cli::make_rsa_key(2048);
  test::cli::write_public_pem(*kek, rig.dir() / "kek.pem");
  const std::string good_kek = test::cli::read_text(rig.dir() / "kek.pem");
  ::setenv("SOFTHSM2_CONF", rig.conf().c_str(), 1);
  ::setenv("KEYPORT_BADINPUT_PIN", rig.pin().c_str(), 1);
  kp_module* module = nullptr;
  kp_token* token = nullptr;
  kp_error* err = nullptr;
  REQUIRE(kp_module_open(nullptr, nullptr, &module, &err) == KP_OK);
  INFO(take_message(err));
  err = nullptr;
  REQUIRE(kp_token_open(module, "onprem", "env:KEYPORT_BADINPUT_PIN", nullptr, nullptr, &token,
                        &err) == KP_OK);

  std::size_t n = 0;
  for (const auto& c : test::load_badinput_cases()) {
    const auto args = args_of(c);
    if (c["kind"] != "cli" || args.size() < 2 || args[0] != "byok" || args[1] != "export") {
      continue;
    }
    const std::string* key = flag_value(args, "--key");
    const std::string* kek_arg = flag_value(args, "--kek");
    const std::string* kid = flag_value(args, "--kid");
    const std::string* token_arg = flag_value(args, "--token");
    const std::string* output = flag_value(args, "-o");
    // Only what the C API takes as data: a KEK file of the corpus (or the good one), a kid, an
    // enc; cases about CLI paths, flags or the token URI are the CLI's own.
    if (key == nullptr || kek_arg == nullptr || kid == nullptr || token_arg == nullptr ||
        output == nullptr || *output != "{out}" || *token_arg != "onprem" || *key != "app-ec" ||
        (*kek_arg != "{in}" && *kek_arg != "{kek}")) {
      continue;
    }
    bool other_flags = false;
    for (const auto& a : args) {
      other_flags = other_flags || (a.rfind("--", 0) == 0 && a != "--token" && a != "--key" &&
                                    a != "--kek" && a != "--kid" && a != "--enc" && a != "-o");
    }
    if (other_flags) {
      continue;
    }
    INFO("case " << c["id"].get<std::string>());
    const std::string kek_bytes = *kek_arg == "{in}" ? read_input(c) : good_kek;
    const std::string* enc = flag_value(args, "--enc");
    kp_export_options o{};
    o.struct_size = sizeof o;
    o.key = key->c_str();
    o.kek = bytes_of(kek_bytes);
    o.kek_len = kek_bytes.size();
    o.kid = kid->c_str();
    o.enc = enc != nullptr ? enc->c_str() : nullptr;
    kp_byok* byok = nullptr;
    const kp_status st = kp_export_byok(token, &o, &byok, &err);
    CHECK(static_cast<int>(st) == c["exit"].get<int>());
    CHECK(byok == nullptr);
    CHECK_FALSE(take_message(err).empty());
    err = nullptr;
    kp_byok_free(byok);
    ++n;
  }
  kp_token_close(token);
  kp_module_close(module);
  CHECK(n >= 20);
  WARN("kp_export_byok bad-input cases run: " << n);
}

// SPDX-License-Identifier: Apache-2.0
// transfer::run_batch_export (transfer/batch_export.h), the library behind `keyport byok export`:
// plans from a selection, one key and a manifest, the report and resume, progress, cancellation,
// service profiles, and which failures happen before the token is opened. Files are opened with
// OpenSSL (tests/support/oracle.cpp), not with keyport.
#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>

#include "byok/byok_file.h"
#include "byok/service_profile.h"
#include "core/digest.h"
#include "core/file_io.h"
#include "pkcs11/keygen.h"
#include "pkcs11/token.h"
#include "tests/support/oracle.h"
#include "tests/support/softhsm.h"
#include "tests/support/support.h"
#include "transfer/batch_export.h"

using namespace keyport;
namespace fs = std::filesystem;
namespace oracle = keyport::test::oracle;

namespace {

const std::string kKid =
    "https://contoso.vault.azure.net/keys/KEK/0123456789abcdef0123456789abcdef";

struct Rig {
  test::SoftHsm& hsm = test::SoftHsm::get();
  p11::Session session = hsm.login(test::kOnpremToken);
  p11::TokenInfo token = *p11::token_info(*hsm.module(), session.slot());
  fs::path dir = test::make_scratch_subdir("batch-export");
  fs::path out = dir / "out";
  ossl::UniquePtr<EVP_PKEY> kek = oracle::rsa_keygen(2048);
  fs::path kek_pem = dir / "kek.pem";
  int opened = 0;  // open_token calls

  Rig() {
    fs::create_directories(out);
    REQUIRE_OK(write_file_atomic(kek_pem, oracle::spki_pem(kek.get())));
  }

  void make_keys(int n, const std::string& prefix) {
    for (int i = 0; i < n; ++i) {
      p11::KeyGenRequest r;
      r.spec = *parse_key_spec("ec-p256");
      r.label = prefix + std::to_string(i);
      REQUIRE_OK(p11::generate_portable_key(session, r));
    }
  }

  transfer::BatchExportRequest request() const {
    transfer::BatchExportRequest rq;
    rq.keks = {kek_pem.string()};
    rq.kids = {kKid};
    rq.out_dir = out;
    return rq;
  }

  transfer::BatchExportHooks hooks() {
    transfer::BatchExportHooks h;
    h.open_token = [this]() -> Result<transfer::ExportToken> {
      ++opened;
      return transfer::ExportToken{hsm.module(), session.slot(), &session, &token};
    };
    return h;
  }

  // The file holds the token key `label` (its public point), wrapped for the KEK under kKid.
  void verify_file(const fs::path& file, const std::string& label) {
    auto text = read_text_file(file);
    REQUIRE_OK(text);
    auto parsed = byok::ByokFile::parse(*text);
    REQUIRE_OK(parsed);
    CHECK(parsed->kid == kKid);
    Bytes plain = oracle::unwrap_transfer_blob(kek.get(), parsed->enc, parsed->ciphertext);
    auto recovered = oracle::parse_pkcs8(plain);
    auto key = p11::find_key(session, label);
    REQUIRE_OK(key);
    auto pub = p11::read_public_components(session, *key);
    REQUIRE_OK(pub);
    CHECK(oracle::ec_public_point(recovered.get()) == pub->ec_point);
  }
};

std::vector<Json> report_lines(const fs::path& p) {
  std::vector<Json> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    auto j = parse_json_strict(line);
    REQUIRE_OK(j);
    out.push_back(*j);
  }
  return out;
}

}  // namespace

TEST_CASE(
    "a selected batch is exported, reported line by line with progress, and a second run skips "
    "every file",
    "[softhsm][transfer]") {
  Rig rig;
  rig.make_keys(5, "sel-");
  auto rq = rig.request();
  rq.select = "sel-*";
  rq.jobs = 2;
  auto hooks = rig.hooks();
  std::vector<transfer::BatchExportProgress> seen;
  int planned = 0, started = 0;
  hooks.on_plan = [&](const transfer::ExportPlan& plan) {
    ++planned;
    CHECK(plan.items.size() == 5);
    CHECK_FALSE(plan.single);
  };
  hooks.on_start = [&](const transfer::ExportPlan&) {
    CHECK(planned == 1);
    ++started;
  };
  hooks.on_progress = [&](const transfer::BatchExportProgress& p) { seen.push_back(p); };
  auto first = transfer::run_batch_export(rq, hooks);
  REQUIRE_OK(first);
  CHECK(rig.opened == 1);
  CHECK(started == 1);
  CHECK(first->written == 5);
  CHECK(first->failed == 0);
  CHECK_FALSE(first->cancelled);
  CHECK(first->status().has_value());
  CHECK(first->report_path == rig.out / "keyport-export-report.jsonl");
  REQUIRE(seen.size() == 5);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    CHECK(seen[i].done == i + 1);
    CHECK(seen[i].total == 5);
    CHECK(seen[i].failed == 0);
  }
  REQUIRE(first->results.size() == 5);
  for (const auto& r : first->results) {
    REQUIRE(r.outcome == transfer::ItemOutcome::kWritten);
    CHECK(r.output == rig.out / (r.label + ".byok"));
    CHECK(r.sha256 == hex_encode(sha256(*read_file(r.output))));
    rig.verify_file(r.output, r.label);
  }
  auto lines = report_lines(first->report_path);
  REQUIRE(lines.size() == 5);
  for (const auto& l : lines) {
    CHECK(l["outcome"] == "written");
  }

  auto second = transfer::run_batch_export(rq, rig.hooks());
  REQUIRE_OK(second);
  CHECK(second->written == 0);
  CHECK(second->skipped == 5);
  CHECK(second->status().has_value());
  CHECK(report_lines(second->report_path).size() == 10);
}

TEST_CASE(
    "one key to one destination writes the named file, no report, and says which wrap it used",
    "[softhsm][transfer]") {
  Rig rig;
  rig.make_keys(1, "single-");
  auto rq = rig.request();
  rq.key = "single-0";
  rq.output = rig.dir / "single.byok";
  auto res = transfer::run_batch_export(rq, rig.hooks());
  REQUIRE_OK(res);
  CHECK(res->plan.single);
  REQUIRE(res->results.size() == 1);
  CHECK(res->results[0].outcome == transfer::ItemOutcome::kWritten);
  CHECK(res->results[0].output == rig.dir / "single.byok");
  rig.verify_file(rig.dir / "single.byok", "single-0");
  CHECK(res->report_path.empty());
  CHECK_FALSE(fs::exists(rig.out / "keyport-export-report.jsonl"));
  REQUIRE(res->strategy.has_value());
  CHECK(res->generator == transfer::generator_for(rig.token));

  // The file exists now: a second run refuses before the token is opened.
  const int opened = rig.opened;
  auto again = transfer::run_batch_export(rq, rig.hooks());
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().code() == ErrorCode::kAlreadyExists);
  CHECK(rig.opened == opened);
}

TEST_CASE("requests that cannot work fail before the token is opened", "[softhsm][transfer]") {
  Rig rig;
  auto check_refused = [&](transfer::BatchExportRequest rq, ErrorCode code, const char* text) {
    auto res = transfer::run_batch_export(rq, rig.hooks());
    REQUIRE_FALSE(res.has_value());
    INFO(res.error().describe());
    CHECK(res.error().code() == code);
    CHECK_THAT(res.error().message(), Catch::Contains(text));
    CHECK(rig.opened == 0);
  };
  auto rq = rig.request();
  check_refused(rq, ErrorCode::kInvalidArgument, "exactly one of --key, --select or --manifest");
  rq.key = "k";
  rq.select = "s*";
  check_refused(rq, ErrorCode::kInvalidArgument, "exactly one of");
  rq.select.reset();
  rq.kids.push_back(kKid);
  check_refused(rq, ErrorCode::kInvalidArgument, "one --kid per --kek");
  rq = rig.request();
  rq.key = "k";
  rq.jobs = 65;
  check_refused(rq, ErrorCode::kInvalidArgument, "--jobs: 1 to 64");
  rq = rig.request();
  rq.key = "k";
  rq.keks = {(rig.dir / "missing.pem").string()};
  auto missing = transfer::run_batch_export(rq, rig.hooks());
  REQUIRE_FALSE(missing.has_value());
  CHECK(rig.opened == 0);
  rq = rig.request();
  rq.select = "s*";
  rq.output = rig.dir / "x.byok";
  check_refused(rq, ErrorCode::kInvalidArgument, "-o names one file");
  rq = rig.request();
  rq.key = "k";
  rq.out_dir = rig.dir / "nowhere";
  check_refused(rq, ErrorCode::kNotFound, "does not exist");
}

TEST_CASE(
    "a manifest line with a KEK that does not load fails alone, and the batch reports it as "
    "partial",
    "[softhsm][transfer]") {
  Rig rig;
  rig.make_keys(2, "man-");
  const fs::path manifest = rig.dir / "keys.csv";
  REQUIRE_OK(write_file_atomic(manifest, "key,kek,kid\nman-0,kek.pem," + kKid +
                                             "\nman-1,missing.pem," + kKid + "\nman-1,kek.pem," +
                                             kKid + "\n"));
  transfer::BatchExportRequest rq;
  rq.manifest = manifest;
  rq.out_dir = rig.out;
  auto hooks = rig.hooks();
  std::size_t unresolved = 0;
  hooks.on_plan = [&](const transfer::ExportPlan& plan) { unresolved = plan.unresolved.size(); };
  auto res = transfer::run_batch_export(rq, hooks);
  REQUIRE_OK(res);
  CHECK(unresolved == 1);
  CHECK(res->written == 2);
  CHECK(res->failed == 1);
  REQUIRE(res->results.size() == 3);
  CHECK(res->results[2].outcome == transfer::ItemOutcome::kFailed);
  CHECK(res->results[2].label == "man-1");
  rig.verify_file(rig.out / "man-0.byok", "man-0");
  rig.verify_file(rig.out / "man-1.byok", "man-1");
  auto st = res->status();
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().code() == ErrorCode::kInternal);
  CHECK(st.error().detail() == "partial");
  CHECK(report_lines(res->report_path).size() == 3);
}

TEST_CASE("a cancelled batch writes nothing more and says it was interrupted",
          "[softhsm][transfer]") {
  Rig rig;
  rig.make_keys(4, "cancel-");
  auto rq = rig.request();
  rq.select = "cancel-*";
  std::atomic<bool> cancel{false};
  auto hooks = rig.hooks();
  hooks.cancel = &cancel;
  hooks.on_start = [&](const transfer::ExportPlan&) { cancel.store(true); };
  auto res = transfer::run_batch_export(rq, hooks);
  REQUIRE_OK(res);
  CHECK(res->cancelled);
  CHECK(res->written == 0);
  for (const auto& r : res->results) {
    CHECK(r.outcome == transfer::ItemOutcome::kFailed);
    CHECK_FALSE(fs::exists(r.output));
  }
  auto st = res->status();
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().code() == ErrorCode::kIo);
  CHECK_THAT(st.error().message(), Catch::Contains("interrupted"));
}

TEST_CASE("a service profile that refuses a key of the plan stops the export before any file",
          "[softhsm][transfer]") {
  Rig rig;
  rig.make_keys(1, "svc-");
  auto profile = byok::parse_service_profile("storage-cmk");
  REQUIRE_OK(profile);
  auto rq = rig.request();
  rq.select = "svc-*";
  rq.profile = *profile;
  bool started = false;
  auto hooks = rig.hooks();
  hooks.on_start = [&](const transfer::ExportPlan&) { started = true; };
  auto res = transfer::run_batch_export(rq, hooks);
  REQUIRE_FALSE(res.has_value());
  CHECK(res.error().code() == ErrorCode::kUnsupported);
  CHECK(res.error().detail() == "profile-refused");
  CHECK_FALSE(started);
  CHECK_FALSE(fs::exists(rig.out / "svc-0.byok"));
  CHECK_FALSE(fs::exists(rig.out / "keyport-export-report.jsonl"));
}

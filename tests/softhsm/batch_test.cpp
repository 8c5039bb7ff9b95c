// SPDX-License-Identifier: Apache-2.0
// Batch and multi-target export on SoftHSM2 (transfer/batch.h), every written file checked with
// OpenSSL (tests/support/oracle.cpp).
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <set>

#include "byok/byok_file.h"
#include "core/digest.h"
#include "core/file_io.h"
#include "pkcs11/keygen.h"
#include "pkcs11/token.h"
#include "pkcs11/wrap.h"
#include "tests/support/oracle.h"
#include "tests/support/softhsm.h"
#include "tests/support/support.h"
#include "transfer/batch.h"

using namespace keyport;
namespace fs = std::filesystem;
namespace oracle = keyport::test::oracle;

namespace {

struct BatchRig {
  test::SoftHsm& hsm = test::SoftHsm::get();
  p11::Session session = hsm.login(test::kOnpremToken);
  p11::TokenInfo token = *p11::token_info(*hsm.module(), session.slot());
  p11::WrapCapabilities caps = *p11::probe_wrap_capabilities(session, token);
  fs::path out = test::make_scratch_subdir("batch-out");
  std::map<Bytes, Bytes> public_points;  // CKA_ID -> EC point, read once

  const Bytes& public_point(const p11::KeyObject& key) {
    if (public_points.empty()) {
      p11::Template t;
      t.object_class(CKO_PUBLIC_KEY);
      auto handles = session.find_objects(t);
      REQUIRE_OK(handles);
      for (CK_OBJECT_HANDLE h : handles.value()) {
        auto id = session.get_bytes(h, CKA_ID);
        auto point = session.get_bytes(h, CKA_EC_POINT);
        if (id && point)
          public_points[*id] = *p11::ec_point_from_attribute(*point);
      }
    }
    return public_points.at(key.id);
  }

  transfer::Destination destination(EVP_PKEY* kek, const std::string& vault) {
    fs::path pem = out.parent_path() / (vault + "-kek.pem");
    if (!fs::exists(pem))
      REQUIRE_OK(write_file_atomic(pem, oracle::spki_pem(kek)));
    std::vector<std::string> warnings;
    auto d = transfer::load_destination(
        pem, "https://" + vault + ".vault.azure.net/keys/KEK/0123456789abcdef0123456789abcdef",
        std::nullopt, warnings);
    REQUIRE_OK(d);
    return std::move(*d);
  }

  std::vector<p11::KeyObject> make_keys(int n, const std::string& prefix) {
    std::vector<p11::KeyObject> keys;
    for (int i = 0; i < n; ++i) {
      p11::KeyGenRequest r;
      r.spec = *parse_key_spec("ec-p256");
      r.label = prefix + std::to_string(i);
      auto k = p11::generate_portable_key(session, r);
      REQUIRE_OK(k);
      keys.push_back(*k);
    }
    return keys;
  }

  transfer::BatchOptions options(int jobs) {
    transfer::BatchOptions o;
    o.jobs = jobs;
    o.generator = transfer::generator_for(token);
    return o;
  }
};

// The file holds exactly `key` (its public point, via OpenSSL) wrapped for `kek` under `kid`.
void verify_file(BatchRig& rig, const fs::path& file, const p11::KeyObject& key, EVP_PKEY* kek,
                 const std::string& kid) {
  auto text = read_text_file(file);
  REQUIRE_OK(text);
  auto parsed = byok::ByokFile::parse(*text);
  REQUIRE_OK(parsed);
  CHECK(parsed->kid == kid);
  Bytes plain = oracle::unwrap_transfer_blob(kek, parsed->enc, parsed->ciphertext);
  auto recovered = oracle::parse_pkcs8(plain);
  CHECK(oracle::ec_public_point(recovered.get()) == rig.public_point(key));
}

std::size_t temp_files(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    n += e.path().filename().string().find(".tmp-") != std::string::npos;
  return n;
}

}  // namespace

TEST_CASE(
    "a batch of 200 keys with one that cannot leave writes 199 verified files and reports the one",
    "[softhsm][batch][slow]") {
  BatchRig rig;
  auto kek = oracle::rsa_keygen(2048);
  std::vector<transfer::Destination> dests;
  dests.push_back(rig.destination(kek.get(), "contoso"));
  auto keys = rig.make_keys(199, "bulk-");
  // The induced failure: a key made without CKA_EXTRACTABLE (SoftHSM then says FALSE).
  p11::Template pub_t, priv_t;
  pub_t.token(true).label("bulk-nonx").ec_params(curve_oid_der(Curve::kP256));
  priv_t.token(true).private_object(true).sensitive(true).sign(true).label("bulk-nonx");
  CK_MECHANISM gen{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  CK_OBJECT_HANDLE hp = 0, hv = 0;
  auto lp = pub_t.lower();
  auto lv = priv_t.lower();
  REQUIRE_OK(KP11_CALL(rig.session.module(), C_GenerateKeyPair, rig.session.handle(), &gen,
                       lp.data(), lp.size(), lv.data(), lv.size(), &hp, &hv));
  auto all = p11::list_keys(rig.session, false);
  REQUIRE_OK(all);
  auto selected = transfer::select_keys(*all, "bulk-*");
  REQUIRE(selected.size() == 200);
  std::vector<transfer::BatchItem> items;
  for (const auto& k : selected)
    items.push_back({k, 0, WrapAlg::kRsaAesKeyWrap, rig.out / (k.label + ".byok")});
  std::size_t reported = 0;
  auto o = rig.options(2);
  o.on_item = [&](const transfer::ItemResult&) { ++reported; };
  auto results =
      transfer::run_batch(rig.hsm.module(), rig.session.slot(), rig.caps, dests, items, o);
  REQUIRE_OK(results);
  CHECK(reported == 200);
  std::size_t written = 0;
  for (std::size_t i = 0; i < results->size(); ++i) {
    const auto& r = (*results)[i];
    if (r.label == "bulk-nonx") {
      CHECK(r.outcome == transfer::ItemOutcome::kFailed);
      REQUIRE(r.error.has_value());
      CHECK_THAT(r.error->message(), Catch::Contains("not extractable"));
      CHECK_FALSE(fs::exists(r.output));
      continue;
    }
    REQUIRE(r.outcome == transfer::ItemOutcome::kWritten);
    CHECK(r.sha256 == hex_encode(sha256(*read_file(r.output))));
    verify_file(rig, r.output, items[i].key, kek.get(), dests[0].kid.url);
    ++written;
  }
  CHECK(written == 199);
  CHECK(temp_files(rig.out) == 0);
  CHECK(test::count_session_objects(rig.session, CKO_SECRET_KEY) == 0);
}

TEST_CASE(
    "an interrupted batch resumes: written files are skipped, the rest are written, none twice",
    "[softhsm][batch]") {
  BatchRig rig;
  auto kek = oracle::rsa_keygen(2048);
  std::vector<transfer::Destination> dests;
  dests.push_back(rig.destination(kek.get(), "contoso"));
  auto keys = rig.make_keys(40, "resume-");
  std::vector<transfer::BatchItem> items;
  for (const auto& k : keys)
    items.push_back({k, 0, WrapAlg::kRsaAesKeyWrap, rig.out / (k.label + ".byok")});
  fs::path report = rig.out.parent_path() / "report.jsonl";
  auto append = [&](const std::vector<transfer::ItemResult>& rs) {
    std::string lines;
    for (const auto& r : rs)
      lines += dump_json(r.to_json()) + "\n";
    auto old = read_text_file(report);
    WriteOptions wo;
    wo.overwrite = true;
    REQUIRE_OK(write_file_atomic(report, (old ? *old : std::string()) + lines, wo));
  };

  std::atomic<bool> cancel{false};
  std::size_t seen = 0;
  auto o = rig.options(1);
  o.commit_every = 4;
  o.cancel = &cancel;
  o.on_item = [&](const transfer::ItemResult&) {
    if (++seen == 12)
      cancel.store(true);
  };
  auto first = transfer::run_batch(rig.hsm.module(), rig.session.slot(), rig.caps, dests, items, o);
  REQUIRE_OK(first);
  append(*first);
  std::map<std::string, std::string> first_sha;
  std::size_t first_written = 0;
  for (const auto& r : *first) {
    if (r.outcome == transfer::ItemOutcome::kWritten) {
      ++first_written;
      first_sha[r.output.string()] = r.sha256;
    }
  }
  CHECK(first_written >= 12);
  CHECK(first_written < 40);
  CHECK(temp_files(rig.out) == 0);

  // A stale temporary file as a killed run would leave: the next run removes it.
  REQUIRE_OK(
      write_file_atomic(rig.out / ".resume-39.byok.tmp-deadbeef", std::string_view("partial")));

  auto o2 = rig.options(2);
  o2.previous_report = report;
  auto second =
      transfer::run_batch(rig.hsm.module(), rig.session.slot(), rig.caps, dests, items, o2);
  REQUIRE_OK(second);
  std::size_t skipped = 0, written = 0;
  for (std::size_t i = 0; i < second->size(); ++i) {
    const auto& r = (*second)[i];
    REQUIRE(r.outcome != transfer::ItemOutcome::kFailed);
    if (r.outcome == transfer::ItemOutcome::kSkipped) {
      ++skipped;
      CHECK(first_sha.at(r.output.string()) == r.sha256);  // the first run's file, untouched
    } else {
      ++written;
      CHECK_FALSE(first_sha.count(r.output.string()));
    }
    verify_file(rig, r.output, items[i].key, kek.get(), dests[0].kid.url);
  }
  CHECK(skipped == first_written);
  CHECK(skipped + written == 40);
  CHECK(temp_files(rig.out) == 0);

  // A file changed since it was recorded is not trusted: the item fails instead of being skipped.
  auto victim = (*second)[0].output;
  WriteOptions wo;
  wo.overwrite = true;
  REQUIRE_OK(write_file_atomic(victim, std::string_view("{}"), wo));
  append(*second);
  auto third =
      transfer::run_batch(rig.hsm.module(), rig.session.slot(), rig.caps, dests, items, o2);
  REQUIRE_OK(third);
  CHECK((*third)[0].outcome == transfer::ItemOutcome::kFailed);
  CHECK((*third)[0].error->code() == ErrorCode::kAlreadyExists);
  CHECK((*third)[1].outcome == transfer::ItemOutcome::kSkipped);
}

TEST_CASE("one key to three destinations gives three files, each opening only with its own KEK",
          "[softhsm][batch]") {
  BatchRig rig;
  std::vector<ossl::UniquePtr<EVP_PKEY>> keks;
  std::vector<transfer::Destination> dests;
  const char* vaults[] = {"westeurope-prod", "northeurope-dr", "contoso"};
  for (unsigned i = 0; i < 3; ++i) {
    keks.push_back(oracle::rsa_keygen(2048 + 1024 * i));
    dests.push_back(rig.destination(keks.back().get(), vaults[i]));
  }
  transfer::assign_destination_tags(dests);
  std::set<std::string> tags;
  for (const auto& d : dests)
    tags.insert(d.tag);
  CHECK(tags == std::set<std::string>{"westeurope-prod", "northeurope-dr", "contoso"});
  auto key = rig.make_keys(1, "portable-").front();
  std::vector<transfer::BatchItem> items;
  for (std::size_t d = 0; d < 3; ++d) {
    items.push_back(
        {key, d, WrapAlg::kRsaAesKeyWrap, rig.out / (key.label + "." + dests[d].tag + ".byok")});
  }
  auto results = transfer::run_batch(rig.hsm.module(), rig.session.slot(), rig.caps, dests, items,
                                     rig.options(1));
  REQUIRE_OK(results);
  for (std::size_t d = 0; d < 3; ++d) {
    REQUIRE((*results)[d].outcome == transfer::ItemOutcome::kWritten);
    verify_file(rig, items[d].output, key, keks[d].get(), dests[d].kid.url);
    // The same file does not open under another destination's KEK.
    auto text = read_text_file(items[d].output);
    auto parsed = byok::ByokFile::parse(*text);
    CHECK_THROWS(
        oracle::unwrap_transfer_blob(keks[(d + 1) % 3].get(), parsed->enc, parsed->ciphertext));
  }
}

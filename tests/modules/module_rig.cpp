// SPDX-License-Identifier: Apache-2.0
#include "tests/modules/module_rig.h"

#include <catch2/catch.hpp>

#include "core/digest.h"
#include "core/encoding.h"
#include "tests/support/oracle.h"

namespace keyport::test::modules {
namespace fs = std::filesystem;
using cli::Run;
using cli::sh_quote;

namespace {

Json parse_or_fail(const Run& r) {
  INFO(r.describe());
  REQUIRE(r.rc == 0);
  auto j = parse_json_strict(r.out);
  REQUIRE(j.has_value());
  return *j;
}

}  // namespace

WrapAlg wrap_alg_of(const std::string& enc) {
  if (enc == "CKM_RSA_AES_KEY_WRAP")
    return WrapAlg::kRsaAesKeyWrap;
  if (enc == "RSA_AES_KEY_WRAP_256")
    return WrapAlg::kRsaAesKeyWrap256;
  REQUIRE(enc == "RSA_AES_KEY_WRAP_384");
  return WrapAlg::kRsaAesKeyWrap384;
}

ModuleRig::ModuleRig(const std::string& stem, ModuleUnderTest module)
    : m_rig(stem), m_module(std::move(module)), m_kek(oracle::rsa_keygen(2048)) {
  m_kek_pem = m_rig.dir() / "kek.pem";
  cli::write_text(m_kek_pem, oracle::spki_pem(m_kek.get()));
}

ModuleRig::ModuleRig(const std::string& stem,
                     const std::function<ModuleUnderTest(const cli::Rig&)>& make)
    : m_rig(stem), m_module(make(m_rig)), m_kek(oracle::rsa_keygen(2048)) {
  m_kek_pem = m_rig.dir() / "kek.pem";
  cli::write_text(m_kek_pem, oracle::spki_pem(m_kek.get()));
}

Run ModuleRig::keyport(const std::string& args) const {
  cli::RunOptions o;
  o.keyport_pin = m_module.keyport_pin ? m_rig.pin() : "";
  o.env = m_module.env;
  return m_rig.keyport(m_module.global_args + " " + args, o);
}

Run ModuleRig::on_token(const std::string& args) const {
  return keyport(args + " --token " + sh_quote(m_module.token) + " " + m_module.pin_args);
}

Json ModuleRig::generate(const std::string& type, const std::string& label) const {
  return parse_or_fail(
      on_token("key generate --type " + type + " --label " + sh_quote(label) + " --json"));
}

Json ModuleRig::list_keys() const {
  Json j = parse_or_fail(on_token("key list --json"));
  REQUIRE(j.contains("keys"));
  return j["keys"];
}

Json ModuleRig::token_info(bool doctor) const {
  return parse_or_fail(on_token(std::string("token info --json") + (doctor ? " --doctor" : "")));
}

Run ModuleRig::export_key(const std::string& label, const std::string& enc, const std::string& file,
                          const std::string& extra) const {
  return on_token("byok export --key " + sh_quote(label) + " --kek " +
                  sh_quote(m_kek_pem.string()) + " --kid " + sh_quote(cli::Rig::mhsm_kid()) +
                  " --enc " + enc + " -o " + sh_quote((m_rig.out_dir() / file).string()) +
                  " --json " + extra);
}

std::string ModuleRig::check_export(const Run& r, const std::string& label, const std::string& enc,
                                    const std::string& file) const {
  INFO(label << " " << enc << "\n" << r.describe());
  const Json report = parse_or_fail(r);
  CHECK(report.value("enc", "") == enc);
  CHECK(cli::list_dir(m_rig.out_dir()).count(file) == 1);
  auto byok = parse_json_strict(cli::read_text(m_rig.out_dir() / file));
  REQUIRE(byok.has_value());
  auto ct = base64url_decode((*byok)["ciphertext"].get<std::string>());
  REQUIRE(ct.has_value());
  const Bytes plain = oracle::unwrap_transfer_blob(m_kek.get(), wrap_alg_of(enc), *ct);
  // The token's own fingerprint of the key, from key list.
  Json key;
  for (const auto& k : list_keys()) {
    if (k.value("label", "") == label)
      key = k;
  }
  REQUIRE(key.is_object());
  const std::string type = key.value("type", "");
  if (type.rfind("aes-", 0) == 0) {
    CHECK(plain.size() * 8 == std::stoul(type.substr(4)));
    REQUIRE(key["kcv"].is_string());
    CHECK(hex_encode(oracle::aes_check_value(plain)).substr(0, 6) == key["kcv"].get<std::string>());
  } else {
    std::size_t used = 0;
    auto priv = oracle::parse_pkcs8(plain, &used);
    REQUIRE(priv);
    // Whatever follows the DER may only be a module's zero padding (SoftHSM 2.6.1).
    for (std::size_t i = used; i < plain.size(); ++i)
      CHECK(plain[i] == 0);
    REQUIRE(key["public_key_sha256"].is_string());
    CHECK(hex_encode(sha256(oracle::spki_der(priv.get()))) ==
          key["public_key_sha256"].get<std::string>());
  }
  return report.value("strategy", "");
}

void ModuleRig::check_refused(const Run& r, int code, const std::string& needle) const {
  INFO(r.describe());
  CHECK(r.rc == code);
  CHECK(r.err.find(needle) != std::string::npos);
  CHECK(cli::list_dir(m_rig.out_dir()).empty());
}

}  // namespace keyport::test::modules

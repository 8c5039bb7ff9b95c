// SPDX-License-Identifier: Apache-2.0
// keyport byok inspect | wrap | request: the BYOK toolbox for files (no token needed).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "byok/byok_file.h"
#include "byok/import_request.h"
#include "byok/kek.h"
#include "byok/key_material.h"
#include "byok/kid.h"
#include "byok/lint.h"
#include "byok/service_profile.h"
#include "cli/commands.h"
#include "core/file_io.h"
#include "core/log.h"
#include "pkcs11/pin.h"
#include "transfer/export.h"

namespace keyport::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxKeyFileBytes = 1u << 20;
constexpr std::size_t kMaxPassphraseFileBytes = 64u << 10;
constexpr std::size_t kMaxPolicyBytes = 1u << 20;

constexpr const char* kTestRigNote =
    "--kek-private is for test rigs: a real KEK's private key never leaves the vault's HSM";
constexpr const char* kFileKeyWarning =
    "this key existed in a file; an HSM-generated key (keyport key generate + byok export) "
    "never does";

// --target, when given.
Status parse_optional_target(const std::optional<std::string>& target,
                             std::optional<byok::TargetKind>& out) {
  if (target) {
    KEYPORT_ASSIGN_OR_RETURN(byok::TargetKind kind, byok::parse_target_kind(*target));
    out = kind;
  }
  return {};
}

// The private KEK of a test rig, as PKCS#8 DER.
Result<std::shared_ptr<const SecretBytes>> load_private_kek(const GlobalOptions& g,
                                                            const std::string& path) {
  note(g, std::string("note: ") + kTestRigNote);
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes contents, read_secret_file(path, kMaxKeyFileBytes));
  auto material = byok::load_key_material(contents.reveal(SecretAccess::unsafe()), nullptr);
  if (!material) {
    return tl::unexpected(material.error().with_context("--kek-private " + path));
  }
  if (material->spec.family != KeyFamily::kRsa) {
    return make_error(ErrorCode::kInvalidArgument, "--kek-private " + path + ": a KEK is an RSA " +
                                                       "key; this is " + material->spec.name());
  }
  return std::make_shared<const SecretBytes>(std::move(material->encoded));
}

// ---------------------------------------------------------------------------------------------
// byok inspect

struct InspectCmdOptions {
  std::string file;
  std::optional<std::string> kek_path;
  std::optional<std::string> kek_private_path;
  std::optional<std::string> target;
  bool strict = false;
};

std::string plural(std::size_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string describe_ciphertext(const byok::InspectReport& r) {
  if (!r.ciphertext_bytes) {
    return "-";
  }
  std::string out = std::to_string(*r.ciphertext_bytes) + " bytes";
  if (r.rsa_part_bytes && r.kwp_part_bytes) {
    out += " = " + std::to_string(*r.rsa_part_bytes) + "-byte RSA part + " +
           std::to_string(*r.kwp_part_bytes) + "-byte AES-KWP part (" +
           (r.split_source == "kek" ? std::string("") : std::string("inferred: ")) +
           std::to_string(*r.rsa_part_bytes * 8) + "-bit KEK)";
  } else if (!r.plausible_kek_bits.empty()) {
    std::string sizes;
    for (unsigned bits : r.plausible_kek_bits) {
      sizes += (sizes.empty() ? "" : " or ") + std::to_string(bits);
    }
    out += " (fits a " + sizes + "-bit KEK)";
  }
  return out;
}

void print_report(const std::string& file, const byok::InspectReport& r) {
  auto line = [](const std::string& label, const std::string& value) {
    std::cout << "  " << label << std::string(label.size() < 16 ? 16 - label.size() : 1, ' ')
              << value << '\n';
  };
  auto or_dash = [](const std::optional<std::string>& s) { return s ? *s : std::string("-"); };
  std::cout << file << ": " << r.file_bytes << " bytes\n";
  line("schema_version", or_dash(r.schema_version));
  line("kid", or_dash(r.kid));
  std::string target = "-";
  if (r.target) {
    target = std::string(byok::to_string(*r.target)) + " (from " +
             (r.target_source == "kid" ? std::string("the kid host") : r.target_source) + ")";
  }
  line("target", target);
  line("alg / enc", or_dash(r.alg) + " / " + or_dash(r.enc));
  line("generator", or_dash(r.generator));
  line("ciphertext", describe_ciphertext(r));
  if (r.kek_sha256) {
    line("KEK SHA-256", *r.kek_sha256);
  }
  if (r.key) {
    std::string key = r.key->description;
    if (r.key->spec) {
      key += " (" + std::string(r.key->spec->azure_kty()) + ")";
    }
    line("key", key);
    if (r.key->public_sha256) {
      line("public SHA-256", *r.key->public_sha256);
    }
    if (r.key->aes_kcv) {
      line("AES KCV", *r.key->aes_kcv);
    }
  } else {
    line("key", "not unwrapped");
  }
  line("keyport reader", r.reader_accepts ? "accepts the file" : "refuses the file");
  line("result", plural(r.count(byok::Severity::kError), "error") + ", " +
                     plural(r.count(byok::Severity::kWarning), "warning") + ", " +
                     std::to_string(r.count(byok::Severity::kInfo)) + " info");
  for (const byok::Finding& f : r.findings) {
    const std::string severity(byok::to_string(f.severity));
    std::cout << '\n'
              << severity << std::string(8 - severity.size(), ' ') << f.code << ": " << f.message
              << '\n';
    if (!f.advice.empty()) {
      std::cout << "        advice: " << f.advice << '\n';
    }
  }
  std::cout.flush();
}

Status run_inspect(GlobalOptions& g, const InspectCmdOptions& o) {
  byok::InspectOptions io;
  std::optional<byok::TargetKind> target;
  KEYPORT_TRY(parse_optional_target(o.target, target));
  io.target = target;
  if (o.kek_path) {
    KEYPORT_ASSIGN_OR_RETURN(byok::Kek kek, byok::load_kek_file(*o.kek_path));
    io.kek = std::move(kek.key);
    io.kek_kid = std::move(kek.kid);
  }
  if (o.kek_private_path) {
    KEYPORT_ASSIGN_OR_RETURN(io.kek_private_der, load_private_kek(g, *o.kek_private_path));
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes contents, read_file(o.file));
  const byok::InspectReport report = byok::inspect_byok(contents, io);
  if (g.json) {
    print_json(report.to_json());
  } else {
    print_report(o.file, report);
  }
  if (const byok::Finding* f = report.first(byok::Severity::kError)) {
    return make_error(ErrorCode::kFormat, f->code,
                      o.file + ": " + plural(report.count(byok::Severity::kError), "error") +
                          " (first: " + f->code + ")");
  }
  if (o.strict) {
    if (const byok::Finding* f = report.first(byok::Severity::kWarning)) {
      return make_error(ErrorCode::kFormat, f->code,
                        o.file + ": --strict and " +
                            plural(report.count(byok::Severity::kWarning), "warning") +
                            " (first: " + f->code + ")");
    }
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// byok wrap

struct WrapCmdOptions {
  std::string key_path;
  std::string kek_path;
  std::optional<std::string> kid;
  std::string enc = "CKM_RSA_AES_KEY_WRAP";
  std::optional<std::string> target;
  std::optional<std::string> passphrase_source;
  std::optional<std::string> output;
  std::optional<std::string> name;
  std::optional<std::string> for_profile;
  bool force = false;
};

// One trailing "\n" or "\r\n" is not part of a passphrase kept in a file.
void strip_one_newline(SecretBytes& s) {
  const auto bytes = s.reveal(SecretAccess::unsafe());
  std::size_t n = bytes.size();
  if (n > 0 && bytes[n - 1] == '\n') {
    --n;
    if (n > 0 && bytes[n - 1] == '\r') {
      --n;
    }
  }
  s.truncate(n);
}

// --passphrase-source env:VAR | file:PATH, else a no-echo prompt when stdin is a terminal.
Result<SecretBytes> resolve_passphrase(const std::optional<std::string>& source,
                                       const std::string& key_path) {
  if (!source) {
    if (::isatty(STDIN_FILENO) == 1) {
      return p11::prompt_secret("Passphrase for " + key_path + ": ");
    }
    return make_error(ErrorCode::kAuth, key_path +
                                            " is encrypted: give its passphrase with "
                                            "--passphrase-source env:VAR or file:PATH");
  }
  const std::string& s = *source;
  if (s.starts_with("env:") && s.size() > 4) {
    const std::string name = s.substr(4);
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) {
      return make_error(ErrorCode::kNotFound,
                        "--passphrase-source env:" + name + ": the variable is not set");
    }
    return SecretBytes::from_string(value);
  }
  if (s.starts_with("file:") && s.size() > 5) {
    auto passphrase = read_secret_file(s.substr(5), kMaxPassphraseFileBytes);
    if (!passphrase) {
      return tl::unexpected(passphrase.error().with_context("--passphrase-source"));
    }
    strip_one_newline(*passphrase);
    return std::move(*passphrase);
  }
  return make_error(ErrorCode::kInvalidArgument, "--passphrase-source " + s +
                                                     ": use env:VAR or file:PATH (a passphrase "
                                                     "is never taken from the command line)");
}

Json key_json(const byok::KeyMaterial& key, const std::string& path) {
  Json j = {{"file", path},
            {"format", std::string(byok::to_string(key.format)) +
                           (key.spec.family == KeyFamily::kAes ? "" : (key.pem ? " PEM" : " DER"))},
            {"type", key.spec.name()},
            {"kty", std::string(key.spec.azure_kty())}};
  if (key.public_key) {
    j["public_key_sha256"] = key.public_key->sha256_fingerprint();
  } else if (auto kcv = byok::aes_key_check_value(key.encoded)) {
    j["kcv"] = *kcv;
  }
  return j;
}

Status run_wrap(GlobalOptions& g, const WrapCmdOptions& o) {
  // Everything about the destination first: nothing secret is read until it is all valid.
  KEYPORT_ASSIGN_OR_RETURN(WrapAlg enc, parse_wrap_alg(o.enc));
  KEYPORT_ASSIGN_OR_RETURN(const byok::ServiceProfile* profile, resolve_profile(o.for_profile));
  std::optional<byok::TargetKind> target_opt;
  KEYPORT_TRY(parse_optional_target(o.target, target_opt));
  KEYPORT_ASSIGN_OR_RETURN(byok::Kek kek, byok::load_kek_file(o.kek_path));
  const std::string kid_text = o.kid.value_or(kek.kid.value_or(""));
  if (kid_text.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "--kid is required: the versioned key identifier of the KEK, "
                      "https://<vault>.vault.azure.net/keys/<kek-name>/<version>");
  }
  auto kid = byok::parse_kid(kid_text, true);
  if (!kid) {
    return tl::unexpected(kid.error().with_context("--kid"));
  }
  std::vector<std::string> warnings;
  KEYPORT_ASSIGN_OR_RETURN(byok::TargetKind target,
                           transfer::resolve_target(*kid, target_opt, warnings));
  if (kek.kid && o.kid && *kek.kid != *o.kid) {
    warnings.push_back("--kid differs from the kid inside the KEK file " + o.kek_path);
  }
  const fs::path key_path(o.key_path);
  const fs::path out_path =
      o.output ? fs::path(*o.output) : fs::path(key_path.stem().string() + ".byok");
  KEYPORT_TRY(check_output_path(out_path, o.force));

  KEYPORT_ASSIGN_OR_RETURN(SecretBytes contents, read_secret_file(key_path, kMaxKeyFileBytes));
  const auto file_bytes = contents.reveal(SecretAccess::unsafe());
  std::optional<SecretBytes> passphrase;
  if (byok::key_file_is_encrypted(file_bytes)) {
    KEYPORT_ASSIGN_OR_RETURN(passphrase, resolve_passphrase(o.passphrase_source, o.key_path));
  } else if (o.passphrase_source) {
    warnings.push_back("--passphrase-source is ignored: " + o.key_path + " is not encrypted");
  }
  auto key = byok::load_key_material(file_bytes, passphrase ? &*passphrase : nullptr);
  if (!key) {
    return tl::unexpected(key.error().with_context(o.key_path));
  }
  // --for: refused before anything is wrapped or written.
  if (profile != nullptr) {
    KEYPORT_TRY(byok::check_profile_accepts(*profile, key->spec));
  }
  const std::string generator = transfer::tool_version() + "; software wrap of a key file (no HSM)";
  KEYPORT_ASSIGN_OR_RETURN(byok::ByokFile file,
                           byok::wrap_key_material(*key, kek.key, *kid, target, enc, generator));
  const std::string text = file.to_json();
  WriteOptions wo;
  wo.overwrite = o.force;
  KEYPORT_TRY(write_file_atomic(out_path, text, wo));

  const std::string az_name =
      o.name.value_or(transfer::azure_key_name_from(key_path.stem().string()));
  const std::string az = transfer::az_import_command(*kid, target, key->spec, az_name, out_path);
  log::warn(kFileKeyWarning);
  for (const auto& w : warnings) {
    log::warn(w);
  }
  if (profile != nullptr) {
    note_profile(g, *profile);
  }
  if (g.json) {
    Json warn_json = Json::array();
    warn_json.push_back(kFileKeyWarning);
    for (const auto& w : warnings) {
      warn_json.push_back(w);
    }
    print_json({{"file", out_path.string()},
                {"bytes", text.size()},
                {"key", key_json(*key, o.key_path)},
                {"kid", kid->url},
                {"target", std::string(byok::to_string(target))},
                {"enc", std::string(wrap_alg_name(enc))},
                {"ciphertext_bytes", file.ciphertext.size()},
                {"generator", file.generator},
                {"az_command", az},
                {"profile", profile != nullptr ? Json(std::string(profile->name)) : Json()},
                {"warnings", warn_json}});
  } else {
    std::cout << "wrote " << out_path.string() << ": " << key->spec.name() << " from " << o.key_path
              << " (" << byok::to_string(key->format) << ") for " << kid->url << " ("
              << wrap_alg_name(enc) << ", software wrap, " << file.ciphertext.size()
              << "-byte ciphertext)\n"
              << "next: " << az << std::endl;
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// byok request

struct RequestCmdOptions {
  std::string file;
  byok::ImportRequestOptions request;
  std::string enabled = "true";
  std::optional<std::string> policy_path;
  std::optional<std::string> kek_private_path;
};

Status run_request(GlobalOptions& g, RequestCmdOptions o) {
  KEYPORT_ASSIGN_OR_RETURN(Bytes contents, read_file(o.file));
  o.request.enabled = o.enabled == "true";
  if (o.policy_path) {
    auto policy = read_text_file(*o.policy_path, kMaxPolicyBytes);
    if (!policy) {
      return tl::unexpected(policy.error().with_context("--policy"));
    }
    o.request.policy = std::move(*policy);
  }
  if (o.kek_private_path) {
    byok::InspectOptions io;
    KEYPORT_ASSIGN_OR_RETURN(io.kek_private_der, load_private_kek(g, *o.kek_private_path));
    const byok::InspectReport report = byok::inspect_byok(contents, io);
    if (!report.key || !report.key->spec) {
      const byok::Finding* f = report.first(byok::Severity::kError);
      return make_error(ErrorCode::kInvalidArgument, f != nullptr ? f->code : "",
                        "--kek-private cannot tell which key " + o.file + " holds" +
                            (f != nullptr ? ": " + f->code + ": " + f->message : std::string()));
    }
    o.request.detected = report.key->spec;
  }
  auto request = byok::build_import_request(contents, o.request);
  if (!request) {
    return tl::unexpected(request.error().with_context(o.file));
  }
  note(g, request->method + " " + request->url);
  std::cout << request->body_text() << std::flush;
  return {};
}

}  // namespace

void setup_byok_tool_commands(CLI::App& byok, GlobalOptions& g) {
  // inspect
  auto io = std::make_shared<InspectCmdOptions>();
  auto* inspect = byok.add_subcommand(
      "inspect",
      "Check a .byok file offline and explain every defect (finding codes: docs/byok-inspect.md).\n"
      "Reads leniently (padded or standard base64 are warnings), reports what keyport's strict\n"
      "reader and Azure would refuse. With --kek the lengths are checked against the KEK; with\n"
      "--kek-private (test rigs only) the key inside is unwrapped and checked as the vault would.\n"
      "Exit 0 without errors (3 with errors, or with warnings under --strict).\n"
      "Examples:\n"
      "  keyport byok inspect key.byok\n"
      "  keyport byok inspect key.byok --kek KEK.pem --strict --json\n"
      "  keyport byok inspect key.byok --kek-private test-kek-private.pem");
  inspect->add_option("FILE", io->file, "The .byok file")->required();
  inspect->add_option("--kek", io->kek_path,
                      "The KEK public key (SPKI PEM or DER, JWK or KeyBundle JSON): checks the "
                      "RSA part length and, for JSON, the kid");
  inspect->add_option("--kek-private", io->kek_private_path,
                      "TEST RIGS ONLY: the KEK's private key (PEM or DER) to unwrap and check the "
                      "key inside; a real KEK's private key never leaves the vault");
  inspect->add_option("--target", io->target,
                      "key-vault or managed-hsm, for kid hosts that are not Azure's");
  inspect->add_flag("--strict", io->strict, "Treat warnings as errors (exit 3)");
  add_json_flag(*inspect, g);
  inspect->callback(bind_command(g, [&g, io]() { return run_inspect(g, *io); }));

  // wrap
  auto wo = std::make_shared<WrapCmdOptions>();
  auto* wrap = byok.add_subcommand(
      "wrap",
      "Wrap a key that lives in a file (software, OpenSSL) into a .byok file.\n"
      "Reads PKCS#8 PEM/DER, encrypted PKCS#8, PKCS#1 \"RSA PRIVATE KEY\", SEC1 \"EC PRIVATE "
      "KEY\",\n"
      "raw AES keys (16/24/32 bytes) and hex AES keys (32/48/64 hex digits). Prefer keys that "
      "never\n"
      "left an HSM: keyport key generate + keyport byok export.\n"
      "Examples:\n"
      "  keyport byok wrap --key key.pem --kek KEK.pem --kid "
      "https://V.vault.azure.net/keys/KEK/<version>\n"
      "  keyport byok wrap --key aes.hex --kek KEK.pem --kid "
      "https://H.managedhsm.azure.net/keys/KEK/<version> -o aes.byok\n"
      "  KEY_PASS=... keyport byok wrap --key enc.pem --passphrase-source env:KEY_PASS --kek "
      "KEK.pem --kid ...\n"
      "  keyport byok wrap --key tde.pem --kek KEK.pem --kid ... --for sql-tde   (refuses "
      "non-RSA, 4096)");
  wrap->add_option("--key", wo->key_path, "The key file to wrap")->required();
  wrap->add_option("--kek", wo->kek_path,
                   "The KEK public key: SPKI PEM or DER (az keyvault key download), or JWK")
      ->required();
  wrap->add_option("--kid", wo->kid,
                   "Versioned KEK id https://<vault>.vault.azure.net/keys/<kek>/<version> "
                   "(default: the kid of a JWK KEK)");
  wrap->add_option(
      "--enc", wo->enc,
      "CKM_RSA_AES_KEY_WRAP (OAEP SHA-1, default), RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384");
  wrap->add_option("--target", wo->target,
                   "key-vault or managed-hsm, for kid hosts that are not Azure's");
  wrap->add_option("--passphrase-source", wo->passphrase_source,
                   "Passphrase of an encrypted key file: env:VAR or file:PATH (else a prompt on "
                   "a terminal)");
  wrap->add_option("-o,--output", wo->output,
                   "Output .byok file (default: <key file stem>.byok); never overwritten without "
                   "--force");
  wrap->add_option("--name", wo->name,
                   "Key name for the printed az import command (default: the key file stem)");
  wrap->add_flag("--force", wo->force, "Overwrite the output file if it exists");
  add_for_option(*wrap, wo->for_profile);
  add_json_flag(*wrap, g);
  wrap->callback(bind_command(g, [&g, wo]() { return run_wrap(g, *wo); }));

  // request
  auto ro = std::make_shared<RequestCmdOptions>();
  auto* request = byok.add_subcommand(
      "request",
      "Print the JSON body of PUT {vault}/keys/{name} that imports a .byok file, exactly as\n"
      "az keyvault key import --byok-file sends it (key_hsm = base64url of the whole file).\n"
      "Examples:\n"
      "  keyport byok request key.byok --name my-key --kty RSA\n"
      "  keyport byok request ec.byok --name my-ec --kty EC --curve P-256 --tags env=test\n"
      "  keyport byok request aes.byok --name my-aes --kty oct --exportable --policy "
      "policy.json");
  request->add_option("FILE", ro->file, "The .byok file")->required();
  request->add_option("--name", ro->request.name, "Azure key name (^[0-9a-zA-Z-]{1,127}$)")
      ->required();
  request->add_option("--kty", ro->request.kty,
                      "RSA, EC or oct (sent as RSA-HSM, EC-HSM, oct-HSM); required unless "
                      "--kek-private reads it from the file");
  request->add_option("--curve", ro->request.curve, "EC curve: P-256, P-384, P-521, P-256K");
  request->add_flag("--exportable", ro->request.exportable,
                    "attributes.exportable = true (needs --policy)");
  request->add_option("--policy", ro->policy_path,
                      "Release policy JSON file, sent as release_policy.data (needs "
                      "--exportable)");
  request->add_flag("--immutable", ro->request.immutable,
                    "release_policy.immutable = true (needs --policy)");
  request->add_flag("--hsm", ro->request.hsm, "Add \"hsm\": true");
  request->add_option("--tags", ro->request.tags, "Tags as name=value (space-separated)");
  request->add_option("--enabled", ro->enabled, "attributes.enabled (default true)")
      ->check(CLI::IsMember({"true", "false"}));
  request->add_option("--kek-private", ro->kek_private_path,
                      "TEST RIGS ONLY: the KEK's private key, to read --kty and --curve from the "
                      "file");
  request->callback(bind_command(g, [&g, ro]() { return run_request(g, *ro); }));
}

}  // namespace keyport::cli

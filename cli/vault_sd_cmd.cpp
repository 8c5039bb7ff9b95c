// SPDX-License-Identifier: Apache-2.0
// keyport vault security-domain download | init-recovery | restore-blob | upload | status
//
// The Managed HSM security domain, shaped like `az keyvault security-domain` (same option names,
// same files): activate an HSM by downloading its security domain to 3..10 certificates with a
// quorum; bring it into a new HSM with the exchange key (init-recovery), a restore blob made with
// the quorum's private keys (restore-blob, offline) and upload. The file format and its
// cryptography are vault/security_domain.h; docs/vault.md "Security domain" tells the flows.
#include <openssl/x509.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/vault_common.h"
#include "core/file_io.h"
#include "core/json.h"
#include "core/x509.h"
#include "vault/security_domain.h"

namespace keyport::cli {
namespace {

namespace sdfs = std::filesystem;
namespace sd = vault::sd;

constexpr std::size_t kMaxPemFile = 64 * 1024;

struct SecurityDomainOptions {
  Target target;
  std::vector<std::string> wrapping_keys;  // download: certificates; restore-blob: private keys
  unsigned quorum = 0;
  std::string file;          // --security-domain-file / --sd-file
  std::string exchange_key;  // --sd-exchange-key (a certificate, PEM)
  std::string restore_blob_file;
  bool restore_blob = false;  // upload: --sd-file is already a restore blob
  bool force = false;
  std::string operation = "upload";  // status --target-operation
};

Status write_output(const std::string& path, const std::string& text, bool force) {
  auto w = write_file_atomic(path, text, WriteOptions{force, 0600});
  if (!w && w.error().code() == ErrorCode::kAlreadyExists) {
    return make_error(ErrorCode::kAlreadyExists,
                      path + " exists: give another file, or --force to replace it");
  }
  return w;
}

// az's convention: a wrapping key's certificate sits beside it, <prefix>.cer.
Result<sd::WrappingKey> load_wrapping_key(const std::string& key_path) {
  const sdfs::path key_file(key_path);
  sdfs::path cert_file = key_file;
  cert_file.replace_extension(".cer");
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes key_pem, read_secret_file(key_file, kMaxPemFile));
  auto key = x509::private_key_from(key_pem);
  if (!key) {
    return make_error(
        ErrorCode::kInvalidArgument,
        key_path + " is not an unencrypted private key (PEM or DER): " + key.error().message());
  }
  auto cert_text = read_text_file(cert_file, kMaxPemFile);
  if (!cert_text) {
    return make_error(ErrorCode::kNotFound, "the certificate of wrapping key " + key_path +
                                                " must sit beside it as " + cert_file.string() +
                                                " (as az expects)");
  }
  auto certs = x509::certificates_from_pem(*cert_text);
  if (!certs) {
    return make_error(ErrorCode::kInvalidArgument,
                      cert_file.string() + " holds no PEM certificate");
  }
  if (certs->size() != 1) {
    return make_error(ErrorCode::kInvalidArgument, cert_file.string() +
                                                       " must hold one certificate (it holds " +
                                                       std::to_string(certs->size()) + ")");
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes key_spki, x509::public_key_spki(**key));
  KEYPORT_ASSIGN_OR_RETURN(Bytes cert_spki,
                           x509::public_key_spki(*X509_get0_pubkey(certs->front().get())));
  if (key_spki != cert_spki) {
    return make_error(ErrorCode::kInvalidArgument,
                      key_path + " is not the private key of " + cert_file.string());
  }
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes der, x509::private_key_der(**key));
  return sd::WrappingKey{x509::certificate_der(*certs->front()), std::move(der)};
}

Result<Bytes> load_certificate(const std::string& path) {
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(path, kMaxPemFile));
  auto certs = x509::certificates_from_pem(text);
  if (!certs || certs->size() != 1) {
    return make_error(ErrorCode::kInvalidArgument, path + " must hold one PEM certificate");
  }
  return x509::certificate_der(*certs->front());
}

Result<std::string> restore_blob_of(const SecurityDomainOptions& o) {
  if (o.exchange_key.empty() || o.wrapping_keys.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "give --sd-exchange-key (from init-recovery) and --sd-wrapping-keys (the "
                      "quorum's private keys, each with its .cer beside it)");
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string text, read_text_file(o.file, sd::kMaxDocumentBytes));
  auto file = sd::parse_security_domain(text);
  if (!file) {
    return make_error(ErrorCode::kFormat,
                      o.file + " is not a security domain: " + file.error().message());
  }
  if (o.wrapping_keys.size() < file->required) {
    return make_error(ErrorCode::kInvalidArgument,
                      "this security domain needs " + std::to_string(file->required) +
                          " wrapping keys (its quorum); " + std::to_string(o.wrapping_keys.size()) +
                          " given");
  }
  std::vector<sd::WrappingKey> keys;
  for (const auto& k : o.wrapping_keys) {
    KEYPORT_ASSIGN_OR_RETURN(sd::WrappingKey w, load_wrapping_key(k));
    keys.push_back(std::move(w));
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes exchange, load_certificate(o.exchange_key));
  auto blob = sd::make_restore_blob(*file, keys, exchange);
  if (!blob && blob.error().code() == ErrorCode::kIntegrityFailure) {
    return make_error(ErrorCode::kIntegrityFailure,
                      "the security domain did not open with these wrapping keys (a share, the "
                      "combined key or the data failed its integrity check)");
  }
  return blob;
}

// An operation status {"status", "status_details"}: JSON, or one line.
void print_status(const GlobalOptions& g, const Json& status) {
  if (g.json) {
    print_json(status);
  } else {
    std::cout << status.value("status", "?") << ": " << status.value("status_details", "")
              << std::endl;
  }
}

Status run_download(GlobalOptions& g, const SecurityDomainOptions& o) {
  std::vector<std::string> pems;
  for (const auto& path : o.wrapping_keys) {
    KEYPORT_ASSIGN_OR_RETURN(std::string pem, read_text_file(path, kMaxPemFile));
    pems.push_back(std::move(pem));
  }
  KEYPORT_ASSIGN_OR_RETURN(Json body, sd::download_request_json(pems, o.quorum));
  // The download activates the HSM once: the file must be writable before it is asked for.
  if (!o.force && sdfs::exists(o.file)) {
    return make_error(ErrorCode::kAlreadyExists,
                      o.file + " exists: give another file, or --force to replace it");
  }
  sdfs::path folder = sdfs::absolute(sdfs::path(o.file)).parent_path();
  if (!sdfs::is_directory(folder) || ::access(folder.c_str(), W_OK) != 0) {
    return make_error(ErrorCode::kIo, "cannot write " + o.file + ": " + folder.string() +
                                          " is not a writable folder (nothing was asked of "
                                          "the HSM)");
  }
  KEYPORT_ASSIGN_OR_RETURN(vault::Client client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json answer, client.security_domain_download(body));
  if (!answer.is_object() || !answer.contains("value") || !answer["value"].is_string()) {
    return make_error(ErrorCode::kFormat, "the HSM's answer holds no security domain (\"value\")");
  }
  if (auto written = write_output(o.file, answer["value"].get<std::string>(), o.force); !written) {
    // The HSM is activated now and will not give the domain again: it must not be lost.
    std::cout << answer["value"].get<std::string>() << std::endl;
    return tl::unexpected(written.error().with_context(
        "the HSM is activated but its security domain could not be written; it was printed on "
        "stdout instead: keep it"));
  }
  if (g.json) {
    print_json(Json{{"security_domain_file", o.file},
                    {"certificates", o.wrapping_keys.size()},
                    {"quorum", o.quorum},
                    {"status", "Success"}});
  } else {
    std::cout << "the HSM is activated; its security domain is in " << o.file << " ("
              << o.wrapping_keys.size() << " shares, any " << o.quorum
              << " of the wrapping keys open it). Keep the file and the keys apart." << std::endl;
  }
  return {};
}

Status run_init_recovery(GlobalOptions& g, const SecurityDomainOptions& o) {
  if (!o.force && sdfs::exists(o.exchange_key)) {
    return make_error(ErrorCode::kAlreadyExists,
                      o.exchange_key + " exists: give another file, or --force to replace it");
  }
  KEYPORT_ASSIGN_OR_RETURN(vault::Client client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json answer, client.security_domain_transfer_key());
  const auto tk = answer.is_object() ? answer.find("transfer_key") : answer.end();
  if (!answer.is_object() || tk == answer.end() || !tk->is_string()) {
    return make_error(ErrorCode::kFormat, "the HSM's answer holds no transfer key");
  }
  auto jwk = parse_json_strict(tk->get<std::string>());
  if (!jwk || !jwk->is_object() || !jwk->contains("x5c") || !(*jwk)["x5c"].is_array() ||
      (*jwk)["x5c"].empty() || !(*jwk)["x5c"][0].is_string()) {
    return make_error(ErrorCode::kFormat, "the transfer key has no certificate (x5c)");
  }
  KEYPORT_ASSIGN_OR_RETURN(Bytes der, base64_decode((*jwk)["x5c"][0].get<std::string>()));
  KEYPORT_ASSIGN_OR_RETURN(auto cert, x509::certificate_from_der(der));
  KEYPORT_TRY(write_output(o.exchange_key, x509::certificate_pem(*cert), o.force));
  if (g.json) {
    print_json(Json{{"sd_exchange_key", o.exchange_key}, {"x5t_256", sd::thumbprint_s256(der)}});
  } else {
    std::cout << "the HSM's exchange key certificate is in " << o.exchange_key
              << "\nnext: keyport vault security-domain restore-blob (offline, with the quorum's "
                 "keys) or upload with --sd-wrapping-keys"
              << std::endl;
  }
  return {};
}

Status run_restore_blob(GlobalOptions& g, const SecurityDomainOptions& o) {
  if (!o.force && sdfs::exists(o.restore_blob_file)) {
    return make_error(ErrorCode::kAlreadyExists,
                      o.restore_blob_file + " exists: give another file, or --force to replace it");
  }
  KEYPORT_ASSIGN_OR_RETURN(std::string blob, restore_blob_of(o));
  KEYPORT_TRY(write_output(o.restore_blob_file, blob, o.force));
  if (g.json) {
    print_json(Json{{"sd_file_restore_blob", o.restore_blob_file}});
  } else {
    std::cout << "the restore blob for the HSM's exchange key is in " << o.restore_blob_file
              << "\nnext: keyport vault security-domain upload --restore-blob --sd-file "
              << o.restore_blob_file << std::endl;
  }
  return {};
}

Status run_upload(GlobalOptions& g, const SecurityDomainOptions& o) {
  std::string blob;
  if (o.restore_blob) {
    KEYPORT_ASSIGN_OR_RETURN(blob, read_text_file(o.file, sd::kMaxDocumentBytes));
    if (auto parsed = sd::parse_restore_blob(blob); !parsed) {
      return make_error(ErrorCode::kFormat,
                        o.file + " is not a restore blob: " + parsed.error().message());
    }
  } else {
    KEYPORT_ASSIGN_OR_RETURN(blob, restore_blob_of(o));
  }
  KEYPORT_ASSIGN_OR_RETURN(vault::Client client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json status, client.security_domain_upload(blob));
  print_status(g, status);
  return {};
}

Status run_status(GlobalOptions& g, const SecurityDomainOptions& o) {
  if (o.operation != "upload" && o.operation != "download") {
    return make_error(ErrorCode::kInvalidArgument, "--target-operation is upload or download");
  }
  KEYPORT_ASSIGN_OR_RETURN(vault::Client client, connect(o.target));
  KEYPORT_ASSIGN_OR_RETURN(Json status, client.security_domain_status(o.operation == "upload"));
  print_status(g, status);
  return {};
}

}  // namespace

void setup_vault_security_domain_commands(CLI::App& vault, GlobalOptions& g) {
  auto* sdc = vault.add_subcommand(
      "security-domain",
      "Managed HSM security domain: activate an HSM, or bring a domain into a new one (as az "
      "keyvault security-domain)");
  sdc->require_subcommand(1);
  sdc->footer(
      "Activation (an HSM made by vault init --flavor managed-hsm --require-activation):\n"
      "  openssl req -newkey rsa:2048 -nodes -keyout k0.key -x509 -days 365 -out k0.cer  (x3)\n"
      "  keyport vault security-domain download --sd-wrapping-keys k0.cer k1.cer k2.cer \\\n"
      "      --sd-quorum 2 --security-domain-file sd.json\n"
      "Recovery into a new HSM (also made with --require-activation):\n"
      "  keyport vault security-domain init-recovery --sd-exchange-key exchange.cer\n"
      "  keyport vault security-domain upload --sd-file sd.json --sd-exchange-key exchange.cer \\\n"
      "      --sd-wrapping-keys k0.key k1.key\n"
      "  then restore the keys from a full backup (keyport vault full-restore).\n"
      "The security domain carries the HSM's backup domain: with the quorum's keys it restores\n"
      "every full backup of the HSM. See docs/vault.md \"Security domain\".");

  auto o = std::make_shared<SecurityDomainOptions>();
  {
    auto* c = sdc->add_subcommand("download", "Activate the HSM: download its security domain");
    add_target_options(*c, o->target);
    c->add_option("--sd-wrapping-keys", o->wrapping_keys,
                  "3 to 10 PEM certificates (RSA >= 2048): one share of the domain each")
        ->required()
        ->expected(1, 10);
    c->add_option("--sd-quorum", o->quorum, "How many of the keys open the domain (2..10)")
        ->required();
    c->add_option("--security-domain-file", o->file, "Where to write the security domain (JSON)")
        ->required();
    c->add_flag("--force", o->force, "Replace --security-domain-file when it exists");
    add_json_flag(*c, g);
    c->callback(bind_command(g, [&g, o] { return run_download(g, *o); }));
  }
  {
    auto* c = sdc->add_subcommand(
        "init-recovery",
        "Get a new HSM's exchange key (the certificate a restore blob is made for)");
    add_target_options(*c, o->target);
    c->add_option("--sd-exchange-key", o->exchange_key, "Where to write the certificate (PEM)")
        ->required();
    c->add_flag("--force", o->force, "Replace the file when it exists");
    add_json_flag(*c, g);
    c->callback(bind_command(g, [&g, o] { return run_init_recovery(g, *o); }));
  }
  {
    auto* c = sdc->add_subcommand(
        "restore-blob",
        "Offline: open a security domain with the quorum's keys and seal it to an exchange key");
    c->add_option("--sd-file", o->file, "The security domain (from download)")->required();
    c->add_option("--sd-exchange-key", o->exchange_key, "The new HSM's exchange key (PEM)")
        ->required();
    c->add_option("--sd-wrapping-keys", o->wrapping_keys,
                  "The quorum's private keys (PEM, unencrypted), each with its certificate "
                  "beside it as <name>.cer")
        ->required();
    c->add_option("--sd-file-restore-blob", o->restore_blob_file, "Where to write the blob")
        ->required();
    c->add_flag("--force", o->force, "Replace the blob file when it exists");
    add_json_flag(*c, g);
    c->callback(bind_command(g, [&g, o] { return run_restore_blob(g, *o); }));
  }
  {
    auto* c = sdc->add_subcommand(
        "upload", "Bring a security domain into a new HSM (activates it with that domain)");
    add_target_options(*c, o->target);
    c->add_option("--sd-file", o->file, "The security domain, or with --restore-blob a blob")
        ->required();
    c->add_flag("--restore-blob", o->restore_blob, "--sd-file is a blob made by restore-blob");
    c->add_option("--sd-exchange-key", o->exchange_key,
                  "Without --restore-blob: the HSM's exchange key (from init-recovery)");
    c->add_option("--sd-wrapping-keys", o->wrapping_keys,
                  "Without --restore-blob: the quorum's private keys (<name>.cer beside each)");
    add_json_flag(*c, g);
    c->callback(bind_command(g, [&g, o] { return run_upload(g, *o); }));
  }
  {
    auto* c = sdc->add_subcommand("status", "The status of the latest download or upload");
    add_target_options(*c, o->target);
    c->add_option("--target-operation", o->operation, "upload (default) or download");
    add_json_flag(*c, g);
    c->callback(bind_command(g, [&g, o] { return run_status(g, *o); }));
  }
}

}  // namespace keyport::cli

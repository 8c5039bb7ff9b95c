// SPDX-License-Identifier: Apache-2.0
// keyport envelope encrypt|decrypt|info|rotate-primary: envelope encryption of files under a
// keyring primary key wrapped by a KEK (migrate/envelope.h, docs/envelope-format.md).
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "migrate/crypto.h"
#include "migrate/envelope.h"
#include "migrate/kek_spec.h"
#include "migrate/keyring.h"

namespace keyport::cli {
namespace {

struct EnvelopeOptions {
  std::string keyring;
  std::string kek;
  std::string primary = "default";
  std::uint32_t segment_size = migrate::kDefaultSegmentBytes;
  std::string input = "-";
  std::string output;
  std::optional<std::string> pin_source;
  std::optional<std::string> pin;
  bool force = false;
};

struct OpenedKek {
  std::unique_ptr<migrate::KekOpener> opener;
  std::unique_ptr<migrate::KeyEncryptionKey> kek;
};

Result<OpenedKek> open_kek(const GlobalOptions& g, const EnvelopeOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto spec, migrate::KekSpec::parse(o.kek));
  migrate::KekOpenerOptions oo;
  oo.module = module_selection(g);
  oo.caller = "keyport envelope";
  OpenedKek k;
  k.opener = std::make_unique<migrate::KekOpener>(oo);
  migrate::PinOptions pin = migrate::PinOptions::from_flags(o.pin_source, o.pin);
  KEYPORT_ASSIGN_OR_RETURN(k.kek, k.opener->open(spec, pin));
  return k;
}

Result<std::unique_ptr<migrate::ByteSource>> open_input(const std::string& path) {
  if (path == "-") {
    return std::unique_ptr<migrate::ByteSource>(std::make_unique<migrate::FdSource>(STDIN_FILENO));
  }
  KEYPORT_ASSIGN_OR_RETURN(auto src, migrate::FdSource::open(path));
  return std::unique_ptr<migrate::ByteSource>(std::move(src));
}

// Streams to stdout, or to a file published only after the last byte (nothing on failure).
struct Output {
  std::unique_ptr<migrate::AtomicFileSink> file;
  std::unique_ptr<migrate::FdSink> stdout_sink;
  migrate::ByteSink& sink() {
    return file ? static_cast<migrate::ByteSink&>(*file)
                : static_cast<migrate::ByteSink&>(*stdout_sink);
  }
  Status commit() { return file ? file->commit() : Status{}; }
};

Result<Output> open_output(const EnvelopeOptions& o) {
  Output out;
  if (o.output == "-") {
    out.stdout_sink = std::make_unique<migrate::FdSink>(STDOUT_FILENO);
    return out;
  }
  WriteOptions wo;
  wo.overwrite = o.force;
  wo.mode = 0600;
  KEYPORT_ASSIGN_OR_RETURN(out.file, migrate::AtomicFileSink::create(o.output, wo));
  return out;
}

Json stats_json(const migrate::EnvelopeStats& s) {
  return Json{{"plaintext_bytes", s.plaintext_bytes},
              {"ciphertext_bytes", s.ciphertext_bytes},
              {"segments", s.segments}};
}

Status run_encrypt(GlobalOptions& g, const EnvelopeOptions& o) {
  migrate::Keyring::Options ko;
  ko.create = true;
  KEYPORT_ASSIGN_OR_RETURN(auto keyring, migrate::Keyring::open(o.keyring, ko));
  KEYPORT_ASSIGN_OR_RETURN(OpenedKek k, open_kek(g, o));
  KEYPORT_ASSIGN_OR_RETURN(auto in, open_input(o.input));
  KEYPORT_ASSIGN_OR_RETURN(Output out, open_output(o));
  migrate::EncryptOptions eo;
  eo.primary = o.primary;
  eo.segment_size = o.segment_size;
  KEYPORT_ASSIGN_OR_RETURN(auto stats,
                           migrate::envelope_encrypt(*keyring, *k.kek, *in, out.sink(), eo));
  KEYPORT_TRY(out.commit());
  if (o.output != "-") {
    if (g.json) {
      print_json(Json{
          {"output", o.output}, {"kek", k.kek->id().describe()}, {"stats", stats_json(stats)}});
    } else {
      std::cout << "wrote " << o.output << ": " << stats.plaintext_bytes << " bytes in "
                << stats.segments << " segments under primary key \"" << o.primary
                << "\" wrapped by " << k.kek->id().describe() << std::endl;
    }
  }
  return {};
}

Status run_decrypt(GlobalOptions& g, const EnvelopeOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto keyring, migrate::Keyring::open(o.keyring, {}));
  KEYPORT_ASSIGN_OR_RETURN(OpenedKek k, open_kek(g, o));
  KEYPORT_ASSIGN_OR_RETURN(auto in, open_input(o.input));
  KEYPORT_ASSIGN_OR_RETURN(Output out, open_output(o));
  KEYPORT_ASSIGN_OR_RETURN(auto stats,
                           migrate::envelope_decrypt(*keyring, *k.kek, *in, out.sink()));
  KEYPORT_TRY(out.commit());
  if (o.output != "-") {
    if (g.json) {
      print_json(Json{{"output", o.output}, {"stats", stats_json(stats)}});
    } else {
      std::cout << "wrote " << o.output << ": " << stats.plaintext_bytes << " bytes, "
                << stats.segments << " segments verified" << std::endl;
    }
  }
  return {};
}

Status run_info(GlobalOptions& g, const EnvelopeOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto in, open_input(o.input));
  Bytes raw;
  KEYPORT_ASSIGN_OR_RETURN(auto header, migrate::read_envelope_header(*in, &raw));
  Json j = header.to_json();
  j["header_length"] = raw.size();
  // With the file size, the segment count and plaintext size follow (without any key).
  struct stat st {};
  if (o.input != "-" && ::stat(o.input.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    const std::uint64_t body = static_cast<std::uint64_t>(st.st_size) - raw.size();
    const std::uint64_t cseg = header.segment_size + migrate::kGcmTagBytes;
    const std::uint64_t full = body / cseg, rest = body % cseg;
    j["file_bytes"] = static_cast<std::uint64_t>(st.st_size);
    if (body == 0 || (rest > 0 && rest < migrate::kGcmTagBytes)) {
      j["structure"] = "truncated: the segments cannot be complete";
    } else {
      const std::uint64_t segments = full + (rest > 0 ? 1 : 0);
      j["segments"] = segments;
      j["plaintext_bytes"] =
          full * header.segment_size + (rest > 0 ? rest - migrate::kGcmTagBytes : 0);
      j["structure"] = "complete if every tag verifies (decrypt checks them)";
    }
  }
  if (g.json) {
    print_json(j);
    return {};
  }
  std::cout << "keyport envelope v" << static_cast<int>(header.version)
            << " (HKDF-SHA256, AES-256-GCM, " << header.segment_size << "-byte segments)\n"
            << "header bytes:  " << raw.size() << "\n"
            << "KEK:           " << header.kek_id << " (version " << header.kek_version << ")\n"
            << "primary key:   " << header.primary << " epoch " << header.epoch << " (keyring id "
            << migrate::primary_key_id(header.primary, header.epoch) << ")\n"
            << "DEK id:        " << hex_encode(header.dek_id) << "\n"
            << "base nonce:    " << hex_encode(header.base_nonce) << "\n";
  if (j.contains("segments")) {
    std::cout << "segments:      " << j["segments"].get<std::uint64_t>() << " ("
              << j["plaintext_bytes"].get<std::uint64_t>() << " plaintext bytes)\n";
  } else if (j.contains("structure")) {
    std::cout << "structure:     " << j["structure"].get<std::string>() << "\n";
  }
  std::cout.flush();
  return {};
}

Status run_rotate(GlobalOptions& g, const EnvelopeOptions& o) {
  KEYPORT_ASSIGN_OR_RETURN(auto keyring, migrate::Keyring::open(o.keyring, {}));
  KEYPORT_ASSIGN_OR_RETURN(OpenedKek k, open_kek(g, o));
  KEYPORT_ASSIGN_OR_RETURN(auto rec, migrate::rotate_primary(*keyring, *k.kek, o.primary));
  if (g.json) {
    print_json(Json{{"primary", rec.name}, {"epoch", rec.epoch}, {"key_id", rec.key_id}});
  } else {
    std::cout << "primary key \"" << rec.name << "\" is now at epoch " << rec.epoch
              << "; older epochs still decrypt" << std::endl;
  }
  return {};
}

void add_kek(CLI::App& cmd, EnvelopeOptions& o) {
  cmd.add_option("--keyring", o.keyring, "The keyring database (SQLite)")->required();
  cmd.add_option("--kek", o.kek,
                 "KEK-SPEC of the KEK that wraps the primary key: vault:DIR#NAME[/VERSION] or "
                 "pkcs11:token=T;object=K")
      ->required();
  cmd.add_option("--pin-source", o.pin_source, "Token PIN source: env:VAR or file:PATH");
  cmd.add_option("--pin", o.pin, "User PIN on the command line (visible in the process list)");
}

}  // namespace

void setup_envelope_commands(CLI::App& app, GlobalOptions& g) {
  auto* env = app.add_subcommand(
      "envelope",
      "Envelope encryption: KEK -> primary key (in the keyring) -> HKDF data key -> AES-256-GCM "
      "segments (docs/envelope-format.md)");
  env->require_subcommand(1);
  env->footer(
      "Examples:\n"
      "  keyport envelope encrypt --keyring app.keyring --kek 'pkcs11:token=onprem;object=kek' \\\n"
      "      --pin-source env:KP_PIN -i report.pdf -o report.pdf.kpev\n"
      "  keyport envelope info report.pdf.kpev\n"
      "  keyport envelope decrypt --keyring app.keyring --kek 'vault:./vault#app-kek' \\\n"
      "      -i report.pdf.kpev -o report.pdf\n"
      "  keyport envelope rotate-primary --keyring app.keyring --kek "
      "'pkcs11:token=onprem;object=kek'\n"
      "The keyring (SQLite) holds the primary key only wrapped by the KEK; the data key of each\n"
      "file is derived from it and never stored. Exit code 4: the file was changed or the KEK is\n"
      "wrong (one error for both).");
  auto o = std::make_shared<EnvelopeOptions>();

  auto* enc = env->add_subcommand("encrypt", "Encrypt a file or stdin, streaming");
  add_kek(*enc, *o);
  enc->add_option("--primary", o->primary, "Primary key name in the keyring (default)");
  enc->add_option("--segment-size", o->segment_size, "Plaintext bytes per segment (65536)");
  enc->add_option("-i,--input", o->input, "Input file (- for stdin, the default)");
  enc->add_option("-o,--output", o->output, "Output file (- for stdout)")->required();
  enc->add_flag("--force", o->force, "Overwrite the output file");
  add_json_flag(*enc, g);
  enc->callback(bind_command(g, [&g, o]() { return run_encrypt(g, *o); }));

  auto* dec = env->add_subcommand(
      "decrypt", "Decrypt; a file output appears only when every segment verified");
  add_kek(*dec, *o);
  dec->add_option("-i,--input", o->input, "Input file (- for stdin, the default)");
  dec->add_option("-o,--output", o->output, "Output file (- for stdout)")->required();
  dec->add_flag("--force", o->force, "Overwrite the output file");
  add_json_flag(*dec, g);
  dec->callback(bind_command(g, [&g, o]() { return run_decrypt(g, *o); }));

  auto* info = env->add_subcommand("info", "Print an envelope's header (no key needed)");
  info->add_option("file", o->input, "Envelope file (- for stdin)")->required();
  add_json_flag(*info, g);
  info->callback(bind_command(g, [&g, o]() { return run_info(g, *o); }));

  auto* rot = env->add_subcommand(
      "rotate-primary", "Start the next epoch of a primary key (older epochs still decrypt)");
  add_kek(*rot, *o);
  rot->add_option("--primary", o->primary, "Primary key name (default)");
  add_json_flag(*rot, g);
  rot->callback(bind_command(g, [&g, o]() { return run_rotate(g, *o); }));
}

}  // namespace keyport::cli

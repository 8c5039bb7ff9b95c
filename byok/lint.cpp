// SPDX-License-Identifier: Apache-2.0
#include "byok/lint.h"

#include <algorithm>
#include <array>
#include <set>
#include <utility>

#include "byok/byok_file.h"
#include "byok/crypto.h"
#include "byok/key_material.h"
#include "byok/profile.h"
#include "core/encoding.h"

namespace keyport::byok {
namespace {

namespace code = lint_code;

constexpr std::size_t kMaxFileBytes = 1u << 20;  // parse_json_strict's default limit
constexpr std::size_t kMaxDepth = 64;
constexpr std::size_t kMinKwpPart = 16;
constexpr std::array<std::size_t, 3> kKekModulusBytes = {256, 384, 512};

// The catalogue, in the order of lint_code. One line of advice each; docs/byok-inspect.md says
// more.
const std::vector<FindingKind> kCatalogue = {
    {code::kJsonSyntax, Severity::kError, "the file is not one valid JSON document",
     "Regenerate the file with the BYOK tool; do not edit .byok files by hand."},
    {code::kJsonDuplicate, Severity::kError, "a member name appears twice in one object",
     "Remove the duplicate: readers disagree on which value wins, and keyport refuses such files."},
    {code::kJsonBom, Severity::kWarning, "the file starts with a UTF-8 byte order mark",
     "Save the file as UTF-8 without a byte order mark; some JSON readers refuse it."},
    {code::kNotObject, Severity::kError, "the top level is not a JSON object",
     "A .byok file is one object: {\"schema_version\", \"header\", \"ciphertext\", "
     "\"generator\"}."},
    {code::kMemberMissing, Severity::kError, "a required member is missing",
     "Regenerate the file: schema_version, header.kid, header.alg, header.enc and ciphertext are "
     "required."},
    {code::kMemberType, Severity::kError, "a member has the wrong JSON type",
     "header is an object; schema_version, kid, alg, enc, ciphertext and generator are strings."},
    {code::kMemberUnknown, Severity::kError, "a member the .byok format does not have",
     "Remove it: the format has exactly schema_version, header {kid, alg, enc}, ciphertext and "
     "generator."},
    {code::kSchemaVersion, Severity::kError, "schema_version is not \"1.0.0\"",
     "Import files say \"1.0.0\" (\"1.0\" is the release-response blob, not an import file)."},
    {code::kAlg, Severity::kError, "header.alg is not \"dir\"",
     "Set alg to \"dir\": the KEK protects the ciphertext directly (BYOK specification)."},
    {code::kEncUnknown, Severity::kError, "header.enc is not a BYOK transfer algorithm",
     "Use CKM_RSA_AES_KEY_WRAP (RSA-OAEP SHA-1 + AES-KWP), the value the BYOK specification "
     "documents."},
    {code::kEncUndocumented, Severity::kWarning,
     "header.enc is a SHA-256/384 variant that Azure documents only for key release",
     "Prefer CKM_RSA_AES_KEY_WRAP for import unless you know the vault accepts this enc."},
    {code::kKidShape, Severity::kError, "header.kid is not an Azure key identifier",
     "Use the full KEK id: az keyvault key show --name KEK --vault-name V --query key.kid."},
    {code::kKidHttp, Severity::kError, "header.kid uses http instead of https",
     "Use the https key identifier exactly as az keyvault key show prints it."},
    {code::kKidUnversioned, Severity::kError, "header.kid has no key version",
     "Give the versioned KEK id https://<vault>/keys/<kek>/<32-hex version>."},
    {code::kKidHostUnknown, Severity::kWarning,
     "the kid host is not an Azure Key Vault or Managed HSM host",
     "Fine for a simulated vault; pass --target key-vault|managed-hsm to check the key type "
     "profile."},
    {code::kTargetConflict, Severity::kWarning, "--target contradicts the kid host",
     "The file is imported where its kid points; drop --target or fix the kid."},
    {code::kGeneratorMissing, Severity::kInfo, "generator is missing or empty",
     "Optional, but say which tool and HSM wrote the file: it helps Azure support troubleshoot."},
    {code::kCtEncoding, Severity::kError, "ciphertext is not base64url",
     "Encode the ciphertext as base64url (RFC 4648 section 5) without whitespace or line breaks."},
    {code::kCtPadding, Severity::kWarning, "ciphertext ends with '=' padding",
     "Accepted by keyport; Azure's own tools write base64url without padding."},
    {code::kCtStdB64, Severity::kWarning,
     "ciphertext uses the standard base64 alphabet ('+' or '/')",
     "Re-encode with '-' and '_': keyport's strict reader and possibly Azure refuse '+' and '/'."},
    {code::kCtShort, Severity::kError, "ciphertext is empty or no longer than the RSA part",
     "The file is truncated or empty: regenerate it."},
    {code::kKwpLength, Severity::kError,
     "the AES-KWP part is not a multiple of 8 bytes, or shorter than 16",
     "The ciphertext was truncated or padded after wrapping: regenerate the file."},
    {code::kKwpTarget, Severity::kError,
     "the AES-KWP part's length fits only key types the target does not import",
     "The ciphertext was cut or padded, or wrapped for another KEK size: regenerate the file "
     "with the KEK named in kid."},
    {code::kRsaLength, Severity::kError,
     "the RSA part does not match the KEK modulus length (error with a KEK, warning when "
     "inferred)",
     "Wrap with the KEK of the vault named in kid: the RSA part is exactly its modulus length."},
    {code::kKekMismatch, Severity::kError, "the file was not wrapped for the KEK given",
     "Download the KEK named in kid (az keyvault key download) and wrap again with it."},
    {code::kKekUnusable, Severity::kError, "the KEK given for the check is not a usable RSA key",
     "Pass the RSA KEK (2048, 3072 or 4096 bits) the file was wrapped for."},
    {code::kUnwrapFailed, Severity::kError, "the ciphertext does not unwrap with the private KEK",
     "The file was damaged or wrapped for another KEK: wrap again with the KEK named in kid."},
    {code::kEncMismatch, Severity::kError, "the ciphertext unwraps only with another enc",
     "Set header.enc to the algorithm the tool really used, or wrap again."},
    {code::kTransferKeySize, Severity::kWarning, "the transfer AES key is not 256 bits",
     "Use an AES-256 transfer key as Azure's tools do; other sizes are not documented."},
    {code::kPkcs8Invalid, Severity::kError, "the key material is not a PKCS#8 PrivateKeyInfo",
     "RSA and EC keys travel as PKCS#8 DER (BYOK specification); check the HSM's wrap format."},
    {code::kPkcs8TrailingZeros, Severity::kWarning,
     "zero bytes follow the PKCS#8 DER inside the KWP plaintext (SoftHSM 2.6.1)",
     "Strict parsers such as pyca/cryptography reject the padding; export from an HSM without "
     "this bug."},
    {code::kPkcs8TrailingBytes, Severity::kError,
     "non-zero or too many bytes follow the PKCS#8 DER inside the KWP plaintext",
     "The plaintext must be exactly the DER: regenerate the file."},
    {code::kEcNoPubkey, Severity::kWarning,
     "the EC PKCS#8 has no publicKey (SoftHSM writes it this way)",
     "OpenSSL recomputes the point, but a strict importer may need it; re-encode with the "
     "public key if an import fails."},
    {code::kKeyType, Severity::kError, "the key is not an RSA, EC or AES key BYOK accepts",
     "Azure BYOK takes RSA 2048/3072/4096, EC P-256/P-384/P-521/P-256K and AES 128/192/256."},
    {code::kProfile, Severity::kError, "the target vault does not accept this key type",
     "AES (oct-HSM) keys go to Managed HSM only; pick the right vault or key type."},
    {code::kKeyUnchecked, Severity::kInfo, "the wrapped key itself was not checked",
     "On a test rig, pass --kek-private KEK.pem to unwrap and check the key as the vault would."},
    {code::kReaderRefuses, Severity::kError,
     "keyport's strict .byok reader refuses the file for another reason",
     "Read the message; the vault simulator and keyport commands will refuse this file too."},
};

// Codes whose finding means keyport's strict reader (ByokFile::parse) refuses the file.
const std::set<std::string_view> kReaderCodes = {
    code::kJsonSyntax, code::kJsonDuplicate, code::kNotObject,     code::kMemberMissing,
    code::kMemberType, code::kMemberUnknown, code::kSchemaVersion, code::kAlg,
    code::kEncUnknown, code::kKidShape,      code::kKidHttp,       code::kKidUnversioned,
    code::kCtEncoding, code::kCtStdB64,      code::kCtShort,
};

std::size_t der_len(std::size_t content) {
  return 1 + (content < 0x80 ? 1 : content < 0x100 ? 2 : 3) + content;
}

// The PKCS#8 PrivateKeyInfo lengths of an EC key on `c` as modules write them: the ECPrivateKey
// with or without its [0] parameters and its [1] uncompressed public key (OpenSSL writes the
// public key only: 138 bytes on P-256; SoftHSM 2.6.1 neither: 67).
std::vector<std::size_t> ec_pkcs8_lengths(Curve c) {
  const std::size_t field = (curve_bits(c) + 7) / 8;
  const std::size_t oid = curve_oid_der(c).size();
  const std::size_t algorithm = der_len(9 + oid);  // SEQUENCE { id-ecPublicKey, the curve }
  std::vector<std::size_t> out;
  for (bool params : {false, true}) {
    for (bool pub : {false, true}) {
      const std::size_t ec = der_len(3 + der_len(field) + (params ? der_len(oid) : 0) +
                                     (pub ? der_len(der_len(2 + 2 * field)) : 0));
      out.push_back(der_len(3 + algorithm + der_len(ec)));
    }
  }
  return out;
}

// The shortest and longest PKCS#8 of an RSA key with a `modulus`-byte modulus: n and the primes
// have their top bit set (a sign byte), d and the CRT values may be up to two bytes shorter than
// their bound, e is 65537 (or 3).
std::pair<std::size_t, std::size_t> rsa_pkcs8_lengths(std::size_t modulus) {
  const std::size_t half = modulus / 2;
  const std::size_t n = der_len(modulus + 1);
  const std::size_t fixed = 3 + n;  // version 0, n
  const std::size_t lo =
      fixed + der_len(1) + der_len(modulus - 2) + 2 * der_len(half) + 3 * der_len(half - 2);
  const std::size_t hi =
      fixed + der_len(3) + der_len(modulus + 1) + 2 * der_len(half + 1) + 3 * der_len(half + 1);
  const std::size_t algorithm = der_len(13);  // SEQUENCE { rsaEncryption, NULL }
  auto total = [&](std::size_t rsa) { return der_len(3 + algorithm + der_len(der_len(rsa))); };
  return {total(lo), total(hi)};
}

// The key types whose RFC 5649 wrapping (of the raw AES key, or of the PKCS#8 DER, zero-padded or
// not: the output length is the same) is `kwp` bytes long. RSA-1024, which BYOK does not carry,
// counts as well so that its files still split into their two parts (the key is reported later).
std::vector<KeySpec> key_specs_for_kwp(std::size_t kwp) {
  std::vector<KeySpec> out;
  std::vector<KeySpec> specs = all_key_specs();
  specs.push_back(KeySpec{KeyFamily::kRsa, 1024, std::nullopt});
  for (const KeySpec& spec : specs) {
    bool fits = false;
    if (spec.family == KeyFamily::kAes) {
      fits = kwp == kwp_wrapped_size(spec.bits / 8);
    } else if (spec.family == KeyFamily::kEc) {
      for (std::size_t len : ec_pkcs8_lengths(*spec.curve))
        fits = fits || kwp == kwp_wrapped_size(len);
    } else {
      auto [lo, hi] = rsa_pkcs8_lengths(spec.bits / 8);
      fits = kwp >= kwp_wrapped_size(lo) && kwp <= kwp_wrapped_size(hi);
    }
    if (fits)
      out.push_back(spec);
  }
  return out;
}

std::string spec_names(const std::vector<KeySpec>& specs) {
  std::string out;
  for (const auto& s : specs)
    out += (out.empty() ? "" : ", ") + s.name();
  return out;
}

std::span<const std::uint8_t> strip_leading_zeros(std::span<const std::uint8_t> v) {
  while (!v.empty() && v.front() == 0) {
    v = v.subspan(1);
  }
  return v;
}

// a >= b for big-endian unsigned integers.
bool not_less(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  a = strip_leading_zeros(a);
  b = strip_leading_zeros(b);
  if (a.size() != b.size()) {
    return a.size() > b.size();
  }
  return !std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
}

// ---------------------------------------------------------------------------------------------

class Linter {
 public:
  Linter(std::span<const std::uint8_t> file, const InspectOptions& options)
      : m_file(file), m_options(options) {}

  InspectReport run();

 private:
  void add(std::string_view finding_code, std::string message,
           std::optional<Severity> severity = std::nullopt);

  // False when the document is not a JSON object and nothing else can be checked.
  bool check_json(std::string_view text);
  void check_members(const Json& doc);
  void check_header(const Json& header);
  void check_kid(const std::string& kid);
  void check_generator(const Json& doc);
  void resolve_target();
  // Adds BYOK-KWP-LENGTH when no key type wraps to `kwp` bytes, BYOK-KWP-TARGET when none of
  // those the target imports does; false when it added one.
  bool check_kwp_fits_target(std::size_t kwp);
  void prepare_kek();
  void check_ciphertext(const std::string& text);
  void check_lengths(std::span<const std::uint8_t> ciphertext);
  void unwrap(std::span<const std::uint8_t> ciphertext);
  void check_key(const SecretBytes& plaintext);

  // A string member: reports it missing or mistyped; nullopt then.
  std::optional<std::string> string_member(const Json& obj, std::string_view name,
                                           std::string_view where);
  bool any_error_since(std::size_t first) const;

  std::span<const std::uint8_t> m_file;
  const InspectOptions& m_options;
  InspectReport m_report;

  std::optional<WrapAlg> m_enc;
  std::optional<PublicKey> m_kek;            // the public key the length checks use
  std::optional<SecretBytes> m_kek_private;  // PKCS#8 DER of the private KEK, re-encoded
  bool m_kek_usable = true;
  std::optional<std::string> m_ciphertext_text;
};

void Linter::add(std::string_view finding_code, std::string message,
                 std::optional<Severity> severity) {
  const FindingKind* kind = find_finding_kind(finding_code);
  Finding f;
  f.code = std::string(finding_code);
  f.severity = severity.value_or(kind != nullptr ? kind->severity : Severity::kError);
  f.message = std::move(message);
  f.advice = kind != nullptr ? std::string(kind->advice) : std::string();
  m_report.findings.push_back(std::move(f));
}

bool Linter::any_error_since(std::size_t first) const {
  for (std::size_t i = first; i < m_report.findings.size(); ++i) {
    if (m_report.findings[i].severity == Severity::kError) {
      return true;
    }
  }
  return false;
}

std::optional<std::string> Linter::string_member(const Json& obj, std::string_view name,
                                                 std::string_view where) {
  auto it = obj.find(std::string(name));
  const std::string path = std::string(where) + std::string(name);
  if (it == obj.end()) {
    add(code::kMemberMissing, "member " + path + " is missing");
    return std::nullopt;
  }
  if (!it->is_string()) {
    add(code::kMemberType,
        "member " + path + " must be a string, not a JSON " + std::string(it->type_name()));
    return std::nullopt;
  }
  return it->get<std::string>();
}

InspectReport Linter::run() {
  m_report.file_bytes = m_file.size();
  auto reader = ByokFile::parse(as_chars(m_file));
  m_report.reader_accepts = reader.has_value();
  if (!reader) {
    m_report.reader_message = reader.error().message();
  }

  std::string_view text = as_chars(m_file);
  if (text.starts_with("\xEF\xBB\xBF")) {
    add(code::kJsonBom, "the file starts with a UTF-8 byte order mark (EF BB BF)");
    text.remove_prefix(3);
  }
  if (check_json(text)) {
    prepare_kek();
    if (m_ciphertext_text) {
      check_ciphertext(*m_ciphertext_text);
    }
  }

  if (!m_report.reader_accepts) {
    const bool explained =
        std::any_of(m_report.findings.begin(), m_report.findings.end(),
                    [](const Finding& f) { return kReaderCodes.count(f.code) != 0; });
    if (!explained) {
      add(code::kReaderRefuses, m_report.reader_message);
    }
  }
  return std::move(m_report);
}

bool Linter::check_json(std::string_view text) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    add(code::kJsonSyntax, "the file is empty");
    return false;
  }
  if (m_file.size() > kMaxFileBytes) {
    add(code::kJsonSyntax, "the file is " + std::to_string(m_file.size()) +
                               " bytes; a .byok file is a few kilobytes (limit " +
                               std::to_string(kMaxFileBytes) + ")");
    return false;
  }
  JsonLimits limits;
  limits.max_depth = kMaxDepth;
  JsonScan parsed = scan_json(text, limits);
  if (!parsed.doc) {
    add(code::kJsonSyntax, parsed.error ? parsed.error->message() : "not JSON");
    return false;
  }
  for (const auto& dup : parsed.duplicates) {
    add(code::kJsonDuplicate, "member " + json_quoted(dup.member) + " appears more than once in " +
                                  dup.path + " (this report uses the last value)");
  }
  const Json& doc = *parsed.doc;
  if (!doc.is_object()) {
    add(code::kNotObject,
        "the top level is a JSON " + std::string(doc.type_name()) + ", not an object");
    return false;
  }
  check_members(doc);
  return true;
}

void Linter::check_members(const Json& doc) {
  static const std::array<std::string_view, 4> kTop = {"schema_version", "header", "ciphertext",
                                                       "generator"};
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (std::find(kTop.begin(), kTop.end(), it.key()) == kTop.end()) {
      std::string hint;
      for (std::string_view known : kTop) {
        if (ascii_lower(it.key()) == known && !doc.contains(std::string(known))) {
          hint = " (member names are case-sensitive: " + std::string(known) + ")";
        }
      }
      add(code::kMemberUnknown,
          "unexpected member " + json_quoted(it.key()) + " at the top level" + hint);
    }
  }

  if (auto version = string_member(doc, "schema_version", "")) {
    m_report.schema_version = *version;
    if (*version != kByokSchemaVersion) {
      std::string why = "schema_version is " + json_quoted(*version) + ", not \"1.0.0\"";
      if (*version == "1.0") {
        why += " (\"1.0\" is the schema of the blob inside a key release response)";
      }
      add(code::kSchemaVersion, why);
    }
  }

  auto header = doc.find("header");
  if (header == doc.end()) {
    add(code::kMemberMissing, "member header is missing");
  } else if (!header->is_object()) {
    add(code::kMemberType,
        "member header must be an object, not a JSON " + std::string(header->type_name()));
  } else {
    check_header(*header);
  }
  resolve_target();

  m_ciphertext_text = string_member(doc, "ciphertext", "");
  check_generator(doc);
}

void Linter::check_header(const Json& header) {
  static const std::array<std::string_view, 3> kHeader = {"kid", "alg", "enc"};
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (std::find(kHeader.begin(), kHeader.end(), it.key()) == kHeader.end()) {
      add(code::kMemberUnknown, "unexpected member " + json_quoted(it.key()) + " in header");
    }
  }
  if (auto kid = string_member(header, "kid", "header.")) {
    m_report.kid = *kid;
    check_kid(*kid);
  }
  if (auto alg = string_member(header, "alg", "header.")) {
    m_report.alg = *alg;
    if (*alg != "dir") {
      add(code::kAlg, "header.alg is " + json_quoted(*alg) + ", not \"dir\"");
    }
  }
  if (auto enc = string_member(header, "enc", "header.")) {
    m_report.enc = *enc;
    auto parsed = parse_wrap_alg(*enc);
    if (!parsed) {
      std::string why = "header.enc is " + json_quoted(*enc) +
                        "; known: CKM_RSA_AES_KEY_WRAP, RSA_AES_KEY_WRAP_256, RSA_AES_KEY_WRAP_384";
      for (WrapAlg alg : all_wrap_algs()) {
        if (ascii_lower(*enc) == ascii_lower(wrap_alg_name(alg))) {
          why += " (names are case-sensitive)";
        }
      }
      add(code::kEncUnknown, why);
    } else {
      m_enc = *parsed;
      if (*parsed != WrapAlg::kRsaAesKeyWrap) {
        add(code::kEncUndocumented,
            "header.enc is " + *enc + " (RSA-OAEP " +
                std::string(to_string(wrap_alg_hash(*parsed))) +
                "); the BYOK specification documents only CKM_RSA_AES_KEY_WRAP for import files");
      }
    }
  }
}

void Linter::check_kid(const std::string& kid) {
  auto versioned = parse_kid(kid, /*require_version=*/true);
  if (versioned) {
    m_report.kid_info = *versioned;
    return;
  }
  if (ascii_lower(kid).starts_with("http://")) {
    add(code::kKidHttp, "header.kid " + json_quoted(kid) + " uses http; key identifiers are https");
    return;
  }
  auto unversioned = parse_kid(kid, /*require_version=*/false);
  if (unversioned) {
    m_report.kid_info = *unversioned;
    add(code::kKidUnversioned, "header.kid " + json_quoted(kid) +
                                   " names the KEK without a version; the vault needs " +
                                   "the exact KEK version the file was wrapped for");
    return;
  }
  add(code::kKidShape, "header.kid: " + versioned.error().message());
}

void Linter::check_generator(const Json& doc) {
  auto generator = doc.find("generator");
  if (generator == doc.end()) {
    add(code::kGeneratorMissing, "there is no generator member");
    return;
  }
  if (!generator->is_string()) {
    add(code::kMemberType,
        "member generator must be a string, not a JSON " + std::string(generator->type_name()));
    return;
  }
  m_report.generator = generator->get<std::string>();
  if (m_report.generator->find_first_not_of(" \t\r\n") == std::string::npos) {
    add(code::kGeneratorMissing, "generator is empty");
  }
}

void Linter::resolve_target() {
  const std::optional<KeyId>& kid = m_report.kid_info;
  if (kid && kid->target) {
    m_report.target = kid->target;
    m_report.target_source = "kid";
    if (m_options.target && *m_options.target != *kid->target) {
      add(code::kTargetConflict, "--target " + std::string(to_string(*m_options.target)) +
                                     " contradicts the kid host " + kid->host + " (a " +
                                     std::string(to_string(*kid->target)) +
                                     "); the kid host is used");
    }
    return;
  }
  if (kid) {
    add(code::kKidHostUnknown,
        "the kid host " + kid->host + " is not an Azure Key Vault or Managed HSM host" +
            (m_options.target ? "; checking as " + std::string(to_string(*m_options.target)) +
                                    " as --target says"
                              : "; the key type profile is not checked without --target"));
  }
  if (m_options.target) {
    m_report.target = m_options.target;
    m_report.target_source = "--target";
  }
}

void Linter::prepare_kek() {
  std::optional<PublicKey> private_public;
  if (m_options.kek_private_der) {
    auto material =
        load_key_material(m_options.kek_private_der->reveal(SecretAccess::unsafe()), nullptr);
    if (!material || material->spec.family != KeyFamily::kRsa || !material->public_key) {
      add(code::kKekUnusable, "the private KEK is not an RSA private key keyport can use" +
                                  (material ? std::string() : ": " + material.error().message()));
      m_kek_usable = false;
      return;
    }
    private_public = material->public_key;
    m_kek_private = std::move(material->encoded);
  }
  if (m_options.kek && private_public && !(*m_options.kek == *private_public)) {
    add(code::kKekMismatch, "the public KEK (SHA-256 " + m_options.kek->sha256_fingerprint() +
                                ") and the private KEK (SHA-256 " +
                                private_public->sha256_fingerprint() + ") are not one key pair");
    m_kek_usable = false;
    return;
  }
  m_kek = m_options.kek ? m_options.kek : private_public;
  if (m_kek) {
    m_report.kek_sha256 = m_kek->sha256_fingerprint();
    if (m_kek->family() != KeyFamily::kRsa) {
      add(code::kKekUnusable, "the KEK is not an RSA key");
      m_kek_usable = false;
      m_kek.reset();
      return;
    }
  }
  // A KEK that came with its own kid (a JWK or KeyBundle) must be the one the file names.
  if (m_options.kek_kid && m_report.kid_info) {
    auto kek_kid = parse_kid(*m_options.kek_kid, /*require_version=*/false);
    const KeyId& file_kid = *m_report.kid_info;
    if (kek_kid && (kek_kid->host != file_kid.host ||
                    ascii_lower(kek_kid->key_name) != ascii_lower(file_kid.key_name) ||
                    (!kek_kid->version.empty() && !file_kid.version.empty() &&
                     ascii_lower(kek_kid->version) != ascii_lower(file_kid.version)))) {
      add(code::kKekMismatch,
          "the KEK given is " + kek_kid->url + ", but the file names " + file_kid.url);
      m_kek_usable = false;
    }
  }
}

void Linter::check_ciphertext(const std::string& text) {
  if (text.empty()) {
    m_report.ciphertext_bytes = 0;
    add(code::kCtShort, "ciphertext is empty");
    return;
  }
  const Base64Shape shape = inspect_base64(text);
  if (shape.has_other) {
    const auto bad = std::find_if(text.begin(), text.end(), [](char c) {
      return !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '+' || c == '/' || c == '=');
    });
    const auto position = static_cast<std::size_t>(bad - text.begin());
    const auto value = static_cast<unsigned>(static_cast<unsigned char>(*bad));
    std::string shown = value >= 0x21 && value < 0x7f
                            ? std::string("'") + *bad + "'"
                            : "byte 0x" + hex_encode(std::span<const std::uint8_t>(
                                              reinterpret_cast<const std::uint8_t*>(&*bad), 1));
    add(code::kCtEncoding, "ciphertext has " + shown + " at character " + std::to_string(position) +
                               ", outside the base64url alphabet");
    return;
  }
  std::string normalized = text;
  if (shape.has_std_chars) {
    add(code::kCtStdB64,
        "ciphertext uses the standard base64 alphabet ('+' or '/')" +
            std::string(shape.has_url_chars ? " mixed with base64url ('-' or '_')" : "") +
            "; keyport's strict reader refuses it");
    std::replace(normalized.begin(), normalized.end(), '+', '-');
    std::replace(normalized.begin(), normalized.end(), '/', '_');
  }
  auto decoded = base64url_decode(normalized);
  if (!decoded) {
    add(code::kCtEncoding, "ciphertext: " + decoded.error().message());
    return;
  }
  if (shape.has_padding) {
    add(code::kCtPadding, "ciphertext ends with '=' padding");
  }
  check_lengths(*decoded);
}

void Linter::check_lengths(std::span<const std::uint8_t> ciphertext) {
  const std::size_t total = ciphertext.size();
  m_report.ciphertext_bytes = total;
  for (std::size_t modulus : kKekModulusBytes) {
    if (total >= modulus + kMinKwpPart && (total - modulus) % kKwSemiblock == 0 &&
        !key_specs_for_kwp(total - modulus).empty()) {
      m_report.plausible_kek_bits.push_back(static_cast<unsigned>(modulus * 8));
    }
  }
  const std::size_t first_finding = m_report.findings.size();

  if (!m_kek) {
    const std::size_t smallest_rsa = kKekModulusBytes.front();
    if (total <= smallest_rsa) {
      add(code::kCtShort, "ciphertext is " + std::to_string(total) +
                              " bytes, no longer than the RSA part of the smallest KEK (" +
                              std::to_string(smallest_rsa) + " bytes for 2048 bits)");
    } else if (total % kKwSemiblock != 0 || total < smallest_rsa + kMinKwpPart) {
      add(code::kKwpLength, "ciphertext is " + std::to_string(total) +
                                " bytes: whatever the KEK size, the AES-KWP part is not a " +
                                "multiple of 8 bytes of at least 16");
    } else if (m_report.plausible_kek_bits.empty()) {
      add(code::kRsaLength,
          "no KEK size (2048, 3072, 4096 bits) splits the " + std::to_string(total) +
              "-byte ciphertext into an RSA part and the KWP part of a key BYOK supports",
          Severity::kWarning);
    } else if (m_report.plausible_kek_bits.size() == 1) {
      m_report.rsa_part_bytes = m_report.plausible_kek_bits.front() / 8;
      m_report.kwp_part_bytes = total - *m_report.rsa_part_bytes;
      m_report.split_source = "inferred";
      check_kwp_fits_target(*m_report.kwp_part_bytes);
    }
    if (m_kek_usable && !any_error_since(first_finding)) {
      add(code::kKeyUnchecked,
          "without the KEK's private key only the structure was checked, not the key inside");
    }
    return;
  }

  const std::size_t modulus = (m_kek->bits() + 7) / 8;
  const auto& plausible = m_report.plausible_kek_bits;
  if (!plausible.empty() &&
      std::find(plausible.begin(), plausible.end(), m_kek->bits()) == plausible.end()) {
    std::string sizes;
    for (unsigned bits : plausible) {
      sizes += (sizes.empty() ? "" : " or ") + std::to_string(bits);
    }
    add(code::kRsaLength, "the " + std::to_string(total) + "-byte ciphertext fits a " + sizes +
                              "-bit KEK, not this " + std::to_string(m_kek->bits()) +
                              "-bit one: its RSA part is not " + std::to_string(modulus) +
                              " bytes");
    return;
  }
  if (total <= modulus) {
    add(code::kCtShort, "ciphertext is " + std::to_string(total) + " bytes, no longer than the " +
                            std::to_string(modulus) + "-byte RSA part of this " +
                            std::to_string(m_kek->bits()) + "-bit KEK");
    return;
  }
  const std::size_t kwp = total - modulus;
  if (kwp % kKwSemiblock != 0 || kwp < kMinKwpPart) {
    add(code::kKwpLength, "the AES-KWP part is " + std::to_string(kwp) + " bytes (after the " +
                              std::to_string(modulus) +
                              "-byte RSA part): not a multiple of 8 of at least 16");
    return;
  }
  m_report.rsa_part_bytes = modulus;
  m_report.kwp_part_bytes = kwp;
  m_report.split_source = "kek";
  // Without the private key the length is all there is to check the key against; with it, the
  // unwrap below names the key itself.
  if (!m_kek_private && !check_kwp_fits_target(kwp)) {
    return;
  }
  if (not_less(ciphertext.first(modulus), m_kek->rsa_modulus())) {
    add(code::kKekMismatch,
        "the RSA part is not smaller than this KEK's modulus, so it was not encrypted to this "
        "KEK");
    return;
  }
  if (!m_kek_usable) {
    return;
  }
  if (m_kek_private) {
    unwrap(ciphertext);
  } else {
    add(code::kKeyUnchecked,
        "without the KEK's private key only the structure was checked, not the key inside");
  }
}

bool Linter::check_kwp_fits_target(std::size_t kwp) {
  const auto specs = key_specs_for_kwp(kwp);
  if (specs.empty()) {
    add(code::kKwpLength, "the AES-KWP part is " + std::to_string(kwp) +
                              " bytes: no key BYOK carries wraps to that length (was the "
                              "ciphertext cut, or wrapped for another KEK size?)");
    return false;
  }
  if (!m_report.target) {
    return true;
  }
  std::vector<KeySpec> accepted;
  for (const auto& spec : specs) {
    if (check_target_accepts(*m_report.target, spec))
      accepted.push_back(spec);
  }
  if (accepted.empty()) {
    add(code::kKwpTarget, "the " + std::to_string(kwp) + "-byte AES-KWP part can hold only " +
                              spec_names(specs) + ", which " +
                              std::string(target_title(*m_report.target)) +
                              " does not import (target from " +
                              (m_report.target_source == "kid" ? std::string("the kid host")
                                                               : m_report.target_source) +
                              ")");
    return false;
  }
  return true;
}

void Linter::unwrap(std::span<const std::uint8_t> ciphertext) {
  const std::size_t modulus = *m_report.rsa_part_bytes;
  const auto rsa_part = ciphertext.first(modulus);
  const auto kwp_part = ciphertext.subspan(modulus);
  // The header's enc first; the others only to explain a failure.
  std::vector<WrapAlg> order;
  if (m_enc) {
    order.push_back(*m_enc);
  }
  for (WrapAlg alg : all_wrap_algs()) {
    if (!m_enc || alg != *m_enc) {
      order.push_back(alg);
    }
  }
  for (WrapAlg alg : order) {
    auto transfer_key = rsa_oaep_decrypt(*m_kek_private, wrap_alg_hash(alg), rsa_part);
    if (!transfer_key) {
      continue;
    }
    const std::size_t key_bytes = transfer_key->size();
    if (key_bytes != 16 && key_bytes != 24 && key_bytes != 32) {
      continue;
    }
    auto plaintext = aes_kwp_unwrap(*transfer_key, kwp_part);
    if (!plaintext) {
      continue;
    }
    if (m_enc && alg != *m_enc) {
      add(code::kEncMismatch, "the ciphertext unwraps with " + std::string(wrap_alg_name(alg)) +
                                  " (RSA-OAEP " + std::string(to_string(wrap_alg_hash(alg))) +
                                  "), but header.enc says " + std::string(wrap_alg_name(*m_enc)));
    }
    if (key_bytes != kTransferKeyBytes) {
      add(code::kTransferKeySize, "the transfer key is AES-" + std::to_string(key_bytes * 8) +
                                      "; Azure's tools use AES-256");
    }
    m_report.key = UnwrappedKey{};
    m_report.key->enc_used = alg;
    m_report.key->transfer_key_bytes = key_bytes;
    check_key(*plaintext);
    return;
  }
  // One message for every cause (OAEP or KWP, wrong key or damage): no oracle.
  add(code::kUnwrapFailed, std::string(kIntegrityMessage) + " (with the private KEK given)");
}

void Linter::check_key(const SecretBytes& plaintext) {
  UnwrappedKey& key = *m_report.key;
  key.plaintext_bytes = plaintext.size();
  const auto bytes = plaintext.reveal(SecretAccess::unsafe());
  const std::size_t n = plaintext.size();
  if (n == 16 || n == 24 || n == 32) {
    key.spec = KeySpec{KeyFamily::kAes, static_cast<unsigned>(n * 8), std::nullopt};
    key.description = key.spec->name();
    if (auto kcv = aes_key_check_value(plaintext)) {
      key.aes_kcv = *kcv;
    }
  } else if (bytes.empty() || bytes.front() != 0x30) {
    key.description = std::to_string(n) + " bytes";
    add(code::kKeyType, "the key material is " + std::to_string(n) +
                            " bytes: neither a PKCS#8 key nor an AES key of 16, 24 or 32 bytes");
    return;
  } else {
    auto info = inspect_pkcs8(plaintext);
    if (!info) {
      key.description = "unreadable";
      add(info.error().detail() == code::kKeyType ? code::kKeyType : code::kPkcs8Invalid,
          info.error().message());
      return;
    }
    key.spec = info->spec;
    key.description = info->spec.name();
    key.public_sha256 = info->public_key.sha256_fingerprint();
    key.pkcs8_bytes = info->der_length;
    const auto trailing = bytes.subspan(info->der_length);
    if (!trailing.empty()) {
      const bool zeros =
          std::all_of(trailing.begin(), trailing.end(), [](std::uint8_t b) { return b == 0; });
      if (zeros && trailing.size() < kKwSemiblock) {
        add(code::kPkcs8TrailingZeros,
            std::to_string(trailing.size()) + " zero bytes follow the " +
                std::to_string(info->der_length) + "-byte PKCS#8 DER" +
                (n % kKwSemiblock == 0 ? " (padded to a multiple of 8, as SoftHSM 2.6.1 does)"
                                       : ""));
      } else {
        add(code::kPkcs8TrailingBytes, std::to_string(trailing.size()) + (zeros ? " zero" : "") +
                                           " bytes follow the " + std::to_string(info->der_length) +
                                           "-byte PKCS#8 DER");
      }
    }
    if (info->spec.family == KeyFamily::kEc && !info->ec_public_key_present) {
      add(code::kEcNoPubkey, "the ECPrivateKey inside the PKCS#8 has no [1] publicKey field");
    }
  }
  if (key.spec && m_report.target) {
    auto accepted = check_target_accepts(*m_report.target, *key.spec);
    if (!accepted) {
      add(code::kProfile, accepted.error().message() + " (target from " +
                              (m_report.target_source == "kid" ? std::string("the kid host")
                                                               : m_report.target_source) +
                              ")");
    }
  }
}

}  // namespace

std::string_view to_string(Severity severity) {
  switch (severity) {
    case Severity::kError:
      return "error";
    case Severity::kWarning:
      return "warning";
    case Severity::kInfo:
      return "info";
  }
  return "";
}

const std::vector<FindingKind>& finding_catalogue() {
  return kCatalogue;
}

const FindingKind* find_finding_kind(std::string_view finding_code) {
  for (const FindingKind& kind : kCatalogue) {
    if (kind.code == finding_code) {
      return &kind;
    }
  }
  return nullptr;
}

std::size_t InspectReport::count(Severity severity) const {
  return static_cast<std::size_t>(std::count_if(
      findings.begin(), findings.end(), [&](const Finding& f) { return f.severity == severity; }));
}

bool InspectReport::has(std::string_view finding_code) const {
  return std::any_of(findings.begin(), findings.end(),
                     [&](const Finding& f) { return f.code == finding_code; });
}

const Finding* InspectReport::first(Severity severity) const {
  for (const Finding& f : findings) {
    if (f.severity == severity) {
      return &f;
    }
  }
  return nullptr;
}

Json InspectReport::to_json() const {
  auto optional_string = [](const std::optional<std::string>& s) -> Json {
    return s ? Json(*s) : Json(nullptr);
  };
  auto optional_size = [](const std::optional<std::size_t>& n) -> Json {
    return n ? Json(*n) : Json(nullptr);
  };
  Json j = Json::object();
  j["file_bytes"] = file_bytes;
  j["valid"] = !has_errors();
  j["reader_accepts"] = reader_accepts;
  j["reader_message"] = reader_message.empty() ? Json(nullptr) : Json(reader_message);
  j["schema_version"] = optional_string(schema_version);
  j["kid"] = optional_string(kid);
  if (kid_info) {
    j["kid_info"] = {{"url", kid_info->url},          {"host", kid_info->host},
                     {"vault", kid_info->vault_name}, {"key_name", kid_info->key_name},
                     {"version", kid_info->version},  {"cloud", kid_info->cloud}};
  } else {
    j["kid_info"] = nullptr;
  }
  j["alg"] = optional_string(alg);
  j["enc"] = optional_string(enc);
  j["generator"] = optional_string(generator);
  j["target"] = target ? Json(std::string(to_string(*target))) : Json(nullptr);
  j["target_source"] = target_source.empty() ? Json(nullptr) : Json(target_source);
  Json bits = Json::array();
  for (unsigned b : plausible_kek_bits) {
    bits.push_back(b);
  }
  j["ciphertext"] = {{"bytes", optional_size(ciphertext_bytes)},
                     {"rsa_part_bytes", optional_size(rsa_part_bytes)},
                     {"kwp_part_bytes", optional_size(kwp_part_bytes)},
                     {"split_source", split_source.empty() ? Json(nullptr) : Json(split_source)},
                     {"plausible_kek_bits", bits}};
  j["kek_sha256"] = optional_string(kek_sha256);
  if (key) {
    j["key"] = {{"type", key->spec ? Json(key->spec->name()) : Json(nullptr)},
                {"kty", key->spec ? Json(std::string(key->spec->azure_kty())) : Json(nullptr)},
                {"description", key->description},
                {"public_key_sha256", optional_string(key->public_sha256)},
                {"kcv", optional_string(key->aes_kcv)},
                {"plaintext_bytes", key->plaintext_bytes},
                {"pkcs8_bytes", optional_size(key->pkcs8_bytes)},
                {"enc_used", std::string(wrap_alg_name(key->enc_used))},
                {"transfer_key_bits", key->transfer_key_bytes * 8}};
  } else {
    j["key"] = nullptr;
  }
  Json list = Json::array();
  for (const Finding& f : findings) {
    list.push_back({{"code", f.code},
                    {"severity", std::string(to_string(f.severity))},
                    {"message", f.message},
                    {"advice", f.advice}});
  }
  j["findings"] = std::move(list);
  j["counts"] = {{"error", count(Severity::kError)},
                 {"warning", count(Severity::kWarning)},
                 {"info", count(Severity::kInfo)}};
  return j;
}

InspectReport inspect_byok(std::span<const std::uint8_t> file_bytes,
                           const InspectOptions& options) {
  return Linter(file_bytes, options).run();
}

}  // namespace keyport::byok

// SPDX-License-Identifier: Apache-2.0
#include "migrate/envelope.h"

#include <algorithm>
#include <cstring>

#include "core/random.h"
#include "migrate/crypto.h"

namespace keyport::migrate {
namespace {

constexpr std::string_view kHkdfLabel = "keyport envelope v1";

void put_u16(Bytes& out, std::size_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

void put_u32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<std::uint8_t>(v >> shift));
  }
}

void put_text(Bytes& out, std::string_view s) {
  put_u16(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

// A bounds-checked reader over the header bytes: every read checks what is left first.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> data) : m_data(data) {}
  std::size_t left() const { return m_data.size() - m_pos; }
  bool u8(std::uint8_t& v) {
    if (left() < 1) {
      return false;
    }
    v = m_data[m_pos++];
    return true;
  }
  bool u16(std::size_t& v) {
    if (left() < 2) {
      return false;
    }
    v = (static_cast<std::size_t>(m_data[m_pos]) << 8) | m_data[m_pos + 1];
    m_pos += 2;
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (left() < 4) {
      return false;
    }
    v = 0;
    for (int i = 0; i < 4; ++i) {
      v = (v << 8) | m_data[m_pos++];
    }
    return true;
  }
  bool bytes(std::span<std::uint8_t> out) {
    if (left() < out.size()) {
      return false;
    }
    std::memcpy(out.data(), m_data.data() + m_pos, out.size());
    m_pos += out.size();
    return true;
  }
  bool skip(std::size_t n) {
    if (left() < n) {
      return false;
    }
    m_pos += n;
    return true;
  }
  // A u16 length, checked against [1, max] and what is left, then that many bytes.
  bool text(std::string& out, std::size_t max) {
    std::size_t n = 0;
    if (!u16(n) || n == 0 || n > max || left() < n) {
      return false;
    }
    out.assign(reinterpret_cast<const char*>(m_data.data() + m_pos), n);
    m_pos += n;
    return out.find('\0') == std::string::npos;
  }

 private:
  std::span<const std::uint8_t> m_data;
  std::size_t m_pos = 0;
};

tl::unexpected<Error> header_error(std::string what) {
  return make_error(ErrorCode::kFormat, "envelope header: " + what);
}

Status check_fields(const EnvelopeHeader& h) {
  if (h.version != kEnvelopeVersion || h.suite != kEnvelopeSuite) {
    return make_error(ErrorCode::kInvalidArgument, "unknown envelope version or suite");
  }
  if (h.kek_id.empty() || h.kek_id.size() > kEnvelopeMaxKekIdBytes || h.kek_version.empty() ||
      h.kek_version.size() > kEnvelopeMaxNameBytes || h.primary.empty() ||
      h.primary.size() > kEnvelopeMaxNameBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "envelope header: KEK id 1-2048 bytes, KEK version and primary name 1-255");
  }
  if (h.epoch == 0) {
    return make_error(ErrorCode::kInvalidArgument, "envelope header: epoch 0");
  }
  if (h.segment_size < kMinSegmentBytes || h.segment_size > kMaxSegmentBytes) {
    return make_error(ErrorCode::kInvalidArgument,
                      "segment size must be 1 KiB to 8 MiB, not " + std::to_string(h.segment_size));
  }
  return {};
}

}  // namespace

Result<Bytes> EnvelopeHeader::encode() const {
  KEYPORT_TRY(check_fields(*this));
  Bytes out(kEnvelopeMagic.begin(), kEnvelopeMagic.end());
  out.push_back(version);
  out.push_back(suite);
  put_u16(out, 0);  // header length, set below
  put_text(out, kek_id);
  put_text(out, kek_version);
  put_text(out, primary);
  put_u32(out, epoch);
  out.insert(out.end(), dek_id.begin(), dek_id.end());
  put_u32(out, segment_size);
  out.insert(out.end(), base_nonce.begin(), base_nonce.end());
  if (out.size() > kEnvelopeMaxHeaderBytes) {
    return make_error(ErrorCode::kInvalidArgument, "envelope header longer than 4096 bytes");
  }
  out[6] = static_cast<std::uint8_t>(out.size() >> 8);
  out[7] = static_cast<std::uint8_t>(out.size());
  return out;
}

Json EnvelopeHeader::to_json() const {
  return Json{{"version", version},
              {"suite", "HKDF-SHA256/AES-256-GCM"},
              {"kek_id", kek_id},
              {"kek_version", kek_version},
              {"primary", primary},
              {"epoch", epoch},
              {"primary_key_id", primary_key_id(primary, epoch)},
              {"dek_id", hex_encode(dek_id)},
              {"segment_size", segment_size},
              {"base_nonce", hex_encode(base_nonce)}};
}

Result<std::size_t> envelope_header_length(std::span<const std::uint8_t> prefix) {
  if (prefix.size() < kEnvelopePrefixBytes) {
    return header_error("shorter than its 8-byte prefix");
  }
  if (!std::equal(kEnvelopeMagic.begin(), kEnvelopeMagic.end(), prefix.begin())) {
    return header_error("not a keyport envelope (magic is not \"KPEV\")");
  }
  if (prefix[4] != kEnvelopeVersion) {
    return header_error("version " + std::to_string(prefix[4]) + " is not supported (want 1)");
  }
  if (prefix[5] != kEnvelopeSuite) {
    return header_error("suite " + std::to_string(prefix[5]) + " is not supported (want 1)");
  }
  std::size_t len = (static_cast<std::size_t>(prefix[6]) << 8) | prefix[7];
  if (len < kEnvelopeMinHeaderBytes || len > kEnvelopeMaxHeaderBytes) {
    return header_error("header length " + std::to_string(len) + " is outside 48..4096");
  }
  return len;
}

Result<EnvelopeHeader> parse_envelope_header(std::span<const std::uint8_t> bytes) {
  KEYPORT_ASSIGN_OR_RETURN(std::size_t len, envelope_header_length(bytes));
  if (bytes.size() != len) {
    return header_error("declares " + std::to_string(len) + " bytes but has " +
                        std::to_string(bytes.size()));
  }
  EnvelopeHeader h;
  Reader r(bytes);
  r.skip(4);
  std::size_t ignored = 0;
  if (!r.u8(h.version) || !r.u8(h.suite) || !r.u16(ignored)) {
    return header_error("truncated prefix");
  }
  if (!r.text(h.kek_id, kEnvelopeMaxKekIdBytes)) {
    return header_error("bad KEK id field");
  }
  if (!r.text(h.kek_version, kEnvelopeMaxNameBytes)) {
    return header_error("bad KEK version field");
  }
  if (!r.text(h.primary, kEnvelopeMaxNameBytes)) {
    return header_error("bad primary key field");
  }
  if (!r.u32(h.epoch) || h.epoch == 0) {
    return header_error("bad epoch");
  }
  if (!r.bytes(h.dek_id)) {
    return header_error("truncated DEK id");
  }
  if (!r.u32(h.segment_size) || h.segment_size < kMinSegmentBytes ||
      h.segment_size > kMaxSegmentBytes) {
    return header_error("bad segment size");
  }
  if (!r.bytes(h.base_nonce)) {
    return header_error("truncated base nonce");
  }
  if (r.left() != 0) {
    return header_error(std::to_string(r.left()) + " unexpected bytes after the fields");
  }
  return h;
}

Result<EnvelopeHeader> read_envelope_header(ByteSource& in, Bytes* out_raw) {
  Bytes raw(kEnvelopePrefixBytes);
  KEYPORT_ASSIGN_OR_RETURN(std::size_t n, read_full(in, raw));
  if (n < kEnvelopePrefixBytes) {
    return header_error("the input ends within the 8-byte prefix");
  }
  KEYPORT_ASSIGN_OR_RETURN(std::size_t len, envelope_header_length(raw));
  raw.resize(len);
  KEYPORT_ASSIGN_OR_RETURN(std::size_t rest,
                           read_full(in, std::span(raw).subspan(kEnvelopePrefixBytes)));
  if (rest != len - kEnvelopePrefixBytes) {
    return header_error("the input ends within the header");
  }
  KEYPORT_ASSIGN_OR_RETURN(EnvelopeHeader h, parse_envelope_header(raw));
  if (out_raw != nullptr) {
    *out_raw = std::move(raw);
  }
  return h;
}

Result<SecretBytes> derive_dek(const SecretBytes& primary, const EnvelopeHeader& header) {
  if (primary.size() != 32) {
    return make_error(ErrorCode::kInvalidArgument, "a primary key is 32 bytes (AES-256)");
  }
  Bytes info(kHkdfLabel.begin(), kHkdfLabel.end());
  info.push_back(0);
  put_text(info, header.primary);
  put_u32(info, header.epoch);
  info.insert(info.end(), header.dek_id.begin(), header.dek_id.end());
  return hkdf_sha256(primary, header.dek_id, info, 32);
}

std::array<std::uint8_t, 12> segment_nonce(const EnvelopeHeader& header, std::uint32_t index,
                                           bool last) {
  std::array<std::uint8_t, 12> n{};
  std::copy(header.base_nonce.begin(), header.base_nonce.end(), n.begin());
  n[7] = static_cast<std::uint8_t>(index >> 24);
  n[8] = static_cast<std::uint8_t>(index >> 16);
  n[9] = static_cast<std::uint8_t>(index >> 8);
  n[10] = static_cast<std::uint8_t>(index);
  n[11] = last ? 1 : 0;
  return n;
}

Result<EnvelopeStats> seal_stream(const SecretBytes& primary, const EnvelopeHeader& header,
                                  ByteSource& in, ByteSink& out) {
  KEYPORT_ASSIGN_OR_RETURN(Bytes raw, header.encode());
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes dek, derive_dek(primary, header));
  KEYPORT_ASSIGN_OR_RETURN(AesGcm gcm, AesGcm::create(dek));
  const std::size_t seg = header.segment_size;
  EnvelopeStats stats;
  KEYPORT_TRY(out.write(raw));
  stats.ciphertext_bytes = raw.size();
  // Two plaintext buffers: the segment being sealed and the next, read ahead to learn whether
  // this one is the last.
  SecretBytes cur(seg), next(seg);
  Bytes sealed(seg + kGcmTagBytes);
  KEYPORT_ASSIGN_OR_RETURN(std::size_t n_cur,
                           read_full(in, cur.reveal_mut(SecretAccess::unsafe())));
  for (std::uint64_t i = 0;; ++i) {
    std::size_t n_next = 0;
    if (n_cur == seg) {
      KEYPORT_ASSIGN_OR_RETURN(n_next, read_full(in, next.reveal_mut(SecretAccess::unsafe())));
    }
    const bool last = n_cur < seg || n_next == 0;
    if (i > 0xFFFFFFFFull) {
      return make_error(ErrorCode::kInvalidArgument, "input too large: more than 2^32 segments");
    }
    auto nonce = segment_nonce(header, static_cast<std::uint32_t>(i), last);
    std::span<std::uint8_t> out_seg(sealed.data(), n_cur + kGcmTagBytes);
    KEYPORT_TRY(gcm.seal(nonce, raw, cur.reveal(SecretAccess::unsafe()).first(n_cur), out_seg));
    KEYPORT_TRY(out.write(out_seg));
    stats.plaintext_bytes += n_cur;
    stats.ciphertext_bytes += out_seg.size();
    stats.segments += 1;
    if (last) {
      break;
    }
    std::swap(cur, next);
    n_cur = n_next;
  }
  return stats;
}

Result<EnvelopeStats> open_stream(
    const std::function<Result<SecretBytes>(const EnvelopeHeader&)>& primary_for, ByteSource& in,
    ByteSink& out) {
  Bytes raw;
  KEYPORT_ASSIGN_OR_RETURN(EnvelopeHeader header, read_envelope_header(in, &raw));
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes primary, primary_for(header));
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes dek, derive_dek(primary, header));
  KEYPORT_ASSIGN_OR_RETURN(AesGcm gcm, AesGcm::create(dek));
  const std::size_t seg = header.segment_size;
  const std::size_t cseg = seg + kGcmTagBytes;
  EnvelopeStats stats;
  stats.ciphertext_bytes = raw.size();
  Bytes cur(cseg), next(cseg);
  SecretBytes plain(seg);
  KEYPORT_ASSIGN_OR_RETURN(std::size_t n_cur, read_full(in, cur));
  for (std::uint64_t i = 0;; ++i) {
    std::size_t n_next = 0;
    if (n_cur == cseg) {
      KEYPORT_ASSIGN_OR_RETURN(n_next, read_full(in, next));
    }
    const bool last = n_cur < cseg || n_next == 0;
    if (n_cur < kGcmTagBytes || i > 0xFFFFFFFFull) {
      return integrity_error();  // truncated (or impossibly long)
    }
    auto nonce = segment_nonce(header, static_cast<std::uint32_t>(i), last);
    const std::size_t n_plain = n_cur - kGcmTagBytes;
    auto p = plain.reveal_mut(SecretAccess::unsafe()).first(n_plain);
    KEYPORT_TRY(gcm.open(nonce, raw, std::span(cur).first(n_cur), p));
    KEYPORT_TRY(out.write(p));
    stats.plaintext_bytes += n_plain;
    stats.ciphertext_bytes += n_cur;
    stats.segments += 1;
    if (last) {
      break;
    }
    std::swap(cur, next);
    n_cur = n_next;
  }
  return stats;
}

// --- with the keyring ---------------------------------------------------------------------------

Result<SecretBytes> unwrap_primary(Keyring& keyring, const KeyEncryptionKey& kek,
                                   std::string_view name, std::uint32_t epoch) {
  const std::string key_id = primary_key_id(name, epoch);
  KEYPORT_ASSIGN_OR_RETURN(auto w, keyring.find_wrapping(key_id, kek.id()));
  if (!w) {
    KEYPORT_ASSIGN_OR_RETURN(auto all, keyring.wrappings_of(key_id));
    if (all.empty()) {
      return make_error(ErrorCode::kNotFound,
                        "primary key " + key_id + " is not in keyring " + keyring.path().string());
    }
    std::string by;
    for (const auto& other : all) {
      by += (by.empty() ? "" : ", ") + other.kek.describe() +
            (other.state == "active" ? "" : " [" + other.state + "]");
    }
    return make_error(ErrorCode::kNotFound, "primary key " + key_id + " has no wrapping by " +
                                                kek.id().describe() + "; it is wrapped by " + by);
  }
  auto key = kek.unwrap(w->wrapped);
  if (!key) {
    return tl::unexpected(key.error().with_context("primary key " + key_id));
  }
  if (key->size() != 32) {
    return make_error(ErrorCode::kIntegrityFailure, "primary key " + key_id + " is not 32 bytes");
  }
  return key;
}

namespace {

Result<KeyRecord> add_primary(Keyring& keyring, const KeyEncryptionKey& kek, std::string_view name,
                              std::uint32_t epoch) {
  KeyRecord rec;
  rec.kind = KeyKind::kPrimary;
  rec.name = std::string(name);
  rec.epoch = epoch;
  rec.key_id = primary_key_id(name, epoch);
  rec.created = Keyring::now();
  SecretBytes key = random_secret(32);
  WrappingRecord w;
  w.key_id = rec.key_id;
  w.kek = kek.id();
  w.alg = std::string(kek.algorithm());
  KEYPORT_ASSIGN_OR_RETURN(w.wrapped, kek.wrap(key));
  w.created = rec.created;
  KEYPORT_TRY(keyring.add_key(rec, w));
  return rec;
}

Status check_primary_name(std::string_view name) {
  if (name.empty() || name.size() > kEnvelopeMaxNameBytes ||
      name.find_first_of(std::string_view("/\0", 2)) != std::string_view::npos) {
    return make_error(ErrorCode::kInvalidArgument,
                      "a primary key name is 1 to 255 bytes without '/' or NUL");
  }
  return {};
}

}  // namespace

Result<PrimaryKey> current_primary(Keyring& keyring, const KeyEncryptionKey& kek,
                                   std::string_view name) {
  KEYPORT_TRY(check_primary_name(name));
  KEYPORT_ASSIGN_OR_RETURN(auto latest, keyring.latest_primary(name));
  if (!latest) {
    auto made = add_primary(keyring, kek, name, 1);
    if (!made && made.error().code() != ErrorCode::kAlreadyExists) {
      return tl::unexpected(made.error());
    }
    // Made now, or by another process just before us: read it back either way.
    KEYPORT_ASSIGN_OR_RETURN(latest, keyring.latest_primary(name));
    if (!latest) {
      return make_error(ErrorCode::kInternal, "primary key vanished");
    }
  }
  PrimaryKey p;
  p.record = *latest;
  KEYPORT_ASSIGN_OR_RETURN(p.key, unwrap_primary(keyring, kek, name, latest->epoch));
  return p;
}

Result<KeyRecord> rotate_primary(Keyring& keyring, const KeyEncryptionKey& kek,
                                 std::string_view name) {
  KEYPORT_TRY(check_primary_name(name));
  KEYPORT_ASSIGN_OR_RETURN(auto latest, keyring.latest_primary(name));
  std::uint32_t epoch = latest ? latest->epoch + 1 : 1;
  KEYPORT_ASSIGN_OR_RETURN(KeyRecord rec, add_primary(keyring, kek, name, epoch));
  KEYPORT_TRY(keyring.retire_primaries_below(name, epoch));
  return rec;
}

Result<EnvelopeStats> envelope_encrypt(Keyring& keyring, const KeyEncryptionKey& kek,
                                       ByteSource& in, ByteSink& out,
                                       const EncryptOptions& options) {
  KEYPORT_ASSIGN_OR_RETURN(PrimaryKey primary, current_primary(keyring, kek, options.primary));
  EnvelopeHeader h;
  h.kek_id = kek.id().id;
  h.kek_version = kek.id().version;
  h.primary = options.primary;
  h.epoch = primary.record.epoch;
  Bytes dek_id = random_bytes(kDekIdBytes);
  std::copy(dek_id.begin(), dek_id.end(), h.dek_id.begin());
  Bytes nonce = random_bytes(kBaseNonceBytes);
  std::copy(nonce.begin(), nonce.end(), h.base_nonce.begin());
  h.segment_size = options.segment_size;
  return seal_stream(primary.key, h, in, out);
}

Result<EnvelopeStats> envelope_decrypt(Keyring& keyring, const KeyEncryptionKey& kek,
                                       ByteSource& in, ByteSink& out) {
  return open_stream(
      [&](const EnvelopeHeader& h) { return unwrap_primary(keyring, kek, h.primary, h.epoch); }, in,
      out);
}

}  // namespace keyport::migrate

// SPDX-License-Identifier: Apache-2.0
// Target: envelope files (migrate/envelope.h): the 8-byte prefix, the header, and the segments
// after it. Invariants: a header read from a stream parses alone to the same header and encodes
// back to exactly its bytes; the whole input opened with a fixed primary key either fails or
// yields plaintext that seals back to the same bytes (every segment is authenticated, so random
// bytes never "decrypt"); a header also round-trips a short message sealed under it.
// max_len 64 KiB (a header is at most 4096 bytes; the rest exercises the segment reader).
#include <algorithm>
#include <cstring>

#include "migrate/envelope.h"
#include "migrate/stream_io.h"
#include "tests/fuzz/fuzz.h"

namespace {

keyport::SecretBytes fixed_primary() {
  keyport::SecretBytes key(32);
  auto k = key.reveal_mut(keyport::SecretAccess::unsafe());
  for (std::size_t i = 0; i < k.size(); ++i)
    k[i] = static_cast<std::uint8_t>(i * 7 + 1);
  return key;
}

bool same_header(const keyport::migrate::EnvelopeHeader& a,
                 const keyport::migrate::EnvelopeHeader& b) {
  return a.version == b.version && a.suite == b.suite && a.kek_id == b.kek_id &&
         a.kek_version == b.kek_version && a.primary == b.primary && a.epoch == b.epoch &&
         a.dek_id == b.dek_id && a.segment_size == b.segment_size && a.base_nonce == b.base_nonce;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  KEYPORT_FUZZ_MAX_LEN(64 * 1024);
  using namespace keyport::migrate;
  auto input = keyport::fuzz::input(data, size);

  (void)envelope_header_length(input);
  (void)parse_envelope_header(input);

  SpanSource src(input);
  keyport::Bytes raw;
  auto header = read_envelope_header(src, &raw);
  if (!header)
    return 0;
  auto alone = parse_envelope_header(raw);
  KEYPORT_FUZZ_CHECK(alone.has_value() && same_header(*alone, *header));
  auto encoded = header->encode();
  KEYPORT_FUZZ_CHECK(encoded.has_value() && *encoded == raw);
  (void)header->to_json();

  // Keep each run fast: big segment sizes allocate two segments per open.
  if (header->segment_size > 64 * 1024)
    return 0;
  const keyport::SecretBytes primary = fixed_primary();
  auto primary_for = [&](const EnvelopeHeader&) -> keyport::Result<keyport::SecretBytes> {
    return primary.clone();
  };

  SpanSource whole(input);
  BytesSink plain;
  if (open_stream(primary_for, whole, plain)) {
    // Only a file sealed under this very key gets here; sealing its plaintext again under the
    // same header gives the same bytes (the nonces come from the header).
    SpanSource again_in(plain.bytes());
    BytesSink again_out;
    KEYPORT_FUZZ_CHECK(seal_stream(primary, *header, again_in, again_out).has_value());
    KEYPORT_FUZZ_CHECK(again_out.bytes().size() == size &&
                       std::memcmp(again_out.bytes().data(), data, size) == 0);
  }

  // Round trip of a short message under this header: what seal writes, open reads back.
  const std::size_t n = std::min<std::size_t>(size, 3000);
  SpanSource msg(input.first(n));
  BytesSink sealed;
  KEYPORT_FUZZ_CHECK(seal_stream(primary, *header, msg, sealed).has_value());
  SpanSource sealed_in(sealed.bytes());
  BytesSink opened;
  KEYPORT_FUZZ_CHECK(open_stream(primary_for, sealed_in, opened).has_value());
  KEYPORT_FUZZ_CHECK(opened.bytes().size() == n &&
                     (n == 0 || std::memcmp(opened.bytes().data(), data, n) == 0));
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// The HTTP/1.1 request parser and response serialiser (http/parser.h), and the small accessors of
// http::Request and http::Response. RFC 9112 section numbers in the comments.
#include "http/parser.h"

#include <algorithm>
#include <limits>

#include "core/encoding.h"
#include "core/strings.h"

namespace keyport::http {
namespace {

// A chunk line (size and extensions) longer than this is refused: real clients send a few bytes.
constexpr std::size_t kMaxChunkLine = 4096;

// RFC 9110 §5.6.2: tchar.
constexpr bool is_tchar(unsigned char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
    return true;
  }
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

constexpr bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

// RFC 9110 §5.5: field-value characters (VCHAR, SP, HTAB, obs-text); no CTL, no DEL.
constexpr bool is_field_char(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_ows(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

// Host = uri-host [ ":" port ] (RFC 3986 characters only; empty is allowed, RFC 9112 §3.2).
bool is_host_value(std::string_view host) {
  return std::all_of(host.begin(), host.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      return true;
    }
    return std::string_view("-._~!$&'()*+,;=%:[]").find(ch) != std::string_view::npos;
  });
}

// The comma-separated elements of every field named `name`, trimmed, empty ones skipped.
std::vector<std::string_view> list_values(const Request& r, std::string_view name) {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : r.headers) {
    if (k != name) {
      continue;
    }
    std::string_view rest = v;
    while (true) {
      const auto comma = rest.find(',');
      std::string_view item = trim_ows(rest.substr(0, comma));
      if (!item.empty()) {
        out.push_back(item);
      }
      if (comma == std::string_view::npos) {
        break;
      }
      rest.remove_prefix(comma + 1);
    }
  }
  return out;
}

std::size_t count_fields(const Request& r, std::string_view name) {
  return static_cast<std::size_t>(std::count_if(r.headers.begin(), r.headers.end(),
                                                [&](const auto& h) { return h.first == name; }));
}

// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), §7.1.1; trailing
// whitespace is tolerated.
bool valid_chunk_extensions(std::string_view s) {
  std::size_t i = 0;
  auto skip_ws = [&] {
    while (i < s.size() && is_ows(s[i])) {
      ++i;
    }
  };
  auto token = [&] {
    const std::size_t start = i;
    while (i < s.size() && is_tchar(static_cast<unsigned char>(s[i]))) {
      ++i;
    }
    return i > start;
  };
  while (true) {
    skip_ws();
    if (i == s.size()) {
      return true;
    }
    if (s[i] != ';') {
      return false;
    }
    ++i;
    skip_ws();
    if (!token()) {
      return false;
    }
    skip_ws();
    if (i == s.size() || s[i] != '=') {
      continue;
    }
    ++i;
    skip_ws();
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '"') {
          ++i;
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i + 1 >= s.size() || !is_field_char(static_cast<unsigned char>(s[i + 1]))) {
            return false;
          }
          i += 2;
          continue;
        }
        if (!is_field_char(c)) {
          return false;
        }
        ++i;
      }
      if (!closed) {
        return false;
      }
    } else if (!token()) {
      return false;
    }
  }
}

}  // namespace

// --- Request / Response -----------------------------------------------------------------------

std::string Request::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) {
      return v;
    }
  }
  return {};
}

bool Request::has_header(std::string_view lower_name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& h) { return h.first == lower_name; });
}

const std::string* Request::query_value(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) {
      return &v;
    }
  }
  return nullptr;
}

std::string Response::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) {
      return v;
    }
  }
  return {};
}

const std::string* Response::note(std::string_view name) const {
  for (const auto& [k, v] : notes) {
    if (k == name) {
      return &v;
    }
  }
  return nullptr;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::string percent_decode(std::string_view text, bool plus_is_space) {
  return *keyport::percent_decode(text, plus_is_space, BadEscape::kKeep);
}

std::string serialize_response(const Response& response, bool close, bool head_request,
                               int request_minor) {
  const int status = response.status >= 100 && response.status <= 999 ? response.status : 500;
  std::string out =
      "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) + "\r\n";
  const bool no_body = status < 200 || status == 204 || status == 304;
  for (const auto& [name, value] : response.headers) {
    if (!is_token(name) || iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
        iequals(name, "connection") ||
        (iequals(name, "content-type") && !response.content_type.empty())) {
      continue;
    }
    if (!std::all_of(value.begin(), value.end(),
                     [](char c) { return is_field_char(static_cast<unsigned char>(c)); })) {
      continue;  // would split the response
    }
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (!no_body) {
    const std::string_view type = response.content_type;
    if (!type.empty() && std::all_of(type.begin(), type.end(), [](char c) {
          return is_field_char(static_cast<unsigned char>(c));
        })) {
      out += "Content-Type: ";
      out += type;
      out += "\r\n";
    }
    out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  }
  if (close) {
    out += "Connection: close\r\n";
  } else if (request_minor == 0) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!no_body && !head_request) {
    out += response.body;
  }
  return out;
}

// --- RequestParser ----------------------------------------------------------------------------

RequestParser::RequestParser(const Limits& limits) : m_limits(limits) {}

void RequestParser::reset() {
  const Limits limits = m_limits;
  *this = RequestParser(limits);
}

bool RequestParser::fail(int status, std::string message) {
  m_state = State::kFailed;
  m_refusal = Refusal{status, std::move(message)};
  m_keep_alive = false;
  m_expect_continue = false;
  return false;
}

std::size_t RequestParser::feed(std::string_view bytes) {
  switch (m_state) {
    case State::kHead:
      return feed_head(bytes);
    case State::kBody:
      return m_chunked ? feed_chunked(bytes) : feed_body(bytes);
    case State::kDone:
    case State::kFailed:
      break;
  }
  return 0;
}

std::size_t RequestParser::feed_head(std::string_view bytes) {
  if (bytes.empty()) {
    return 0;
  }
  m_started = true;
  const std::size_t room =
      m_limits.max_header_bytes - std::min(m_head.size(), m_limits.max_header_bytes);
  const std::size_t take = std::min(room, bytes.size());
  m_head.append(bytes.data(), take);
  // §2.2: empty lines before the request line are ignored (bounded all the same).
  std::size_t strip = 0;
  while (m_head.size() - strip >= 2 && m_head[strip] == '\r' && m_head[strip + 1] == '\n') {
    strip += 2;
  }
  if (strip > 0) {
    m_head.erase(0, strip);
    m_leading += strip;
    m_scan = 0;
    if (m_leading > m_limits.max_header_bytes) {
      fail(400, "The request starts with too many empty lines.");
      return take;
    }
  }
  // Find the empty line that ends the head; every line must end in CRLF (no bare CR or LF).
  std::size_t end = 0;
  for (std::size_t i = m_scan; i < m_head.size(); ++i) {
    const char c = m_head[i];
    if (c == '\n') {
      if (i == 0 || m_head[i - 1] != '\r') {
        fail(400, "A line of the request head ends in a bare LF (lines end in CRLF).");
        return take;
      }
      if (i >= 3 && m_head[i - 2] == '\n' && m_head[i - 3] == '\r') {
        end = i + 1;
        break;
      }
    } else if (i > 0 && m_head[i - 1] == '\r') {
      fail(400, "The request head holds a bare CR.");
      return take;
    }
  }
  if (end == 0) {
    // The last byte may be a CR whose LF is still to come: resume the scan there.
    m_scan = m_head.empty() ? 0 : m_head.size() - 1;
    if (m_head.size() >= m_limits.max_header_bytes) {
      if (m_head.find("\r\n") == std::string::npos) {
        fail(414, "The request line is longer than this server accepts (" +
                      std::to_string(m_limits.max_header_bytes) + " bytes).");
      } else {
        fail(431, "The request head is larger than this server accepts (" +
                      std::to_string(m_limits.max_header_bytes) + " bytes).");
      }
    }
    return take;
  }
  const std::size_t excess = m_head.size() - end;
  m_head.resize(end);
  m_head_size = end;
  parse_head(m_head);
  std::string().swap(m_head);
  return take - excess;
}

void RequestParser::parse_head(std::string_view head) {
  head.remove_suffix(2);  // the empty line's CRLF; every line below ends in CRLF
  std::size_t pos = 0;
  bool first = true;
  while (pos < head.size()) {
    const std::size_t eol = head.find("\r\n", pos);
    const std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 2;
    if (first) {
      first = false;
      if (!parse_request_line(line)) {
        return;
      }
    } else if (!parse_field_line(line, false)) {
      return;
    }
  }
  if (!check_framing()) {
    return;
  }
  m_state = body_expected() ? State::kBody : State::kDone;
}

bool RequestParser::parse_request_line(std::string_view line) {
  // §3: request-line = method SP request-target SP HTTP-version
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) {
    return fail(400, "The request line is not METHOD TARGET HTTP-VERSION.");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view rest = line.substr(sp1 + 1);
  const auto sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos) {
    return fail(400, "The request line is not METHOD TARGET HTTP-VERSION.");
  }
  const std::string_view target = rest.substr(0, sp2);
  const std::string_view version = rest.substr(sp2 + 1);
  if (!is_token(method)) {
    return fail(400, "The request method is not a token.");
  }
  m_request.method = std::string(method);
  if (target.empty() || !std::all_of(target.begin(), target.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u < 0x7f && c != '#';
      })) {
    return fail(400, "The request target holds a character a URI cannot hold.");
  }
  m_request.target = std::string(target);
  // §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[5] < '0' ||
      version[5] > '9' || version[6] != '.' || version[7] < '0' || version[7] > '9') {
    return fail(400, "The request line does not end in an HTTP version.");
  }
  if (version[5] != '1') {
    return fail(505, "This server speaks HTTP/1.1 only.");
  }
  m_request.version_minor = version[7] == '0' ? 0 : 1;

  // §3.2: origin-form, absolute-form, asterisk-form (OPTIONS only). authority-form is CONNECT's.
  std::string_view path_and_query;
  if (target.front() == '/') {
    path_and_query = target;
  } else if (target == "*") {
    if (method != "OPTIONS") {
      return fail(400, "The request target * is for OPTIONS only.");
    }
    path_and_query = target;
  } else if (starts_with_icase(target, "http://") || starts_with_icase(target, "https://")) {
    std::string_view after = target.substr(target.find("://") + 3);
    const auto slash = after.find_first_of("/?");
    if (slash == 0) {
      return fail(400, "The request target has no authority.");
    }
    path_and_query = slash == std::string_view::npos ? std::string_view("/") : after.substr(slash);
    if (!path_and_query.empty() && path_and_query.front() == '?') {
      m_request.path = "/";
    }
  } else {
    return fail(400, "The request target is neither a path nor an absolute URI.");
  }
  const auto question = path_and_query.find('?');
  if (m_request.path.empty()) {
    m_request.path = percent_decode(path_and_query.substr(0, question), false);
  }
  if (question != std::string_view::npos) {
    std::string_view query = path_and_query.substr(question + 1);
    while (!query.empty()) {
      const auto amp = query.find('&');
      const std::string_view item = query.substr(0, amp);
      const auto eq = item.find('=');
      const std::string_view key = item.substr(0, eq);
      if (!key.empty()) {
        m_request.query.emplace_back(percent_decode(key, true),
                                     eq == std::string_view::npos
                                         ? std::string()
                                         : percent_decode(item.substr(eq + 1), true));
      }
      if (amp == std::string_view::npos) {
        break;
      }
      query.remove_prefix(amp + 1);
    }
  }
  return true;
}

bool RequestParser::parse_field_line(std::string_view line, bool trailer) {
  if (line.empty()) {
    return fail(400, "The request head holds an empty field line.");
  }
  if (is_ows(line.front())) {
    // §5.2: obs-fold is refused (a server may not guess what the folded line meant).
    return fail(400, "A header field is folded over lines (obs-fold).");
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) {
    return fail(400, "A header line has no colon.");
  }
  const std::string_view name = line.substr(0, colon);
  if (!name.empty() && is_ows(name.back())) {
    // §5.1: no whitespace between the field name and the colon.
    return fail(400, "A header field name is followed by whitespace before its colon.");
  }
  if (!is_token(name)) {
    return fail(400, "A header field name is not a token.");
  }
  const std::string_view value = line.substr(colon + 1);
  if (!std::all_of(value.begin(), value.end(),
                   [](char c) { return is_field_char(static_cast<unsigned char>(c)); })) {
    return fail(400, "A header field value holds a control character.");
  }
  if (++m_fields > m_limits.max_headers) {
    return fail(431, "The request has more header fields than this server accepts (" +
                         std::to_string(m_limits.max_headers) + ").");
  }
  if (!trailer) {
    m_request.headers.emplace_back(ascii_lower(name), std::string(trim_ows(value)));
  }
  return true;
}

bool RequestParser::check_framing() {
  const Request& r = m_request;
  // §3.2: exactly one Host in HTTP/1.1; never more than one.
  const std::size_t hosts = count_fields(r, "host");
  if (hosts > 1) {
    return fail(400, "The request has more than one Host header.");
  }
  if (hosts == 0 && r.version_minor == 1) {
    return fail(400, "An HTTP/1.1 request needs a Host header.");
  }
  if (hosts == 1 && !is_host_value(r.header("host"))) {
    return fail(400, "The Host header is not a host[:port].");
  }
  // §6.1-6.3: Content-Length and Transfer-Encoding.
  const std::size_t lengths = count_fields(r, "content-length");
  const bool has_te = r.has_header("transfer-encoding");
  if (lengths > 1) {
    return fail(400, "The request has more than one Content-Length header.");
  }
  if (lengths == 1 && has_te) {
    return fail(400, "The request has both Content-Length and Transfer-Encoding.");
  }
  if (has_te) {
    if (r.version_minor == 0) {
      return fail(400, "An HTTP/1.0 request cannot use Transfer-Encoding.");
    }
    const auto codings = list_values(r, "transfer-encoding");
    if (codings.empty()) {
      return fail(400, "The Transfer-Encoding header is empty.");
    }
    std::size_t chunked = 0;
    for (const auto coding : codings) {
      if (iequals(coding, "chunked")) {
        ++chunked;
      } else if (starts_with_icase(coding, "chunked") &&
                 trim_ows(coding.substr(7)).starts_with(';')) {
        return fail(400, "The chunked transfer coding takes no parameters.");
      } else {
        return fail(501, "This server decodes the chunked transfer coding only.");
      }
    }
    if (chunked > 1) {
      return fail(400, "The request is chunked more than once.");
    }
    m_chunked = true;
  }
  if (lengths == 1) {
    const std::string value = r.header("content-length");
    if (value.empty() ||
        !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return fail(400, "The Content-Length header is not a decimal number.");
    }
    std::uint64_t n = 0;
    bool over = false;
    for (char c : value) {
      const auto d = static_cast<std::uint64_t>(c - '0');
      if (n > (std::numeric_limits<std::uint64_t>::max() - d) / 10) {
        over = true;
        break;
      }
      n = n * 10 + d;
    }
    if (over || n > m_limits.max_body) {
      return fail(413, "The request body is larger than this server accepts (" +
                           std::to_string(m_limits.max_body) + " bytes).");
    }
    m_remaining = n;
  }
  // RFC 9110 §10.1.1: Expect (ignored in HTTP/1.0).
  if (r.version_minor == 1 && r.has_header("expect")) {
    const auto expectations = list_values(r, "expect");
    for (const auto e : expectations) {
      if (!iequals(e, "100-continue")) {
        return fail(417, "The only expectation this server meets is 100-continue.");
      }
    }
    m_expect_continue = !expectations.empty() && body_expected();
  }
  // §9.3: persistence.
  bool close = false;
  bool keep = false;
  for (const auto token : list_values(r, "connection")) {
    close = close || iequals(token, "close");
    keep = keep || iequals(token, "keep-alive");
  }
  m_keep_alive = r.version_minor == 1 ? !close : keep && !close;
  return true;
}

std::size_t RequestParser::feed_body(std::string_view bytes) {
  const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(m_remaining, bytes.size()));
  m_request.body.append(bytes.data(), n);
  m_remaining -= n;
  if (m_remaining == 0) {
    m_state = State::kDone;
  }
  return n;
}

bool RequestParser::parse_chunk_line(std::string_view line) {
  // §7.1: chunk-size [ chunk-ext ]; chunk-size = 1*HEXDIG
  std::uint64_t size = 0;
  std::size_t i = 0;
  for (; i < line.size(); ++i) {
    const int d = hex_digit_value(line[i]);
    if (d < 0) {
      break;
    }
    if (size > (std::numeric_limits<std::uint64_t>::max() >> 4)) {
      return fail(400, "A chunk size overflows.");
    }
    size = (size << 4) | static_cast<std::uint64_t>(d);
  }
  if (i == 0) {
    return fail(400, "A chunk does not start with its size in hexadecimal.");
  }
  if (!valid_chunk_extensions(line.substr(i))) {
    return fail(400, "A chunk extension is not valid.");
  }
  if (size == 0) {
    m_chunk = Chunk::kTrailer;
    return true;
  }
  if (size > m_limits.max_body - std::min(m_request.body.size(), m_limits.max_body)) {
    return fail(413, "The request body is larger than this server accepts (" +
                         std::to_string(m_limits.max_body) + " bytes).");
  }
  m_chunk_left = size;
  m_chunk = Chunk::kData;
  return true;
}

std::size_t RequestParser::feed_chunked(std::string_view bytes) {
  // The framing (chunk lines with their extensions, the CRLFs after the data) may be as large as
  // the body limit, at least 4 KiB; trailers count with the head.
  const std::size_t framing_limit = std::max<std::size_t>(m_limits.max_body, 4096);
  std::size_t i = 0;
  while (i < bytes.size() && m_state == State::kBody) {
    switch (m_chunk) {
      case Chunk::kData: {
        const auto n =
            static_cast<std::size_t>(std::min<std::uint64_t>(m_chunk_left, bytes.size() - i));
        m_request.body.append(bytes.data() + i, n);
        i += n;
        m_chunk_left -= n;
        if (m_chunk_left == 0) {
          m_chunk = Chunk::kDataEnd;
          m_crlf = 0;
        }
        break;
      }
      case Chunk::kDataEnd: {
        const char c = bytes[i++];
        if (++m_framing > framing_limit) {
          fail(413, "The chunked framing of the request body is larger than this server accepts.");
          return i;
        }
        if (c != (m_crlf == 0 ? '\r' : '\n')) {
          fail(400, "Chunk data is not followed by CRLF.");
          return i;
        }
        if (++m_crlf == 2) {
          m_chunk = Chunk::kSize;
        }
        break;
      }
      case Chunk::kSize:
      case Chunk::kTrailer: {
        const char c = bytes[i++];
        const bool trailer = m_chunk == Chunk::kTrailer;
        if (trailer && m_head_size + ++m_trailer_bytes > m_limits.max_header_bytes) {
          fail(431, "The request head and trailers are larger than this server accepts (" +
                        std::to_string(m_limits.max_header_bytes) + " bytes).");
          return i;
        }
        if (c == '\n') {
          if (m_line.empty() || m_line.back() != '\r') {
            fail(400, "A chunk line ends in a bare LF.");
            return i;
          }
          if (!trailer) {
            m_framing += m_line.size() + 1;
            if (m_framing > framing_limit) {
              fail(413,
                   "The chunked framing of the request body is larger than this server accepts.");
              return i;
            }
          }
          m_line.pop_back();
          if (!trailer) {
            if (!parse_chunk_line(m_line)) {
              return i;
            }
          } else if (m_line.empty()) {
            m_state = State::kDone;
          } else if (!parse_field_line(m_line, true)) {
            return i;
          }
          m_line.clear();
          break;
        }
        if (!m_line.empty() && m_line.back() == '\r') {
          fail(400, "A chunk line holds a bare CR.");
          return i;
        }
        m_line.push_back(c);
        if (!trailer && m_line.size() > kMaxChunkLine) {
          fail(400, "A chunk line is longer than " + std::to_string(kMaxChunkLine) + " bytes.");
          return i;
        }
        break;
      }
    }
  }
  return i;
}

}  // namespace keyport::http

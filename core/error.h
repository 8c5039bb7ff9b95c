// SPDX-License-Identifier: Apache-2.0
// Error values and Result<T>: every fallible library call returns one of these; no exception
// crosses a library API. cli/main.cpp alone maps ErrorCode to an exit code.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace keyport {

// Stable error categories. The numeric values are not exit codes; see cli/exit_codes.h.
enum class ErrorCode {
  kInvalidArgument,     // bad input from the caller: malformed file, bad option value
  kFormat,              // a structured input (JSON, DER, PEM, base64url) does not parse
  kUnsupported,         // valid request the target, module or profile cannot do
  kNotFound,            // token, key, file or object does not exist
  kAlreadyExists,       // output file or label exists and overwriting was not asked for
  kAuth,                // wrong PIN, missing or rejected credential
  kPermissionDenied,    // authenticated but not allowed
  kPkcs11,              // a C_* call failed (rv and function are set)
  kCrypto,              // an OpenSSL operation failed
  kIntegrityFailure,    // unwrap/decrypt/verify failed; deliberately carries no detail
  kPolicyDenied,        // a release policy said no
  kAttestationInvalid,  // an attestation token failed verification
  kIo,                  // file system or network I/O failed
  kInternal,            // a bug
  kFailedPrecondition,  // refused because an earlier step is missing (retire before verify)
  kUnavailable,         // a remote service failed on its side (HTTP 5xx): retry later
};

std::string_view to_string(ErrorCode code);

// An error value: stable category, a message for humans, and for PKCS#11 failures the CK_RV and
// the name of the C_* function that returned it.
class Error {
 public:
  Error(ErrorCode code, std::string message) : m_code(code), m_message(std::move(message)) {}
  Error(ErrorCode code, std::string message, unsigned long rv, std::string function)
      : m_code(code), m_message(std::move(message)), m_rv(rv), m_function(std::move(function)) {}

  ErrorCode code() const { return m_code; }
  const std::string& message() const { return m_message; }
  std::optional<unsigned long> rv() const { return m_rv; }
  const std::string& function() const { return m_function; }
  // An optional stable sub-code more precise than the category: a Key Vault error code
  // ("KeyNotFound"), a linter finding ("BYOK-KWP-LENGTH"). Empty when not set.
  const std::string& detail() const { return m_detail; }
  Error&& with_detail(std::string detail) && {
    m_detail = std::move(detail);
    return std::move(*this);
  }

  // Returns a copy whose message is "<context>: <message>".
  Error with_context(std::string_view context) const;

  // One line for people: the message, then " (C_WrapKey: CKR_KEY_UNEXTRACTABLE)" for PKCS#11.
  std::string describe() const;

 private:
  ErrorCode m_code;
  std::string m_message;
  std::optional<unsigned long> m_rv;
  std::string m_function;
  std::string m_detail;
};

template <typename T>
using Result = tl::expected<T, Error>;
using Status = tl::expected<void, Error>;

inline tl::unexpected<Error> make_error(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error(code, std::move(message)));
}
inline tl::unexpected<Error> make_error(ErrorCode code, std::string detail, std::string message) {
  return tl::unexpected<Error>(Error(code, std::move(message)).with_detail(std::move(detail)));
}

// The single message every unwrap, decrypt or tag failure carries, whatever step failed, so that
// callers (and attackers) cannot tell an OAEP failure from a KWP integrity failure.
inline constexpr std::string_view kIntegrityMessage =
    "unwrap failed: ciphertext is not valid for this key";

inline tl::unexpected<Error> integrity_error() {
  return tl::unexpected<Error>(Error(ErrorCode::kIntegrityFailure, std::string(kIntegrityMessage)));
}

// Hook used by the PKCS#11 layer to render CK_RV names in describe(); set once at start-up.
using RvNamer = std::string_view (*)(unsigned long rv);
void set_rv_namer(RvNamer namer);

}  // namespace keyport

#define KEYPORT_CONCAT_INNER(a, b) a##b
#define KEYPORT_CONCAT(a, b) KEYPORT_CONCAT_INNER(a, b)

// Returns early with the error if `expr` (a Status or Result) failed.
#define KEYPORT_TRY(expr)                                              \
  do {                                                                 \
    auto&& keyport_try_result_ = (expr);                               \
    if (!keyport_try_result_) {                                        \
      return ::tl::unexpected(std::move(keyport_try_result_).error()); \
    }                                                                  \
  } while (false)

#define KEYPORT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp) {                                         \
    return ::tl::unexpected(std::move(tmp).error());  \
  }                                                   \
  lhs = std::move(tmp).value()

// `KEYPORT_ASSIGN_OR_RETURN(auto x, f());` declares x from f()'s value or returns f()'s error.
#define KEYPORT_ASSIGN_OR_RETURN(lhs, expr) \
  KEYPORT_ASSIGN_OR_RETURN_IMPL(KEYPORT_CONCAT(keyport_aor_, __COUNTER__), lhs, expr)

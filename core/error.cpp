// SPDX-License-Identifier: Apache-2.0
#include "core/error.h"

#include <atomic>
#include <cstdio>

namespace keyport {
namespace {
std::atomic<RvNamer> g_rv_namer{nullptr};
}  // namespace

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid-argument";
    case ErrorCode::kFormat:
      return "format";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kNotFound:
      return "not-found";
    case ErrorCode::kAlreadyExists:
      return "already-exists";
    case ErrorCode::kAuth:
      return "auth";
    case ErrorCode::kPermissionDenied:
      return "permission-denied";
    case ErrorCode::kPkcs11:
      return "pkcs11";
    case ErrorCode::kCrypto:
      return "crypto";
    case ErrorCode::kIntegrityFailure:
      return "integrity";
    case ErrorCode::kPolicyDenied:
      return "policy-denied";
    case ErrorCode::kAttestationInvalid:
      return "attestation-invalid";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kFailedPrecondition:
      return "failed-precondition";
    case ErrorCode::kUnavailable:
      return "unavailable";
  }
  return "unknown";
}

Error Error::with_context(std::string_view context) const {
  Error copy = *this;
  copy.m_message = std::string(context) + ": " + m_message;
  return copy;
}

std::string Error::describe() const {
  std::string out = m_message;
  if (m_rv) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "0x%lX", *m_rv);
    RvNamer namer = g_rv_namer.load();
    std::string name = namer ? std::string(namer(*m_rv)) : std::string();
    out += " (" + (m_function.empty() ? std::string("PKCS#11") : m_function) + ": " +
           (name.empty() ? std::string(hex) : name + " " + hex) + ")";
  }
  return out;
}

void set_rv_namer(RvNamer namer) {
  g_rv_namer.store(namer);
}

}  // namespace keyport

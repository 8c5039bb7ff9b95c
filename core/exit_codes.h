// SPDX-License-Identifier: Apache-2.0
// keyport's exit codes and the category each ErrorCode maps to. Stable: scripts depend on them
// (README "Exit codes"), and libkeyport's kp_status values are the same numbers.
#pragma once

#include "core/error.h"

namespace keyport {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,        // internal error
  kExitUsage = 2,          // command line does not parse (CLI11)
  kExitBadInput = 3,       // a file, option value or argument is malformed or inconsistent
  kExitHsmOrCrypto = 4,    // a PKCS#11 call or a cryptographic operation failed
  kExitNotFound = 5,       // token, key, file or object does not exist
  kExitExists = 6,         // output file or label exists (use --force / another label)
  kExitAuth = 7,           // wrong or missing PIN or credential, permission denied
  kExitUnsupported = 8,    // valid, but the target profile or the module cannot do it
  kExitDenied = 9,         // a release policy or an attestation check said no
  kExitIo = 10,            // file system or network I/O failed
  kExitPartial = 11,       // a batch finished but some items failed
  kExitPrecondition = 12,  // refused until an earlier step is done (e.g. migrate verify)
  kExitUnavailable = 13,   // a remote service failed on its side (HTTP 5xx); retry later
};

inline int exit_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kFormat:
      return kExitBadInput;
    case ErrorCode::kUnsupported:
      return kExitUnsupported;
    case ErrorCode::kNotFound:
      return kExitNotFound;
    case ErrorCode::kAlreadyExists:
      return kExitExists;
    case ErrorCode::kAuth:
    case ErrorCode::kPermissionDenied:
      return kExitAuth;
    case ErrorCode::kPkcs11:
    case ErrorCode::kCrypto:
    case ErrorCode::kIntegrityFailure:
      return kExitHsmOrCrypto;
    case ErrorCode::kPolicyDenied:
    case ErrorCode::kAttestationInvalid:
      return kExitDenied;
    case ErrorCode::kIo:
      return kExitIo;
    case ErrorCode::kInternal:
      return kExitFailure;
    case ErrorCode::kFailedPrecondition:
      return kExitPrecondition;
    case ErrorCode::kUnavailable:
      return kExitUnavailable;
  }
  return kExitFailure;
}

}  // namespace keyport

// SPDX-License-Identifier: Apache-2.0
#include "vault/errors.h"

namespace keyport::vault {
namespace {

// The inner code is recognised from the fixed phrase that the constructor below puts into the
// message (Key Vault's own wording), so that it survives with_context() and copies.
struct InnerPhrase {
  std::string_view phrase;
  std::string_view code;
};
constexpr InnerPhrase kInnerPhrases[] = {
    {"is not allowed on a disabled key", kKeyDisabled},
    {"is not permitted on this key", kKeyOperationForbidden},
    {"is currently in a deleted but recoverable state", kObjectIsDeletedButRecoverable},
};

tl::unexpected<Error> kv(ErrorCode code, std::string_view detail, std::string message) {
  return tl::unexpected<Error>(Error(code, std::move(message)).with_detail(std::string(detail)));
}

}  // namespace

tl::unexpected<Error> bad_parameter(std::string message) {
  return kv(ErrorCode::kInvalidArgument, kBadParameter, std::move(message));
}

tl::unexpected<Error> key_not_found(std::string_view name, std::string_view version) {
  std::string what = "A key with (name/id) " + std::string(name);
  if (!version.empty()) {
    what += "/" + std::string(version);
  }
  return kv(ErrorCode::kNotFound, kKeyNotFound, what + " was not found in this key vault.");
}

tl::unexpected<Error> deleted_key_not_found(std::string_view name) {
  return kv(ErrorCode::kNotFound, kKeyNotFound,
            "Deleted Key not found: " + std::string(name) + " is not in the deleted state.");
}

tl::unexpected<Error> key_disabled(std::string_view operation) {
  return kv(ErrorCode::kPermissionDenied, kForbidden,
            "Operation " + std::string(operation) + " is not allowed on a disabled key.");
}

tl::unexpected<Error> operation_forbidden(std::string_view operation) {
  return kv(ErrorCode::kPermissionDenied, kForbidden,
            "Operation " + std::string(operation) + " is not permitted on this key.");
}

tl::unexpected<Error> key_not_valid_now(std::string_view operation, bool expired) {
  return kv(
      ErrorCode::kPermissionDenied, kForbidden,
      "Operation " + std::string(operation) + " is not allowed on " +
          (expired ? std::string("an expired key") : std::string("a key that is not yet valid")) +
          " (outside its nbf/exp window only decrypt, unwrapKey and verify are allowed).");
}

tl::unexpected<Error> deleted_but_recoverable(std::string_view name) {
  return kv(ErrorCode::kAlreadyExists, kConflict,
            "Key " + std::string(name) +
                " is currently in a deleted but recoverable state, and its name cannot be reused; "
                "in this state, the key can only be recovered or purged.");
}

tl::unexpected<Error> internal_error(std::string message) {
  return kv(ErrorCode::kInternal, kInternalServerError, std::move(message));
}

Error with_kv_detail(Error e) {
  if (!e.detail().empty()) {
    return e;
  }
  std::string code = kv_code(e);
  return std::move(e).with_detail(std::move(code));
}

std::string kv_code(const Error& e) {
  if (!e.detail().empty()) {
    return e.detail();
  }
  switch (e.code()) {
    case ErrorCode::kIntegrityFailure:
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kFormat:
    case ErrorCode::kUnsupported:
      return std::string(kBadParameter);
    case ErrorCode::kNotFound:
      return std::string(kKeyNotFound);
    case ErrorCode::kPermissionDenied:
    case ErrorCode::kPolicyDenied:
      return std::string(kForbidden);
    case ErrorCode::kAlreadyExists:
      return std::string(kConflict);
    case ErrorCode::kAuth:
      return std::string(kUnauthorized);
    default:
      break;
  }
  return std::string(kInternalServerError);
}

int http_status_for(const Error& e) {
  const std::string code = kv_code(e);
  if (code == kBadParameter) {
    return 400;
  }
  if (code == kUnauthorized) {
    return 401;
  }
  if (code == kForbidden) {
    return 403;
  }
  // KeyNotFound, and Managed HSM's RoleDefinitionNotFound, RoleAssignmentNotFound,
  // SettingNotFound.
  if (code.size() > 8 && code.compare(code.size() - 8, 8, "NotFound") == 0) {
    return 404;
  }
  if (code == kConflict) {
    return 409;
  }
  // A code of its own (JobNotFound, ...): the status of its category.
  switch (e.code()) {
    case ErrorCode::kIntegrityFailure:
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kFormat:
    case ErrorCode::kUnsupported:
      return 400;
    case ErrorCode::kAuth:
      return 401;
    case ErrorCode::kPermissionDenied:
    case ErrorCode::kPolicyDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kAlreadyExists:
      return 409;
    default:
      return 500;
  }
}

std::string_view kv_inner_code(const Error& e) {
  for (const auto& p : kInnerPhrases) {
    if (e.message().find(p.phrase) != std::string::npos) {
      return p.code;
    }
  }
  return {};
}

Json error_body(const Error& e) {
  Json err = Json::object();
  err["code"] = kv_code(e);
  err["message"] = e.message();
  std::string_view inner = kv_inner_code(e);
  if (!inner.empty()) {
    err["innererror"] = Json{{"code", std::string(inner)}};
  }
  return Json{{"error", std::move(err)}};
}

}  // namespace keyport::vault

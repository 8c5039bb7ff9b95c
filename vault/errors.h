// SPDX-License-Identifier: Apache-2.0
// Key Vault error values. Every error a Vault returns carries, in Error::detail(), the Key Vault
// error code that goes into the `error.code` member of a REST error body ("BadParameter",
// "KeyNotFound", "Forbidden", "Conflict", "Unauthorized", "InternalServerError"). Some Key Vault
// errors also carry an inner code (`error.innererror.code`): kv_inner_code() recovers it.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"
#include "core/json.h"

namespace keyport::vault {

// Outer codes (Error::detail()).
inline constexpr std::string_view kBadParameter = "BadParameter";
inline constexpr std::string_view kKeyNotFound = "KeyNotFound";
inline constexpr std::string_view kForbidden = "Forbidden";
inline constexpr std::string_view kConflict = "Conflict";
inline constexpr std::string_view kUnauthorized = "Unauthorized";
inline constexpr std::string_view kInternalServerError = "InternalServerError";

// Inner codes (kv_inner_code()).
inline constexpr std::string_view kKeyDisabled = "KeyDisabled";
inline constexpr std::string_view kKeyOperationForbidden = "KeyOperationForbidden";
inline constexpr std::string_view kObjectIsDeletedButRecoverable = "ObjectIsDeletedButRecoverable";

// Returns an error with detail kBadParameter (category kInvalidArgument) and `message`.
tl::unexpected<Error> bad_parameter(std::string message);
// Returns an error with detail kKeyNotFound (category kNotFound) naming the key and version.
tl::unexpected<Error> key_not_found(std::string_view name, std::string_view version = {});
// Returns an error with detail kKeyNotFound for a key that is not in the deleted state.
tl::unexpected<Error> deleted_key_not_found(std::string_view name);
// Returns a 403 error with detail kForbidden and inner code kKeyDisabled ("Operation sign is not
// allowed on a disabled key.").
tl::unexpected<Error> key_disabled(std::string_view operation);
// Returns a 403 error with detail kForbidden and inner code kKeyOperationForbidden ("Operation
// decrypt is not permitted on this key.").
tl::unexpected<Error> operation_forbidden(std::string_view operation);
// Returns a 403 error with detail kForbidden for a key used outside its nbf/exp window.
tl::unexpected<Error> key_not_valid_now(std::string_view operation, bool expired);
// Returns a 409 error with detail kConflict and inner code kObjectIsDeletedButRecoverable.
tl::unexpected<Error> deleted_but_recoverable(std::string_view name);
// Returns an error with detail kInternalServerError (category kInternal).
tl::unexpected<Error> internal_error(std::string message);

// Returns `e` unchanged when it already has a detail; otherwise a copy with the detail that fits
// its category: kIntegrityFailure, kInvalidArgument, kFormat and kUnsupported give BadParameter,
// kNotFound KeyNotFound, kPermissionDenied Forbidden, kAlreadyExists Conflict, kAuth Unauthorized,
// everything else InternalServerError.
Error with_kv_detail(Error e);

// Returns the HTTP status for an error: 400 BadParameter, 401 Unauthorized, 403 Forbidden,
// 404 KeyNotFound (and every other code ending in NotFound), 409 Conflict, 500 otherwise (errors
// without detail are classified as with_kv_detail() does).
int http_status_for(const Error& e);

// Returns the Key Vault code of `e` (its detail, or the one with_kv_detail() would give).
std::string kv_code(const Error& e);

// Returns the inner code of a vault error ("KeyDisabled", "KeyOperationForbidden",
// "ObjectIsDeletedButRecoverable"), or "" when it has none.
std::string_view kv_inner_code(const Error& e);

// Returns the REST error body {"error":{"code":..., "message":..., "innererror":{"code":...}}}
// (innererror only when there is an inner code).
Json error_body(const Error& e);

}  // namespace keyport::vault

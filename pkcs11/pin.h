// SPDX-License-Identifier: Apache-2.0
// Where a PIN comes from. In order: --pin-source (env:VAR, file:PATH or `empty`), --pin VALUE
// (argv: works, but warns that it shows in the process list), the URI's pin-source or pin-value,
// the environment variable KEYPORT_PIN, a no-echo prompt on the controlling terminal. Never from
// argv silently. An empty PIN only when asked for with `empty`. And logging in as the token asks.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/secret.h"
#include "pkcs11/token.h"
#include "pkcs11/uri.h"

namespace keyport::p11 {

struct PinRequest {
  std::optional<std::string> pin_source;        // --pin-source
  std::shared_ptr<const SecretBytes> pin_argv;  // --pin (warned)
  const Uri* uri = nullptr;                     // pin-source / pin-value of the token URI
  std::string env_var = "KEYPORT_PIN";
  bool allow_prompt = true;
  std::string what = "PIN";  // used in the prompt and in messages
};

// Resolves the PIN. kAuth when no source gives one ("no PIN: use --pin-source env:VAR or
// file:PATH, or set KEYPORT_PIN"); kNotFound/kInvalidArgument for a bad source.
Result<SecretBytes> resolve_pin(const PinRequest& request);

// Reads one pin-source: "env:NAME" (the variable must be set and not empty) or "file:PATH" (one
// trailing newline stripped; at most 4 KiB; not empty) or a bare path (RFC 7512 style), or
// "empty" for the empty PIN. "|command" is refused.
Result<SecretBytes> read_pin_source(std::string_view source);

// Prompts on /dev/tty with echo off. kAuth when there is no terminal.
Result<SecretBytes> prompt_secret(std::string_view prompt);

class Session;

// Whether the request names a PIN itself (--pin-source, --pin, or the URI's pin-source or
// pin-value), as opposed to falling back on $KEYPORT_PIN or a prompt.
bool pin_given_explicitly(const PinRequest& request);

enum class LoginKind {
  kNotRequired,  // the token does not require a login and no PIN was given
  kPinPad,       // C_Login with a NULL PIN: the token's protected authentication path
  kPin,          // C_Login with the resolved PIN
};

// Logs `session` in as user the way the token asks (its CK_TOKEN_INFO flags):
// - without CKF_LOGIN_REQUIRED, and no PIN given explicitly: no login, and no PIN is asked for;
// - with CKF_PROTECTED_AUTHENTICATION_PATH, and no PIN given explicitly: C_Login with a NULL PIN,
//   after `on_pin_pad` is told to say so (the PIN is entered on the reader's pad);
// - otherwise with resolve_pin(request).
Result<LoginKind> login_user(Session& session, const TokenInfo& token, const PinRequest& request,
                             const std::function<void(const std::string&)>& on_pin_pad = {});

}  // namespace keyport::p11

// SPDX-License-Identifier: Apache-2.0
// Where a PIN comes from. In order: --pin-source (env:VAR or file:PATH), --pin VALUE (argv: works,
// but warns that it shows in the process list), the URI's pin-source or pin-value, the environment
// variable KEYPORT_PIN, a no-echo prompt on the controlling terminal. Never from argv silently.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/secret.h"
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

// Reads one pin-source: "env:NAME" (the variable must be set) or "file:PATH" (one trailing
// newline stripped; at most 4 KiB) or a bare path (RFC 7512 style). "|command" is refused.
Result<SecretBytes> read_pin_source(std::string_view source);

// Prompts on /dev/tty with echo off. kAuth when there is no terminal.
Result<SecretBytes> prompt_secret(std::string_view prompt);

}  // namespace keyport::p11

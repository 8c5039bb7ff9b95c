// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/pin.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>

#include "core/file_io.h"
#include "core/log.h"
#include "pkcs11/session.h"

namespace keyport::p11 {
namespace {

void strip_newline(SecretBytes& s) {
  auto b = s.reveal(SecretAccess::unsafe());
  std::size_t n = b.size();
  if (n > 0 && b[n - 1] == '\n')
    --n;
  if (n > 0 && b[n - 1] == '\r')
    --n;
  s.truncate(n);
}

}  // namespace

Result<SecretBytes> read_pin_source(std::string_view source) {
  if (source.empty())
    return make_error(ErrorCode::kInvalidArgument, "empty pin-source");
  if (source == "empty") {
    return SecretBytes();  // asked for explicitly: a token whose PIN is the empty string
  }
  if (source.front() == '|') {
    return make_error(ErrorCode::kInvalidArgument, "pin-source \"|command\" is not supported");
  }
  if (source.rfind("env:", 0) == 0) {
    std::string name(source.substr(4));
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) {
      return make_error(ErrorCode::kNotFound,
                        "pin-source env:" + name + ": the variable is not set");
    }
    if (*v == '\0') {
      return make_error(ErrorCode::kInvalidArgument,
                        "pin-source env:" + name + ": the variable is empty");
    }
    return SecretBytes::from_string(v);
  }
  std::string_view path = source.rfind("file:", 0) == 0 ? source.substr(5) : source;
  auto pin = read_secret_file(std::string(path), 4096);
  if (!pin)
    return tl::unexpected(pin.error().with_context("pin-source"));
  strip_newline(*pin);
  if (pin->size() == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "pin-source " + std::string(source) + ": the file holds no PIN");
  }
  return std::move(*pin);
}

Result<SecretBytes> prompt_secret(std::string_view prompt) {
  int fd = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return make_error(ErrorCode::kAuth, "no terminal to prompt on");
  struct termios old {};
  bool have_termios = ::tcgetattr(fd, &old) == 0;
  if (have_termios) {
    struct termios noecho = old;
    noecho.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    noecho.c_lflag |= ECHONL;
    ::tcsetattr(fd, TCSAFLUSH, &noecho);
  }
  (void)!::write(fd, prompt.data(), prompt.size());
  SecretBytes out;
  char c;
  bool ok = false;
  while (out.size() < 4096) {
    ssize_t n = ::read(fd, &c, 1);
    if (n <= 0)
      break;
    if (c == '\n' || c == '\r') {
      ok = true;
      break;
    }
    out.append(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(&c), 1));
  }
  secure_wipe(&c, 1);
  if (have_termios)
    ::tcsetattr(fd, TCSAFLUSH, &old);
  ::close(fd);
  if (!ok)
    return make_error(ErrorCode::kAuth, "no PIN was entered");
  return out;
}

Result<SecretBytes> resolve_pin(const PinRequest& r) {
  if (r.pin_source)
    return read_pin_source(*r.pin_source);
  if (r.pin_argv) {
    log::warn(r.what +
              " given on the command line: it is visible in the process list; prefer "
              "--pin-source env:VAR or --pin-source file:PATH");
    return r.pin_argv->clone();
  }
  if (r.uri != nullptr && r.uri->pin_source)
    return read_pin_source(*r.uri->pin_source);
  if (r.uri != nullptr && r.uri->pin_value) {
    log::warn(
        "pin-value in a PKCS#11 URI is visible wherever the URI is (process list, shell "
        "history); prefer pin-source");
    return r.uri->pin_value->clone();
  }
  if (!r.env_var.empty()) {
    if (const char* v = std::getenv(r.env_var.c_str()); v != nullptr)
      return SecretBytes::from_string(v);
  }
  if (r.allow_prompt && ::isatty(STDIN_FILENO)) {
    return prompt_secret(r.what + ": ");
  }
  return make_error(
      ErrorCode::kAuth,
      "no " + r.what + ": use --pin-source env:VAR or --pin-source file:PATH, or set " + r.env_var);
}

bool pin_given_explicitly(const PinRequest& r) {
  return r.pin_source || r.pin_argv ||
         (r.uri != nullptr && (r.uri->pin_source || r.uri->pin_value != nullptr));
}

Result<LoginKind> login_user(Session& session, const TokenInfo& token, const PinRequest& request,
                             const std::function<void(const std::string&)>& on_pin_pad) {
  const bool explicit_pin = pin_given_explicitly(request);
  if (!token.login_required() && !explicit_pin) {
    log::debug("token \"" + token.label + "\" does not require a login (no CKF_LOGIN_REQUIRED)");
    return LoginKind::kNotRequired;
  }
  if ((token.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0 && !explicit_pin) {
    if (on_pin_pad) {
      on_pin_pad("token \"" + token.label +
                 "\" has a protected authentication path: enter the PIN on its PIN pad or reader");
    }
    KEYPORT_TRY(session.login_protected_path());
    return LoginKind::kPinPad;
  }
  KEYPORT_ASSIGN_OR_RETURN(SecretBytes pin, resolve_pin(request));
  KEYPORT_TRY(session.login(pin));
  return LoginKind::kPin;
}

}  // namespace keyport::p11

// SPDX-License-Identifier: Apache-2.0
#include "core/ossl.h"

#include <openssl/err.h>

namespace keyport::ossl {

std::string drain_errors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty())
      out += "; ";
    out += buf;
  }
  return out;
}

Error crypto_error(std::string_view what) {
  std::string detail = drain_errors();
  std::string msg(what);
  if (!detail.empty())
    msg += ": " + detail;
  return Error(ErrorCode::kCrypto, msg);
}

}  // namespace keyport::ossl

// SPDX-License-Identifier: Apache-2.0
#include "core/version.h"

namespace keyport {

std::string_view version() {
  return KEYPORT_VERSION;
}

}  // namespace keyport

// SPDX-License-Identifier: Apache-2.0
// keyport's version (the CMake project version), for generator strings and server headers.
#pragma once

#include <string_view>

namespace keyport {

// "0.1.0": PROJECT_VERSION of the build.
std::string_view version();

}  // namespace keyport

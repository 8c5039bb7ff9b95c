// SPDX-License-Identifier: Apache-2.0
// keyport's exit codes (core/exit_codes.h, shared with libkeyport's kp_status).
#pragma once

#include "core/exit_codes.h"

namespace keyport::cli {

using keyport::exit_code_for;
using keyport::ExitCode;
using enum keyport::ExitCode;

}  // namespace keyport::cli

# SPDX-License-Identifier: Apache-2.0
# Warnings on keyport's own targets only (link keyport_warnings PRIVATE); as errors only where
# KEYPORT_WERROR is on: the project's CI (scripts/test.sh) turns it on, a package build need not.
option(KEYPORT_WERROR "Treat warnings in keyport's own code as errors (the project's CI)" OFF)
add_library(keyport_warnings INTERFACE)
target_compile_options(keyport_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused
  -Woverloaded-virtual -Wformat=2 $<$<BOOL:${KEYPORT_WERROR}>:-Werror>)

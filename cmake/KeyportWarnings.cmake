# SPDX-License-Identifier: Apache-2.0
# Warnings as errors on keyport's own targets only (link keyport_warnings PRIVATE).
add_library(keyport_warnings INTERFACE)
target_compile_options(keyport_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused
  -Woverloaded-virtual -Wformat=2 -Werror)

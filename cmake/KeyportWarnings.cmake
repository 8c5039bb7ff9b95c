# SPDX-License-Identifier: Apache-2.0
# Warnings on keyport's own targets only (link keyport_warnings PRIVATE); as errors only where
# KEYPORT_WERROR is on: the project's CI (scripts/test.sh) turns it on, a package build need not.
option(KEYPORT_WERROR "Treat warnings in keyport's own code as errors (the project's CI)" OFF)
add_library(keyport_warnings INTERFACE)
target_compile_options(keyport_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused
  -Woverloaded-virtual -Wformat=2 $<$<BOOL:${KEYPORT_WERROR}>:-Werror>)
# GCC 12 at -O3 (Release) reports -Wrestrict, -Wstringop-overflow and -Wstringop-overread inside
# libstdc++'s own std::string and std::vector code (GCC bugs 105329, 105651 and 106199, fixed in
# GCC 13): keyport's std::string concatenations, std::to_string, vector inserts. They stay warnings
# there, never errors, even with KEYPORT_WERROR.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(keyport_warnings INTERFACE
    $<$<BOOL:${KEYPORT_WERROR}>:-Wno-error=restrict -Wno-error=stringop-overflow
    -Wno-error=stringop-overread>)
endif()

# SPDX-License-Identifier: Apache-2.0
# Cross-compiling keyport for arm64 on a Debian 12 host with Debian's own cross toolchain
# (crossbuild-essential-arm64: aarch64-linux-gnu-gcc/g++ 12) and multiarch :arm64 packages
# (libssl-dev:arm64, libp11-kit-dev:arm64). No sysroot: Debian's multiarch layout puts the arm64
# libraries in /usr/lib/aarch64-linux-gnu beside the host's, and the headers in /usr/include
# (with the arch-specific ones, such as OpenSSL's configuration.h, in /usr/include/aarch64-linux-gnu,
# which the cross compiler searches by itself). scripts/cross-arm64.sh uses this file:
#
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake \
#     -DKEYPORT_MINIMAL=ON -DCMAKE_BUILD_TYPE=MinSizeRel
#
# Programs built with it run on the host under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# The compilers; CMake finds aarch64-linux-gnu-ar, -ranlib, -strip, -objdump from their prefix.
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Where find_library/find_path/find_package look. "/" is a root because the multiarch libraries
# and headers live in the host's own /usr; /usr/aarch64-linux-gnu holds the cross C and C++
# runtimes. Libraries are found only in the target's directories: CMAKE_LIBRARY_ARCHITECTURE
# makes CMake search <prefix>/lib/aarch64-linux-gnu, and the host's own multiarch directories are
# ignored outright, so that a host library can never be picked up by mistake. Programs (pkg-config,
# help2man) are the host's.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
if(NOT CMAKE_HOST_SYSTEM_PROCESSOR STREQUAL "aarch64")
  set(_keyport_host_multiarch "${CMAKE_HOST_SYSTEM_PROCESSOR}-linux-gnu")
  list(APPEND CMAKE_IGNORE_PATH /usr/lib/${_keyport_host_multiarch} /lib/${_keyport_host_multiarch}
    /usr/include/${_keyport_host_multiarch})
endif()

# pkg-config (p11-kit-1, and FindOpenSSL's hints) reads only the arm64 .pc files and the
# architecture-independent ones; a PKG_CONFIG_PATH from the environment would add the host's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
unset(ENV{PKG_CONFIG_PATH})
unset(ENV{PKG_CONFIG_SYSROOT_DIR})

# Run target programs (tests, try_run, add_custom_command on a built binary) under qemu-user,
# with the cross runtimes of /usr/aarch64-linux-gnu as its library prefix (the multiarch
# /usr/lib/aarch64-linux-gnu is found by the arm64 dynamic loader itself).
find_program(KEYPORT_QEMU_AARCH64 qemu-aarch64)
if(KEYPORT_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${KEYPORT_QEMU_AARCH64} -L /usr/aarch64-linux-gnu)
endif()

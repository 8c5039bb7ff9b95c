# SPDX-License-Identifier: Apache-2.0
# -DKEYPORT_SANITIZE="address;undefined" builds everything (ours and the tests) with sanitizers.
if(KEYPORT_SANITIZE)
  string(REPLACE ";" "," _keyport_san "${KEYPORT_SANITIZE}")
  add_compile_options(-fsanitize=${_keyport_san} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=${_keyport_san})
  # g++ 12 raises false -Wmaybe-uninitialized from <regex> (via catch.hpp) under ASan.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-error=maybe-uninitialized)
  endif()
  message(STATUS "keyport: sanitizers ${_keyport_san}")
endif()

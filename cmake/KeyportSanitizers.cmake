# SPDX-License-Identifier: Apache-2.0
# -DKEYPORT_SANITIZE="address;undefined" builds everything (ours and the tests) with sanitizers.
if(KEYPORT_SANITIZE)
  string(REPLACE ";" "," _keyport_san "${KEYPORT_SANITIZE}")
  add_compile_options(-fsanitize=${_keyport_san} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=${_keyport_san})
  message(STATUS "keyport: sanitizers ${_keyport_san}")
endif()

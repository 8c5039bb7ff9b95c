# SPDX-License-Identifier: Apache-2.0
# Man pages generated from one source, the CLI's own --help texts, by Debian's help2man:
# keyport(1) and keyport-GROUP(1) for each command group (cmake/keyport-man-help.sh gathers a
# group's subcommands into its page). Installed under share/man/man1 with the bash completion.
option(KEYPORT_MAN_PAGES "Generate man pages with help2man (apt-get install help2man)" ON)

install(FILES ${PROJECT_SOURCE_DIR}/completion/keyport.bash
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME keyport
  COMPONENT runtime)

if(NOT KEYPORT_MAN_PAGES)
  return()
endif()
find_program(KEYPORT_HELP2MAN help2man)
if(NOT KEYPORT_HELP2MAN)
  message(FATAL_ERROR "help2man not found: apt-get install help2man (scripts/setup.sh does), or "
                      "configure with -DKEYPORT_MAN_PAGES=OFF")
endif()

set(_keyport_man_groups
  "|move keys between PKCS#11 HSMs and Azure Key Vault / Managed HSM"
  "token|inspect PKCS#11 tokens, their mechanisms and registered modules"
  "key|generate and list portable keys in a PKCS#11 token"
  "byok|export keys to Azure BYOK transfer files, inspect and wrap them"
  "vault|the simulated Azure Key Vault and Managed HSM"
  "migrate|move a keyring's keys from an old key-encryption key to a new one"
  "envelope|envelope encryption of files under a keyring's keys"
  "policy|Secure Key Release policies"
  "attest|the SIMULATED attestation authority"
  "enclave|the receiving end of Secure Key Release"
  "profiles|what each Azure service accepts and requires")
if(KEYPORT_MINIMAL)
  list(FILTER _keyport_man_groups INCLUDE REGEX "^(|token|key|byok|profiles)[|]")
endif()
# The CLI as help2man's pages run it: through CMAKE_CROSSCOMPILING_EMULATOR in a cross build
# (qemu-user for arm64, cmake/toolchain-aarch64-linux-gnu.cmake), directly otherwise.
set(_runner_prefix "")
foreach(word ${CMAKE_CROSSCOMPILING_EMULATOR})
  string(APPEND _runner_prefix "'${word}' ")
endforeach()
file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/man/bin/keyport-run
  CONTENT "#!/bin/sh\nexec ${_runner_prefix}'$<TARGET_FILE:keyport>' \"$@\"\n"
  FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
    WORLD_EXECUTE)
set(_pages "")
foreach(entry ${_keyport_man_groups})
  string(FIND "${entry}" "|" _bar)
  string(SUBSTRING "${entry}" 0 ${_bar} group)
  math(EXPR _rest "${_bar} + 1")
  string(SUBSTRING "${entry}" ${_rest} -1 what)
  if(group STREQUAL "")
    set(name keyport)
  else()
    set(name keyport-${group})
  endif()
  # help2man names the page after the program it runs: a wrapper of that name.
  file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/man/bin/${name}
    CONTENT "#!/bin/sh\nexec sh '${PROJECT_SOURCE_DIR}/cmake/keyport-man-help.sh' '${PROJECT_BINARY_DIR}/man/bin/keyport-run' '${group}' \"$@\"\n"
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
      WORLD_EXECUTE)
  add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/man/${name}.1
    COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0
      ${KEYPORT_HELP2MAN} --no-info --section=1 --source=keyport "--manual=keyport manual"
      --version-string=${PROJECT_VERSION} "--name=${what}"
      --output=${PROJECT_BINARY_DIR}/man/${name}.1 ${PROJECT_BINARY_DIR}/man/bin/${name}
    DEPENDS keyport ${PROJECT_SOURCE_DIR}/cmake/keyport-man-help.sh
    COMMENT "man page ${name}(1)"
    VERBATIM)
  list(APPEND _pages ${PROJECT_BINARY_DIR}/man/${name}.1)
endforeach()
add_custom_target(keyport_man ALL DEPENDS ${_pages})
install(FILES ${_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)

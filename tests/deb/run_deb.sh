#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CTest driver (label deb): keyport's Debian packages, built, linted, installed and used.
#
#   tests/deb/run_deb.sh WORK_DIR
#
# 1. A copy of the source tree (what git tracks plus new files it does not ignore) is built with
#    `dpkg-buildpackage -us -uc -b`: keyport, libkeyport0 and libkeyport-dev (debian/). The
#    build uses dpkg-buildflags' flags with every hardening feature on; the binaries are checked
#    for them (PIE, full RELRO, BIND_NOW, stack protector, fortified calls).
# 2. lintian on the .changes: no errors; every tag it prints (warnings, info) is shown in the log.
# 3. The three packages are installed (dpkg -i, as root; they are purged again afterwards unless
#    they were installed before) and used as their users would: `keyport --version` and
#    `man -w keyport` from the system paths, examples/c built with pkg-config and examples/cmake
#    with find_package against the installed -dev package, run on SoftHSM2, their files opened by
#    pyca/cryptography (tests/install/examples.sh). Not root: the packages are unpacked with
#    dpkg-deb -x into WORK_DIR/root instead, and the same checks run there.
set -euo pipefail
what="deb"
fail() {
  echo "$what: FAILED: $*" >&2
  exit 1
}
work=${1:?usage: run_deb.sh WORK_DIR}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
for tool in dpkg-buildpackage dh lintian readelf; do
  command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/setup.sh (dpkg-dev, debhelper, lintian)"
done
rm -rf "$work"
mkdir -p "$work/src"

# 1. Build from a copy, so the packages and dpkg-buildpackage's by-products land in $work.
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$src" ls-files -z --cached --others --exclude-standard |
    tar -C "$src" --null -T - -cf - 2>/dev/null | tar -C "$work/src" -xf -
else
  tar -C "$src" --exclude='./build*' --exclude=node_modules -cf - . | tar -C "$work/src" -xf -
fi
[ -x "$work/src/debian/rules" ] || fail "the copy has no debian/rules"
version=$(cd "$work/src" && dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
start=$(date +%s)
(cd "$work/src" && DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
  >"$work/build.log" 2>&1 || { tail -n 60 "$work/build.log" >&2; fail "dpkg-buildpackage -us -uc -b"; }
echo "$what: dpkg-buildpackage -us -uc -b took $(($(date +%s) - start)) s"
debs=()
for p in keyport libkeyport0 libkeyport-dev; do
  deb="$work/${p}_${version}_${arch}.deb"
  [ -f "$deb" ] || fail "dpkg-buildpackage made no $(basename "$deb")"
  debs+=("$deb")
done
changes="$work/keyport_${version}_${arch}.changes"
[ -f "$changes" ] || fail "dpkg-buildpackage made no $(basename "$changes")"

# Contents: what each package must hold (and the CLI must not be in the library's package).
contents() { dpkg-deb -c "$1" | awk '{print $6}' | sed 's|^\./|/|'; }
expect() {  # DEB PATH...
  local deb=$1 list
  shift
  list=$(contents "$deb")
  for f in "$@"; do
    grep -qxF "$f" <<<"$list" || fail "$(basename "$deb") does not hold $f"
  done
}
expect "${debs[0]}" /usr/bin/keyport /usr/share/man/man1/keyport.1.gz \
  /usr/share/man/man1/keyport-byok.1.gz /usr/share/bash-completion/completions/keyport \
  /usr/share/doc/keyport/copyright /usr/share/doc/keyport/embedding.md.gz
expect "${debs[1]}" "/usr/lib/$multiarch/libkeyport.so.0" "/usr/lib/$multiarch/libkeyport.so.$version"
expect "${debs[2]}" /usr/include/keyport/keyport.h "/usr/lib/$multiarch/libkeyport.so" \
  "/usr/lib/$multiarch/libkeyport.a" "/usr/lib/$multiarch/pkgconfig/keyport.pc" \
  "/usr/lib/$multiarch/cmake/keyport/keyportConfig.cmake"
if contents "${debs[1]}" | grep -q '/bin/'; then fail "libkeyport0 holds a program"; fi
libdeps=$(dpkg-deb -f "${debs[2]}" Depends)
grep -q "libkeyport0 (= $version)" <<<"$libdeps" || fail "libkeyport-dev depends on: $libdeps"

# Hardening, read from the ELF files as built (dpkg-buildflags with hardening=+all).
dpkg-deb -x "${debs[0]}" "$work/unpacked"
dpkg-deb -x "${debs[1]}" "$work/unpacked"
hardened() {  # FILE KIND(exe|lib)
  local headers dynamic symbols
  headers=$(readelf -W -h -l "$1")
  dynamic=$(readelf -W -d "$1")
  symbols=$(readelf -W --dyn-syms "$1")
  grep -q "Type: *DYN" <<<"$headers" || fail "$1 is not position-independent"
  grep -q "GNU_RELRO" <<<"$headers" || fail "$1 has no RELRO segment"
  grep -qE "BIND_NOW|FLAGS_1.*NOW" <<<"$dynamic" || fail "$1 is not linked with -z now"
  grep -q "__stack_chk_fail" <<<"$symbols" || fail "$1 has no stack protector"
  grep -qE "__[a-z_]+_chk@" <<<"$symbols" || fail "$1 calls no fortified function (_FORTIFY_SOURCE)"
  if [ "$2" = exe ]; then grep -q "FLAGS_1.*PIE" <<<"$dynamic" || fail "$1 is not a PIE"; fi
}
hardened "$work/unpacked/usr/bin/keyport" exe
hardened "$work/unpacked/usr/lib/$multiarch/libkeyport.so.$version" lib
echo "$what: the packages hold what they should; the binaries are PIE, full RELRO, stack-protected, fortified"

# 2. lintian: no errors; whatever else it says goes to the log.
lint=0
lintian --fail-on error --display-info "$changes" >"$work/lintian.log" 2>&1 || lint=$?
grep -v "running with root privileges" "$work/lintian.log" | sed 's/^/lintian: /' || true
[ "$lint" -eq 0 ] || fail "lintian reports errors (exit $lint)"
echo "$what: lintian: no errors, $(grep -c '^W:' "$work/lintian.log" || true) warnings"

# 3. Installed (or unpacked) and used.
if [ "$(id -u)" -eq 0 ]; then
  preinstalled=()
  for p in keyport libkeyport0 libkeyport-dev; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      preinstalled+=("$p")
    fi
  done
  if [ ${#preinstalled[@]} -eq 0 ]; then
    trap 'dpkg --purge keyport libkeyport-dev libkeyport0 >/dev/null 2>&1 || true' EXIT
  else
    echo "$what: ${preinstalled[*]} already installed: the new packages replace them and stay"
  fi
  dpkg -i "${debs[@]}" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }
  root=""
  found=$(man -w keyport 2>/dev/null) || fail "man -w keyport finds no page"
  [ "$found" = /usr/share/man/man1/keyport.1.gz ] || fail "man -w keyport finds $found"
  keyport=$(command -v keyport) || fail "keyport is not on PATH after dpkg -i"
  [ "$keyport" = /usr/bin/keyport ] || fail "keyport on PATH is $keyport, not /usr/bin/keyport"
  echo "$what: installed with dpkg -i; man -w keyport finds $found"
else
  root="$work/root"
  for deb in "${debs[@]}"; do dpkg-deb -x "$deb" "$root"; done
  found=$(MANPATH="$root/usr/share/man" man -w keyport 2>/dev/null) || fail "man -w keyport finds no page"
  [ "$found" = "$root/usr/share/man/man1/keyport.1.gz" ] || fail "man -w keyport finds $found"
  keyport="$root/usr/bin/keyport"
  echo "$what: not root, so not installed: unpacked into $root (dpkg-deb -x) and checked there"
fi
said=$("$keyport" --version)
[ "$(awk '{print $2}' <<<"$said")" = "$version" ] || fail "keyport --version says '$said' (want $version)"
# shellcheck source=tests/install/examples.sh
source "$src/tests/install/examples.sh"
check_examples "$src" "$work" "$root/usr" "$root/usr/lib/$multiarch" "$version"
echo "$what: passed"

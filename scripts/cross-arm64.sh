#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The minimal libkeyport and CLI cross-built for arm64 with Debian's cross toolchain and multiarch
# :arm64 packages, then run under qemu-user (issue 20):
#   1. installs what is missing, as root or with sudo: the arm64 architecture in dpkg, then
#      crossbuild-essential-arm64, qemu-user, libssl-dev:arm64 and libp11-kit-dev:arm64 (and the
#      host tools the build uses);
#   2. configures BUILD_DIR with cmake/toolchain-aarch64-linux-gnu.cmake, -DKEYPORT_MINIMAL=ON,
#      builds it (the man pages too: help2man runs the arm64 CLI under qemu-user), installs it into
#      BUILD_DIR/stage and checks that OpenSSL came from the arm64 multiarch directory and that the
#      man pages are there;
#   3. checks with `file` and readelf that keyport and libkeyport.so.0 are AArch64 ELF;
#   4. cross-compiles examples/c/lint_byok.c against the staged library twice: with pkg-config
#      and keyport.pc (libkeyport.so.0, C99, -Werror) and against libkeyport.a;
#   5. runs under qemu-aarch64: `keyport --version`; `keyport byok inspect` on a good file (exit 0)
#      and a broken one (exit 3, the finding named on stderr); then `keyport byok inspect --json`
#      and both lint_byok builds on every file of tests/vectors/byok-lint (the manifest says which
#      exit code and finding each must give) and tests/vectors/real-world: the three arm64 reports
#      must be identical, and identical to the host CLI's report and exit code;
#   6. prints the build's wall time and the stripped sizes of the arm64 library and CLI.
# Fails with a message naming the step at the first thing that goes wrong.
#
#   scripts/cross-arm64.sh [BUILD_DIR]     (default: $KEYPORT_CROSS_DIR, else build-arm64/)
#
# Environment:
#   KEYPORT_CROSS_BUILD_TYPE  MinSizeRel (default) or Release
#   KEYPORT_CROSS_JOBS        parallel compile jobs (default: nproc)
#   KEYPORT_HOST_CLI          a host keyport to compare the reports with (default: build/cli/keyport
#                             when it exists; "none" compares with the manifest only)
#   KEYPORT_CROSS_SKIP_CODE   when set and the toolchain is missing and this is not root, print why
#                             and exit with this code instead of asking sudo (CTest's skip)
set -euo pipefail
what="cross-arm64"
fail() {
  echo "$what: FAILED: $*" >&2
  exit 1
}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-${KEYPORT_CROSS_DIR:-$root/build-arm64}}
build_type=${KEYPORT_CROSS_BUILD_TYPE:-MinSizeRel}
jobs=${KEYPORT_CROSS_JOBS:-$(nproc)}
triplet=aarch64-linux-gnu
qemu_prefix=/usr/$triplet  # the cross C and C++ runtimes (libc6-arm64-cross, libstdc++6-arm64-cross)
case "$build_type" in
  MinSizeRel | Release) ;;
  *) fail "KEYPORT_CROSS_BUILD_TYPE is '$build_type' (MinSizeRel or Release)" ;;
esac
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
[ "$dir" != "$root/build" ] || fail "$dir is the shared host build; give the cross build a folder of its own"

# --- 1. the toolchain ---------------------------------------------------------------------------
packages=(
  crossbuild-essential-arm64 qemu-user libssl-dev:arm64 libp11-kit-dev:arm64
  # the host side of the build: cmake, pkg-config, the header-only libraries (Architecture: all),
  # file and jq for the checks below
  cmake pkg-config nlohmann-json3-dev libexpected-dev libcli11-dev file jq
)
has_arm64() { grep -qx arm64 <<<"$(dpkg --print-foreign-architectures)"; }
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    if [ -n "${KEYPORT_CROSS_SKIP_CODE:-}" ]; then
      echo "$what: SKIPPED: not root, and these are missing: ${missing[*]}" \
        "(as root: scripts/setup.sh or scripts/cross-arm64.sh installs them)"
      exit "$KEYPORT_CROSS_SKIP_CODE"
    fi
    command -v sudo >/dev/null || fail "need root or sudo to install: ${missing[*]}"
    sudo_cmd=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  update=0
  if ! has_arm64; then
    echo "$what: dpkg --add-architecture arm64"
    "${sudo_cmd[@]}" dpkg --add-architecture arm64 || fail "dpkg --add-architecture arm64"
    update=1  # apt has no arm64 package lists yet
  fi
  for p in "${missing[@]}"; do
    apt-cache show --no-all-versions "$p" >/dev/null 2>&1 || update=1
  done
  if [ "$update" -eq 1 ]; then
    "${sudo_cmd[@]}" apt-get update -qq || fail "apt-get update"
  fi
  echo "$what: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    fail "apt-get install ${missing[*]}"
fi
for tool in "$triplet-gcc" "$triplet-g++" "$triplet-strip" qemu-aarch64 cmake pkg-config file readelf jq; do
  command -v "$tool" >/dev/null || fail "$tool not found after installing the packages"
done
[ -e "$qemu_prefix/lib/ld-linux-aarch64.so.1" ] || fail "$qemu_prefix/lib/ld-linux-aarch64.so.1 is missing (libc6-arm64-cross)"

# --- 2. configure, build, stage -----------------------------------------------------------------
gen=()
command -v ninja >/dev/null && [ ! -f "$dir/Makefile" ] && gen=(-G Ninja)
echo "$what: configuring $dir ($build_type, minimal)"
cmake -S "$root" -B "$dir" "${gen[@]}" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-$triplet.cmake" \
  -DCMAKE_BUILD_TYPE="$build_type" -DKEYPORT_MINIMAL=ON -DKEYPORT_BUILD_TESTS=OFF \
  -DKEYPORT_BUILD_BENCH=OFF -DKEYPORT_MAN_PAGES=ON >"$dir/cross-configure.log" 2>&1 ||
  { cat "$dir/cross-configure.log" >&2; fail "cmake configure (log: $dir/cross-configure.log)"; }
# A folder configured earlier without the toolchain file keeps its host compiler: refuse it.
compiler=$(cat "$dir"/CMakeFiles/[0-9]*/CMakeCXXCompiler.cmake 2>/dev/null || true)
grep -q "^set(CMAKE_CXX_COMPILER \".*/$triplet-g++\")" <<<"$compiler" ||
  fail "$dir was configured with another C++ compiler; remove it or choose another folder"
cache=$(cat "$dir/CMakeCache.txt")
# OpenSSL must be the arm64 multiarch one (a host libcrypto here would be an x86-64 link).
crypto=$(sed -n 's/^OPENSSL_CRYPTO_LIBRARY:FILEPATH=//p' <<<"$cache")
[[ "$crypto" == /usr/lib/$triplet/* ]] || fail "CMake found OpenSSL's libcrypto at '$crypto', not in /usr/lib/$triplet"
crypto_file=$(file -L "$crypto")
[[ "$crypto_file" == *"ARM aarch64"* ]] || fail "$crypto is not an arm64 library: $crypto_file"
echo "$what: OpenSSL: $crypto (arm64)"

echo "$what: building with -j$jobs"
t0=$(date +%s.%N)
cmake --build "$dir" -j "$jobs" >"$dir/cross-build.log" 2>&1 ||
  { tail -50 "$dir/cross-build.log" >&2; fail "cmake --build (log: $dir/cross-build.log)"; }
build_secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
stage="$dir/stage"
rm -rf "$stage"
cmake --install "$dir" --prefix "$stage" >"$dir/cross-install.log" 2>&1 ||
  { cat "$dir/cross-install.log" >&2; fail "cmake --install into $stage"; }
cli="$stage/bin/keyport"
lib="$stage/lib/libkeyport.so.0"
for f in "$cli" "$lib" "$stage/lib/libkeyport.a" "$stage/lib/pkgconfig/keyport.pc" "$stage/include/keyport/keyport.h"; do
  [ -e "$f" ] || fail "${f#"$dir"/} was not installed"
done
# The man pages, made by help2man from the arm64 CLI's own --help run under qemu-user (the
# emulator of the toolchain file): one per command group of the minimal build.
for page in keyport keyport-token keyport-key keyport-byok keyport-profiles; do
  man_file="$stage/share/man/man1/$page.1"
  [ -s "$man_file" ] || fail "the man page $page(1) was not installed"
  grep -q '^\.TH' "$man_file" || fail "$page.1 is not a man page"
done
grep -q 'keyport byok export' "$stage/share/man/man1/keyport-byok.1" ||
  fail "keyport-byok(1) does not document 'keyport byok export'"

# --- 3. AArch64 ELF -----------------------------------------------------------------------------
check_elf() {  # FILE KIND: `file` and the ELF header both say 64-bit AArch64
  local desc header
  desc=$(file -L "$1")
  [[ "$desc" == *"ELF 64-bit LSB $2"*"ARM aarch64"* ]] || fail "$1 is not an AArch64 $2: $desc"
  header=$(readelf -h "$1")
  grep -Eq "Machine: +AArch64" <<<"$header" || fail "readelf: $1 is not for AArch64"
  grep -Eq "Class: +ELF64" <<<"$header" || fail "readelf: $1 is not ELF64"
}
check_elf "$cli" "pie executable"
check_elf "$lib" "shared object"
dynamic=$(readelf -d "$lib")
grep -q "Library soname: \[libkeyport.so.0\]" <<<"$dynamic" || fail "the SONAME of $lib is not libkeyport.so.0"
echo "$what: keyport and libkeyport.so.0 are AArch64 ELF; the library needs" \
  "$(sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' <<<"$dynamic" | paste -sd ' ')"

# --- 4. the C example, cross-compiled -----------------------------------------------------------
# keyport.pc from the stage; its Requires.private (libssl, libcrypto) from the arm64 .pc files.
examples="$dir/examples"
mkdir -p "$examples"
export PKG_CONFIG_LIBDIR="$stage/lib/pkgconfig:/usr/lib/$triplet/pkgconfig:/usr/share/pkgconfig"
unset PKG_CONFIG_PATH
# shellcheck disable=SC2046
"$triplet-gcc" -std=c99 -Wall -Wextra -Werror -pedantic "$root/examples/c/lint_byok.c" \
  $(pkg-config --cflags --libs keyport) -o "$examples/lint_byok" ||
  fail "examples/c/lint_byok.c does not cross-compile with pkg-config against $stage"
# shellcheck disable=SC2046
"$triplet-gcc" -std=c99 -Wall -Wextra -Werror -pedantic "$root/examples/c/lint_byok.c" \
  $(pkg-config --cflags keyport) "$stage/lib/libkeyport.a" $(pkg-config --libs --static libcrypto) \
  -lstdc++ -lpthread -ldl -o "$examples/lint_byok_static" ||
  fail "examples/c/lint_byok.c does not cross-compile against libkeyport.a"
check_elf "$examples/lint_byok" "pie executable"
check_elf "$examples/lint_byok_static" "pie executable"
needed=$(readelf -d "$examples/lint_byok")
grep -q "Shared library: \[libkeyport.so.0\]" <<<"$needed" || fail "lint_byok does not link libkeyport.so.0"
echo "$what: examples/c/lint_byok.c cross-compiled (libkeyport.so.0 via keyport.pc, and libkeyport.a)"

# --- 5. under qemu-user -------------------------------------------------------------------------
# -L: the cross runtimes (the arm64 loader finds the multiarch /usr/lib/aarch64-linux-gnu itself);
# -E: LD_LIBRARY_PATH for the guest only, so the host's loader never sees arm64 libraries.
qemu=(qemu-aarch64 -L "$qemu_prefix" -E "LD_LIBRARY_PATH=$stage/lib")
out="$dir/qemu"
rm -rf "$out"
mkdir -p "$out"
rc=0
run() {  # NAME COMMAND...: stdout to $out/NAME.out, stderr to $out/NAME.err, exit code in $rc
  local name=$1
  shift
  rc=0
  "$@" >"$out/$name.out" 2>"$out/$name.err" || rc=$?
}
show() { sed 's/^/    /' "$out/$1.out" "$out/$1.err" >&2; }

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' <<<"$cache")
run version "${qemu[@]}" "$cli" --version
[ "$rc" -eq 0 ] || { show version; fail "qemu: keyport --version exits $rc"; }
[ "$(cat "$out/version.out")" = "keyport $version" ] ||
  { show version; fail "qemu: keyport --version says '$(cat "$out/version.out")', want 'keyport $version'"; }
echo "$what: qemu: keyport --version: $(cat "$out/version.out")"

good="$root/tests/vectors/byok-lint/good-key-vault-rsa2048.byok"
bad="$root/tests/vectors/byok-lint/trailing-comma.byok"
run inspect-good "${qemu[@]}" "$cli" byok inspect "$good"
[ "$rc" -eq 0 ] || { show inspect-good; fail "qemu: keyport byok inspect on a good file exits $rc (want 0)"; }
grep -q "keyport reader  accepts the file" "$out/inspect-good.out" ||
  { show inspect-good; fail "qemu: keyport byok inspect does not say that the reader accepts a good file"; }
run inspect-bad "${qemu[@]}" "$cli" byok inspect "$bad"
[ "$rc" -eq 3 ] || { show inspect-bad; fail "qemu: keyport byok inspect on a broken file exits $rc (want 3)"; }
grep -q "^keyport: error: .*trailing-comma.byok: 1 error (first: BYOK-JSON-SYNTAX)" "$out/inspect-bad.err" ||
  { show inspect-bad; fail "qemu: keyport byok inspect on a broken file does not name BYOK-JSON-SYNTAX on stderr"; }
run inspect-missing "${qemu[@]}" "$cli" byok inspect "$dir/no-such-file.byok"
[ "$rc" -eq 5 ] || { show inspect-missing; fail "qemu: keyport byok inspect on a missing file exits $rc (want 5)"; }
echo "$what: qemu: keyport byok inspect: good file 0, broken file 3 ($(head -1 "$out/inspect-bad.err")), missing file 5"

# Every lint vector: the arm64 CLI's --json report, both lint_byok builds' reports, and the host
# CLI's, byte for byte, with the exit code the manifest implies (3 when the file has an error).
host_cli=${KEYPORT_HOST_CLI:-}
if [ -z "$host_cli" ] && [ -x "$root/build/cli/keyport" ]; then
  host_cli="$root/build/cli/keyport"
fi
[ "$host_cli" != none ] || host_cli=""
if [ -n "$host_cli" ]; then
  [ -x "$host_cli" ] || fail "KEYPORT_HOST_CLI=$host_cli is not an executable"
  echo "$what: comparing with the host CLI $host_cli (KEYPORT_HOST_CLI=none: the manifest alone)"
fi
manifest="$root/tests/vectors/byok-lint/manifest.json"
# Lines of: path under tests/vectors, the exit code wanted, the finding code wanted ("-": none).
cases=$(jq -r '.[] | ["byok-lint/" + .file, (if .severity == "error" then 3 else 0 end), (.code // "-")]
  | @tsv' "$manifest") || fail "cannot read $manifest"
for f in "$root"/tests/vectors/real-world/*.byok; do
  cases+=$'\n'"real-world/${f##*/}"$'\t0\t-'  # published by other vendors' tools: no errors
done
n=0
while IFS=$'\t' read -r file want code; do
  path="$root/tests/vectors/$file"
  [ -f "$path" ] || fail "$path is in the manifest but missing"
  run cli "${qemu[@]}" "$cli" byok inspect --json "$path"
  [ "$rc" -eq "$want" ] || { show cli; fail "qemu: keyport byok inspect --json $file exits $rc (want $want)"; }
  if [ "$code" != - ]; then
    codes=$(jq -r '.findings[].code' "$out/cli.out") || { show cli; fail "qemu: the report on $file is not JSON"; }
    grep -qx "$code" <<<"$codes" || { show cli; fail "qemu: the report on $file lacks the finding $code"; }
  fi
  # The C API's report is the CLI's JSON without the indentation: compared as compact JSON.
  jq -cS . "$out/cli.out" >"$out/cli.json" || { show cli; fail "qemu: the report on $file is not JSON"; }
  for ex in lint_byok lint_byok_static; do
    run "$ex" "${qemu[@]}" "$examples/$ex" "$path"
    [ "$rc" -eq "$want" ] || { show "$ex"; fail "qemu: $ex $file exits $rc (want $want)"; }
    jq -cS . "$out/$ex.out" >"$out/$ex.json" || { show "$ex"; fail "qemu: $ex's report on $file is not JSON"; }
    cmp -s "$out/cli.json" "$out/$ex.json" || {
      diff "$out/cli.json" "$out/$ex.json" >&2 || true
      fail "qemu: $ex and keyport byok inspect --json report $file differently"
    }
  done
  if [ -n "$host_cli" ]; then
    run host "$host_cli" byok inspect --json "$path"
    [ "$rc" -eq "$want" ] || { show host; fail "host: keyport byok inspect --json $file exits $rc (want $want)"; }
    cmp -s "$out/cli.out" "$out/host.out" || {
      diff "$out/host.out" "$out/cli.out" >&2 || true
      fail "the arm64 and host reports on $file differ (diff host arm64 above)"
    }
  fi
  n=$((n + 1))
done <<<"$cases"
[ "$n" -gt 50 ] || fail "only $n lint vectors were checked"
compared="the manifest"
[ -z "$host_cli" ] || compared="the manifest and the host CLI"
echo "$what: qemu: $n .byok files: keyport byok inspect --json, lint_byok (shared) and lint_byok (static)" \
  "give the same report and exit code as $compared"

# --- 6. sizes -----------------------------------------------------------------------------------
stripped_kib() {  # FILE -> KiB after `strip --strip-unneeded` (the arm64 strip)
  cp "$1" "$out/stripped"
  "$triplet-strip" --strip-unneeded "$out/stripped"
  echo $((($(stat -c %s "$out/stripped") + 1023) / 1024))
}
echo "$what: build: ${build_secs} s wall (-j$jobs; only what was out of date)"
echo "$what: stripped arm64 sizes ($build_type): libkeyport.so.0 $(stripped_kib "$lib") KiB," \
  "keyport CLI $(stripped_kib "$cli") KiB"
echo "$what: passed"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# keyport's size and start-up figures in one run (issue 20; results go to docs/performance.md):
#   - the stripped minimal libkeyport.so (-DKEYPORT_MINIMAL=ON, MinSizeRel)  goal <= 512 KiB
#   - the stripped full CLI (Release, and MinSizeRel with sections)          goal <= 3 MB
#   - `keyport --version`: its first run after the build, and the median of 21 warm runs
#                                                                            goal <= 5 ms
#   - the peak RSS of one `keyport byok export` (RSA-3072 key, SoftHSM2)     goal <= 8 MiB
#   - beside them, measured the same way in the same run: the minimal CLI, /bin/true, a program
#     that only loads the CLI's shared libraries, and pkcs11-tool listing the same token;
#   - beside them, Debian's own PKCS#11 pieces as anchors: libp11's OpenSSL engine (pkcs11.so)
#     and libsofthsm2.so, stripped the same way.
# Builds what is missing: build-release/, build-minsize/ and build-minimal/ next to build/ (or
# $KEYPORT_SIZE_DIR).
#
#   scripts/size-report.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${KEYPORT_SIZE_DIR:-$root}
full="$out/build-release"
full_small="$out/build-minsize"
minimal="$out/build-minimal"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)

build() {  # DIR extra cmake args...
  local dir=$1
  shift
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKEYPORT_BUILD_TESTS=OFF \
      -DKEYPORT_BUILD_BENCH=OFF -DKEYPORT_MAN_PAGES=OFF "$@" >/dev/null
  fi
  cmake --build "$dir" -j "$(nproc)" --target keyport keyport_shared >/dev/null
}
echo "size-report: building $full (Release), $full_small and $minimal (MinSizeRel) when needed"
build "$full"
build "$full_small" -DCMAKE_BUILD_TYPE=MinSizeRel
build "$minimal" -DKEYPORT_MINIMAL=ON -DCMAKE_BUILD_TYPE=MinSizeRel

stripped_kib() {  # FILE -> KiB after `strip --strip-unneeded`
  cp "$1" "$work/s"
  strip --strip-unneeded "$work/s"
  echo $(( ($(stat -c %s "$work/s") + 1023) / 1024 ))
}
row() { printf '%-48s %10s %12s\n' "$1" "$2" "$3"; }

lib_min=$(stripped_kib "$minimal/lib/libkeyport.so.0")
lib_full=$(stripped_kib "$full/lib/libkeyport.so.0")
cli_full=$(stripped_kib "$full/cli/keyport")
cli_full_small=$(stripped_kib "$full_small/cli/keyport")
cli_min=$(stripped_kib "$minimal/cli/keyport")
p11=$(stripped_kib /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so)
softhsm=$(stripped_kib "$(readlink -f /usr/lib/softhsm/libsofthsm2.so)")

# Start-up and peak RSS, measured by bench/spawn_stats.c (a small C parent: fork, exec, wait4;
# a child forked from Python would report Python's resident set as its own peak).
cc -std=c99 -O2 "$root/bench/spawn_stats.c" -o "$work/spawn_stats"
stats() { "$work/spawn_stats" "$@"; }  # N COMMAND... -> "MEDIAN_MS MAX_RSS_KIB"
field() { awk -v f="$1" '{print $f}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
cp "$full/cli/keyport" "$work/keyport"
cp "$minimal/cli/keyport" "$work/keyport-minimal"
first=$(stats 1 "$work/keyport" --version | field 1)
version=$(stats 21 "$work/keyport" --version)
version_min=$(stats 21 "$work/keyport-minimal" --version)
# Baselines in the same run: /bin/true (process creation on this machine) and a program that only
# loads the shared libraries the full CLI needs (its DT_NEEDED list) and returns.
needed=$(readelf -d "$work/keyport" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' |
  grep -vE '^(libc|libm|libgcc_s|ld-linux.*)\.so' | sed 's/^/-l:/')
echo 'int main(void) { return 0; }' >"$work/loadonly.c"
# shellcheck disable=SC2086
cc -O2 "$work/loadonly.c" -o "$work/loadonly" -Wl,--no-as-needed $needed
true_stats=$(stats 21 /bin/true)
load_stats=$(stats 21 "$work/loadonly")

# Peak RSS of one export (full and minimal CLI), beside pkcs11-tool (OpenSC) logging in to the same
# SoftHSM2 token and listing its objects.
"$root/softhsm-config/init-tokens.sh" "$work/tokens" size:1111:2222 >/dev/null
export SOFTHSM2_CONF="$work/tokens/softhsm2.conf" KEYPORT_PIN=2222
"$work/keyport" -q key generate --token size --type rsa-3072 --label size-key >/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 2>/dev/null | openssl pkey -pubout -out "$work/kek.pem"
export_rss() {  # CLI OUT -> peak RSS in KiB
  stats 1 "$1" -q byok export --token size --key size-key --kek "$work/kek.pem" \
    --kid https://size.vault.azure.net/keys/kek/0123456789abcdef0123456789abcdef -o "$2" | field 2
}
rss=$(export_rss "$work/keyport" "$work/full.byok")
rss_min=$(export_rss "$work/keyport-minimal" "$work/minimal.byok")
rss_p11=$(stats 1 pkcs11-tool --module "$(readlink -f /usr/lib/softhsm/libsofthsm2.so)" \
  --token-label size --login --pin 2222 -O | field 2)

echo
row "what" "measured" "goal"
row "libkeyport.so, minimal build, stripped" "$lib_min KiB" "<= 512 KiB"
row "libkeyport.so, full build, stripped" "$lib_full KiB" ""
row "keyport CLI, full build (Release), stripped" "$cli_full KiB" "<= 3072 KiB"
row "keyport CLI, full build (MinSizeRel), stripped" "$cli_full_small KiB" "<= 3072 KiB"
row "keyport CLI, minimal build, stripped" "$cli_min KiB" ""
row "keyport --version, first run after build" "$first ms" ""
row "keyport --version, median of 21" "$(field 1 <<<"$version") ms" "<= 5 ms"
row "  minimal CLI" "$(field 1 <<<"$version_min") ms" ""
row "  baseline: /bin/true" "$(field 1 <<<"$true_stats") ms" ""
row "  baseline: only loading the CLI's libraries" "$(field 1 <<<"$load_stats") ms" ""
row "  ratio: --version / loading its libraries" "$(awk -v a="$(field 1 <<<"$version")" -v b="$(field 1 <<<"$load_stats")" 'BEGIN {printf "%.2f", a / b}')" ""
row "peak RSS of one byok export (RSA-3072)" "$(mib "$rss") MiB" "<= 8 MiB"
row "  minimal CLI" "$(mib "$rss_min") MiB" ""
row "  baseline: pkcs11-tool -O, same token" "$(mib "$rss_p11") MiB" ""
row "  baseline: only loading the CLI's libraries" "$(mib "$(field 2 <<<"$load_stats")") MiB" ""
row "peak RSS of keyport --version" "$(mib "$(field 2 <<<"$version")") MiB" ""
row "anchor: libp11 engine pkcs11.so, stripped" "$p11 KiB" ""
row "anchor: libsofthsm2.so, stripped" "$softhsm KiB" ""

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# keyport's size and start-up figures in one run (issue 20; results go to docs/performance.md):
#   - the stripped minimal libkeyport.so (-DKEYPORT_MINIMAL=ON, MinSizeRel)  goal <= 512 KiB
#   - the stripped full CLI (Release)                                        goal <= 3 MB
#   - `keyport --version`: its first run after the build, and the median of 20 warm runs
#                                                                            goal <= 5 ms
#   - the peak RSS of one `keyport byok export` (RSA-3072 key, SoftHSM2)     goal <= 8 MiB
#   - beside them, Debian's own PKCS#11 pieces as anchors: libp11's OpenSSL engine (pkcs11.so)
#     and libsofthsm2.so, stripped the same way.
# Builds what is missing: build-release/ and build-minimal/ next to build/ (or $KEYPORT_SIZE_DIR).
#
#   scripts/size-report.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${KEYPORT_SIZE_DIR:-$root}
full="$out/build-release"
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
echo "size-report: building $full (Release) and $minimal (MinSizeRel) when needed"
build "$full"
build "$minimal" -DKEYPORT_MINIMAL=ON -DCMAKE_BUILD_TYPE=MinSizeRel

stripped_kib() {  # FILE -> KiB after `strip --strip-unneeded`
  cp "$1" "$work/s"
  strip --strip-unneeded "$work/s"
  echo $(( ($(stat -c %s "$work/s") + 1023) / 1024 ))
}
row() { printf '%-44s %10s %12s\n' "$1" "$2" "$3"; }

lib_min=$(stripped_kib "$minimal/lib/libkeyport.so.0")
lib_full=$(stripped_kib "$full/lib/libkeyport.so.0")
cli_full=$(stripped_kib "$full/cli/keyport")
cli_min=$(stripped_kib "$minimal/cli/keyport")
p11=$(stripped_kib /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so)
softhsm=$(stripped_kib "$(readlink -f /usr/lib/softhsm/libsofthsm2.so)")

# Start-up: the first run after the build, then the median of 20.
cp "$full/cli/keyport" "$work/keyport"
ms() { python3 -c 'import subprocess, sys, time
t = time.perf_counter(); subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(f"{(time.perf_counter() - t) * 1000:.2f}")' "$@"; }
first=$(ms "$work/keyport" --version)
runs=()
for _ in $(seq 20); do runs+=("$(ms "$work/keyport" --version)"); done
median=$(printf '%s\n' "${runs[@]}" | sort -n | awk '{a[NR] = $1} END {print (a[10] + a[11]) / 2}')

# Peak RSS of one export.
"$root/softhsm-config/init-tokens.sh" "$work/tokens" size:1111:2222 >/dev/null
export SOFTHSM2_CONF="$work/tokens/softhsm2.conf" KEYPORT_PIN=2222
"$work/keyport" -q key generate --token size --type rsa-3072 --label size-key >/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 2>/dev/null | openssl pkey -pubout -out "$work/kek.pem"
rss=$(python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$work/keyport" -q byok export --token size \
  --key size-key --kek "$work/kek.pem" \
  --kid https://size.vault.azure.net/keys/kek/0123456789abcdef0123456789abcdef -o "$work/size.byok")
rss_mib=$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')

echo
row "what" "measured" "goal"
row "libkeyport.so, minimal build, stripped" "$lib_min KiB" "<= 512 KiB"
row "libkeyport.so, full build, stripped" "$lib_full KiB" ""
row "keyport CLI, full build, stripped" "$cli_full KiB" "<= 3072 KiB"
row "keyport CLI, minimal build, stripped" "$cli_min KiB" ""
row "keyport --version, first run after build" "$first ms" ""
row "keyport --version, median of 20" "$median ms" "<= 5 ms"
row "peak RSS of one byok export (RSA-3072)" "$rss_mib MiB" "<= 8 MiB"
row "anchor: libp11 engine pkcs11.so, stripped" "$p11 KiB" ""
row "anchor: libsofthsm2.so, stripped" "$softhsm KiB" ""

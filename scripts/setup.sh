#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages keyport's build, tests and benchmarks need, when missing.
# Idempotent: a second run installs nothing. Needs root (or sudo) only when something is missing.
# `setup.sh fuzz` also installs clang and its libFuzzer runtime (the fuzz stage of scripts/test.sh).
set -euo pipefail

packages=(
  # build
  g++ cmake ninja-build pkg-config make
  libssl-dev libcli11-dev nlohmann-json3-dev libexpected-dev libp11-kit-dev
  libsqlite3-dev libcpp-httplib-dev libboost-dev
  # man pages from the CLI's --help (cmake/KeyportManPages.cmake)
  help2man
  # the Debian packages (debian/, tests/deb): dpkg-buildpackage, debhelper, lintian
  dpkg-dev debhelper fakeroot lintian
  # PKCS#11 module, tools and peers
  softhsm2 opensc opensc-pkcs11 libengine-pkcs11-openssl openssl
  # the module matrix (tests/modules): NSS softoken's tools, openCryptoki
  libnss3 libnss3-tools opencryptoki
  # tests
  catch2 p11-kit jq clang-format
  # the Azure SDK for Python and its crypto peer (tests/interop/python_sdk), and azure-cli's
  # Python modules (Microsoft's security-domain code: tests/interop/python_sdk/run_security_domain.sh)
  python3-azure python3-cryptography python3-azure-cli
)
if [ "${1:-}" = fuzz ]; then
  packages+=(clang libclang-rt-14-dev)  # libFuzzer, ASan and UBSan runtimes for clang 14
elif [ $# -gt 0 ]; then
  echo "setup: unknown argument '$1' (the only one is: fuzz)" >&2
  exit 2
fi

# --- arm64 cross build (scripts/cross-arm64.sh, CTest label cross) ---------------------------
# Debian's cross toolchain, qemu-user, and OpenSSL and p11-kit for arm64 as multiarch packages.
# dpkg must know the arm64 architecture before `apt-get update` below fetches the package lists;
# while it does not, the :arm64 packages are missing, so root (or sudo) is needed anyway.
packages+=(crossbuild-essential-arm64 qemu-user libssl-dev:arm64 libp11-kit-dev:arm64)
if ! grep -qx arm64 <<<"$(dpkg --print-foreign-architectures)"; then
  echo "setup: dpkg --add-architecture arm64"
  if [ "$(id -u)" -eq 0 ]; then dpkg --add-architecture arm64; else sudo dpkg --add-architecture arm64; fi
fi
# --- end of the arm64 cross build ------------------------------------------------------------

# Node.js interop peers (tests/interop/*/package-lock.json): `npm ci` when npm exists and the
# installed node_modules is older than the lock file, so a second run installs nothing. Without
# npm the interop tests that need these packages fail and say to run this script.
npm_folders=(tests/interop/jose tests/interop/azure_sdk)
install_npm_peers() {
  local root d
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if ! command -v npm >/dev/null; then
    echo "setup: npm not found; skipping ${npm_folders[*]} (interop tests will fail)" >&2
    return 0
  fi
  for d in "${npm_folders[@]}"; do
    [ -f "$root/$d/package-lock.json" ] || continue
    if [ "$root/$d/node_modules/.package-lock.json" -nt "$root/$d/package-lock.json" ]; then
      echo "setup: $d: node_modules up to date"
    else
      echo "setup: $d: npm ci"
      npm ci --prefix "$root/$d" --no-audit --no-fund
    fi
  done
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  install_npm_peers
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_npm_peers

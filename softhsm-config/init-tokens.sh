#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Creates a SoftHSM2 token folder DIR with its own softhsm2.conf and initialises named tokens.
#
#   softhsm-config/init-tokens.sh DIR LABEL:SO_PIN:USER_PIN [LABEL:SO_PIN:USER_PIN ...]
#
# Afterwards:  export SOFTHSM2_CONF=DIR/softhsm2.conf
# Idempotent: a token whose label already exists in DIR is left as it is. Never touches the
# system token folder. PINs given here are for test rigs; production tokens get their PINs from
# the token's own ceremony, not from this script.
set -euo pipefail

usage() {
  echo "usage: $0 DIR LABEL:SO_PIN:USER_PIN [...]" >&2
  exit 2
}
[ $# -ge 2 ] || usage

dir=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$dir/tokens"
dir=$(cd "$dir" && pwd)
case "$dir/" in
  /var/lib/softhsm/*|/etc/softhsm/*)
    echo "refusing to use the system SoftHSM folder $dir" >&2
    exit 3 ;;
esac
command -v softhsm2-util >/dev/null || { echo "softhsm2-util not found: apt-get install softhsm2" >&2; exit 4; }

conf="$dir/softhsm2.conf"
sed "s|@TOKENDIR@|$dir/tokens|" "$here/softhsm2.conf.in" > "$conf.tmp"
mv "$conf.tmp" "$conf"
export SOFTHSM2_CONF="$conf"

for spec in "$@"; do
  IFS=: read -r label sopin pin <<<"$spec"
  if [ -z "${label:-}" ] || [ -z "${sopin:-}" ] || [ -z "${pin:-}" ]; then
    echo "bad token spec '$spec': want LABEL:SO_PIN:USER_PIN" >&2
    exit 2
  fi
  if softhsm2-util --show-slots 2>/dev/null | grep -Eq "^[[:space:]]*Label:[[:space:]]+$label[[:space:]]*$"; then
    continue
  fi
  softhsm2-util --init-token --free --label "$label" --so-pin "$sopin" --pin "$pin" >/dev/null
done
echo "export SOFTHSM2_CONF=$conf"

# SPDX-License-Identifier: Apache-2.0
# Shared by the CTest drivers in this folder (run.sh, run_release.sh, run_rotation.sh,
# run_mhsm.sh); sourced, not run. The driver sets `what` (its name in messages) before sourcing.
#
#   interop_prepare KEYPORT WORK   checks node and the SDK, makes a fresh WORK (umask 077)
#   serve_vault ARGS...            starts `keyport vault serve --data WORK/vault --listen
#                                  127.0.0.1:0 --access-log WORK/access.log ARGS...`, waits for
#                                  server.json, sets $url; a trap stops the server on any exit
#   wait_for_server                after `vault serve ... &` and server=$!: the stop trap, then
#                                  waits for server.json (serve_vault calls it)
#   finish_vault                   SIGTERMs the server, prints the access log, sets $server_status
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

fail() {
  echo "$what: FAILED: $*" >&2
  exit 1
}

interop_prepare() {
  keyport=$1
  work=$2
  command -v node >/dev/null ||
    fail "node is not installed: run scripts/setup.sh (it installs Debian's nodejs and npm, then npm ci in tests/interop/azure_sdk)"
  [ -f "$here/node_modules/@azure/keyvault-keys/package.json" ] ||
    fail "the Azure SDK is not installed in tests/interop/azure_sdk/node_modules: run scripts/setup.sh (npm ci --prefix tests/interop/azure_sdk)"
  echo "$what: node $(node --version), @azure/keyvault-keys $(node -p "require('$here/node_modules/@azure/keyvault-keys/package.json').version")"
  rm -rf "$work"
  mkdir -p "$work"
  umask 077
}

stop_server() {
  if kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
}

# After `... vault serve ... &` and server=$!: stops the server on any exit, and waits for
# WORK/vault/server.json. A hang guard, not a timing: the loop ends as soon as the file is there.
# 90 s times the build's KEYPORT_TEST_TIME_SCALE (CTest sets it; 3 under sanitizers).
wait_for_server() {
  trap stop_server EXIT
  local budget=$((90 * ${KEYPORT_TEST_TIME_SCALE:-1})) start=$SECONDS
  while [ ! -s "$work/vault/server.json" ] && [ $((SECONDS - start)) -lt "$budget" ]; do
    kill -0 "$server" 2>/dev/null || { cat "$work/server.out" "$work/server.err" >&2; fail "the vault server exited"; }
    sleep 0.05
  done
  [ -s "$work/vault/server.json" ] || fail "the vault server did not write server.json within $budget s"
}

serve_vault() {
  "$keyport" vault serve --data "$work/vault" --listen 127.0.0.1:0 --access-log "$work/access.log" \
    "$@" >"$work/server.out" 2>"$work/server.err" &
  server=$!
  wait_for_server
  url=$(node -p "JSON.parse(require('fs').readFileSync('$work/vault/server.json','utf8')).url")
  echo "$what: vault at $url"
}

finish_vault() {
  kill -TERM "$server"
  server_status=0
  wait "$server" || server_status=$?
  trap - EXIT
  echo "$what: vault access log:"
  sed 's/^/  /' "$work/access.log"
}

# After the driver's own checks: the server must have exited 0 on SIGTERM.
require_clean_exit() {
  [ "$server_status" -eq 0 ] || { cat "$work/server.err" >&2; fail "the vault server exited with $server_status after SIGTERM"; }
  echo "$what: passed"
}

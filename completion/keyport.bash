# SPDX-License-Identifier: Apache-2.0
# bash completion for keyport: subcommands and options, read at completion time from the
# program's own `--help` (so it follows the CLI it completes and never goes stale). Installed as
# share/bash-completion/completions/keyport; try it with `source completion/keyport.bash`.

# The subcommands a help text lists (the first word of the indented lines under "Subcommands:").
_keyport_subcommands() {
  awk '/^Subcommands:/ { on = 1; next } /^[^ ]/ { on = 0 } on && /^  [a-z]/ { print $1 }'
}

# The options a help text lists ("-h,--help", "--data TEXT ...": every -x and --long name).
_keyport_options() {
  grep -oE '^ +(-[A-Za-z0-9],)?--[A-Za-z0-9][A-Za-z0-9-]*' | sed -E 's/^ +//; s/,/ /' | tr ' ' '\n' | sort -u
}

_keyport() {
  local cur=${COMP_WORDS[COMP_CWORD]} bin=${COMP_WORDS[0]} i w help subs
  local -a path=()
  help=$("$bin" --help 2>/dev/null) || return 0
  # The subcommand path typed so far: words that name a subcommand of the path before them
  # (option values such as "--token onprem" are skipped that way).
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    [[ $w == -* ]] && continue
    subs=$(_keyport_subcommands <<<"$help")
    if grep -qxF -- "$w" <<<"$subs"; then
      path+=("$w")
      help=$("$bin" "${path[@]}" --help 2>/dev/null) || return 0
    fi
  done
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_keyport_options <<<"$help")" -- "$cur")
    return 0
  fi
  subs=$(_keyport_subcommands <<<"$help")
  if [ -n "$subs" ]; then
    mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
  else
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  fi
  return 0
}
complete -o default -F _keyport keyport

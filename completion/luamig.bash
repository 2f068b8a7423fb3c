# bash completion for luamig: commands, options, and the revision ids and
# branch labels of the scripts (read from the files, no database needed).

# The script folder: script_location in the configuration (-c FILE, else
# $LUAMIG_CONFIG, else ./luamig.lua), else migrations.
_luamig_script_dir() {
  local config=${LUAMIG_CONFIG:-luamig.lua} i
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    case ${COMP_WORDS[i]} in
      -c|--config) config=${COMP_WORDS[i + 1]} ;;
      --config=*) config=${COMP_WORDS[i]#--config=} ;;
    esac
  done
  local dir
  dir=$(sed -n 's/.*script_location[[:space:]]*=[[:space:]]*["'\'']\([^"'\'']*\)["'\''].*/\1/p' \
        "$config" 2>/dev/null | head -n 1)
  dir=${dir:-migrations}
  case $dir in
    /*) ;;
    *) [[ $config == */* ]] && dir=${config%/*}/$dir ;;
  esac
  printf '%s\n' "$dir"
}

# Revision ids, branch labels and the symbols a target may be.
_luamig_revisions() {
  local dir
  dir=$(_luamig_script_dir)
  printf '%s\n' head heads base
  [[ -d $dir ]] || return
  sed -n -e 's/^[[:space:]]*revision[[:space:]]*=[[:space:]]*["'\'']\([^"'\'']*\)["'\''].*/\1/p' \
         -e '/^[[:space:]]*branch_labels[[:space:]]*=/{s/^[^=]*=//;s/[{},]/ /g;s/["'\'']//g;s/nil//g;p;}' \
         "$dir"/*.lua 2>/dev/null | tr ' ' '\n' | sed '/^$/d' | sort -u
}

_luamig() {
  local cur prev cmd i
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD - 1]}
  local commands="init revision merge upgrade downgrade stamp current heads
    branches history show status ensure_version edit schema check lint verify kept"
  local global="-c --config --url -x -q --quiet -h --help --version"

  case $prev in
    -c|--config|--models)
      [[ $prev == --models && ${COMP_WORDS[1]} == schema ]] ||
        { COMPREPLY=($(compgen -f -- "$cur")); return; } ;;
    --url|-x|-m|--message|--rev-id) return ;;
    --format) COMPREPLY=($(compgen -W "text json sarif" -- "$cur")); return ;;
    --head|--depends-on|-r|--rev-range)
      COMPREPLY=($(compgen -W "$(_luamig_revisions)" -- "$cur")); return ;;
  esac

  cmd=
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      -c|--config|--url|-x|-m|--message|--head|--depends-on|--rev-id|-r|--rev-range|--branch-label|--format)
        ((i++)) ;;
      -*) ;;
      *) cmd=${COMP_WORDS[i]}; break ;;
    esac
  done

  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "$global" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    fi
    return
  fi

  local opts=""
  case $cmd in
    revision) opts="-m --message --head --splice --branch-label --depends-on --rev-id --autogenerate --models" ;;
    check) opts="--models --json" ;;
    schema) opts="--models --json" ;;
    merge) opts="-m --message --branch-label --rev-id" ;;
    upgrade) opts="--sql --strict --json --backup" ;;
    downgrade) opts="--sql --strict --json" ;;
    kept) opts="--purge --older-than --json" ;;
    stamp) opts="--purge --sql" ;;
    current) opts="-v --verbose --check-heads --json" ;;
    heads) opts="-v --verbose --resolve-dependencies --json" ;;
    branches) opts="-v --verbose" ;;
    history) opts="-r --rev-range -v --verbose -i --indicate-current --json" ;;
    status) opts="--strict --json" ;;
    ensure_version) opts="--sql" ;;
    lint) opts="--all --json --format" ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts $global" -- "$cur"))
    return
  fi
  case $cmd in
    upgrade|downgrade|stamp|merge|show|edit|kept)
      COMPREPLY=($(compgen -W "$(_luamig_revisions)" -- "$cur")) ;;
    init) COMPREPLY=($(compgen -d -- "$cur")) ;;
  esac
}
complete -F _luamig luamig

#!/usr/bin/env bash
#
# pgserver.sh - a throwaway PostgreSQL server for the test suite.
#
#   spec/pgserver.sh start DIR   initdb into DIR, start a server on a unix
#                                socket in DIR and on 127.0.0.1:<free port>,
#                                create role luamig (password "secret") and
#                                database luamig_test, and print one line:
#                                postgresql://luamig:secret@127.0.0.1:PORT/luamig_test
#   spec/pgserver.sh stop DIR    stop that server and remove DIR
#
# Unix-socket connections are trusted; TCP connections need a password
# (scram-sha-256), so tests can check what a wrong password does.  The
# server never depends on a cluster the distribution may have started.
# PostgreSQL refuses to run as root, so as root everything runs as the
# system user "postgres" (created if missing) and DIR is given to it.
# Only the URL goes to stdout; progress and errors go to stderr.

set -euo pipefail

PG_USER=postgres
ROLE=luamig
PASSWORD=secret
DATABASE=luamig_test
START_TIMEOUT=${PGSERVER_TIMEOUT:-60}

die() { echo "pgserver.sh: $*" >&2; exit 1; }
usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }

# Newest installed server binaries, without naming a major version.
find_bindir() {
  local d best
  # The glob sorts 10 before 9: pick the highest major numerically.
  best=$(for d in /usr/lib/postgresql/*/bin; do
           [ -x "$d/initdb" ] && echo "$d"
         done | sort -t/ -k5,5n | tail -n 1)
  if [ -z "$best" ]; then
    # Other layouts: initdb on PATH.
    command -v initdb >/dev/null 2>&1 && best=$(dirname "$(command -v initdb)")
  fi
  [ -n "$best" ] || die "no PostgreSQL server found (looked in /usr/lib/postgresql/*/bin and PATH); install the postgresql package"
  echo "$best"
}

# Run a command as the server's owner: ourselves, or $PG_USER when root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    if command -v runuser >/dev/null 2>&1; then
      runuser -u "$PG_USER" -- "$@"
    else
      su -s /bin/sh "$PG_USER" -c "$(printf '%q ' "$@")"
    fi
  else
    "$@"
  fi
}

# A TCP port on 127.0.0.1 nobody listens on now (the server start retries
# if another process takes it first).
pick_port() {
  local port i
  for i in $(seq 1 50); do
    port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  die "could not find a free TCP port"
}

cmd_start() {
  local dir=$1 bindir data sockdir port attempt ok
  bindir=$(find_bindir)
  [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ] && die "$dir exists and is not empty"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  data="$dir/data"

  if [ "$(id -u)" -eq 0 ]; then
    if ! id "$PG_USER" >/dev/null 2>&1; then
      useradd --system --user-group --home-dir /var/lib/postgresql \
        --shell /bin/bash "$PG_USER" || die "could not create user $PG_USER"
    fi
    chown "$PG_USER:" "$dir"
    # A private parent (mktemp -d makes them 0700) would lock the server
    # out of DIR: grant search permission, only that, where it is missing.
    local p=$(dirname "$dir")
    while [ "$p" != "/" ]; do
      if ! as_owner test -x "$p" 2>/dev/null; then
        echo "pgserver.sh: granting search permission on $p to others so $PG_USER can reach $dir" >&2
        chmod o+x "$p"
      fi
      p=$(dirname "$p")
    done
    as_owner test -w "$dir" -a -x "$dir" ||
      die "user $PG_USER cannot write to $dir (is a parent directory private to root? use a directory under /tmp)"
  fi

  # A unix socket path is limited to about 107 bytes; fall back to a short
  # directory under /tmp when DIR is too deep.
  sockdir="$dir"
  if [ $(( ${#dir} + 20 )) -gt 100 ]; then
    sockdir=$(mktemp -d /tmp/lmpg.XXXXXX)
    [ "$(id -u)" -eq 0 ] && chown "$PG_USER:" "$sockdir"
    echo "$sockdir" > "$dir/sockdir.extra"
  fi
  echo "$sockdir" > "$dir/sockdir"

  # Work from / so a private current directory (e.g. /root) does not bother
  # the server tools running as another user.
  cd /
  unset PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGDATA PGOPTIONS

  as_owner "$bindir/initdb" -D "$data" -U "$PG_USER" -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync \
    > "$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }

  ok=0
  for attempt in 1 2 3 4 5; do
    port=$(pick_port)
    if as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w \
         -t "$START_TIMEOUT" -o "-c listen_addresses=127.0.0.1 -c port=$port \
         -c unix_socket_directories='$sockdir' -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off \
         -c max_connections=100 -c password_encryption=scram-sha-256" \
         start > "$dir/pg_ctl.log" 2>&1; then
      ok=1
      break
    fi
    # Another process may have taken the port between the check and the
    # bind: try another one; any other failure is final.
    if ! grep -q -i -e "could not bind" -e "address already in use" \
         "$dir/server.log" 2>/dev/null; then
      break
    fi
    as_owner "$bindir/pg_ctl" -D "$data" stop -m immediate >/dev/null 2>&1 || true
  done
  if [ "$ok" -ne 1 ]; then
    cat "$dir/pg_ctl.log" "$dir/server.log" >&2 2>/dev/null || true
    die "the server in $data did not start"
  fi
  echo "$port" > "$dir/port"

  # pg_ctl -w already waited; make sure both the socket and TCP answer.
  local deadline=$(( SECONDS + START_TIMEOUT ))
  until as_owner "$bindir/pg_isready" -q -h "$sockdir" -p "$port" -d postgres &&
        as_owner "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      cat "$dir/server.log" >&2 || true
      die "the server on port $port does not accept connections after ${START_TIMEOUT} s"
    fi
    sleep 0.1
  done

  as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" \
    -U "$PG_USER" -d postgres >/dev/null 2>"$dir/psql.log" <<SQL ||
CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
CREATE DATABASE $DATABASE OWNER $ROLE;
SQL
    { cat "$dir/psql.log" >&2; die "could not create role $ROLE and database $DATABASE"; }
  # The role owns the public schema too, so tests may create and drop
  # anything in it (PostgreSQL 15 no longer grants CREATE there to all).
  as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" \
    -U "$PG_USER" -d "$DATABASE" -c "ALTER SCHEMA public OWNER TO $ROLE" \
    >/dev/null 2>"$dir/psql.log" ||
    { cat "$dir/psql.log" >&2; die "could not give schema public to $ROLE"; }

  echo "postgresql://$ROLE:$PASSWORD@127.0.0.1:$port/$DATABASE"
}

cmd_stop() {
  local dir=$1 bindir
  [ -d "$dir" ] || { echo "pgserver.sh: $dir does not exist; nothing to stop" >&2; return 0; }
  dir=$(cd "$dir" && pwd -P)
  cd /
  if [ -f "$dir/data/postmaster.pid" ]; then
    bindir=$(find_bindir)
    as_owner "$bindir/pg_ctl" -D "$dir/data" stop -m immediate -w >/dev/null 2>&1 ||
      echo "pgserver.sh: pg_ctl stop failed for $dir/data" >&2
  fi
  if [ -f "$dir/sockdir.extra" ]; then
    rm -rf -- "$(cat "$dir/sockdir.extra")"
  fi
  rm -rf -- "$dir"
}

[ $# -eq 2 ] || usage
case "$1" in
  start) cmd_start "$2" ;;
  stop) cmd_stop "$2" ;;
  *) usage ;;
esac

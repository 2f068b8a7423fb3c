#!/bin/sh
# bench/schema/run.sh - `luamig schema` on a PostgreSQL database of TABLES
# tables (default 500), each with a primary key, a unique constraint, a
# CHECK, a foreign key to the table before it, two indexes (one partial,
# one on an expression) and a comment, on a throwaway server
# (spec/pgserver.sh).  Prints the median of RUNS runs (default 7) against
# the 0.25 s target, and, for comparison, what psql's \d takes to describe
# the same tables (one run: it asks the catalog table by table).
#   BUILD  build directory holding luamig (default build)
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
TABLES=${TABLES:-500}
RUNS=${RUNS:-7}
bin="$PWD/$BUILD/luamig"
tmp=$(mktemp -d /tmp/luamig-bench-schema.XXXXXX)
chmod 755 "$tmp"
cleanup() {
  bash spec/pgserver.sh stop "$tmp/pg" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

url=$(bash spec/pgserver.sh start "$tmp/pg")
now() { date +%s.%N; }

i=1
{
  while [ "$i" -le "$TABLES" ]; do
    ref=""
    [ "$i" -gt 1 ] && ref=", parent_id integer REFERENCES t$((i - 1)) (id) ON DELETE CASCADE"
    cat <<SQL
CREATE TABLE t$i (id serial PRIMARY KEY, code varchar(40) NOT NULL UNIQUE,
  name text DEFAULT 'none'::text, amount numeric(12,2) NOT NULL DEFAULT 0,
  created_at timestamp DEFAULT now(), active boolean NOT NULL DEFAULT true$ref,
  CONSTRAINT ck_t${i}_amount CHECK (amount >= 0));
CREATE INDEX ix_t${i}_name ON t$i (lower(name));
CREATE INDEX ix_t${i}_active ON t$i (created_at) WHERE active;
COMMENT ON TABLE t$i IS 'table $i';
SQL
    i=$((i + 1))
  done
} > "$tmp/build.sql"
psql -X -q -v ON_ERROR_STOP=1 "$url" -f "$tmp/build.sql" >/dev/null

printf 'return { url = "%s" }\n' "$url" > "$tmp/luamig.lua"
cd "$tmp"
"$bin" schema > schema.txt           # warm the server's caches once
tables=$(grep -c '^table ' schema.txt)
[ "$tables" -eq "$TABLES" ] || { echo "schema printed $tables tables, not $TABLES" >&2; exit 1; }

times=""
r=0
while [ "$r" -lt "$RUNS" ]; do
  t0=$(now)
  "$bin" schema > /dev/null
  t1=$(now)
  times="$times $(echo "$t1 - $t0" | bc)"
  r=$((r + 1))
done
median=$(echo "$times" | tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}')

t0=$(now)
psql -X -q "$url" -c '\d public.t*' > /dev/null
t1=$(now)
psql_time=$(echo "$t1 - $t0" | bc)

printf 'luamig schema, %d tables on PostgreSQL: median %.3f s of %d runs (target < 0.25 s: %s)\n' \
  "$TABLES" "$median" "$RUNS" "$(echo "$median < 0.25" | bc | sed 's/1/met/; s/0/missed/')"
printf "psql \\\\d of the same tables: %.3f s (%.1fx luamig's time)\n" \
  "$psql_time" "$(echo "$psql_time / $median" | bc -l)"

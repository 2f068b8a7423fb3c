#!/bin/sh
# bench/backfill/run.sh - data migrations at the speed of SQL.
#
# One table persons(id, first_name, last_name, full_name) of ROWS rows
# (default 1,000,000), full_name computed:
#   - by luamig's op.backfill, the concatenation done in Lua, one row at a
#     time, against the same single SQL UPDATE run by psql and sqlite3;
#   - by Alembic's ORM loop ("Complex Data Transformation": load every
#     Person, set the field, commit) on ALEMBIC_ROWS rows (default 200,000),
#     against luamig on the same rows;
#   - luamig's peak memory (RSS) for 100,000 and ROWS rows;
#   - op.bulk_insert of ROWS rows (from a Lua generator) against psql \copy
#     of the same rows from a file.
# Each contestant gets a freshly built, vacuumed and analyzed table, and is
# timed as a whole process with /usr/bin/time -v (start-up included).  The
# pairs behind the ratios run REPS times, alternating, and the median of
# each counts (a shared machine's noise moves single runs by 20%).
# Prints a table and the ratios; a missed target is reported, not fatal.
#
#   BUILD  build directory holding luamig (default build)
#   ROWS, ALEMBIC_ROWS, BATCH (backfill batch_size, default 5000),
#   REPS (default 5)
#   LUAMIG_BENCH_PG_URL  an existing server's database to use instead of
#                        a throwaway one (tables persons* are replaced)
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
ROWS=${ROWS:-1000000}
ALEMBIC_ROWS=${ALEMBIC_ROWS:-200000}
SMALL_ROWS=100000
BATCH=${BATCH:-5000}
REPS=${REPS:-5}
bin="$PWD/$BUILD/luamig"
[ -x "$bin" ] || { echo "bench/backfill: build luamig first (make)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench/backfill: needs /usr/bin/time (apt-get install -y time)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/luamig-bench-backfill.XXXXXX)
chmod 755 "$tmp"
own_pg=0
cleanup() {
  [ "$own_pg" = 1 ] && bash spec/pgserver.sh stop "$tmp/pg" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${LUAMIG_BENCH_PG_URL:-}" ]; then
  url=$LUAMIG_BENCH_PG_URL
else
  url=$(bash spec/pgserver.sh start "$tmp/pg")
  own_pg=1
fi
# No NOTICEs ("table ... does not exist, skipping") in the report.
PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
export PGOPTIONS
psqlq() { psql -X -q -At -v ON_ERROR_STOP=1 "$url" "$@"; }

# ---- measuring ---------------------------------------------------------

# run NAME CMD...: time a whole process; leaves seconds and peak RSS (MB)
# in $tmp/NAME.
run() {
  name=$1
  shift
  # Start from a quiet disk: the previous contestant's dirty pages are
  # not written back on this one's time.
  sync
  if ! /usr/bin/time -v -o "$tmp/$name.time" "$@" >"$tmp/$name.out" 2>&1; then
    echo "bench/backfill: $name failed:" >&2
    tail -n 20 "$tmp/$name.out" >&2
    exit 1
  fi
  awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0;
                for (i = 1; i <= n; i++) s = s * 60 + p[i]; secs = s }
              /Maximum resident set size/ { rss = $2 / 1024 }
              END { printf "%.3f %.1f\n", secs, rss }' "$tmp/$name.time" \
    > "$tmp/$name"
}
# keep NAME I: file the run just made as repetition I.
keep() { mv "$tmp/$1" "$tmp/$1.rep$2"; }
# median NAME: the median seconds of its repetitions, and the largest peak.
median() {
  cat "$tmp/$1".rep* | sort -n |
    awk '{ s[NR] = $1; if ($2 > m) m = $2 } END { printf "%s %s\n", s[int((NR + 1) / 2)], m }' \
    > "$tmp/$1"
}
secs() { cut -d' ' -f1 "$tmp/$1"; }
rss() { cut -d' ' -f2 "$tmp/$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# ---- the tables ---------------------------------------------------------

# Autovacuum is off for the table: a million dead rows left by one
# contestant would otherwise be vacuumed on the next one's time.
pg_table() {   # pg_table ROWS: a fresh persons table
  psqlq <<SQL
DROP TABLE IF EXISTS persons;
CREATE TABLE persons (id integer PRIMARY KEY, first_name varchar, last_name varchar, full_name varchar)
  WITH (autovacuum_enabled = false);
INSERT INTO persons (id, first_name, last_name)
SELECT i, 'First' || i, 'Last' || i FROM generate_series(1, $1) AS i;
VACUUM ANALYZE persons;
DROP TABLE IF EXISTS alembic_version;
DROP TABLE IF EXISTS luamig_version;
DROP TABLE IF EXISTS luamig_log;
SQL
}

sqlite_table() {   # sqlite_table FILE ROWS
  rm -f "$1"
  sqlite3 "$1" >/dev/null <<SQL
CREATE TABLE persons (id INTEGER NOT NULL PRIMARY KEY, first_name VARCHAR, last_name VARCHAR, full_name VARCHAR);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
INSERT INTO persons (id, first_name, last_name) SELECT i, 'First' || i, 'Last' || i FROM n;
SQL
}

# A luamig project whose one migration is SCRIPT (the upgrade body).
project() {   # project DIR URL SCRIPT
  rm -rf "$1"
  mkdir -p "$1/migrations"
  printf 'return { url = "%s", script_location = "migrations" }\n' "$2" > "$1/luamig.lua"
  cat > "$1/migrations/0001_bench.lua" <<LUA
return {
  revision = "bench0000001", down_revision = nil, message = "bench",
  upgrade = function(op)
$3
  end,
  downgrade = function(op) end,
}
LUA
}

BACKFILL="    op.backfill(\"persons\", {columns = {\"first_name\", \"last_name\"}, batch_size = $BATCH},
      function(row) return {full_name = row.first_name .. \" \" .. row.last_name} end)"
SQL_UPDATE="UPDATE persons SET full_name = first_name || ' ' || last_name"

check_pg() {   # every row got its full name
  n=$(psqlq -c "SELECT count(*) FROM persons WHERE full_name = first_name || ' ' || last_name")
  [ "$n" = "$1" ] || { echo "bench/backfill: $2 updated $n of $1 rows" >&2; exit 1; }
}

# ---- PostgreSQL: backfill against UPDATE ----------------------------------

echo "bench/backfill: $ROWS rows; PostgreSQL at ${url%%\?*}" | sed 's/:[^:@/]*@/:***@/'
project "$tmp/lm_pg" "$url" "$BACKFILL"
i=1
while [ "$i" -le "$REPS" ]; do
  pg_table "$ROWS"
  run pg_sql psql -X -q -v ON_ERROR_STOP=1 "$url" -c "$SQL_UPDATE"
  check_pg "$ROWS" psql
  keep pg_sql "$i"
  pg_table "$ROWS"
  run pg_lm "$bin" -c "$tmp/lm_pg/luamig.lua" upgrade head
  check_pg "$ROWS" luamig
  keep pg_lm "$i"
  i=$((i + 1))
done
median pg_sql
median pg_lm

pg_table "$SMALL_ROWS"
run pg_lm_small "$bin" -c "$tmp/lm_pg/luamig.lua" upgrade head
check_pg "$SMALL_ROWS" luamig

# ---- SQLite: backfill against UPDATE ----------------------------------------

project "$tmp/lm_lite" "sqlite:///$tmp/lm.db" "$BACKFILL"
i=1
while [ "$i" -le "$REPS" ]; do
  sqlite_table "$tmp/sql.db" "$ROWS"
  run lite_sql sqlite3 "$tmp/sql.db" "$SQL_UPDATE"
  keep lite_sql "$i"
  sqlite_table "$tmp/lm.db" "$ROWS"
  run lite_lm "$bin" -c "$tmp/lm_lite/luamig.lua" upgrade head
  keep lite_lm "$i"
  n=$(sqlite3 "$tmp/lm.db" "SELECT count(*) FROM persons WHERE full_name = first_name || ' ' || last_name")
  [ "$n" = "$ROWS" ] || { echo "bench/backfill: luamig on SQLite updated $n rows" >&2; exit 1; }
  i=$((i + 1))
done
median lite_sql
median lite_lm

# ---- Alembic's ORM loop against luamig ----------------------------------------

mkdir -p "$tmp/al/versions"
cat > "$tmp/al/alembic.ini" <<INI
[alembic]
script_location = $tmp/al
INI
cat > "$tmp/al/env.py" <<'PY'
import os
from alembic import context
from sqlalchemy import create_engine
engine = create_engine(os.environ["BENCH_SA_URL"])
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
PY
cat > "$tmp/al/versions/a1_backfill.py" <<'PY'
"""the Complex Data Transformation example: an ORM loop"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy import orm
from sqlalchemy.orm import declarative_base

revision = "a1"
down_revision = None
Base = declarative_base()

class Person(Base):
    __tablename__ = "persons"
    id = sa.Column(sa.Integer, primary_key=True)
    first_name = sa.Column(sa.String)
    last_name = sa.Column(sa.String)
    full_name = sa.Column(sa.String)

def upgrade():
    session = orm.Session(bind=op.get_bind())
    for person in session.query(Person).all():
        person.full_name = person.first_name + " " + person.last_name
    session.commit()

def downgrade():
    pass
PY
sa_url=$(printf '%s' "$url" | sed 's#^postgres\(ql\)\?://#postgresql+psycopg2://#')
pg_table "$ALEMBIC_ROWS"
run alembic env BENCH_SA_URL="$sa_url" alembic -c "$tmp/al/alembic.ini" upgrade head
check_pg "$ALEMBIC_ROWS" alembic
pg_table "$ALEMBIC_ROWS"
run pg_lm_alembic "$bin" -c "$tmp/lm_pg/luamig.lua" upgrade head
check_pg "$ALEMBIC_ROWS" luamig

# ---- bulk insert against \copy ----------------------------------------------------

psqlq -c "\\copy (SELECT i, 'First' || i, 'Last' || i, 'First' || i || ' Last' || i FROM generate_series(1, $ROWS) AS i) TO '$tmp/persons.txt'"
load_table() {
  psqlq <<SQL
DROP TABLE IF EXISTS persons;
CREATE TABLE persons (id integer PRIMARY KEY, first_name varchar, last_name varchar, full_name varchar)
  WITH (autovacuum_enabled = false);
DROP TABLE IF EXISTS luamig_version;
DROP TABLE IF EXISTS luamig_log;
SQL
}
project "$tmp/lm_load" "$url" "    local i = 0
    op.bulk_insert(\"persons\", function()
      i = i + 1
      if i <= $ROWS then
        local f, l = \"First\" .. i, \"Last\" .. i
        return {id = i, first_name = f, last_name = l, full_name = f .. \" \" .. l}
      end
    end)"
i=1
while [ "$i" -le "$REPS" ]; do
  load_table
  run pg_copy psql -X -q -v ON_ERROR_STOP=1 "$url" -c "\\copy persons FROM '$tmp/persons.txt'"
  keep pg_copy "$i"
  load_table
  run pg_load "$bin" -c "$tmp/lm_load/luamig.lua" upgrade head
  keep pg_load "$i"
  n=$(psqlq -c "SELECT count(*) FROM persons WHERE full_name = first_name || ' ' || last_name")
  [ "$n" = "$ROWS" ] || { echo "bench/backfill: bulk_insert loaded $n rows" >&2; exit 1; }
  i=$((i + 1))
done
median pg_copy
median pg_load

# ---- report -------------------------------------------------------------------------

r_pg=$(ratio "$(secs pg_lm)" "$(secs pg_sql)")
r_lite=$(ratio "$(secs lite_lm)" "$(secs lite_sql)")
r_al=$(ratio "$(secs alembic)" "$(secs pg_lm_alembic)")
r_load=$(ratio "$(secs pg_load)" "$(secs pg_copy)")
verdict() {   # verdict OK-CONDITION
  if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "MISSED"; fi
}
printf '\n%-46s %10s %10s\n' "contestant (ratio pairs: median of $REPS)" "seconds" "peak MB"
line() { printf '%-46s %10s %10s\n' "$1" "$(secs "$2")" "$(rss "$2")"; }
line "PostgreSQL: psql UPDATE, $ROWS rows" pg_sql
line "PostgreSQL: luamig op.backfill, $ROWS rows" pg_lm
line "PostgreSQL: luamig op.backfill, $SMALL_ROWS rows" pg_lm_small
line "SQLite: sqlite3 UPDATE, $ROWS rows" lite_sql
line "SQLite: luamig op.backfill, $ROWS rows" lite_lm
line "PostgreSQL: Alembic ORM loop, $ALEMBIC_ROWS rows" alembic
line "PostgreSQL: luamig op.backfill, $ALEMBIC_ROWS rows" pg_lm_alembic
line "PostgreSQL: psql \\copy, $ROWS rows" pg_copy
line "PostgreSQL: luamig op.bulk_insert, $ROWS rows" pg_load
echo
# printf, not echo: some shells' echo reads the backslash in \copy.
printf 'backfill / SQL UPDATE, PostgreSQL:  %s x  (target <= 2.0: %s)\n' "$r_pg" "$(verdict "$r_pg <= 2.0")"
printf 'backfill / SQL UPDATE, SQLite:      %s x  (target <= 2.0: %s)\n' "$r_lite" "$(verdict "$r_lite <= 2.0")"
printf 'Alembic ORM loop / backfill:        %s x  (target > 10: %s)\n' "$r_al" "$(verdict "$r_al > 10")"
printf 'bulk_insert / psql \\copy:           %s x  (target <= 1.5: %s)\n' "$r_load" "$(verdict "$r_load <= 1.5")"
m_small=$(rss pg_lm_small)
m_big=$(rss pg_lm)
printf 'luamig peak memory: %s MB at %s rows, %s MB at %s rows (target < 64 MB and flat: %s)\n' \
  "$m_small" "$SMALL_ROWS" "$m_big" "$ROWS" \
  "$(verdict "$m_big < 64 && $m_small < 64 && $m_big < $m_small * 1.25 + 2")"

#!/bin/sh
# bench/keep/run.sh - what keeping costs.
#
# A table persons(id, name, role) of ROWS rows (default 1,000,000):
#   - luamig's drop_column with keep = true (the key and the column copied,
#     then the drop, one transaction), against the same by hand: CREATE
#     TABLE ... AS SELECT id, role, then ALTER TABLE ... DROP COLUMN, in
#     one transaction, run by psql and sqlite3; target within 1.2x;
#   - luamig's drop_table with keep = true on PostgreSQL (a rename into
#     luamig_kept), whatever the size; target under 50 ms.
# luamig is timed from the migration's start to its end as it reports them
# (--json durations), the hand-written SQL by the client's own timing of
# the whole transaction; each pair runs REPS times (default 5), alternating,
# on a fresh copy, and the medians count.
#   BUILD  build directory holding luamig (default build)
#   ROWS, REPS
#   LUAMIG_BENCH_PG_URL  an existing server's database to use instead of
#                        a throwaway one (tables persons* are replaced)
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
ROWS=${ROWS:-1000000}
REPS=${REPS:-5}
bin="$PWD/$BUILD/luamig"
[ -x "$bin" ] || { echo "bench/keep: build luamig first (make)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/luamig-bench-keep.XXXXXX)
chmod 755 "$tmp"
own_pg=0
cleanup() {
  [ "$own_pg" = 1 ] && bash spec/pgserver.sh stop "$tmp/pg" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
if [ -n "${LUAMIG_BENCH_PG_URL:-}" ]; then
  url=$LUAMIG_BENCH_PG_URL
else
  url=$(bash spec/pgserver.sh start "$tmp/pg")
  own_pg=1
fi

now() { date +%s.%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# A project whose one revision drops persons.role (or the table) with keep.
project() {  # dir url up
  mkdir -p "$1/migrations"
  printf 'return { url = "%s", script_location = "migrations" }\n' "$2" > "$1/luamig.lua"
  cat > "$1/migrations/0001_drop.lua" <<LUA
return {
  revision = "b00000000001", down_revision = nil, message = "drop",
  upgrade = function(op) $3 end,
  downgrade = function(op) end,
}
LUA
  (cd "$1" && "$bin" -q stamp base >/dev/null 2>&1 || true)
}

# luamig's duration of the migration, from upgrade --json.
lm_time() {  # dir
  (cd "$1" && "$bin" --json -q upgrade head) |
    sed -n 's/.*"duration": \([0-9.]*\).*/\1/p'
}

# ---- SQLite -------------------------------------------------------------
sqlite3 "$tmp/base.db" >/dev/null <<SQL
CREATE TABLE persons (id INTEGER NOT NULL PRIMARY KEY, name TEXT, role TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO persons (id, name, role) SELECT i, 'person ' || i, 'role ' || (i % 7) FROM n;
SQL
: > "$tmp/lite_lm"; : > "$tmp/lite_sql"
i=0
while [ $i -lt "$REPS" ]; do
  rm -rf "$tmp/lm"; cp "$tmp/base.db" "$tmp/lm.db"
  project "$tmp/lm" "sqlite:///$tmp/lm.db" 'op.drop_column("persons", "role", {keep = true})'
  lm_time "$tmp/lm" >> "$tmp/lite_lm"
  cp "$tmp/base.db" "$tmp/hand.db"
  t0=$(now)
  sqlite3 "$tmp/hand.db" <<'SQL'
BEGIN IMMEDIATE;
CREATE TABLE kept_persons_role AS SELECT id, role FROM persons;
ALTER TABLE persons DROP COLUMN role;
COMMIT;
SQL
  t1=$(now)
  echo "$t1 - $t0" | bc >> "$tmp/lite_sql"
  i=$((i + 1))
done
lite_lm=$(median < "$tmp/lite_lm"); lite_sql=$(median < "$tmp/lite_sql")

# ---- PostgreSQL ---------------------------------------------------------
pg() { psql -X -q -v ON_ERROR_STOP=1 "$url" "$@"; }
fill() {  # table
  pg -c "DROP TABLE IF EXISTS $1; CREATE TABLE $1 (id integer PRIMARY KEY, name text, role text);
         INSERT INTO $1 SELECT i, 'person ' || i, 'role ' || (i % 7) FROM generate_series(1, $ROWS) i;" \
     -c "VACUUM ANALYZE $1" >/dev/null 2>&1
}
reset_pg() {
  pg -c "DROP SCHEMA IF EXISTS luamig_kept CASCADE; DROP TABLE IF EXISTS luamig_kept, luamig_version, luamig_log, kept_persons_role;" >/dev/null 2>&1
}
: > "$tmp/pg_lm"; : > "$tmp/pg_sql"; : > "$tmp/pg_table"
i=0
while [ $i -lt "$REPS" ]; do
  reset_pg; fill persons
  rm -rf "$tmp/lmpg"
  project "$tmp/lmpg" "$url" 'op.drop_column("persons", "role", {keep = true})'
  lm_time "$tmp/lmpg" >> "$tmp/pg_lm"
  reset_pg; fill persons
  pg -c '\timing on' -c "BEGIN; CREATE TABLE kept_persons_role AS SELECT id, role FROM persons; ALTER TABLE persons DROP COLUMN role; COMMIT;" |
    sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | awk '{ s += $1 } END { printf "%.6f\n", s / 1000 }' >> "$tmp/pg_sql"
  reset_pg; fill persons
  rm -rf "$tmp/lmpgt"
  project "$tmp/lmpgt" "$url" 'op.drop_table("persons", {keep = true})'
  lm_time "$tmp/lmpgt" >> "$tmp/pg_table"
  i=$((i + 1))
done
pg_lm=$(median < "$tmp/pg_lm"); pg_sql=$(median < "$tmp/pg_sql"); pg_table=$(median < "$tmp/pg_table")
reset_pg

ratio() { echo "scale=2; $1 / $2" | bc; }
printf '\n%-62s %10s\n' "bench/keep, $ROWS rows (median of $REPS)" "seconds"
printf '%-62s %10.3f\n' "SQLite: luamig drop_column keep = true" "$lite_lm"
printf '%-62s %10.3f\n' "SQLite: sqlite3 CREATE TABLE AS + DROP COLUMN" "$lite_sql"
printf '%-62s %10.3f\n' "PostgreSQL: luamig drop_column keep = true" "$pg_lm"
printf '%-62s %10.3f\n' "PostgreSQL: psql CREATE TABLE AS + DROP COLUMN" "$pg_sql"
printf '%-62s %10.3f\n' "PostgreSQL: luamig drop_table keep = true" "$pg_table"
r1=$(ratio "$lite_lm" "$lite_sql"); r2=$(ratio "$pg_lm" "$pg_sql")
echo "ratio luamig / by hand: SQLite $r1, PostgreSQL $r2 (target <= 1.2)"
ms=$(echo "$pg_table * 1000" | bc)
echo "drop_table keep on PostgreSQL: $ms ms (target < 50 ms)"

#!/bin/sh
# bench/rebuild/run.sh - luamig's SQLite rebuild (alter_column on a table
# of ROWS rows, default 1,000,000) against the same 12-step procedure
# written by hand and run by the sqlite3 shell, on two copies of one
# database.  Prints both times and the ratio luamig / sqlite3.
#   BUILD  build directory holding luamig (default build)
#   ROWS   rows in the table
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
ROWS=${ROWS:-1000000}
bin="$PWD/$BUILD/luamig"
tmp=$(mktemp -d /tmp/luamig-bench-rebuild.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

now() { date +%s.%N; }

# The table: a rowid key, text, numbers, a NULL-free column made NOT NULL
# by the migration, an index and a CHECK that must survive.
sqlite3 "$tmp/base.db" >/dev/null <<SQL
PRAGMA journal_mode = DELETE;
CREATE TABLE events (
	id INTEGER NOT NULL,
	kind VARCHAR(20),
	payload TEXT,
	amount FLOAT,
	created_at DATETIME DEFAULT (CURRENT_TIMESTAMP),
	PRIMARY KEY (id),
	CONSTRAINT ck_events_amount CHECK (amount >= 0)
);
CREATE INDEX ix_events_kind ON events (kind);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO events (id, kind, payload, amount)
SELECT i, 'kind' || (i % 17), printf('payload %d %s', i, hex(randomblob(8))), i * 0.5 FROM n;
SQL

# luamig: the migration history that makes kind NOT NULL.
mkdir -p "$tmp/lm/migrations"
cat > "$tmp/lm/luamig.lua" <<LUA
return { url = "sqlite:///$tmp/lm.db", script_location = "migrations" }
LUA
cat > "$tmp/lm/migrations/0001_kind_not_null.lua" <<'LUA'
return {
  revision = "b00000000001", down_revision = nil, message = "kind not null",
  upgrade = function(op) op.alter_column("events", "kind", {nullable = false}) end,
  downgrade = function(op) op.alter_column("events", "kind", {nullable = true}) end,
}
LUA
cp "$tmp/base.db" "$tmp/lm.db"
cp "$tmp/base.db" "$tmp/hand.db"
# The version table is created before timing, so both sides time the
# rebuild and its transaction only.
(cd "$tmp/lm" && "$bin" -q stamp base >/dev/null 2>&1 || true)
sync

t0=$(now)
sqlite3 "$tmp/hand.db" <<'SQL'
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE _new_events (
	id INTEGER NOT NULL,
	kind VARCHAR(20) NOT NULL,
	payload TEXT,
	amount FLOAT,
	created_at DATETIME DEFAULT (CURRENT_TIMESTAMP),
	PRIMARY KEY (id),
	CONSTRAINT ck_events_amount CHECK (amount >= 0)
);
INSERT INTO _new_events (id, kind, payload, amount, created_at)
  SELECT id, kind, payload, amount, created_at FROM events;
DROP TABLE events;
ALTER TABLE _new_events RENAME TO events;
CREATE INDEX ix_events_kind ON events (kind);
PRAGMA foreign_key_check;
COMMIT;
SQL
t1=$(now)
(cd "$tmp/lm" && "$bin" -q upgrade head)
t2=$(now)

rows=$(sqlite3 "$tmp/lm.db" "SELECT count(*) FROM events WHERE kind IS NOT NULL")
[ "$rows" = "$ROWS" ] || { echo "luamig lost rows: $rows of $ROWS" >&2; exit 1; }
awk -v r="$ROWS" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "rebuild of %d rows: sqlite3 by hand %.3f s, luamig %.3f s, ratio %.2f\n",
         r, b - a, c - b, (c - b) / (b - a) }'

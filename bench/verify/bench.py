#!/usr/bin/python3
"""bench/verify: `luamig verify` against the "stairway test" written with
Alembic's Python API in one process, on the same generated 100-revision
history, on SQLite and on PostgreSQL.  For each revision in upgrade order
the stairway upgrades it, downgrades it and upgrades it again, reading the
whole schema with SQLAlchemy's inspector after each step and comparing the
snapshots, as verify does.  Each contestant runs as a whole process (start-
up included) on an empty database of its own, ROUNDS times alternating;
the medians count.  Prints the times and the ratio; a missed target is
reported, not fatal.

    bench.py [--luamig build/luamig] [--revisions 100] [--rounds 3]

LUAMIG_BENCH_PG_URL names an existing server's database to create the
benchmark's databases from; otherwise a throwaway server is started
(spec/pgserver.sh).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TARGET = 0.10


# ---- the history, written for both tools --------------------------------

def kinds(i):
    """Revision i (from 0): one of five steps on table t<i // 5>."""
    return i % 5, i // 5


def lua_revision(i):
    step, t = kinds(i)
    name = "t%02d" % t
    if step == 0:
        ref = (',\n      {"parent_id", "integer", references = "t%02d.id"}' % (t - 1)
               if t else "")
        up = ('op.create_table("%s", {\n      {"id", "integer", primary_key = true},\n'
              '      {"name", "string(80)", nullable = false},\n'
              '      {"code", "string(10)", server_default = "x"}%s,\n    })' % (name, ref))
        down = 'op.drop_table("%s")' % name
    elif step == 1:
        up = 'op.add_column("%s", {"note", "text"})' % name
        down = 'op.drop_column("%s", "note")' % name
    elif step == 2:
        up = 'op.create_index("ix_%s_name", "%s", {"name"})' % (name, name)
        down = 'op.drop_index("ix_%s_name", "%s")' % (name, name)
    elif step == 3:
        up = ('op.create_check_constraint("ck_%s_code", "%s", "length(code) > 0")'
              % (name, name))
        down = 'op.drop_constraint("ck_%s_code", "%s", {type_ = "check"})' % (name, name)
    else:
        up = ('op.alter_column("%s", "code", {server_default = "y", '
              'existing_type = "string(10)"})' % name)
        down = ('op.alter_column("%s", "code", {server_default = "x", '
                'existing_type = "string(10)"})' % name)
    rev, parent = "r%03d" % i, ("r%03d" % (i - 1) if i else None)
    return ('return {\n  revision = "%s",\n  down_revision = %s,\n'
            '  upgrade = function(op)\n    %s\n  end,\n'
            '  downgrade = function(op)\n    %s\n  end,\n}\n'
            % (rev, '"%s"' % parent if parent else "nil", up, down))


def py_revision(i):
    step, t = kinds(i)
    name = "t%02d" % t
    if step == 0:
        ref = (',\n        sa.Column("parent_id", sa.Integer, sa.ForeignKey("t%02d.id"))'
               % (t - 1) if t else "")
        up = ('op.create_table("%s",\n        sa.Column("id", sa.Integer, primary_key=True),\n'
              '        sa.Column("name", sa.String(80), nullable=False),\n'
              '        sa.Column("code", sa.String(10), server_default="x")%s)'
              % (name, ref))
        down = 'op.drop_table("%s")' % name
    elif step == 1:
        up = 'op.add_column("%s", sa.Column("note", sa.Text))' % name
        down = ('with op.batch_alter_table("%s") as b:\n        b.drop_column("note")'
                % name)
    elif step == 2:
        up = 'op.create_index("ix_%s_name", "%s", ["name"])' % (name, name)
        down = 'op.drop_index("ix_%s_name", "%s")' % (name, name)
    elif step == 3:
        up = ('with op.batch_alter_table("%s") as b:\n'
              '        b.create_check_constraint("ck_%s_code", "length(code) > 0")'
              % (name, name))
        down = ('with op.batch_alter_table("%s") as b:\n'
                '        b.drop_constraint("ck_%s_code", type_="check")' % (name, name))
    else:
        up = ('with op.batch_alter_table("%s") as b:\n'
              '        b.alter_column("code", server_default="y", '
              'existing_type=sa.String(10))' % name)
        down = ('with op.batch_alter_table("%s") as b:\n'
                '        b.alter_column("code", server_default="x", '
                'existing_type=sa.String(10))' % name)
    rev, parent = "r%03d" % i, ("r%03d" % (i - 1) if i else None)
    return ('from alembic import op\nimport sqlalchemy as sa\n\n'
            'revision = "%s"\ndown_revision = %s\nbranch_labels = None\n'
            'depends_on = None\n\n\ndef upgrade():\n    %s\n\n\n'
            'def downgrade():\n    %s\n'
            % (rev, '"%s"' % parent if parent else "None", up, down))


ENV_PY = '''from alembic import context
connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None,
                  transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
'''

# The stairway, with Alembic's Python API in one process: each revision
# up, down, up, the schema read by the inspector after each step.
STAIRWAY = '''import sys
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

url, location = sys.argv[1], sys.argv[2]
cfg = Config()
cfg.set_main_option("script_location", location)
engine = sa.create_engine(url)
revisions = list(reversed(list(ScriptDirectory.from_config(cfg).walk_revisions())))


def snapshot():
    insp = sa.inspect(engine)
    shape = {}
    for t in insp.get_table_names():
        if t == "alembic_version":
            continue
        shape[t] = (insp.get_columns(t), insp.get_pk_constraint(t),
                    insp.get_foreign_keys(t), insp.get_indexes(t),
                    insp.get_unique_constraints(t), insp.get_check_constraints(t))
    return repr(sorted(shape.items()))


def run(fn, target):
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        fn(cfg, target)


before = snapshot()
for rev in revisions:
    run(command.upgrade, rev.revision)
    after = snapshot()
    run(command.downgrade, rev.down_revision or "base")
    if snapshot() != before:
        sys.exit("downgrade of %s does not restore the schema" % rev.revision)
    run(command.upgrade, rev.revision)
    before = snapshot()
    if before != after:
        sys.exit("upgrade of %s differs the second time" % rev.revision)
print("stairway: %d revisions" % len(revisions))
'''


def write_projects(tmp, n):
    lua = os.path.join(tmp, "luamig")
    os.makedirs(os.path.join(lua, "migrations"))
    with open(os.path.join(lua, "luamig.lua"), "w") as f:
        f.write('return {url = os.getenv("BENCH_URL"), script_location = "migrations"}\n')
    py = os.path.join(tmp, "alembic")
    os.makedirs(os.path.join(py, "versions"))
    with open(os.path.join(py, "env.py"), "w") as f:
        f.write(ENV_PY)
    with open(os.path.join(py, "script.py.mako"), "w") as f:
        f.write("")
    for i in range(n):
        with open(os.path.join(lua, "migrations", "r%03d.lua" % i), "w") as f:
            f.write(lua_revision(i))
        with open(os.path.join(py, "versions", "r%03d.py" % i), "w") as f:
            f.write(py_revision(i))
    with open(os.path.join(tmp, "stairway.py"), "w") as f:
        f.write(STAIRWAY)
    return lua, py


# ---- running -------------------------------------------------------------

def timed(argv, cwd, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit("bench/verify: %s failed (exit %d):\n%s%s" % (
            " ".join(argv), p.returncode, p.stdout.decode(errors="replace"),
            p.stderr.decode(errors="replace")))
    return dt, p.stdout.decode()


def psql(url, sql):
    env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                   check=True, stdout=subprocess.DEVNULL, env=env)


class Pg:
    """A server to make empty databases on: the one named, or our own."""

    def __init__(self, tmp):
        self.own = None
        self.url = os.environ.get("LUAMIG_BENCH_PG_URL")
        if not self.url:
            self.own = os.path.join(tmp, "pg")
            self.url = subprocess.run(
                ["bash", os.path.join(ROOT, "spec", "pgserver.sh"), "start", self.own],
                check=True, stdout=subprocess.PIPE).stdout.decode().strip()

    def stop(self):
        if self.own:
            subprocess.run(["bash", os.path.join(ROOT, "spec", "pgserver.sh"),
                            "stop", self.own], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)


def with_db(url, name):
    """url with its database replaced by name."""
    scheme, rest = url.split("://", 1)
    auth, _, path = rest.partition("/")
    query = path.partition("?")[2]
    return "%s://%s/%s%s" % (scheme, auth, name, "?" + query if query else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--luamig", default=os.path.join(ROOT, os.environ.get("BUILD", "build"),
                                                     "luamig"))
    ap.add_argument("--revisions", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not os.path.exists(args.luamig):
        sys.exit("bench/verify: build luamig first (make)")
    tmp = tempfile.mkdtemp(prefix="luamig-bench-verify.")
    pg = None
    made = []   # databases made on the server, dropped at the end
    try:
        lua, py = write_projects(tmp, args.revisions)
        pg = Pg(tmp)
        results = []
        for dialect in ("sqlite", "postgresql"):
            times = {"luamig": [], "alembic": []}
            for r in range(args.rounds):
                if dialect == "sqlite":
                    db = os.path.join(tmp, "verify_%d.db" % r)
                    luamig_url = "sqlite:///" + db
                    sa_url = "sqlite:///" + os.path.join(tmp, "stairway_%d.db" % r)
                else:
                    a = "bench_verify_l%d_%d" % (os.getpid(), r)
                    b = "bench_verify_a%d_%d" % (os.getpid(), r)
                    for name in (a, b):
                        psql(pg.url, "DROP DATABASE IF EXISTS %s" % name)
                        psql(pg.url, "CREATE DATABASE %s" % name)
                        made.append(name)
                    luamig_url = with_db(pg.url, a)
                    sa_url = with_db(pg.url, b).replace("postgresql://",
                                                        "postgresql+psycopg2://", 1)
                env = dict(os.environ, BENCH_URL=luamig_url)
                dt, out = timed([args.luamig, "-q", "verify"], lua, env)
                if "verified %d revisions" % args.revisions not in out:
                    sys.exit("bench/verify: luamig said: " + out)
                times["luamig"].append(dt)
                dt, out = timed(["/usr/bin/python3", os.path.join(tmp, "stairway.py"),
                                 sa_url, py], tmp)
                times["alembic"].append(dt)
            lm = statistics.median(times["luamig"])
            al = statistics.median(times["alembic"])
            results.append((dialect, lm, al))
        print("%d revisions, each up, down, up with the schema read after each "
              "step; median of %d" % (args.revisions, args.rounds))
        print("%-12s %10s %10s %8s  %s" % ("dialect", "luamig", "alembic", "ratio",
                                          "target"))
        for dialect, lm, al in results:
            ratio = lm / al
            print("%-12s %9.2fs %9.2fs %7.1f%%  < %d%% %s" % (
                dialect, lm, al, 100 * ratio, 100 * TARGET,
                "met" if ratio < TARGET else "MISSED"))
    finally:
        if pg:
            for name in made:
                psql(pg.url, "DROP DATABASE IF EXISTS %s" % name)
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

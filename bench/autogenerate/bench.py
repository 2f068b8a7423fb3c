#!/usr/bin/python3
"""bench/autogenerate: `alembic revision --autogenerate` against `luamig
revision --autogenerate` on the same PostgreSQL database of TABLES tables
(default 500; in foreign-key chains of 20, each with a unique column, a
default, an index: one chain of 500 makes Alembic's reflection, which
follows foreign keys recursively, stop with RecursionError), whose models (SQLAlchemy's and luamig's, the same tables) have one
column more than the database: both must find that one change and write it
as add_column.  Each tool runs as a whole process (start-up included),
ROUNDS times alternating (default 3); the medians count.  Prints the times
and the ratio against the target (luamig under 2 % of Alembic's time); a
missed target is reported, not fatal.

    bench.py [--luamig build/luamig] [--tables 500] [--rounds 3]

LUAMIG_BENCH_PG_URL names an existing server's database to create the
benchmark's database from; otherwise a throwaway server is started
(spec/pgserver.sh).
"""
import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "verify"))
from bench import Pg, psql, with_db  # noqa: E402  (bench/verify/bench.py)

TARGET = 0.02
MISSING = 250            # the table whose model has the column the database lacks
CHAIN = 20               # tables per foreign-key chain


def schema_sql(n):
    out = []
    for i in range(n):
        ref = ", parent_id integer REFERENCES t%03d (id)" % (i - 1) if i % CHAIN else ""
        out.append("CREATE TABLE t%03d (id serial PRIMARY KEY, name varchar(80) NOT NULL,"
                   " code varchar(10) DEFAULT 'x', email varchar(120) UNIQUE%s);"
                   " CREATE INDEX ix_t%03d_name ON t%03d (name);" % (i, ref, i, i))
    return "\n".join(out)


def lua_models(n):
    out = ["return {"]
    for i in range(n):
        cols = ['{"id", "integer", primary_key = true}',
                '{"name", "string(80)", nullable = false}',
                '{"code", "string(10)", server_default = "x"}',
                '{"email", "string(120)", unique = true}']
        if i % CHAIN:
            cols.append('{"parent_id", "integer", references = "t%03d.id"}' % (i - 1))
        if i == MISSING:
            cols.append('{"note", "text"}')
        out.append('  t%03d = {\n    %s,\n    indexes = {{"ix_t%03d_name", {"name"}}},\n  },'
                   % (i, ",\n    ".join(cols), i))
    out.append("}")
    return "\n".join(out) + "\n"


def py_models(n):
    out = ["import sqlalchemy as sa", "metadata = sa.MetaData()"]
    for i in range(n):
        cols = ['sa.Column("id", sa.Integer, primary_key=True)',
                'sa.Column("name", sa.String(80), nullable=False, index=True)',
                'sa.Column("code", sa.String(10), server_default="x")',
                'sa.Column("email", sa.String(120), unique=True)']
        if i % CHAIN:
            cols.append('sa.Column("parent_id", sa.Integer, sa.ForeignKey("t%03d.id"))' % (i - 1))
        if i == MISSING:
            cols.append('sa.Column("note", sa.Text)')
        out.append('sa.Table("t%03d", metadata,\n    %s)' % (i, ",\n    ".join(cols)))
    return "\n".join(out) + "\n"


ENV_PY = '''import sys, os
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from alembic import context
from sqlalchemy import create_engine
import models
engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=models.metadata)
    with context.begin_transaction():
        context.run_migrations()
'''

SCRIPT_MAKO = '''"""${message}"""
from alembic import op
import sqlalchemy as sa
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
'''


def write_projects(tmp, n, url):
    lua = os.path.join(tmp, "lua")
    py = os.path.join(tmp, "py")
    os.makedirs(os.path.join(lua, "migrations"))
    os.makedirs(os.path.join(py, "alembic", "versions"))
    with open(os.path.join(lua, "luamig.lua"), "w") as f:
        f.write('return {url = %r, script_location = "migrations", models = "models.lua",\n'
                '  exclude_tables = {"alembic_version"}}\n' % url)
    with open(os.path.join(lua, "models.lua"), "w") as f:
        f.write(lua_models(n))
    with open(os.path.join(py, "alembic.ini"), "w") as f:
        f.write("[alembic]\nscript_location = alembic\nsqlalchemy.url = %s\n" % url)
    with open(os.path.join(py, "models.py"), "w") as f:
        f.write(py_models(n))
    with open(os.path.join(py, "alembic", "env.py"), "w") as f:
        f.write(ENV_PY)
    with open(os.path.join(py, "alembic", "script.py.mako"), "w") as f:
        f.write(SCRIPT_MAKO)
    return lua, py


def timed(argv, cwd):
    t0 = time.perf_counter()
    p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        tail = p.stderr.decode(errors="replace").splitlines()[-15:]
        raise SystemExit("bench/autogenerate: %s failed (exit %d):\n%s" % (
            " ".join(argv), p.returncode, "\n".join(tail)))
    return dt


def take_script(folder):
    """The one script a run wrote (removed, so the next run starts clean)."""
    files = [f for f in glob.glob(os.path.join(folder, "*.*")) if os.path.isfile(f)]
    if len(files) != 1:
        raise SystemExit("bench/autogenerate: expected one new script in %s, found %d"
                         % (folder, len(files)))
    with open(files[0]) as f:
        text = f.read()
    os.remove(files[0])
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--luamig", default=os.path.join(ROOT, os.environ.get("BUILD", "build"),
                                                     "luamig"))
    ap.add_argument("--tables", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    alembic = shutil.which("alembic")
    if not alembic:
        raise SystemExit("bench/autogenerate: alembic is not installed (Debian: alembic)")
    tmp = tempfile.mkdtemp(prefix="luamig-bench-autogen.")
    os.chmod(tmp, 0o755)
    pg = Pg(tmp)
    name = "bench_autogen_%d" % os.getpid()
    try:
        psql(pg.url, "CREATE DATABASE %s" % name)
        url = with_db(pg.url, name)
        with open(os.path.join(tmp, "schema.sql"), "w") as f:
            f.write(schema_sql(args.tables))
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-f",
                        os.path.join(tmp, "schema.sql")], check=True,
                       stdout=subprocess.DEVNULL)
        lua, py = write_projects(tmp, args.tables, url)
        lt, at = [], []
        for _ in range(args.rounds):
            at.append(timed([alembic, "revision", "--autogenerate", "-m", "bench"], py))
            atext = take_script(os.path.join(py, "alembic", "versions"))
            lt.append(timed([args.luamig, "-q", "revision", "--autogenerate", "-m", "bench"], lua))
            ltext = take_script(os.path.join(lua, "migrations"))
        want_py = "op.add_column('t%03d', sa.Column('note'" % MISSING
        want_lua = 'op.add_column("t%03d", {"note", "text"})' % MISSING
        same = want_py in atext and want_lua in ltext and \
            atext.count("op.") == 2 and ltext.count("op.") == 2
        lm, am = statistics.median(lt), statistics.median(at)
        ratio = lm / am
        print("autogenerate, %d tables on PostgreSQL, one column missing (medians of %d):"
              % (args.tables, args.rounds))
        print("  alembic revision --autogenerate  %7.3f s" % am)
        print("  luamig revision --autogenerate   %7.3f s" % lm)
        print("  ratio %.2f %% (target < %.0f %%): %s" % (
            100 * ratio, 100 * TARGET, "met" if ratio < TARGET else "MISSED"))
        print("  the same change found (add_column t%03d.note, and nothing else): %s"
              % (MISSING, "yes" if same else "NO"))
        if not same:
            print("---- alembic\n" + atext + "---- luamig\n" + ltext)
            return 1
        return 0
    finally:
        try:
            psql(pg.url, "DROP DATABASE IF EXISTS %s" % name)
        except subprocess.CalledProcessError:
            pass
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

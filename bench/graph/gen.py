#!/usr/bin/python3
"""Generate the same linear revision history for luamig and for Alembic.

    gen.py DIR N

writes DIR/luamig/{luamig.lua,migrations/} and DIR/alembic/{alembic.ini,
env.py,versions/}.  Revision i (1-based) creates table t<i> with an integer
primary key and two more columns; both tools produce the same CREATE TABLE.
Also writes DIR/create.sql: the statements the sqlite3 peer runs (see
bench.py).
"""
import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def rev_id(i):
    # 12 lowercase hex characters, deterministic, not in creation order, so
    # file-name order differs from graph order, as in real projects.
    return hashlib.sha1(b"luamig-bench-%d" % i).hexdigest()[:12]


def table(i):
    return "t%05d" % i


LUA = """\
-- Create {t}
--
-- Revision ID: {rev}
-- Revises: {down_c}
-- Create Date: 2026-01-01 00:00:00

return {{
  revision = "{rev}",
  down_revision = {down_l},
  message = "Create {t}",

  upgrade = function(op)
    op.create_table("{t}", {{
      {{"id", "integer", primary_key = true}},
      {{"name", "string(50)", nullable = false}},
      {{"note", "text"}},
    }})
  end,

  downgrade = function(op)
    op.drop_table("{t}")
  end,
}}
"""

PY = """\
\"\"\"Create {t}

Revision ID: {rev}
Revises: {down_c}
Create Date: 2026-01-01 00:00:00

\"\"\"
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down_p}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        {t!r},
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("note", sa.Text()),
    )


def downgrade():
    op.drop_table({t!r})
"""

# The DDL SQLAlchemy emits for the table above (checked against both tools'
# .schema by bench.py), used by the sqlite3 peer.
SQL_CREATE = ("CREATE TABLE {t} (\n\tid INTEGER NOT NULL, \n"
              "\tname VARCHAR(50) NOT NULL, \n\tnote TEXT, \n"
              "\tPRIMARY KEY (id)\n);")


def generate(root, n, alembic=True):
    lm = os.path.join(root, "luamig")
    al = os.path.join(root, "alembic")
    os.makedirs(os.path.join(lm, "migrations"), exist_ok=True)
    os.makedirs(os.path.join(al, "versions"), exist_ok=True)
    with open(os.path.join(lm, "luamig.lua"), "w") as f:
        f.write('return {\n  url = "sqlite:///luamig.db",\n'
                '  script_location = "migrations",\n}\n')
    with open(os.path.join(al, "alembic.ini"), "w") as f:
        f.write("[alembic]\nscript_location = .\n"
                "sqlalchemy.url = sqlite:///alembic.db\n")
    with open(os.path.join(HERE, "env.py")) as src, \
            open(os.path.join(al, "env.py"), "w") as f:
        f.write(src.read())
    sql = open(os.path.join(root, "create.sql"), "w")
    sql.write("CREATE TABLE alembic_version (\n"
              "\tversion_num VARCHAR(32) NOT NULL, \n"
              "\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n);\n")
    down = None
    for i in range(1, n + 1):
        rev, t = rev_id(i), table(i)
        down_c = down or ""
        with open(os.path.join(lm, "migrations", "%s_create_%s.lua" % (rev, t)),
                  "w") as f:
            f.write(LUA.format(t=t, rev=rev, down_c=down_c,
                               down_l='"%s"' % down if down else "nil"))
        if alembic:
            with open(os.path.join(al, "versions",
                                   "%s_create_%s.py" % (rev, t)), "w") as f:
                f.write(PY.format(t=t, rev=rev, down_c=down_c,
                                  down_p=repr(down)))
        sql.write("BEGIN;\n" + SQL_CREATE.format(t=t) + "\n")
        if down:
            sql.write("UPDATE alembic_version SET version_num='%s' "
                      "WHERE alembic_version.version_num = '%s';\n" % (rev, down))
        else:
            sql.write("INSERT INTO alembic_version (version_num) "
                      "VALUES ('%s');\n" % rev)
        sql.write("COMMIT;\n")
        down = rev
    sql.close()
    return down


if __name__ == "__main__":
    print(generate(sys.argv[1], int(sys.argv[2])))
